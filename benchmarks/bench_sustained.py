"""Sustained float32 training speed: cifarkit's whole training loop beside its bare step and raw PyTorch, interleaved.

Usage:
    python benchmarks/bench_sustained.py [--data PATH] [--cycles 6] [--images 4096] [--epochs 2]
                                         [--block-steps 16] [--output PATH]

``bench_throughput.py`` keeps the best of a few short rounds of one training step on one fixed batch; a real
epoch of ``train()`` runs for minutes on fresh, augmented batches, with the loop's own work (the input
pipeline, the loss and accuracy read back every step, the lookahead average, the lr schedule). On a machine
whose speed drifts (the 2-core AVX2 EPYC of #15 changes by tens of percent within minutes), a best round
and a sustained epoch measured at different times cannot say which of the two the gap between them is.
This script measures three arms in turn, cycle after cycle, in one process, so that each cycle's arms share
the machine's state of that minute:

  torch  the raw PyTorch twin of fastnet (``bench_throughput.FastNetTorch``): ``--block-steps`` steps on one
         fixed random batch of 256 images;
  keras  ``cifarkit.training.optim.TrainStep`` on the Keras fastnet, the same batch and steps (what the
         throughput benchmark times);
  burst  the keras arm timed as ``bench_throughput`` times it: the best of 3 rounds of >= 2 s;
  loop   ``cifarkit.training.train()`` with the ``fast`` recipe in float32 (``mixed_precision="off"``) on
         ``--images`` real training images for ``--epochs`` epochs; its last epoch's img/s as the loop
         records it (training batches only: evaluation is timed apart);
  matmul float32 4096x4096 products with numpy for ``--matmul-seconds``: the ceiling of this minute;
  conv   a second yardstick, for CPUs where the matrix product is not the fastest float32 work (on an
         AVX-512 EPYC oneDNN's convolutions outrun numpy's and MKL's products): a 3x3 convolution in torch,
         256 to 256 channels on 16x16 maps, batch 64, channels-last, forward only, for ``--conv-seconds``.
  fma    the hardware's own float32 peak, measured: independent vector FMA chains from a small compiled C kernel
         on every core (``fma_peak.py``), for ``--fma-seconds`` (0 leaves it out; it needs a C compiler).

Per cycle it records each arm's img/s; the summary gives each arm's median, and the medians of the
per-cycle ratios loop/keras and keras/torch (a ratio within one cycle cancels most of the drift), and of the
loop's training GFLOP/s over the same cycle's matmul GFLOP/s (its share of the ceiling, both sustained; the
throughput benchmark's best-of-3 ceiling is a burst of about a second), and over the faster of the cycle's two
yardsticks (the share of the best float32 rate the libraries showed that minute: an upper bound on the share of
the hardware's own peak), and over the measured FMA peak of the same cycle (the share of the hardware's
ceiling itself). Writes ``benchmarks/results/sustained.json``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import bench_throughput as bt  # noqa: E402  (sets KERAS_BACKEND=torch before Keras loads)
import fma_peak  # noqa: E402
import torch  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "datasets" / "cifar10-jpeg.tar.gz"
DEFAULT_OUTPUT = HERE / "results" / "sustained.json"
BATCH = 256  # the fast recipe's batch size
ARMS = ("torch", "keras", "burst", "loop")


def step_arms(batch: int = BATCH):
    """The two single-batch arms, built as ``bench_throughput`` builds them: ``{"torch": fn, "keras": fn}``."""
    from cifarkit.models import build_model
    from cifarkit.training import resolve_recipe
    from cifarkit.training.optim import TrainStep, make_optimizer

    config = resolve_recipe("fast", model="fastnet", batch_size=batch, mixed_precision="off")
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.integers(0, 256, size=(batch, 32, 32, 3), dtype=np.uint8))
    y = torch.from_numpy(rng.integers(0, 10, size=batch))
    lr = 0.01
    bt.keras.utils.set_random_seed(0)
    model = build_model("fastnet", input_shape=(32, 32, 3), num_classes=10, mean=bt.CIFAR_MEAN, std=bt.CIFAR_STD)
    keras_step = TrainStep(model, make_optimizer(model, config), config)
    torch_step, _ = bt.twin_train_step("fastnet", config, x, y, lr)

    def keras_call():
        loss, _ = keras_step(x, y, lr)
        float(loss.detach())  # the loop reads the loss back every step; so does this arm

    return {"torch": torch_step, "keras": keras_call}


def time_block(fn, steps: int, batch: int = BATCH) -> float:
    """img/s of ``steps`` calls of ``fn`` (one warm-up call first, untimed)."""
    fn()
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    return steps * batch / (time.perf_counter() - start)


def matmul_block(seconds: float, n: int = 4096) -> float:
    """float32 GFLOP/s of n x n numpy products repeated for at least ``seconds`` (one untimed product first)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    a @ b
    count, start = 0, time.perf_counter()
    while count == 0 or time.perf_counter() - start < seconds:
        a @ b
        count += 1
    return 2.0 * n**3 * count / (time.perf_counter() - start) / 1e9


