"""GPU readiness check: what the first run on a CUDA GPU should measure, in one script meant to take < 8 minutes.

Written before any GPU was available to the project: every code path runs on the CPU with ``--dry-run``
(``tests/test_gpu_check.py``), and the script is meant to run correctly the first time a GPU appears.

Parts, each written to the JSON file as soon as it finishes (a run cut short keeps what it measured):

1. ``time_to_accuracy``: ``fastnet`` with the ``fast`` recipe on the shared CIFAR-10, trained by
   ``cifarkit.training.train`` with the per-epoch test monitor (``eval_test_every_epoch=True``, as
   ``bench_time_to_accuracy.py``), with the CUDA defaults (device pipeline, bf16, channels-last; no compile,
   see ``loop.AUTO_COMPILE_MODELS``). Training seconds (evaluation passes excluded) until test accuracy first
   reaches 90% and 93%, as the loop records them (epoch 1 includes cuDNN autotuning) and with that warm-up removed
   (epoch 1 counted at the median of the later epochs).
2. ``throughput``: training images/s of ``fastnet``, ``resnet20`` and ``resnet56`` at batch 512: bf16
   autocast, ``torch.compile``, channels-last kernels, the device pipeline (crop + flip) feeding
   ``optim.TrainStep`` -- the step ``train()`` runs; warm-up (compilation) excluded and timed separately,
   best of 3 synchronized rounds. The same without compilation (eager), the augmentation pipeline alone,
   and ``torch.compile``'s graph breaks and compiled graphs per model. While measuring, Dynamo's recompile
   limit is 2 (``--recompile-limit``; PyTorch's is 8), so a frame that recompiles on every step falls back
   to eager soon, as it would in ``train()`` after 8; a warm-up still compiling new graphs after its share of
   the budget (at most ``--compile-warmup-cap`` seconds) is recorded as such and not timed.
3. ``quick_profile``: wall time of ``run_all.py --profile quick --data DATA --no-pdf --out <tmp>`` as a
   subprocess (``--no-quick`` skips it; it gets the time left of ``--budget``, at least 60 s).

Data: ``--data PATH``; by default ``../shared/datasets/cifar10-jpeg.tar.gz`` beside the checkout (copy it into
the working tree of a remote machine and pass ``--data``); without it ``synthetic:5000``, with a note in the
JSON: the accuracy thresholds mean nothing on synthetic shapes. Nothing is downloaded.

Goals (targets to compare the measurements with; not claims -- no GPU figure exists yet):
    - fastnet to 93% test accuracy in <= 10 s of training on one H100/H200;
    - the standard profile (``run_all.py``, default profile) in <= 5 minutes on one H100/H200
      (not run here: the quick profile's wall time is the check's proxy).

Usage:
    python benchmarks/gpu_check.py [--data PATH] [--output PATH] [--no-quick] [--budget SECONDS]
                                   [--models fastnet resnet20 resnet56] [--batch 512] [--set KEY=VALUE]
    python benchmarks/gpu_check.py --dry-run [--no-quick]   # every path on the CPU in seconds; not a measurement

Writes ``benchmarks/results/gpu_check.json`` (``--dry-run``: a file in the temp folder, marked
``"dry_run": true``) and prints a summary table. Without a CUDA device and without ``--dry-run`` it exits 2
with one line.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_DATA = ROOT.parent / "shared" / "datasets" / "cifar10-jpeg.tar.gz"
DEFAULT_OUTPUT = ROOT / "benchmarks" / "results" / "gpu_check.json"
DRY_RUN_OUTPUT = Path(tempfile.gettempdir()) / "gpu_check.dry_run.json"
FALLBACK_DATA = "synthetic:5000"
DRY_RUN_DATA = "synthetic:24"
THRESHOLDS = (0.90, 0.93)
MODELS = ("fastnet", "resnet20", "resnet56")
GOALS = {
    "fastnet_93_train_seconds": 10.0,
    "standard_profile_seconds": 300.0,
    "note": "targets on one H100/H200, to compare the measurements with; not claims",
}
NO_CUDA = (
    "gpu_check: no CUDA device here (torch {torch}, torch.cuda.is_available() is False); run it on a GPU machine, "
    "or add --dry-run to exercise every part on the CPU."
)


# --------------------------------------------------------------------------- helpers
def machine_info(torch) -> dict:
    """Host facts (``provenance.hardware_info``), and the GPU's name, memory, capability, CUDA and cuDNN versions."""
    from cifarkit.provenance import hardware_info

    info = hardware_info()
    info["torch"] = torch.__version__
    info["torch_cuda_build"] = torch.version.cuda
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(
            gpu_name=torch.cuda.get_device_name(0),
            gpu_count=torch.cuda.device_count(),
            gpu_memory_gib=round(props.total_memory / 2**30, 1),
            gpu_capability=".".join(map(str, torch.cuda.get_device_capability(0))),
            cudnn=torch.backends.cudnn.version(),
            bf16_supported=torch.cuda.is_bf16_supported(),
        )
    else:
        info["gpu_name"] = None
    return info


