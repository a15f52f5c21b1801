"""Benchmark: load the full shared CIFAR-10 JPEG archive, first (decode) and second (cached) time.

Each phase runs in a fresh Python process, so each peak RSS (ru_maxrss) is its own.
Writes ``benchmarks/results/data_load.json`` and prints a table.

Usage:
    python benchmarks/bench_data_load.py [--data PATH] [--output PATH]

Goals: first load <= 30 s, cached load <= 1 s, peak RSS <= 1 GB.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "datasets" / "cifar10-jpeg.tar.gz"
DEFAULT_OUTPUT = ROOT / "benchmarks" / "results" / "data_load.json"
GOALS = {"first_load_s": 30.0, "cached_load_s": 1.0, "peak_rss_mb": 1024.0}
PHASES = [
    # name, load_dataset keyword arguments, what it measures
    ("first load (decode)", {}, "decode every image, write the decode cache"),
    ("second load (cached)", {}, "read the decode cache"),
    ("subset=300, no cache", {"subset": 300, "use_cache": False}, "choose 300/class/split, decode only those"),
]


def run_phase(data: str, cache_dir: str, kwargs: dict) -> dict:
    """Body of one child process: one load_dataset call, timed."""
    sys.path.insert(0, str(ROOT))
    t0 = time.perf_counter()
    from cifarkit.data import load_dataset

    t1 = time.perf_counter()
    ds = load_dataset(data, cache_dir=cache_dir, progress=False, **kwargs)
    t2 = time.perf_counter()
    return {
        "load_s": round(t2 - t1, 3),
        "import_s": round(t1 - t0, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),  # KiB on Linux
        "from_cache": ds.from_cache,
        "counts": ds.counts(),
        "image_size": list(ds.image_size),
        "bytes": int(sum(ds.split(s)[0].nbytes for s in ("train", "val", "test"))),
    }


def machine() -> dict:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                ram_gb = round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "ram_gb": ram_gb,
        "platform": platform.platform(),
        "load_average_at_start": [round(v, 2) for v in os.getloadavg()],
    }


def versions() -> dict:
    import numpy
    import PIL

    commit, dirty = None, None
    try:
        git = ["git", "-C", str(ROOT)]
        commit = (
            subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10).stdout.strip()
            or None
        )
        status = subprocess.run(
            [*git, "status", "--porcelain", "--", "cifarkit/data"], capture_output=True, text=True, timeout=10
        )
        dirty = bool(status.stdout.strip()) if status.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        pass
    return {
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "pillow": PIL.__version__,
        "git_commit": commit,
        "cifarkit_data_uncommitted_changes": dirty,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data", default=str(DEFAULT_DATA), help="archive or folder to load (default: the shared JPEG archive)"
    )
    parser.add_argument("--output", default=str(DEFAULT_OUTPUT), help="where to write the JSON results")
    parser.add_argument("--phase-json", help=argparse.SUPPRESS)  # internal: run one phase in this process
    parser.add_argument("--cache-dir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.phase_json is not None:
        print(json.dumps(run_phase(args.data, args.cache_dir, json.loads(args.phase_json))))
        return 0

    data = Path(args.data).resolve()
    if not data.exists():
        print(
            f"Data not found: {data}. Pass --data PATH (the shared archive lives in ../shared/datasets/).",
            file=sys.stderr,
        )
        return 2
    from cifarkit import provenance

    record = {
        "benchmark": "data_load",
        "command": provenance.command_line(__file__, argv),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "versions": versions(),
        "data": {
            "path": str(data),
            "bytes": data.stat().st_size if data.is_file() else None,
            "sha256": hashlib.sha256(data.read_bytes()).hexdigest() if data.is_file() else None,
        },
        "goals": GOALS,
        "phases": [],
    }
    cache_dir = tempfile.mkdtemp(prefix="cifarkit-bench-cache-")
    try:
        for name, kwargs, what in PHASES:
            t0 = time.perf_counter()
            result = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--data",
                    str(data),
                    "--cache-dir",
                    cache_dir,
                    "--phase-json",
                    json.dumps(kwargs),
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode != 0:
                print(result.stdout + result.stderr, file=sys.stderr)
                return 1
            phase = json.loads(result.stdout.strip().splitlines()[-1])
            phase.update(name=name, kwargs=kwargs, what=what, process_s=round(time.perf_counter() - t0, 3))
            record["phases"].append(phase)
    finally:
        shutil.rmtree(cache_dir, ignore_errors=True)

    first, cached = record["phases"][0], record["phases"][1]
    record["results"] = {
        "first_load_s": first["load_s"],
        "cached_load_s": cached["load_s"],
        "peak_rss_mb": max(p["peak_rss_mb"] for p in record["phases"]),
    }
    record["meets_goals"] = {k: record["results"][k] <= v for k, v in GOALS.items()} | {
        "cached_phase_hit": cached["from_cache"]
    }

    facts = record["data"]
    about = f"{facts['bytes']:,} bytes, sha256 {facts['sha256'][:12]}..." if data.is_file() else "a folder"
    print(f"data: {data} ({about})")
    print(
        f"machine: {record['machine']['cpu']}, {record['machine']['usable_cores']} cores, {record['machine']['ram_gb']} GB; "
        f"load average {record['machine']['load_average_at_start']}"
    )
    header = f"{'phase':<24}{'load_dataset s':>15}{'process s':>11}{'peak RSS MB':>13}{'cached':>8}  train/val/test"
    print(header)
    print("-" * len(header))
    for p in record["phases"]:
        c = p["counts"]
        print(
            f"{p['name']:<24}{p['load_s']:>15.2f}{p['process_s']:>11.2f}{p['peak_rss_mb']:>13.0f}{str(p['from_cache']):>8}  "
            f"{c['train']}/{c['val']}/{c['test']}"
        )
    print(
        "goals: " + ", ".join(f"{k} <= {v}: {'ok' if record['meets_goals'][k] else 'MISSED'}" for k, v in GOALS.items())
    )

    output = Path(args.output)
    from cifarkit.files import atomic_write_json

    atomic_write_json(output, record)  # a temp file beside it, then os.replace
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    from cifarkit.signals import EXIT_CODE, stop_on_sigterm

    stop_on_sigterm(EXIT_CODE)  # kill PID ends the run as ^C does: its temp folders are removed
    sys.exit(main())