def conv_block(seconds: float, batch: int = 64, channels: int = 256, size: int = 16) -> float:
    """float32 GFLOP/s of a 3x3 same-padded convolution (``channels`` to ``channels`` on ``size`` x ``size``
    maps, channels-last) repeated for at least ``seconds`` (one untimed call first)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, channels, size, size, generator=gen).to(memory_format=torch.channels_last)
    w = torch.randn(channels, channels, 3, 3, generator=gen).to(memory_format=torch.channels_last)
    flop = 2.0 * batch * channels * channels * 9 * size * size
    with torch.no_grad():
        torch.nn.functional.conv2d(x, w, padding=1)
        count, start = 0, time.perf_counter()
        while count == 0 or time.perf_counter() - start < seconds:
            torch.nn.functional.conv2d(x, w, padding=1)
            count += 1
    return flop * count / (time.perf_counter() - start) / 1e9


def best_round(fn, rounds: int = 3, min_round_s: float = 2.0, batch: int = BATCH) -> float:
    """img/s of the best of ``rounds`` rounds of >= ``min_round_s`` each: ``bench_throughput``'s timing."""
    fn()
    start = time.perf_counter()
    fn()
    repeat = max(1, int(np.ceil(min_round_s / (time.perf_counter() - start))))
    best = np.inf
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(repeat):
            fn()
        best = min(best, (time.perf_counter() - start) / repeat)
    return batch / best


def loop_arm(ds, epochs: int, seed: int) -> dict:
    """One ``train()`` run on ``ds``; the img/s of its last epoch and of all of them, as the loop records them."""
    from cifarkit.training import resolve_recipe, train

    config = resolve_recipe(
        "fast", model="fastnet", epochs=epochs, seed=seed, device="cpu", mixed_precision="off", batch_size=BATCH
    )
    with tempfile.TemporaryDirectory() as tmp:
        res = train(ds, config, Path(tmp) / "run", progress=False, resume=False)
    rates = [r["images_per_sec"] for r in res.history]
    return {"last_epoch": rates[-1], "epochs": [round(r, 1) for r in rates]}


