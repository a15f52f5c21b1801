"""``torch.compile`` (inductor) on the CPU in float32: fastnet's training step and inference, compiled against eager.

Usage:
    python benchmarks/bench_compile_cpu.py [--model fastnet] [--batch 256] [--cycles 3] [--block-seconds 12]
                                           [--output PATH]

#15 item 4 asks what ``torch.compile`` gives in float32 on the CPU, to adopt it where it wins by >= 5%.
``train()`` compiles with ``compile="on"`` (``compile="auto"`` compiles nothing on a CPU). Four training arms,
each a step on one fixed random batch (uint8 images, as the loop feeds them), in float32
(``mixed_precision="off"``):

  keras           ``cifarkit.training.optim.TrainStep`` on the Keras model, eager (what ``train()`` runs);
  keras_compiled  the same with the forward ``train()`` compiles (``loop._compiled_forward``, ``compile="on"``);
  torch           the raw PyTorch twin of ``bench_throughput`` (channels-last), eager;
  torch_compiled  the twin under ``torch.compile``: what inductor gives where nothing in Keras is in its way.

Each arm is warmed up first (its compilation timed apart, until a step compiles no new graph), then the
arms run in turn for ``--cycles`` cycles of ``--block-seconds`` each (interleaved, because this machine's
speed drifts within minutes); each arm's median block counts. Inference (``training=False`` forward, no
gradients, batch 512 as ``predict_logits``) is timed the same way, eager and compiled, for both models.
Dynamo's graph breaks and compiled graphs are recorded per arm. Writes ``benchmarks/results/compile_cpu.json``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import bench_throughput as bt  # noqa: E402  (sets KERAS_BACKEND=torch before Keras loads)
import torch  # noqa: E402
from gpu_check import dynamo_summary  # noqa: E402

DEFAULT_OUTPUT = HERE / "results" / "compile_cpu.json"
INFER_BATCH = 512
WARMUP_MAX_STEPS = 12


def warm_up(fn) -> dict:
    """Call ``fn`` until a call compiles no new graph (at least twice, at most ``WARMUP_MAX_STEPS``); the seconds
    it took (compilation included) and Dynamo's counters then."""
    from torch._dynamo.utils import counters

    counters.clear()
    graphs, steps, start = -1, 0, time.perf_counter()
    while steps < WARMUP_MAX_STEPS:
        fn()
        steps += 1
        now = counters["stats"].get("unique_graphs", 0)
        if steps >= 2 and now == graphs:
            break
        graphs = now
    return {"seconds": round(time.perf_counter() - start, 1), "steps": steps, "dynamo": dynamo_summary(counters)}


def block_rate(fn, seconds: float, images: int) -> float:
    """img/s of ``fn`` (``images`` per call) called for at least ``seconds``."""
    calls, start = 0, time.perf_counter()
    while calls == 0 or time.perf_counter() - start < seconds:
        fn()
        calls += 1
    return calls * images / (time.perf_counter() - start)


def arms(model_name: str, batch: int) -> tuple[dict, dict]:
    """``(training arms, inference arms)``: name -> a function of no arguments."""
    from cifarkit.models import build_model
    from cifarkit.training import resolve_recipe
    from cifarkit.training.loop import _compiled_forward
    from cifarkit.training.optim import TrainStep, make_optimizer

    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.integers(0, 256, size=(batch, 32, 32, 3), dtype=np.uint8))
    y = torch.from_numpy(rng.integers(0, 10, size=batch))
    x_inf = torch.from_numpy(rng.integers(0, 256, size=(INFER_BATCH, 32, 32, 3), dtype=np.uint8))
    lr = 0.01
    train, infer = {}, {}
    recipe = "fast" if model_name == "fastnet" else "paper"
    for compiled in (False, True):
        config = resolve_recipe(
            recipe, model=model_name, batch_size=batch, mixed_precision="off", compile="on" if compiled else "off"
        )
        bt.keras.utils.set_random_seed(0)
        model = build_model(model_name, input_shape=(32, 32, 3), num_classes=10, mean=bt.CIFAR_MEAN, std=bt.CIFAR_STD)
        forward = _compiled_forward(model, config, "cpu")
        step = TrainStep(model, make_optimizer(model, config), config, forward=forward)
        suffix = "_compiled" if compiled else ""

        def train_call(step=step):
            loss, _ = step(x, y, lr)
            float(loss.detach())

        def infer_call(forward=forward):
            with torch.no_grad():
                forward(x_inf, training=False)

        train["keras" + suffix], infer["keras" + suffix] = train_call, infer_call
        twin_step, _ = bt.twin_train_step(model_name, config, x, y, lr, compiled=compiled)
        twin = bt.torch_twin(model_name).to(memory_format=torch.channels_last).eval()
        twin_forward = torch.compile(twin) if compiled else twin

        def twin_infer(forward=twin_forward):
            with torch.no_grad():
                forward(x_inf)

        train["torch" + suffix], infer["torch" + suffix] = twin_step, twin_infer
    return train, infer