def resolve_data(arg: str | None, dry_run: bool) -> tuple[str, str | None]:
    """``(source, note)``: what the check trains on, and why when it is not the shared CIFAR-10."""
    if dry_run:
        return DRY_RUN_DATA, "dry run: tiny synthetic data (4 classes of shapes), whatever --data says"
    if arg:
        if not arg.startswith("synthetic") and not Path(arg).exists():
            raise FileNotFoundError(f"gpu_check: --data {arg} does not exist.")
        return arg, None if not arg.startswith("synthetic") else "synthetic data: accuracy thresholds are meaningless"
    if DEFAULT_DATA.is_file():
        return str(DEFAULT_DATA), None
    return FALLBACK_DATA, (
        f"the shared CIFAR-10 archive was not found at {DEFAULT_DATA} (it lies beside the checkout and travels "
        f"with a working tree only if copied: pass --data PATH); fell back to {FALLBACK_DATA} synthetic shapes, "
        "on which the 90%/93% thresholds mean nothing (throughput and wall times still do)"
    )


def first_reaching(history: list[dict], threshold: float, warmup_seconds: float) -> dict | None:
    """First epoch whose monitored test accuracy reaches ``threshold``, with the training seconds until then.

    ``train_seconds`` sums the loop's ``epoch_seconds``; ``train_seconds_excluding_warmup`` subtracts the
    first epoch's warm-up (compilation, autotuning) estimated by :func:`warmup_estimate`.
    """
    seconds = 0.0
    for row in history:
        seconds += row["epoch_seconds"]
        if row.get("test_acc_monitor", 0.0) >= threshold:
            return {
                "epoch": row["epoch"],
                "train_seconds": round(seconds, 2),
                "train_seconds_excluding_warmup": round(seconds - warmup_seconds, 2),
                "test_acc": row["test_acc_monitor"],
            }
    return None


def warmup_estimate(epoch_seconds: list[float]) -> float:
    """Extra seconds of epoch 1 (compilation, cuDNN autotuning): its time minus the median later epoch's; 0 with one epoch."""
    if len(epoch_seconds) < 2:
        return 0.0
    return max(0.0, epoch_seconds[0] - statistics.median(epoch_seconds[1:]))


def dynamo_summary(counters) -> dict:
    """Graph breaks (count and distinct first lines of their reasons) and compiled graphs, from Dynamo's counters."""
    breaks = counters.get("graph_break", {})
    reasons = sorted({str(k).splitlines()[0][:160] for k in breaks})
    stats = counters.get("stats", {})
    return {
        "graph_breaks": int(sum(breaks.values())),
        "break_reasons": reasons[:6],
        "unique_graphs": int(stats.get("unique_graphs", 0)),
        "calls_captured": int(stats.get("calls_captured", 0)),
    }