def summarize(cycles: list[dict], train_gflop_per_image: float) -> dict:
    """Medians of each arm and of the per-cycle ratios (hand-checkable: see tests/test_bench_sustained.py);
    ``train_gflop_per_image``: a training step's GFLOP per image (3x the forward's), for the share of the
    cycle's own matmul rate, and (where the cycles timed the conv yardstick) of the faster of the two."""
    med = {arm: statistics.median(c[arm] for c in cycles) for arm in ARMS}

    def shares(yardstick) -> dict:
        """Each arm's median over the cycles of its training GFLOP/s over ``yardstick(cycle)``'s GFLOP/s."""
        return {
            arm: round(statistics.median(train_gflop_per_image * c[arm] / yardstick(c) for c in cycles), 3)
            for arm in ARMS
        }

    summary = {
        "median_share_of_cycle_matmul": shares(lambda c: c["matmul_gflop_per_s"]),
        "median_matmul_gflop_per_s": round(statistics.median(c["matmul_gflop_per_s"] for c in cycles), 1),
        "median_img_per_s": {k: round(v, 1) for k, v in med.items()},
        "median_loop_over_keras": round(statistics.median(c["loop"] / c["keras"] for c in cycles), 3),
        "median_keras_over_torch": round(statistics.median(c["keras"] / c["torch"] for c in cycles), 3),
        "range_img_per_s": {
            arm: [round(min(c[arm] for c in cycles), 1), round(max(c[arm] for c in cycles), 1)] for arm in ARMS
        },
    }
    if all("conv_gflop_per_s" in c for c in cycles):
        summary["median_conv_gflop_per_s"] = round(statistics.median(c["conv_gflop_per_s"] for c in cycles), 1)
        summary["median_share_of_cycle_best_yardstick"] = shares(
            lambda c: max(c["matmul_gflop_per_s"], c["conv_gflop_per_s"])
        )
    if cycles and all(c.get("fma_gflop_per_s") for c in cycles):
        summary["median_fma_gflop_per_s"] = round(statistics.median(c["fma_gflop_per_s"] for c in cycles), 1)
        summary["median_share_of_cycle_fma_peak"] = shares(lambda c: c["fma_gflop_per_s"])
    return summary


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(DEFAULT_DATA))
    p.add_argument("--cycles", type=int, default=6)
    p.add_argument("--images", type=int, default=4096, help="training images the loop arm trains on")
    p.add_argument("--epochs", type=int, default=2, help="epochs per loop-arm run (the last one is kept)")
    p.add_argument("--block-steps", type=int, default=16, help="steps per torch and keras block")
    p.add_argument("--matmul-seconds", type=float, default=10.0, help="seconds of matrix products per cycle")
    p.add_argument("--conv-seconds", type=float, default=4.0, help="seconds of the conv yardstick per cycle")
    p.add_argument("--fma-seconds", type=float, default=2.0, help="seconds of the FMA peak per cycle (0: left out)")
    p.add_argument("--output", default=str(DEFAULT_OUTPUT))
    args = p.parse_args(argv)
    if args.cycles < 1 or args.images < 2 * BATCH or args.epochs < 1 or args.block_steps < 1:
        p.error(f"need --cycles >= 1, --images >= {2 * BATCH}, --epochs >= 1 and --block-steps >= 1")
    if not Path(args.data).exists():
        p.error(f"--data {args.data}: no such file or folder; pass the shared CIFAR-10 JPEG archive or an image folder")

    from cifarkit import provenance
    from cifarkit.data import load_study_data
    from cifarkit.files import atomic_write_json
    from cifarkit.models import build_model, count_flops

    load = os.getloadavg()
    print(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}", flush=True)
    per_class = -(-args.images // 10)
    ds = load_study_data(args.data, image_size=32, subset=per_class, val_fraction=0.1, seed=0, progress=False)
    ds.x_train, ds.y_train = ds.x_train[: args.images], ds.y_train[: args.images]
    flops = count_flops(build_model("fastnet", input_shape=(32, 32, 3), num_classes=10))
    ceiling_start = bt.matmul_ceiling(bf16=False)
    fma_widths = {}
    if args.fma_seconds > 0:  # both vector widths once: equal rates mean 512-bit work runs as two 256-bit halves
        for width in (512, 256):
            fma_widths[str(width)] = fma_peak.measure(args.fma_seconds, width)
            print(f"FMA peak at {width} bits: {fma_widths[str(width)]}", flush=True)
    arms = step_arms()
    cycles = []
    for i in range(args.cycles):
        row = {"cycle": i + 1, "utc": datetime.now(timezone.utc).strftime("%H:%M:%S")}
        for arm in ("torch", "keras"):
            row[arm] = round(time_block(arms[arm], args.block_steps), 1)
        row["burst"] = round(best_round(arms["keras"]), 1)
        row["matmul_gflop_per_s"] = round(matmul_block(args.matmul_seconds), 1)
        row["conv_gflop_per_s"] = round(conv_block(args.conv_seconds), 1)
        if args.fma_seconds > 0:
            row["fma_gflop_per_s"] = fma_peak.measure(args.fma_seconds)["gflop_per_s"]
        loop = loop_arm(ds, args.epochs, seed=i)
        row["loop"], row["loop_epochs"] = round(loop["last_epoch"], 1), loop["epochs"]
        cycles.append(row)
        print(
            f"cycle {i + 1}/{args.cycles} {row['utc']}: torch {row['torch']:.1f}, keras {row['keras']:.1f}, keras "
            f"best 2-s round {row['burst']:.1f}, "
            f"loop {row['loop']:.1f} img/s (loop/keras {row['loop'] / row['keras']:.3f}); matmul "
            f"{row['matmul_gflop_per_s']:.1f}, conv {row['conv_gflop_per_s']:.1f}"
            + (
                f", FMA peak {row['fma_gflop_per_s']} GFLOP/s"
                if row.get("fma_gflop_per_s")
                else " GFLOP/s, FMA peak not measured"
            ),
            flush=True,
        )
    ceiling_end = bt.matmul_ceiling(bf16=False)
    summary = summarize(cycles, 3 * flops / 1e9)
    best_ceiling = max(ceiling_start["numpy"], ceiling_end["numpy"])
    summary["loop_median_share_of_burst_ceiling"] = round(
        3 * flops * summary["median_img_per_s"]["loop"] / 1e9 / best_ceiling, 3
    )
    record = {
        "benchmark": "sustained",
        "command": provenance.command_line(__file__, argv),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": provenance.hardware_info(),
        "git": provenance.git_info(),
        "torch_threads": torch.get_num_threads(),
        "load_average_at_start": [round(v, 2) for v in load],
        "versions": bt.backend.versions(),
        "data": {"source": str(args.data), "loop_train_images": int(len(ds.y_train))},
        "precision": "float32 (mixed_precision='off')",
        "forward_gflops_per_image": round(flops / 1e9, 4),
        "burst_matmul_gflop_per_s": {"start": ceiling_start, "end": ceiling_end},  # best of 3 single products
        "fma_peak_by_width": fma_widths,
        "cycles": cycles,
        "summary": summary,
    }
    atomic_write_json(args.output, record)
    s = summary
    print(
        f"median img/s: torch {s['median_img_per_s']['torch']}, keras {s['median_img_per_s']['keras']}, loop "
        f"{s['median_img_per_s']['loop']}; loop/keras {s['median_loop_over_keras']}, keras/torch "
        f"{s['median_keras_over_torch']}; the loop at {100 * s['median_share_of_cycle_matmul']['loop']:.0f}% of its "
        f"cycle's sustained matmul (median {s['median_matmul_gflop_per_s']} GFLOP/s), "
        f"{100 * s['loop_median_share_of_burst_ceiling']:.0f}% of the burst ceiling {best_ceiling} GFLOP/s, "
        f"{100 * s['median_share_of_cycle_best_yardstick']['loop']:.0f}% of its cycle's faster yardstick (conv median "
        f"{s['median_conv_gflop_per_s']} GFLOP/s)"
    )
    if "median_share_of_cycle_fma_peak" in s:
        print(
            f"the loop at {100 * s['median_share_of_cycle_fma_peak']['loop']:.0f}% of its cycle's measured FMA peak "
            f"(median {s['median_fma_gflop_per_s']} GFLOP/s)"
        )
    print(f"wrote {os.path.relpath(args.output, ROOT)}")
    return 0


if __name__ == "__main__":
    from cifarkit.signals import EXIT_CODE, stop_on_sigterm

    stop_on_sigterm(EXIT_CODE)  # kill PID ends the run as ^C does: its temp folders are removed
    raise SystemExit(main())