def measure(fns: dict, images: int, cycles: int, block_seconds: float) -> dict:
    """Warm every arm up, then time them in turn for ``cycles`` cycles; per arm: warm-up and median img/s."""
    out = {name: {"warmup": warm_up(fn), "blocks": []} for name, fn in fns.items()}
    for _ in range(cycles):
        for name, fn in fns.items():
            out[name]["blocks"].append(round(block_rate(fn, block_seconds, images), 1))
    for r in out.values():
        r["median_img_per_s"] = round(statistics.median(r["blocks"]), 1)
    return out


def compiled_over_eager(results: dict) -> dict:
    """Per-cycle ratios compiled / eager of each model, and their median (hand-checked in the tests)."""
    out = {}
    for base in ("keras", "torch"):
        eager, comp = results[base]["blocks"], results[base + "_compiled"]["blocks"]
        ratios = [c / e for c, e in zip(comp, eager)]
        out[base] = {"per_cycle": [round(r, 3) for r in ratios], "median": round(statistics.median(ratios), 3)}
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="fastnet", help="fastnet or resnet20/32/44/56/110 (a raw twin exists)")
    p.add_argument("--batch", type=int, default=256, help="training batch (the fast recipe's: 256)")
    p.add_argument("--cycles", type=int, default=3)
    p.add_argument("--block-seconds", type=float, default=12.0)
    p.add_argument("--output", default=str(DEFAULT_OUTPUT))
    args = p.parse_args(argv)
    if args.cycles < 1 or args.batch < 1 or args.block_seconds <= 0:
        p.error("need --cycles >= 1, --batch >= 1 and --block-seconds > 0")

    from cifarkit import provenance
    from cifarkit.files import atomic_write_json

    load = os.getloadavg()
    print(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}", flush=True)
    train_fns, infer_fns = arms(args.model, args.batch)
    training = measure(train_fns, args.batch, args.cycles, args.block_seconds)
    inference = measure(infer_fns, INFER_BATCH, args.cycles, args.block_seconds)
    record = {
        "benchmark": "compile_cpu",
        "command": provenance.command_line(__file__, argv),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": provenance.hardware_info(),
        "git": provenance.git_info(),
        "torch_threads": torch.get_num_threads(),
        "load_average_at_start": [round(v, 2) for v in load],
        "versions": bt.backend.versions(),
        "data": "random uint8 images 32x32x3, 10 classes (speed only)",
        "precision": "float32 (mixed_precision='off')",
        "model": args.model,
        "training": {"batch": args.batch, "arms": training, "compiled_over_eager": compiled_over_eager(training)},
        "inference": {
            "batch": INFER_BATCH,
            "arms": inference,
            "compiled_over_eager": compiled_over_eager(inference),
        },
    }
    atomic_write_json(args.output, record)
    for part in ("training", "inference"):
        r = record[part]
        arms_text = ", ".join(
            f"{name} {a['median_img_per_s']} img/s (warm-up {a['warmup']['seconds']} s, "
            f"{a['warmup']['dynamo']['graph_breaks']} breaks)"
            for name, a in r["arms"].items()
        )
        ratio = r["compiled_over_eager"]
        print(f"{part}: {arms_text}; compiled/eager keras {ratio['keras']['median']}, torch {ratio['torch']['median']}")
    print(f"wrote {os.path.relpath(args.output, ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