def sync(torch, device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def quick_command(data: str, out: str, dry_run: bool) -> list[str]:
    """The ``run_all.py`` command of part 3 (``--dry-run``: one notebook of the smoke profile)."""
    profile = ["--profile", "smoke", "--only", "01"] if dry_run else ["--profile", "quick"]
    return [sys.executable, str(ROOT / "run_all.py"), *profile, "--data", data, "--no-pdf", "--out", out]


def _kill_group(proc) -> None:
    """Kill ``proc``'s process group (the run and its notebook kernels) and reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def run_timed(cmd: list[str], timeout: float, log_path: Path, cwd=ROOT) -> dict:
    """Run ``cmd`` (its own process group, output to ``log_path``); wall seconds, exit code, and whether it timed out.

    On timeout the whole process group (notebook kernels included) is killed.
    """
    start = time.perf_counter()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        timed_out = False
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(proc)
        except BaseException:  # ^C or SIGTERM: the run (its own session, so not signalled) goes too
            _kill_group(proc)
            raise
    wall = time.perf_counter() - start
    tail = log_path.read_bytes()[-3000:].decode(errors="replace")
    return {
        "wall_seconds": round(wall, 1),
        "returncode": proc.returncode,
        "timed_out": timed_out,
        "timeout_seconds": round(timeout, 1),
        "log_tail": tail if (timed_out or proc.returncode) else tail[-600:],
    }


# --------------------------------------------------------------------------- part 1: time to accuracy
def part_time_to_accuracy(args, data: str, device: str, torch) -> dict:
    from cifarkit.data import load_study_data
    from cifarkit.training import parse_override, resolve_recipe, train

    t0 = time.perf_counter()
    ds = load_study_data(data, image_size=32, subset=0, val_fraction=0.1, seed=0, progress=False)
    load_seconds = time.perf_counter() - t0
    settings = {"seed": 0, "eval_test_every_epoch": True, "device": "gpu" if device == "cuda" else "cpu"}
    if args.dry_run:  # two steps in all, eagerly, with the GPU code paths forced on
        settings.update(epochs=2, batch_size=64, compile="off", pipeline="torch", channels_last="on")
    if args.epochs:
        settings["epochs"] = args.epochs
    settings.update(parse_override(text) for text in args.set)
    config = resolve_recipe("fast", **settings)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    with tempfile.TemporaryDirectory() as tmp:
        res = train(ds, config, Path(tmp) / "run", progress=not args.dry_run, resume=False)
    history = res.history
    epoch_seconds = [r["epoch_seconds"] for r in history]
    warmup = warmup_estimate(epoch_seconds)
    m = res.metrics
    out = {
        "data_load_seconds": round(load_seconds, 1),
        "data_counts": ds.counts(),
        "config": config.to_dict(),
        "resolved": {k: m.get(k) for k in ("device", "mixed_precision", "compiled", "channels_last", "input_pipeline")},
        "curve": [
            {
                "epoch": r["epoch"],
                "epoch_seconds": round(r["epoch_seconds"], 3),
                "test_acc": r.get("test_acc_monitor"),
                "val_acc": r["val_acc"],
                "images_per_sec": round(r["images_per_sec"], 1),
            }
            for r in history
        ],
        "warmup_seconds_estimate": round(warmup, 2),
        "time_to": {f"{round(t * 100)}%": first_reaching(history, t, warmup) for t in THRESHOLDS},
        "final": {"test_acc": m["test_acc"], "val_acc": m["val_acc"], "train_seconds": round(m["train_seconds"], 2)},
        "images_per_sec_after_epoch_1": round(statistics.median([r["images_per_sec"] for r in history[1:]]), 1)
        if len(history) > 1
        else None,
        "seconds_total": round(time.perf_counter() - t0, 1),
    }
    if device == "cuda":
        out["peak_gpu_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    return out


# --------------------------------------------------------------------------- part 2: throughput
def _train_step(name: str, batch: int, device: str, compiled: bool):
    """A model, optimizer and ``TrainStep`` set up as ``train()`` sets them up on ``device`` (with forced settings)."""
    from cifarkit import backend
    from cifarkit.models import build_model
    from cifarkit.training import resolve_recipe
    from cifarkit.training.loop import _compiled_forward
    from cifarkit.training.optim import TrainStep, make_optimizer
    from cifarkit.training.precision import autocast_dtype, relay_kernels

    keras = backend.keras()
    recipe = "fast" if name == "fastnet" else "paper"
    config = resolve_recipe(
        recipe,
        model=name,
        batch_size=batch,
        compile="on" if compiled else "off",
        channels_last="on",
        mixed_precision="bf16" if device == "cuda" else "auto",
    )
    keras.utils.set_random_seed(0)
    with keras.device(device):
        model = build_model(
            name, input_shape=(32, 32, 3), num_classes=10, mean=(0.49, 0.48, 0.45), std=(0.25, 0.24, 0.26)
        )
        model.train()
        amp = autocast_dtype(config, device)
        relay_kernels(model, config, device, amp)  # channels_last="on": as train() lays them
        optimizer = make_optimizer(model, config)
        step = TrainStep(
            model, optimizer, config, device, forward=_compiled_forward(model, config, device), autocast_dtype=amp
        )
    return config, step


def _batches(pipe):
    while True:
        yield from pipe.epoch()


def measure_model(args, name: str, device: str, compiled: bool, torch, warmup_cap: float | None = None) -> dict:
    """Training images/s of ``name`` fed by the device pipeline; warm-up (compilation) timed apart.

    Compiled, Dynamo's recompile limit is ``--recompile-limit`` (default 2, PyTorch's 8) for the measurement:
    a frame that recompiles on every step (a guard on changing state) then falls back to eager after 2
    compilations instead of 8. The steady state timed is the same either way; only the warm-up is shorter
    than in ``train()``, which keeps PyTorch's limit.
    """
    config_module = torch._dynamo.config
    limit_name = "recompile_limit" if hasattr(config_module, "recompile_limit") else "cache_size_limit"
    before = getattr(config_module, limit_name)
    if compiled:
        setattr(config_module, limit_name, args.recompile_limit)
    try:
        result = _measure_model(args, name, device, compiled, torch, warmup_cap or args.compile_warmup_cap)
    finally:
        setattr(config_module, limit_name, before)
    if compiled:
        result["dynamo"]["recompile_limit"] = args.recompile_limit
    return result


def _measure_model(args, name: str, device: str, compiled: bool, torch, warmup_cap: float) -> dict:
    import numpy as np
    from torch._dynamo.utils import counters

    from cifarkit.training.augment_torch import DevicePipeline

    batch = args.batch
    torch._dynamo.reset()
    counters.clear()
    t0 = time.perf_counter()
    config, step = _train_step(name, batch, device, compiled)
    build_seconds = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    pool = 4 * batch if args.dry_run else 16 * batch
    pipe = DevicePipeline(
        rng.integers(0, 256, size=(pool, 32, 32, 3), dtype=np.uint8),
        rng.integers(0, 10, size=pool),
        batch,
        num_classes=10,
        crop=config.crop,
        pad_mode=config.pad_mode,
        flip=True,
        device=device,
    )
    batches = _batches(pipe)
    lr = 0.01  # small: many steps stay finite; speed does not depend on it

    def run(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            x, y = next(batches)
            step(x, y, lr)
        sync(torch, device)
        return time.perf_counter() - start

    # warm-up: until a step compiles no new graph; given up when steps after the first still compile new graphs
    # (recompilation every step) past the cap, so that the timing never includes compilation
    warm = {"steps": 0, "seconds": 0.0, "settled": True}
    graphs = 0
    min_warm, max_warm = (1, 1) if args.dry_run else (3, 30)
    while warm["steps"] < max_warm:
        warm["seconds"] += run(1)
        warm["steps"] += 1
        now = counters["stats"].get("unique_graphs", 0)
        new_graphs, graphs = now > graphs, now
        if warm["steps"] >= min_warm and not new_graphs:
            break
        if new_graphs and warm["steps"] > 1 and warm["seconds"] > warmup_cap:
            warm["settled"] = False
            break
    else:
        warm["settled"] = args.dry_run or not new_graphs
    result = {
        "model": name,
        "batch": batch,
        "compiled": bool(step.compiled),
        "mixed_precision": str(step.autocast_dtype).replace("torch.", "") if step.autocast_dtype else "float32",
        "channels_last": True,
        "build_seconds": round(build_seconds, 2),
        "warmup": {k: round(v, 2) if isinstance(v, float) else v for k, v in warm.items()},
        "dynamo": dynamo_summary(counters),
    }
    if not warm["settled"]:
        result["img_per_s"] = None
        result["note"] = (
            f"still compiling new graphs after {warm['steps']} warm-up steps and {warm['seconds']:.0f} s "
            "(graph breaks or recompilation every step); not timed"
        )
        return result
    probe = run(2) / 2
    per_round = 2 if args.dry_run else max(3, math.ceil(args.round_seconds / max(probe, 1e-4)))
    rounds = [run(per_round) for _ in range(1 if args.dry_run else args.rounds)]
    best = min(rounds) / per_round
    result.update(
        img_per_s=round(batch / best, 1),
        step_ms_best=round(1000 * best, 3),
        step_ms_median=round(1000 * statistics.median(rounds) / per_round, 3),
        steps_per_round=per_round,
        rounds=len(rounds),
    )
    if device == "cuda":
        result["peak_gpu_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    return result


def measure_pipeline(args, device: str, torch) -> dict:
    """Images/s of the device pipeline alone (crop 2 + flip + cutout 8, batch ``--batch``)."""
    import numpy as np

    from cifarkit.training.augment_torch import DevicePipeline

    n = 8 * args.batch if args.dry_run else 50_000
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
    pipe = DevicePipeline(
        x, np.zeros(n, np.int64), args.batch, num_classes=10, crop=2, flip=True, cutout=8, device=device
    )
    for _ in pipe.epoch():  # warm-up
        pass
    sync(torch, device)
    start = time.perf_counter()
    seen = sum(len(xb) for xb, _ in pipe.epoch())
    sync(torch, device)
    return {
        "augment": "crop 2 (reflect) + flip + cutout 8",
        "images": seen,
        "img_per_s": round(seen / (time.perf_counter() - start), 1),
    }


def part_throughput(args, device: str, torch, deadline: float | None = None) -> dict:
    """Every model compiled and eager; a compiled warm-up gets at most its share of the time left before ``deadline``."""
    rows = []
    for i, name in enumerate(args.models):
        variants = (False,) if args.dry_run else (True, False)  # dry run: no compile
        for compiled in variants:
            cap = args.compile_warmup_cap
            if deadline is not None:
                cap = min(cap, max(20.0, (deadline - time.perf_counter()) / (len(args.models) - i)))
            row = measure_model(args, name, device, compiled, torch, warmup_cap=cap)
            row["variant"] = "compiled" if compiled else "eager"
            rows.append(row)
            speed = f"{row['img_per_s']:,.0f} img/s" if row.get("img_per_s") else row.get("note", "not timed")
            print(f"  {name:9s} {row['variant']:8s} batch {args.batch}: {speed}", flush=True)
    return {
        "settings": f"batch {args.batch}, bf16 autocast (CUDA), channels-last kernels, device pipeline (crop + flip) "
        "feeding optim.TrainStep; warm-up excluded; best of synchronized rounds",
        "data": "random uint8 32x32x3 images, 10 classes (speed only)",
        "pipeline_alone": measure_pipeline(args, device, torch),
        "results": rows,
    }


# --------------------------------------------------------------------------- part 3: quick profile
def part_quick(args, data: str, remaining: float) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="gpu_check_quick_"))
    try:
        cmd = quick_command(data, str(tmp / "reports"), args.dry_run)
        timeout = args.quick_timeout or max(60.0, remaining)
        result = run_timed(cmd, timeout, tmp / "run_all.log")
        result["command"] = " ".join(
            ["python", *[os.path.relpath(c, ROOT) if c.startswith(str(ROOT)) else c for c in cmd[1:]]]
        )
        return result
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --------------------------------------------------------------------------- summary
def summary_rows(record: dict) -> list[tuple[str, str]]:
    rows = []
    tta = record.get("time_to_accuracy") or {}
    for key, hit in (tta.get("time_to") or {}).items():
        text = (
            f"{hit['train_seconds']:.1f} s training ({hit['train_seconds_excluding_warmup']:.1f} s without warm-up), "
            f"epoch {hit['epoch']}"
            if hit
            else "not reached"
        )
        rows.append((f"fastnet -> {key} test accuracy", text))
    if tta.get("final"):
        rows.append(
            ("fastnet final test accuracy", f"{tta['final']['test_acc']:.2%} in {tta['final']['train_seconds']:.1f} s")
        )
    for r in (record.get("throughput") or {}).get("results", []):
        speed = f"{r['img_per_s']:,.0f} img/s" if r.get("img_per_s") else "not timed"
        d = r["dynamo"]
        extra = f"; {d['graph_breaks']} graph breaks, {d['unique_graphs']} graphs" if r["variant"] == "compiled" else ""
        rows.append(
            (f"{r['model']} b{r['batch']} {r['variant']}", f"{speed} (warm-up {r['warmup']['seconds']:.1f} s){extra}")
        )
    pipe = (record.get("throughput") or {}).get("pipeline_alone")
    if pipe:
        rows.append(("device pipeline alone", f"{pipe['img_per_s']:,.0f} img/s"))
    quick = record.get("quick_profile") or {}
    if quick.get("skipped"):
        rows.append(("quick profile", f"skipped ({quick['reason']})"))
    elif quick:
        state = "timed out" if quick["timed_out"] else f"exit {quick['returncode']}"
        rows.append(("quick profile wall time", f"{quick['wall_seconds']:.0f} s ({state})"))
    return rows


def print_summary(record: dict) -> None:
    title = "gpu_check DRY RUN (CPU, tiny synthetic data; not a measurement)" if record["dry_run"] else "gpu_check"
    print(f"\n{title}: {record['machine'].get('gpu_name') or record['machine'].get('cpu')}")
    rows = summary_rows(record)
    width = max((len(a) for a, _ in rows), default=10)
    for a, b in rows:
        print(f"  {a:<{width}}  {b}")
    print(
        f"  goals (not claims): fastnet 93% in <= {GOALS['fastnet_93_train_seconds']:.0f} s of training; "
        f"standard profile in <= {GOALS['standard_profile_seconds'] / 60:.0f} min (one H100/H200)"
    )


# --------------------------------------------------------------------------- main
def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--data", default=None, help=f"data source (default: {DEFAULT_DATA} if present, else {FALLBACK_DATA})"
    )
    p.add_argument(
        "--output", default=None, help=f"result file (default: {DEFAULT_OUTPUT}; --dry-run: {DRY_RUN_OUTPUT})"
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="run every part for two steps on the CPU (tiny synthetic data, no compile)",
    )
    p.add_argument("--no-quick", action="store_true", help="skip the quick profile (part 3)")
    p.add_argument("--no-tta", action="store_true", help="skip the time to accuracy (part 1)")
    p.add_argument("--no-throughput", action="store_true", help="skip the throughput (part 2)")
    p.add_argument(
        "--budget",
        type=float,
        default=470.0,
        help="seconds for the whole check; the quick profile gets what is left (>= 60 s)",
    )
    p.add_argument(
        "--quick-timeout",
        type=float,
        default=0.0,
        help="seconds for the quick profile (default: what the budget leaves)",
    )
    p.add_argument("--models", nargs="+", default=list(MODELS))
    p.add_argument("--batch", type=int, default=0, help="throughput batch size (default 512; --dry-run 8)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--round-seconds", type=float, default=1.0)
    p.add_argument(
        "--compile-warmup-cap",
        type=float,
        default=90.0,
        help="seconds of compiling warm-up before a model is given up as not settling",
    )
    p.add_argument(
        "--recompile-limit",
        type=int,
        default=2,
        help="Dynamo's recompile limit while measuring compiled throughput (PyTorch's default: 8)",
    )
    p.add_argument("--epochs", type=int, default=0, help="time-to-accuracy epochs (0: the fast recipe's 18)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a setting of the time-to-accuracy run (repeatable)",
    )
    args = p.parse_args(argv)
    args.batch = args.batch or (8 if args.dry_run else 512)

    import torch

    if not args.dry_run and not torch.cuda.is_available():
        print(NO_CUDA.format(torch=torch.__version__), file=sys.stderr)
        return 2
    try:
        data, data_note = resolve_data(args.data, args.dry_run)
    except FileNotFoundError as e:
        print(str(e), file=sys.stderr)
        return 2
    from cifarkit import backend, files
    from cifarkit.provenance import command_line

    backend.torch()
    device = "cpu" if args.dry_run else "cuda"
    out = Path(args.output) if args.output else (DRY_RUN_OUTPUT if args.dry_run else DEFAULT_OUTPUT)
    start = time.perf_counter()
    record = {
        "benchmark": "gpu_check",
        "dry_run": args.dry_run,
        "note": "DRY RUN on the CPU: tiny synthetic data, two steps per part, no compile. Not a GPU measurement."
        if args.dry_run
        else "measured on a CUDA GPU",
        "command": command_line(__file__, argv),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(torch),
        "versions": backend.versions(),
        "device": device,
        "data": {"source": data, "note": data_note},
        "goals": GOALS,
        "time_to_accuracy": None,
        "throughput": None,
        "quick_profile": None,
    }

    def save():
        record["seconds_total"] = round(time.perf_counter() - start, 1)
        files.atomic_write_json(out, record)

    save()
    parts = [
        ("time_to_accuracy", args.no_tta, "--no-tta", lambda: part_time_to_accuracy(args, data, device, torch)),
        (
            "throughput",
            args.no_throughput,
            "--no-throughput",
            # leave the quick profile about 150 s of the budget
            lambda: part_throughput(args, device, torch, start + args.budget - (0 if args.no_quick else 150)),
        ),
        (
            "quick_profile",
            args.no_quick,
            "--no-quick",
            lambda: part_quick(args, data, args.budget - (time.perf_counter() - start) - 5),
        ),
    ]
    failed = False
    for key, skip, flag, fn in parts:
        if skip:
            record[key] = {"skipped": True, "reason": flag}
            save()
            continue
        print(f"[gpu_check] {key} ...", flush=True)
        t = time.perf_counter()
        try:
            record[key] = fn()
        except Exception as e:  # noqa: BLE001 - record the failure, go on with the other parts
            failed = True
            record[key] = {"error": f"{type(e).__name__}: {e}"}
            print(f"[gpu_check] {key} failed: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        record[key]["part_seconds"] = round(time.perf_counter() - t, 1)
        save()
    print_summary(record)
    print(f"wrote {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    from cifarkit.signals import EXIT_CODE, stop_on_sigterm

    stop_on_sigterm(EXIT_CODE)  # kill PID ends the run as ^C does: its temp folders are removed
    raise SystemExit(main())
