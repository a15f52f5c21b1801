"""The CPU's own float32 peak, measured: fused multiply-adds from a small C kernel on every core at once.

Usage:
    python benchmarks/fma_peak.py [--seconds 2] [--width 512|256|auto] [--threads N]

``bench_sustained.py`` gives fastnet's training rate as a share of a yardstick. Library calls (numpy's matrix
product, a oneDNN convolution) are yardsticks of what software reaches, not of the hardware: on the AVX-512
EPYC a convolution ran 1.13-1.21x the matrix product, so neither is known to be the ceiling. This script
measures the ceiling directly: it writes a C kernel that runs ``CHAINS`` independent vector FMA chains
(``acc = acc * 0.5 + 1``, enough chains to hide the FMA latency on two pipes), compiles it with the system's C
compiler (``cc``/``gcc``, ``-O2`` and the vector flags), and runs one thread per core, started together at a
barrier. GFLOP/s = 2 x lanes x chains x iterations x threads / the slowest thread's seconds. Each chain
converges to exactly 2.0, and the kernel prints the sum of its accumulators, which is checked: a kernel the
compiler folded away or miscompiled is refused rather than reported.

``--width 512`` uses AVX-512 (``avx512f``), 256 AVX2 with FMA (``fma``); ``auto`` the widest the CPU's flags
name. A CPU that executes 512-bit operations as two 256-bit halves shows about the same rate at both widths.
Without a C compiler or the vector flags, :func:`measure` returns ``None`` with the reason (``why``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CHAINS = 12  # independent accumulators per thread: >= FMA latency (4 cycles) x pipes (2) on current x86 cores
ITERS_PER_CALIBRATION = 2_000_000

KERNEL = r"""
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef %(vec)s vec;
static pthread_barrier_t barrier;
static long iters;
static double elapsed[256];
static double sums[256];

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void *work(void *arg) {
    long id = (long)arg;
    volatile float half = 0.5f, one = 1.0f;
    vec a = %(set1)s(half), b = %(set1)s(one);
%(declare)s
    pthread_barrier_wait(&barrier);
    double t0 = now();
    for (long i = 0; i < iters; i++) {
%(update)s
    }
    elapsed[id] = now() - t0;
    float lanes[%(lanes)d];
    double s = 0;
%(reduce)s
    sums[id] = s;
    return NULL;
}

int main(int argc, char **argv) {
    int threads = atoi(argv[1]);
    iters = atol(argv[2]);
    pthread_t tid[256];
    pthread_barrier_init(&barrier, NULL, threads);
    for (long t = 0; t < threads; t++) pthread_create(&tid[t], NULL, work, (void *)t);
    double slowest = 0, total = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(tid[t], NULL);
        if (elapsed[t] > slowest) slowest = elapsed[t];
        total += sums[t];
    }
    printf("%%.9f %%.1f\n", slowest, total);
    return 0;
}
"""

WIDTHS = {
    512: {"vec": "__m512", "set1": "_mm512_set1_ps", "fma": "_mm512_fmadd_ps", "store": "_mm512_storeu_ps",
          "lanes": 16, "flags": ["-mavx512f"], "cpu_flag": "avx512f"},
    256: {"vec": "__m256", "set1": "_mm256_set1_ps", "fma": "_mm256_fmadd_ps", "store": "_mm256_storeu_ps",
          "lanes": 8, "flags": ["-mavx2", "-mfma"], "cpu_flag": "fma"},
}  # fmt: skip


def cpu_flags() -> set[str]:
    """The flags of the first CPU in ``/proc/cpuinfo`` (empty where there is none)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def widest(flags: set[str]) -> int | None:
    """The widest vector width in bits this script can use on a CPU with ``flags``."""
    return next((w for w in (512, 256) if WIDTHS[w]["cpu_flag"] in flags), None)


def compiler() -> str | None:
    return next((c for c in ("cc", "gcc", "clang") if shutil.which(c)), None)


def kernel_lines(spec: dict) -> dict:
    """The kernel's chains written out one variable each, so that the compiler keeps every accumulator in a
    register (an array of them went through memory at -O2, which measured store-to-load latency, not FMAs)."""
    ks = range(CHAINS)
    return {
        "declare": "\n".join(f"    {spec['vec']} acc{k} = {spec['set1']}((float){k});" for k in ks),
        "update": "\n".join(f"        acc{k} = {spec['fma']}(acc{k}, a, b);" for k in ks),
        "reduce": "\n".join(
            f"    {spec['store']}(lanes, acc{k}); for (int j = 0; j < {spec['lanes']}; j++) s += lanes[j];" for k in ks
        ),
    }


def build(width: int, folder: Path) -> Path:
    """Compile the kernel for ``width`` bits into ``folder``; returns the executable."""
    spec = WIDTHS[width]
    src = folder / f"fma{width}.c"
    exe = folder / f"fma{width}"
    src.write_text(KERNEL % {**spec, **kernel_lines(spec)})
    cmd = [compiler(), "-O2", *spec["flags"], "-pthread", "-o", str(exe), str(src)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"compiling the FMA kernel failed ({' '.join(cmd)}): {out.stderr.strip()[-500:]}")
    return exe


def run_kernel(exe: Path, threads: int, iters: int, lanes: int) -> dict:
    """Run the compiled kernel; ``{"seconds", "gflop_per_s"}``, its checksum verified."""
    out = subprocess.run([str(exe), str(threads), str(iters)], capture_output=True, text=True, check=True)
    seconds, total = map(float, out.stdout.split())
    expected = 2.0 * lanes * CHAINS * threads
    if abs(total - expected) > 1e-3 * expected:
        raise RuntimeError(f"the FMA kernel's checksum is {total}, not {expected}: its result cannot be trusted")
    flops = 2.0 * lanes * CHAINS * iters * threads
    return {"seconds": round(seconds, 4), "gflop_per_s": round(flops / seconds / 1e9, 1)}


def measure(seconds: float = 2.0, width: int | str = "auto", threads: int | None = None) -> dict:
    """The measured float32 FMA peak: ``{"gflop_per_s", "width_bits", "threads", "seconds", ...}``; with
    ``"gflop_per_s": None`` and ``"why"`` where it cannot be measured here (no compiler, no vector unit)."""
    flags = cpu_flags()
    chosen = widest(flags) if width == "auto" else int(width)
    threads = threads or os.cpu_count() or 1
    base = {"width_bits": chosen, "threads": threads, "chains": CHAINS}
    if chosen is None or chosen not in WIDTHS:
        return {**base, "gflop_per_s": None, "why": f"no AVX2+FMA or AVX-512 in this CPU's flags (width {width})"}
    if WIDTHS[chosen]["cpu_flag"] not in flags:
        return {**base, "gflop_per_s": None, "why": f"this CPU's flags lack {WIDTHS[chosen]['cpu_flag']}"}
    if compiler() is None:
        return {**base, "gflop_per_s": None, "why": "no C compiler (cc, gcc or clang) on PATH"}
    lanes = WIDTHS[chosen]["lanes"]
    with tempfile.TemporaryDirectory(prefix="cifarkit-fma-") as tmp:
        exe = build(chosen, Path(tmp))
        probe = run_kernel(exe, threads, ITERS_PER_CALIBRATION, lanes)  # calibrates the iterations to ``seconds``
        iters = max(ITERS_PER_CALIBRATION, int(ITERS_PER_CALIBRATION * seconds / max(probe["seconds"], 1e-6)))
        result = run_kernel(exe, threads, iters, lanes)
    return {**base, **result, "iterations": iters, "compiler": compiler()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--width", default="auto", choices=["auto", "512", "256"])
    p.add_argument("--threads", type=int, default=None, help="default: one per CPU the OS shows")
    p.add_argument("--output", default=None, help="also write the result, with command, date and machine, here")
    args = p.parse_args(argv)
    if args.seconds <= 0 or (args.threads is not None and not 1 <= args.threads <= 256):
        p.error("need --seconds > 0 and 1 <= --threads <= 256")
    result = measure(args.seconds, args.width, args.threads)
    print(json.dumps(result))
    if args.output:
        from datetime import datetime, timezone

        from cifarkit.files import atomic_write_json
        from cifarkit.provenance import command_line, git_info, hardware_info

        record = {
            "command": command_line(__file__, argv),
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
            "machine": hardware_info(),
            "git": git_info(),
            "load_average": [round(v, 2) for v in os.getloadavg()],
            "result": result,
        }
        atomic_write_json(args.output, record)  # temp file + rename: no half-written record
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from cifarkit.signals import EXIT_CODE, stop_on_sigterm

    stop_on_sigterm(EXIT_CODE)  # kill PID ends the run as ^C does: its temp folders are removed
    sys.exit(main())
