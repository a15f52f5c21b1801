"""Benchmark: airbench94 (the published peer, ``airbench==0.1.8``) and fastnet side by side, in one run.

Trains airbench94 from its published package and cifarkit's fastnet (``fast`` recipe, trained by
``cifarkit.training.train`` exactly as ``bench_time_to_accuracy.py`` does) on the same images, for the same
epoch counts, with the same number of torch threads, in float32 and in bf16. airbench's schedule depends on
its total epoch count, so "accuracy at N epochs" is the final test accuracy of a run with ``epochs=N``: each
count in ``--epochs`` is one run per side and precision, and every run's per-epoch curve is recorded too.

The peer runs unchanged apart from what leaving CUDA and fp16 needs: its source text (``utils.py`` and
``lib_airbench94.py``, found through importlib) gets a short list of explicit substitutions, each asserted
to occur, and is executed as modules; the list is written into the results. Its per-epoch numbers are taken
from its own ``print_training_details`` (wrapped, not parsed): test accuracy after every epoch (airbench
evaluates the test split, without TTA) and its training seconds (evaluation excluded).

Usage:
    pip install airbench==0.1.8 --no-deps     # the `peer` extra; see benchmarks/README.md for torchvision
    python benchmarks/bench_peer.py [--data PATH | --data synthetic:N] [--epochs 2,4,8] [--precision off,bf16]
        [--threads T] [--seed S] [--set KEY=VALUE] [--train-subset N] [--test-subset N] [--output PATH]
    python benchmarks/bench_peer.py --dry-run      # seconds: synthetic:20, 1 epoch, JSON in the temp folder
    python benchmarks/bench_peer.py --summary      # README's table of every recorded run (20 px x 2), and stop

Writes ``benchmarks/results/peer.json`` (nothing else inside the repository): per precision and epoch count
each side's final test accuracy (the peer's TTA accuracy apart), training seconds, per-epoch rows, the
accuracy difference at each equal epoch count, and the speed ratio: the peer's training seconds to its
longest run's final accuracy over fastnet's training seconds to first reach that accuracy.

The two sides run one after the other, and a shared machine's speed can drift by 1.5x within minutes. So a
fixed reference workload (``DriftProbe``: a few training steps of a small torch conv net, in the precision
being compared: float32, or under bf16 autocast for bf16) is timed before each run and after each epoch of
either side, outside both sides' clocks. Each epoch's seconds are also given at that precision's fastest probe
speed (``steady_seconds``: seconds x fastest probe / mean of the probes around it), and
the speed ratio is computed a second time from those (``speed_steady``): a same-run ratio the drift cancels in,
as far as the drift slows the probe and the two sides alike.
Goal: fastnet >= the peer's accuracy at every equal epoch count up to 10, and >= 1.5x faster to the
peer's final accuracy, in float32 and in bf16.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import functools
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import sys
import tempfile
import time
import types
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_DATA = ROOT.parent / "shared" / "datasets" / "cifar10-jpeg.tar.gz"
DEFAULT_OUTPUT = ROOT / "benchmarks" / "results" / "peer.json"

PEER_PACKAGE = "airbench"
PEER_VERSION = "0.1.8"
PEER_FILES = ("utils.py", "lib_airbench94.py")
ACCURACY_GOAL_MAX_EPOCHS = 10
SPEED_GOAL = 1.5
DRY_RUN_DATA = "synthetic:20"

#: --precision names -> (key in the results, torch dtype name of the peer, fastnet's mixed_precision)
PRECISIONS = {
    "off": ("float32", "float32", "off"),
    "float32": ("float32", "float32", "off"),
    "fp32": ("float32", "float32", "off"),
    "bf16": ("bf16", "bfloat16", "bf16"),
    "bfloat16": ("bf16", "bfloat16", "bf16"),
}


# ---------------------------------------------------------------------------- the peer's port


class Substitution(NamedTuple):
    file: str
    old: str
    new: str
    why: str


TORCHVISION_SHIM_WHY = (
    "torchvision is {status} here (PyPI's torchvision 0.28.0 is a CUDA build, which fails beside "
    "torch's CPU build); airbench uses only T.Normalize (stood in for by torchvision's own tensor formula, "
    "(x - mean) / std with mean and std cast to the images' dtype) and torchvision.datasets.CIFAR10 (its "
    "download, never reached: train.pt and test.pt are written beforehand)"
)


def peer_substitutions(torchvision_importable: bool, torchvision_status: str = "") -> list[Substitution]:
    """The textual changes that move airbench94 off CUDA and fp16, each with its reason."""
    subs = [
        Substitution(
            "utils.py",
            "data = torch.load(data_path, map_location=torch.device(gpu))",
            "data = torch.load(data_path, map_location=torch.device('cpu'))",
            "no CUDA device: the data stays in host memory (gpu=0 named CUDA device 0)",
        ),
        Substitution(
            "utils.py",
            "self.images = (self.images.half() / 255)",
            "self.images = (self.images.to(_PEER_DTYPE) / 255)",
            "fp16 images -> the run's dtype (float32 or bfloat16), the two precisions compared on the CPU",
        ),
        Substitution(
            "utils.py",
            "if net_param.dtype in (torch.half, torch.float):",
            "if net_param.dtype in (torch.half, torch.bfloat16, torch.float):",
            "the lookahead averages the floating-point weights; with bf16 weights the published test (fp16 or "
            "fp32) would skip every one of them, so bf16 joins fp16; no effect in float32",
        ),
        Substitution(
            "utils.py",
            "torch.cuda.Event(enable_timing=True)",
            "_PeerCpuEvent(enable_timing=True)",
            "CUDA events -> a wall-clock stand-in (time.perf_counter at record(), elapsed_time in ms, as CUDA's)",
        ),
        Substitution(
            "utils.py",
            "torch.cuda.synchronize()",
            "_peer_cpu_synchronize()",
            "nothing to wait for: CPU kernels have finished when they return (a no-op)",
        ),
        Substitution(
            "lib_airbench94.py",
            "net = net.half().cuda()",
            "net = net.to(_PEER_DTYPE)",
            "fp16 weights on the GPU -> the run's dtype on the CPU; the batch norms are still put back to float32 "
            "by the published lines that follow (mod.float())",
        ),
    ]
    if not torchvision_importable:
        subs.insert(
            0,
            Substitution(
                "utils.py",
                "import torchvision\nimport torchvision.transforms as T\n",
                "torchvision = _peer_torchvision_shim\nT = torchvision.transforms\n",
                TORCHVISION_SHIM_WHY.format(status=torchvision_status or "not importable"),
            ),
        )
    return subs


class PeerCpuEvent:
    """Stands in for ``torch.cuda.Event(enable_timing=True)`` on the CPU: ``record()`` reads the wall clock."""

    def __init__(self, enable_timing: bool = True):
        self.t = None

    def record(self):
        self.t = time.perf_counter()

    def elapsed_time(self, end: PeerCpuEvent) -> float:
        return 1e3 * (end.t - self.t)  # milliseconds, like CUDA's


def peer_cpu_synchronize() -> None:
    """``torch.cuda.synchronize()`` on the CPU: nothing to wait for."""


@functools.lru_cache(maxsize=1)
def torchvision_status() -> tuple[bool, str]:
    """Whether torchvision imports here (tried once: a failed import can leave half-registered operators)."""
    try:
        import torchvision  # noqa: F401
    except Exception as e:  # an ImportError, or the RuntimeError of a CUDA build beside CPU torch
        return False, f"not importable ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
    return True, importlib.metadata.version("torchvision")


def torchvision_shim():
    """A module with what airbench takes from torchvision: ``transforms.Normalize``; its download refuses."""
    import torch

    class Normalize:
        # torchvision.transforms.functional.normalize for tensors, out of place
        def __init__(self, mean, std, inplace=False):
            self.mean, self.std = mean, std

        def __call__(self, tensor):
            mean = torch.as_tensor(self.mean, dtype=tensor.dtype, device=tensor.device).view(-1, 1, 1)
            std = torch.as_tensor(self.std, dtype=tensor.dtype, device=tensor.device).view(-1, 1, 1)
            return tensor.sub(mean).div(std)

    class CIFAR10:
        def __init__(self, *args, **kwargs):
            raise RuntimeError("bench_peer writes cifar10/train.pt and test.pt itself; nothing may be downloaded")

    tv = types.ModuleType("torchvision")
    tv.transforms = types.SimpleNamespace(Normalize=Normalize)
    tv.datasets = types.SimpleNamespace(CIFAR10=CIFAR10)
    return tv


def peer_source_dir() -> Path:
    """airbench's installed folder, found without importing it (its ``__init__`` imports torchvision)."""
    spec = importlib.util.find_spec(PEER_PACKAGE)
    if spec is None or not spec.origin:
        raise SystemExit(
            f"{PEER_PACKAGE} is not installed: pip install {PEER_PACKAGE}=={PEER_VERSION} --no-deps (the `peer` extra)"
        )
    return Path(spec.origin).parent


def apply_substitutions(texts: dict[str, str], subs: list[Substitution]) -> tuple[dict[str, str], list[dict]]:
    """``texts`` with every substitution made; each must occur (AssertionError otherwise). Also the record."""
    out, applied = dict(texts), []
    for s in subs:
        count = out[s.file].count(s.old)
        assert count >= 1, f"substitution not applicable: {s.old!r} does not occur in {s.file}"
        out[s.file] = out[s.file].replace(s.old, s.new)
        applied.append({"file": s.file, "old": s.old, "new": s.new, "why": s.why, "occurrences": count})
    for name, text in out.items():
        lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")]
        left = [ln.strip() for ln in lines if ("cuda" in ln and "cudnn" not in ln) or ".half()" in ln]
        assert not left, f"{name} still needs CUDA or fp16 after the substitutions: {left}"
    return out, applied


def load_peer(dtype_name: str) -> dict:
    """airbench94's ``utils`` and ``lib_airbench94``, ported to the CPU in ``dtype_name``, as fresh modules."""
    import torch

    src = peer_source_dir()
    originals = {name: (src / name).read_text(encoding="utf-8") for name in PEER_FILES}
    tv_ok, tv_status = torchvision_status()
    texts, applied = apply_substitutions(originals, peer_substitutions(tv_ok, tv_status))
    package = f"_airbench94_cpu_{dtype_name}"
    pkg = types.ModuleType(package)
    pkg.__path__ = []
    sys.modules[package] = pkg
    injected = {
        "_PEER_DTYPE": getattr(torch, dtype_name),
        "_PeerCpuEvent": PeerCpuEvent,
        "_peer_cpu_synchronize": peer_cpu_synchronize,
    }
    if not tv_ok:
        injected["_peer_torchvision_shim"] = torchvision_shim()
    modules = {}
    for name in PEER_FILES:
        mod = types.ModuleType(f"{package}.{name[:-3]}")
        mod.__package__, mod.__file__ = package, str(src / name)
        mod.__dict__.update(injected)
        sys.modules[mod.__name__] = mod  # before exec: lib_airbench94 does `from .utils import ...`
        exec(compile(texts[name], f"{src / name} (ported to CPU)", "exec"), mod.__dict__)
        setattr(pkg, name[:-3], mod)
        modules[name[:-3]] = mod
    return {
        "utils": modules["utils"],
        "lib": modules["lib_airbench94"],
        "record": {
            "package": PEER_PACKAGE,
            "version": importlib.metadata.version(PEER_PACKAGE),
            "source": str(src),
            "files_sha256": {n: hashlib.sha256(t.encode()).hexdigest() for n, t in originals.items()},
            "substitutions": applied,
            "names_added_to_its_modules": {
                "_PEER_DTYPE": f"torch.{dtype_name}",
                "_PeerCpuEvent": "bench_peer.PeerCpuEvent (perf_counter stand-in for torch.cuda.Event)",
                "_peer_cpu_synchronize": "a no-op",
                **({"_peer_torchvision_shim": "Normalize as torchvision computes it"} if not tv_ok else {}),
            },
            "torchvision": tv_status,
        },
    }


class DriftProbe:
    """Times a fixed workload: ``steps`` training steps of a small conv net, median of ``repeats``.

    ``dtype`` is the precision the benchmarked runs compute in: ``"float32"``, or ``"bfloat16"`` for the steps
    under CPU bf16 autocast (float32 weights, bf16 convolutions and matmuls, as fastnet trains with
    ``mixed_precision="bf16"``), so that a slow spell of the machine's bf16 units shows in the probe as it
    shows in the runs. Called between epochs (outside both sides' clocks); ``records`` keeps every reading in
    order, so each epoch is bracketed by the reading before it and the one after it.
    """

    DTYPES = ("float32", "bfloat16")

    def __init__(self, batch: int = 128, steps: int = 3, repeats: int = 3, seed: int = 0, dtype: str = "float32"):
        import torch

        if dtype not in self.DTYPES:
            raise ValueError(f"DriftProbe(dtype={dtype!r}): use one of {', '.join(self.DTYPES)}")
        gen = torch.Generator().manual_seed(seed)
        nn = torch.nn
        self.torch, self.steps, self.repeats, self.dtype = torch, steps, repeats, dtype
        how = "float32" if dtype == "float32" else "float32 weights under CPU bf16 autocast"
        self.settings = {
            "batch": batch,
            "steps": steps,
            "repeats": repeats,
            "net": f"conv 3-64-128-128, {how}",
            "dtype": dtype,
        }
        self.net = nn.Sequential(
            nn.Conv2d(3, 64, 3, padding=1, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(),
            nn.Conv2d(64, 128, 3, padding=1, bias=False),
            nn.MaxPool2d(2),
            nn.BatchNorm2d(128),
            nn.ReLU(),
            nn.Conv2d(128, 128, 3, padding=1, bias=False),
            nn.AdaptiveMaxPool2d(1),
            nn.Flatten(),
            nn.Linear(128, 10),
        ).to(memory_format=torch.channels_last)
        self.x = torch.randn(batch, 3, 32, 32, generator=gen).contiguous(memory_format=torch.channels_last)
        self.y = torch.randint(0, 10, (batch,), generator=gen)
        self.opt = torch.optim.SGD(self.net.parameters(), lr=1e-3, momentum=0.9)
        self.records: list[dict] = []
        self.prefix = ""  # e.g. the precision being benchmarked, put before each reading's label
        for _ in range(steps * repeats):  # one-time setup, and a reading's worth of warm-up, outside every reading
            self._step()

    def _step(self) -> None:
        torch = self.torch
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.dtype == "bfloat16"):
            loss = torch.nn.functional.cross_entropy(self.net(self.x), self.y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()

    def __call__(self, label: str) -> float:
        times = []
        for _ in range(self.repeats):
            start = time.perf_counter()
            for _ in range(self.steps):
                self._step()
            times.append(time.perf_counter() - start)
        seconds = sorted(times)[len(times) // 2]
        self.records.append({"label": self.prefix + label, "seconds": seconds, "repeats": times})
        return seconds

    def bracket(self, label: str):
        """Reads the probe now, before a run; returns ``(after_epoch, readings)``: ``after_epoch(n)`` reads it
        after epoch n (call it outside the run's clock), and ``readings`` collects every reading in order."""
        readings = [self(f"before the {label}")]

        def after_epoch(epoch: int) -> None:
            readings.append(self(f"{label} epoch {epoch}"))

        return after_epoch, readings

    def summary(self) -> dict:
        """The probe's settings, fastest and slowest reading and every reading: a run's ``drift_probe`` block."""
        seconds = [r["seconds"] for r in self.records]
        return {
            **self.settings,
            "fastest_seconds": min(seconds),
            "slowest_seconds": max(seconds),
            "readings": self.records,
        }

    @staticmethod
    def attach(rows: list[dict], readings: list[float]) -> None:
        """Gives each epoch row the readings before and after it (``readings`` from ``bracket``)."""
        assert len(readings) == len(rows) + 1, "one probe reading before the run and one after each epoch"
        for i, row in enumerate(rows):
            row["probe_before"], row["probe_after"] = readings[i], readings[i + 1]


def steady_seconds(rows: list[dict], fastest: float) -> None:
    """Adds ``steady_seconds`` to each epoch row: its seconds at the fastest probe speed of the benchmark run.

    Each row holds ``probe_before`` and ``probe_after`` (seconds of the probe readings around that epoch).
    """
    for row in rows:
        row["steady_seconds"] = row["seconds"] * fastest / ((row["probe_before"] + row["probe_after"]) / 2)


def steady_curves(curves: dict[int, list[dict]]) -> dict[int, list[dict]]:
    """The curves with each epoch's ``seconds`` replaced by its ``steady_seconds``."""
    return {n: [dict(r, seconds=r["steady_seconds"]) for r in rows] for n, rows in curves.items()}


class PeerRecorder:
    """Wraps airbench's ``print_training_details(locals(), ...)``: keeps each epoch's numbers, then prints them."""

    def __init__(self, original, after_epoch=None):
        self.original, self.rows, self.final, self.after_epoch = original, [], None, after_epoch

    def __call__(self, variables, is_final_entry):
        epoch = variables.get("epoch")
        if epoch == "eval":  # after training: TTA accuracy; its time includes the TTA evaluation
            self.final = {
                "tta_val_acc": variables["tta_val_acc"],
                "total_time_seconds": variables["total_time_seconds"],
            }
        elif isinstance(epoch, int):  # airbench counts epochs from 0; the time excludes evaluation
            self.rows.append(
                {
                    "epoch": epoch + 1,
                    "cumulative": variables["total_time_seconds"],
                    "test_acc": variables["val_acc"],
                    "train_loss_last_batch": variables.get("train_loss"),
                    "train_acc_last_batch": variables.get("train_acc"),
                }
            )
            if self.after_epoch is not None:  # airbench's clock for this epoch has stopped
                self.after_epoch(epoch + 1)
        self.original(variables, is_final_entry)


def bn_mixed_dtype_check() -> dict:
    """bf16 inputs through a float32 batch norm (airbench keeps its batch norms in float32), forward and back."""
    import torch

    bn = torch.nn.BatchNorm2d(4).float()
    x = torch.randn(4, 4, 6, 6).to(torch.bfloat16).requires_grad_()
    try:
        y = bn(x)
        y.float().sum().backward()
    except Exception as e:  # recorded; the bf16 peer run is then refused
        return {"ok": False, "error": f"{type(e).__name__}: {e}"}
    return {"ok": True, "output_dtype": str(y.dtype), "note": "bf16 input, float32 weights: runs on this CPU as is"}


def run_peer(peer: dict, epochs: int, batch_size: int, seed: int, workdir: Path, probe: DriftProbe) -> dict:
    """One airbench94 run of ``epochs`` on ``workdir/cifar10``; per-epoch rows from its own logging."""
    import torch

    utils, lib = peer["utils"], peer["lib"]
    original = utils.print_training_details
    after_epoch, readings = probe.bracket(f"peer {epochs}-epoch run")
    recorder = PeerRecorder(original, after_epoch)
    utils.print_training_details = recorder  # train() looks the name up in its module at each call
    cwd = os.getcwd()
    torch.manual_seed(seed)
    os.chdir(workdir)
    try:
        loader = None  # train94 builds its published loader
        if batch_size != lib.hyp["opt"]["batch_size"]:
            loader = utils.CifarLoader(
                "cifar10", train=True, batch_size=batch_size, aug=lib.hyp["aug"], altflip=True
            )  # as train94 builds it, with another batch size
        start = time.perf_counter()
        lib.train94(train_loader=loader, epochs=epochs)
        wall = time.perf_counter() - start
    finally:
        os.chdir(cwd)
        utils.print_training_details = original
    rows, previous = [], 0.0
    for r in recorder.rows:
        rows.append(
            {
                "epoch": r["epoch"],
                "seconds": r["cumulative"] - previous,
                "train_seconds": r["cumulative"],
                "test_acc": r["test_acc"],
                "train_loss_last_batch": r["train_loss_last_batch"],
                "train_acc_last_batch": r["train_acc_last_batch"],
            }
        )
        previous = r["cumulative"]
    DriftProbe.attach(rows, readings)
    assert len(rows) == epochs and recorder.final is not None, "airbench logged fewer epochs than it was asked for"
    return {
        "epochs": epochs,
        "test_acc": rows[-1]["test_acc"],
        "test_acc_tta": recorder.final["tta_val_acc"],
        "tta_level": lib.hyp["net"]["tta_level"],
        "train_seconds": rows[-1]["train_seconds"],
        "train_seconds_with_tta_eval": recorder.final["total_time_seconds"],
        "wall_seconds": wall,
        "batch_size": batch_size,
        "curve": rows,
    }


# ---------------------------------------------------------------------------- fastnet


def run_fastnet(ds, epochs: int, mixed_precision: str, args, overrides: dict, probe: DriftProbe) -> dict:
    """One cifarkit training run (as bench_time_to_accuracy.py) of ``epochs``, with the per-epoch test monitor."""
    from cifarkit.training import resolve_recipe, train
    from cifarkit.training.precision import autocast_dtype

    settings = {
        "model": args.model,
        "seed": args.seed,
        "eval_test_every_epoch": True,
        "device": "cpu",
        "epochs": epochs,
        "mixed_precision": mixed_precision,
    }
    settings.update(overrides)
    config = resolve_recipe(args.recipe, **settings)
    after_epoch, readings = probe.bracket(f"fastnet {epochs}-epoch run")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_peer_fastnet_") as tmp:
        res = train(
            ds,
            config,
            Path(tmp) / "run",
            progress=False,
            resume=False,
            callbacks=[lambda record: after_epoch(record["epoch"])],
        )
    wall = time.perf_counter() - start
    rows, cumulative = [], 0.0
    for r in res.history:
        cumulative += r["epoch_seconds"]
        rows.append(
            {
                "epoch": r["epoch"],
                "seconds": r["epoch_seconds"],
                "train_seconds": cumulative,
                "test_acc": r["test_acc_monitor"],
            }
        )
    DriftProbe.attach(rows, readings)
    resolved = autocast_dtype(config, "cpu")
    return {
        "epochs": epochs,
        "test_acc": rows[-1]["test_acc"],
        "test_acc_metrics": res.metrics["test_acc"],
        "train_seconds": res.metrics["train_seconds"],
        "wall_seconds": wall,
        "mixed_precision": mixed_precision,
        "training_precision": str(resolved).replace("torch.", "") if resolved is not None else "float32",
        "batch_size": config.batch_size,
        "curve": rows,
    }


# ---------------------------------------------------------------------------- comparisons


def seconds_to_reach(curves: dict[int, list[dict]], target: float) -> dict | None:
    """The fewest training seconds at which any run's per-epoch test accuracy first reaches ``target``.

    ``curves`` maps a run's epoch count to its rows (``epoch``, ``seconds`` of that epoch, ``test_acc``).
    Returns ``{"seconds", "run_epochs", "epoch", "test_acc"}`` or None when no run reaches it.
    """
    best = None
    for run_epochs, rows in sorted(curves.items()):
        spent = 0.0
        for row in rows:
            spent += row["seconds"]
            if row["test_acc"] >= target:
                if best is None or spent < best["seconds"]:
                    best = {
                        "seconds": spent,
                        "run_epochs": run_epochs,
                        "epoch": row["epoch"],
                        "test_acc": row["test_acc"],
                    }
                break
    return best


def speed_comparison(peer_curves: dict[int, list[dict]], fastnet_curves: dict[int, list[dict]]) -> dict:
    """The speed ratio to the peer's final accuracy of its longest run (peer seconds / fastnet seconds)."""
    longest = max(peer_curves)
    target = peer_curves[longest][-1]["test_acc"]
    peer = seconds_to_reach(peer_curves, target)  # at the latest, the longest run's end
    fast = seconds_to_reach(fastnet_curves, target)
    out = {
        "target_acc": target,
        "target_from": f"the peer's final test accuracy (no TTA) of its longest run ({longest} epochs)",
        "peer_longest_run_seconds": sum(r["seconds"] for r in peer_curves[longest]),
        "peer": peer,
        "fastnet": fast,
        "ratio": None,
        "reason": None,
        "goal": SPEED_GOAL,
        "goal_met": False,
    }
    if fast is None:
        best = max(r["test_acc"] for rows in fastnet_curves.values() for r in rows)
        out["reason"] = f"fastnet never reached {target:.4f} in any run (its best per-epoch test accuracy: {best:.4f})"
    elif fast["seconds"] <= 0:
        out["reason"] = "fastnet's recorded training time is zero"
    else:
        out["ratio"] = peer["seconds"] / fast["seconds"]
        out["goal_met"] = out["ratio"] >= SPEED_GOAL
    return out


def accuracy_comparison(peer_runs: dict[int, dict], fastnet_runs: dict[int, dict]) -> dict:
    rows = [
        {
            "epochs": n,
            "peer": peer_runs[n]["test_acc"],
            "fastnet": fastnet_runs[n]["test_acc"],
            "diff": fastnet_runs[n]["test_acc"] - peer_runs[n]["test_acc"],
        }
        for n in sorted(peer_runs)
    ]
    checked = [r for r in rows if r["epochs"] <= ACCURACY_GOAL_MAX_EPOCHS]
    return {
        "at_equal_epochs": rows,
        "epoch_counts_checked": [r["epochs"] for r in checked],
        "goal": f"fastnet >= peer at every equal epoch count up to {ACCURACY_GOAL_MAX_EPOCHS}",
        "goal_met": all(r["diff"] >= 0 for r in checked) if checked else None,
    }


# ---------------------------------------------------------------------------- data and machine


def first_per_class(x, y, per_class: int):
    """The first ``per_class`` images of each class, in their original order."""
    import numpy as np

    keep = np.sort(np.concatenate([np.flatnonzero(y == c)[:per_class] for c in np.unique(y)]))
    return x[keep], y[keep]


def load_data(source: str, train_subset: int, test_subset: int):
    from cifarkit.data import load_dataset

    ds = load_dataset(source, image_size=32, val_fraction=0.0, progress=False)
    changes = {}
    if train_subset:
        changes["x_train"], changes["y_train"] = first_per_class(ds.x_train, ds.y_train, train_subset)
    if test_subset:
        changes["x_test"], changes["y_test"] = first_per_class(ds.x_test, ds.y_test, test_subset)
    if changes:
        ds = dataclasses.replace(ds, **changes)
    if ds.num_classes > 10:
        raise SystemExit(f"airbench94's head has 10 outputs; the data has {ds.num_classes} classes")
    return ds


def describe_data(ds, source: str, args) -> dict:
    if ds.source_kind == "synthetic":
        what = f"cifarkit's synthetic shapes ({source}): checks the code path, says nothing about accuracy"
    elif "cifar10-jpeg" in Path(str(source)).name:
        what = "JPEG re-encoding of CIFAR-10 (quality 75, 4:2:0): real CIFAR-10, lossy, accuracies slightly below the original pixels'"
    else:
        what = f"images loaded by cifarkit from {source}"
    return {
        "source": str(source),
        "description": what,
        "sha256": ds.source_sha256,
        "counts": {"train": int(len(ds.y_train)), "test": int(len(ds.y_test))},
        "classes": list(ds.class_names),
        "train_subset_per_class": args.train_subset or None,
        "test_subset_per_class": args.test_subset or None,
        "split": "all training images train both sides (val_fraction 0); both evaluate on the same test images",
    }


def write_peer_data(ds, workdir: Path) -> None:
    """``workdir/cifar10/train.pt`` and ``test.pt`` in airbench's format (uint8 NHWC images, int64 labels)."""
    import torch

    folder = workdir / "cifar10"
    folder.mkdir(parents=True, exist_ok=True)
    for name, x, y in (("train", ds.x_train, ds.y_train), ("test", ds.x_test, ds.y_test)):
        data = {
            "images": torch.from_numpy(x.copy()),
            "labels": torch.from_numpy(y.astype("int64")),
            "classes": list(ds.class_names),
        }
        torch.save(data, folder / f"{name}.pt")
    # the ~180 MB just written would otherwise be flushed to disk by the kernel some seconds later, while the
    # first probe reading or the peer's first epoch runs: flush it now, outside every clock and reading
    if hasattr(os, "sync"):  # POSIX only
        os.sync()


def machine_info(threads: int) -> dict:
    import torch

    from cifarkit.backend import cpu_flags, isa_limits
    from cifarkit.provenance import cpu_model, speed_flags

    limits = isa_limits()
    return {
        "cpu": cpu_model(),
        "cpu_flags": speed_flags(cpu_flags()),
        **({"isa_limits": limits} if limits else {}),
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "platform": platform.platform(),
        "torch": torch.__version__,
        "keras": importlib.metadata.version("keras"),
        "threads": threads,
        "torch_get_num_threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
    }


# ---------------------------------------------------------------------------- main


def parse_list(text: str, kind=str) -> list:
    return [kind(t.strip()) for t in text.split(",") if t.strip()]


def print_table(result: dict) -> None:
    for key, block in result["results"].items():
        print(f"\n== {key}: peer in {block['peer_dtype']}, fastnet mixed_precision={block['fastnet_mixed_precision']}")
        print(f"{'epochs':>6} {'peer acc':>9} {'(TTA)':>8} {'peer s':>9} {'fastnet':>9} {'fastnet s':>9} {'diff':>8}")
        for n, run in block["runs"].items():
            p, f = run["peer"], run["fastnet"]
            print(
                f"{n:>6} {p['test_acc']:>9.2%} {p['test_acc_tta']:>8.2%} {p['train_seconds']:>9.1f} "
                f"{f['test_acc']:>9.2%} {f['train_seconds']:>9.1f} {100 * (f['test_acc'] - p['test_acc']):>+7.2f}pt"
            )
        acc = block["accuracy"]
        print(f"accuracy goal ({acc['goal']}; counts {acc['epoch_counts_checked']}): {acc['goal_met']}")
        for name, speed in (("measured", block["speed"]), ("steady (drift probe)", block["speed_steady"])):
            if speed["ratio"] is None:
                print(f"speed to {speed['target_acc']:.2%}, {name}: no ratio ({speed['reason']})")
            else:
                print(
                    f"speed to {speed['target_acc']:.2%}, {name}: peer {speed['peer']['seconds']:.1f} s, fastnet "
                    f"{speed['fastnet']['seconds']:.1f} s (its {speed['fastnet']['run_epochs']}-epoch run, epoch "
                    f"{speed['fastnet']['epoch']}) -> {speed['ratio']:.2f}x (goal >= {SPEED_GOAL}x: "
                    f"{speed['goal_met']})"
                )
        probe = block["drift_probe"]
        print(
            f"drift probe ({probe['dtype']}): {len(probe['readings'])} readings, {probe['fastest_seconds']:.3f}-"
            f"{probe['slowest_seconds']:.3f} s ({probe['slowest_seconds'] / probe['fastest_seconds']:.2f}x)"
        )


# ---------------------------------------------------------------------------- the README's table of every run

#: The fastnet setting the README's side-by-side table holds: the ``fast`` recipe, its first two epochs at 20 px.
SUMMARY_SETTING = {"model": "fastnet", "recipe": "fast", "overrides": {"progressive_size": 20, "progressive_epochs": 2}}
#: Overrides a summarized run may add to :data:`SUMMARY_SETTING`'s: the kernels' optimizer, shown in its own column.
SUMMARY_OPTIONAL = ("optimizer", "muon_lr", "muon_min_filters")
SUMMARY_HEADER = [
    "| machine | precision | kernels | epochs | seed | fastnet | airbench94 | points | time at equal epochs, measured "
    "/ steady | to the peer's accuracy, measured / steady | code | record |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|",
]


def machine_label(machine: dict) -> str:
    """The README's name for the machine of a record: its CPU told apart by its flags."""
    flags = (machine.get("cpu_flags") or "").split()
    if "amx_bf16" in flags:
        return "Xeon AMX"
    if "EPYC" in (machine.get("cpu") or ""):
        return "AVX-512 EPYC" if "avx512f" in flags else "AVX2 EPYC"
    return (machine.get("cpu") or "unknown CPU").replace("(R)", "")


def _ratio_text(measured: float | None, steady: float | None) -> str:
    if measured is None:
        return "not reached"
    return f"{measured:.2f}x / " + (f"{steady:.2f}x" if steady is not None else "-")


def summary_rows(results: Path = DEFAULT_OUTPUT.parent) -> list[str]:
    """The README's table rows: every recorded run of :data:`SUMMARY_SETTING` (not dry runs; its overrides may add
    :data:`SUMMARY_OPTIONAL`'s, the kernels' optimizer), by machine, precision, optimizer, epoch count, seed and
    date. Per row: both sides' final test accuracy (no TTA) and their difference in points;
    the peer's training seconds over fastnet's for the same epoch count, as measured and at the drift probe's
    fastest speed (``steady_seconds``); and the ratio to the peer's final accuracy of that count
    (:func:`speed_comparison` on the two runs of that count alone, so a row does not depend on which other counts
    its record holds; "not reached" where fastnet's run ends below it), measured and steady."""
    from cifarkit.training.config import TrainConfig

    rows = []
    for path in sorted(results.glob("peer*.json")):
        r = json.loads(path.read_text())
        fastnet = {k: r.get("fastnet", {}).get(k) for k in SUMMARY_SETTING}
        overrides = dict(fastnet.get("overrides") or {})
        optional = {k: overrides.pop(k) for k in SUMMARY_OPTIONAL if k in overrides}
        if r.get("dry_run") or dict(fastnet, overrides=overrides) != SUMMARY_SETTING:
            continue
        muon = optional.get("optimizer") == "muon"
        kernels = f"Muon {optional.get('muon_lr', TrainConfig.muon_lr):g}" if muon else "SGD"  # the config's default
        if muon and optional.get("muon_min_filters"):
            kernels += f", >= {optional['muon_min_filters']} filters"
        git = r.get("git") or {}
        code = f"{git.get('commit', '')[:7] or '-'}{'*' if git.get('dirty') else ''}"
        for block in r["results"].values():
            precision = block["fastnet_mixed_precision"].replace("off", "float32")
            for n, run in block["runs"].items():
                peer, fast = run["peer"], run["fastnet"]
                steady = all("steady_seconds" in row for row in peer["curve"] + fast["curve"])
                equal = peer["train_seconds"] / fast["train_seconds"]
                equal_steady = (
                    sum(row["steady_seconds"] for row in peer["curve"])
                    / sum(row["steady_seconds"] for row in fast["curve"])
                    if steady
                    else None
                )
                curves = {int(n): peer["curve"]}, {int(n): fast["curve"]}
                to_peer = speed_comparison(*curves)["ratio"]
                to_peer_steady = speed_comparison(*(steady_curves(c) for c in curves))["ratio"] if steady else None
                seed = int(r.get("seed", 0))
                key = (machine_label(r["machine"]), precision, muon, kernels, int(n), seed, r["date"])
                rows.append(
                    (
                        key,
                        f"| {key[0]} | {precision} | {kernels} | {n} | {seed} | {fast['test_acc']:.2%} "
                        f"| {peer['test_acc']:.2%} "
                        f"| {100 * (fast['test_acc'] - peer['test_acc']):+.2f} "
                        f"| {_ratio_text(equal, equal_steady)} | {_ratio_text(to_peer, to_peer_steady)} "
                        f"| {code}, {r['date'][:10]} | `{path.name}` |",
                    )
                )
    return [text for _, text in sorted(rows)]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(DEFAULT_DATA), help="the shared archive, an image folder, or synthetic:N")
    p.add_argument("--epochs", default="2", help="comma-separated epoch counts, one run per count and side")
    p.add_argument("--precision", default="off,bf16", help="comma-separated: off (float32) and/or bf16")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="torch.set_num_threads for both sides")
    p.add_argument(
        "--seed", type=int, default=0, help="fastnet's training seed; torch.manual_seed before each peer run"
    )
    p.add_argument("--model", default="fastnet")
    p.add_argument("--recipe", default="fast")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="fastnet recipe override")
    p.add_argument("--train-subset", type=int, default=0, help="first N training images per class (0: all)")
    p.add_argument("--test-subset", type=int, default=0, help="first N test images per class (0: all)")
    p.add_argument("--output", default=None, help=f"default {DEFAULT_OUTPUT.relative_to(ROOT)} (dry run: temp folder)")
    p.add_argument("--dry-run", action="store_true", help=f"{DRY_RUN_DATA}, 1 epoch, a smaller peer batch: seconds")
    p.add_argument("--summary", action="store_true", help="print the README's table of every recorded run, and stop")
    args = p.parse_args(argv)
    if args.summary:
        print("\n".join(SUMMARY_HEADER + summary_rows()))
        return 0
    os.environ.setdefault("KERAS_BACKEND", "torch")

    if args.dry_run:
        args.data, args.epochs = DRY_RUN_DATA, "1"
    epoch_counts = sorted(set(parse_list(args.epochs, int)))
    if not epoch_counts or min(epoch_counts) < 1:
        p.error("--epochs needs whole numbers >= 1")
    unknown = [n for n in parse_list(args.precision) if n not in PRECISIONS]
    if unknown or not parse_list(args.precision):
        p.error(f"--precision: unknown {unknown}; use {', '.join(PRECISIONS)}")
    precisions = list(dict.fromkeys(PRECISIONS[n] for n in parse_list(args.precision)))
    if args.output is None:
        args.output = Path(tempfile.gettempdir()) / "bench_peer_dry_run.json" if args.dry_run else DEFAULT_OUTPUT

    from cifarkit.provenance import command_line, git_info
    from cifarkit.training import parse_override

    overrides = dict(parse_override(t) for t in args.set)
    clash = {"epochs", "mixed_precision", "eval_test_every_epoch", "device"} & set(overrides)
    if clash:
        p.error(f"--set cannot change {sorted(clash)}: the benchmark sets them to match the peer")

    import torch

    torch.set_num_threads(args.threads)  # once, before both sides
    busy = os.getloadavg()[0]
    if busy > 0.5 * args.threads:
        print(f"warning: load average {busy:.2f} with {args.threads} threads: the timings will be noisy", flush=True)
    ds = load_data(args.data, args.train_subset, args.test_subset)
    n_train = len(ds.y_train)
    probe_size = {"batch": 8, "steps": 1} if args.dry_run else {}

    result = {
        "benchmark": "peer",
        "command": command_line(__file__, argv),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "dry_run": bool(args.dry_run),
        "machine": machine_info(args.threads),
        "git": git_info(ROOT),  # the commit the result comes from, and whether tracked files differed
        "load_average_at_start": os.getloadavg(),
        "data": describe_data(ds, args.data, args),
        "epoch_counts": epoch_counts,
        "seed": args.seed,
        "fastnet": {"model": args.model, "recipe": args.recipe, "overrides": overrides},
        "notes": [
            "accuracy at N epochs = final test accuracy of a run with epochs=N (airbench's schedule depends on N)",
            "training seconds exclude evaluation on both sides; the peer's include its whitening initialization "
            "(as airbench times it), fastnet's do not (cifarkit initializes before its first epoch's clock)",
            "the peer computes in its dtype throughout (weights too, batch norms float32) and evaluates in it; "
            "fastnet keeps float32 weights, trains under bf16 autocast when mixed_precision=bf16, evaluates in float32",
            "runs go in order: for each precision, for each epoch count, the peer and then fastnet, in one process; "
            "neither side gets a warm-up run, so each precision's first runs include one-time kernel setup",
            "measure on an idle machine: other work on the cores makes torch's threads wait on each other (bf16 "
            "most, in trial runs); the load averages at start and end are recorded",
            "the drift probe (a fixed workload in the precision compared: float32, or float32 weights under bf16 "
            "autocast) is read before each run and after each epoch of either side, outside both clocks; each "
            "precision has its own probe, its readings in that precision's drift_probe block; steady_seconds = an "
            "epoch's seconds x that probe's fastest reading / the mean of the readings before and after it; "
            "speed_steady is the speed comparison on steady_seconds; wall_seconds include the readings",
        ],
        "goals": {
            "accuracy": f"fastnet >= the peer's accuracy at every equal epoch count up to {ACCURACY_GOAL_MAX_EPOCHS}",
            "speed": f">= {SPEED_GOAL}x faster to the peer's final accuracy",
            "in": ["float32", "bf16"],
        },
        "results": {},
    }
    if args.dry_run:
        result["note"] = "DRY RUN on synthetic data: checks the code path; no number here is a measurement"

    with tempfile.TemporaryDirectory(prefix="bench_peer_") as tmp:
        workdir = Path(tmp)
        write_peer_data(ds, workdir)
        for key, dtype_name, mixed_precision in precisions:
            peer = load_peer(dtype_name)
            published_batch = peer["lib"].hyp["opt"]["batch_size"]
            peer_batch = published_batch if n_train >= 2 * published_batch else max(1, n_train // 2)
            record = dict(peer["record"])
            record["changed_arguments"] = (
                []
                if peer_batch == published_batch
                else [
                    {
                        "name": "batch_size",
                        "published": published_batch,
                        "used": peer_batch,
                        "why": f"{n_train} training images: its loader drops the last partial batch, so a batch "
                        "of half the images keeps 2 steps per epoch (its lr and weight decay are per 1024 examples)",
                    }
                ]
            )
            record["seed"] = "torch.manual_seed(seed) before each run (airbench sets no seed)"
            if dtype_name == "bfloat16":
                record["bn_mixed_dtype_check"] = bn_mixed_dtype_check()
                if not record["bn_mixed_dtype_check"]["ok"]:
                    raise SystemExit(f"bf16 through float32 batch norms fails here: {record['bn_mixed_dtype_check']}")
            peer_runs, fastnet_runs = {}, {}
            probe = DriftProbe(dtype=dtype_name, **probe_size)  # PRECISIONS names float32 or bfloat16
            probe.prefix = f"[{key}] "
            for n in epoch_counts:
                print(f"[{key}] airbench94, {n} epochs", flush=True)
                peer_runs[n] = run_peer(peer, n, peer_batch, args.seed, workdir, probe)
                print(f"[{key}] {args.model}, {n} epochs", flush=True)
                fastnet_runs[n] = run_fastnet(ds, n, mixed_precision, args, overrides, probe)
            result["results"][key] = {
                "peer_dtype": dtype_name,
                "fastnet_mixed_precision": mixed_precision,
                "peer_port": record,
                "runs": {str(n): {"peer": peer_runs[n], "fastnet": fastnet_runs[n]} for n in epoch_counts},
                "accuracy": accuracy_comparison(peer_runs, fastnet_runs),
                "speed": speed_comparison(
                    {n: r["curve"] for n, r in peer_runs.items()}, {n: r["curve"] for n, r in fastnet_runs.items()}
                ),
                "drift_probe": probe.summary(),
            }
    for block in result["results"].values():
        curves = {
            side: {int(n): run[side]["curve"] for n, run in block["runs"].items()} for side in ("peer", "fastnet")
        }
        for side_curves in curves.values():
            for rows in side_curves.values():
                steady_seconds(rows, block["drift_probe"]["fastest_seconds"])
        block["speed_steady"] = speed_comparison(steady_curves(curves["peer"]), steady_curves(curves["fastnet"]))
    result["substitutions"] = result["results"][precisions[0][0]]["peer_port"]["substitutions"]
    result["goals"]["met"] = {
        key: {"accuracy": block["accuracy"]["goal_met"], "speed": block["speed"]["goal_met"]}
        for key, block in result["results"].items()
    }
    result["load_average_at_end"] = os.getloadavg()
    out = Path(args.output)
    from cifarkit import files

    files.atomic_write_json(out, result)  # a temp file beside it, then os.replace
    print_table(result)
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    from cifarkit.signals import EXIT_CODE, stop_on_sigterm

    stop_on_sigterm(EXIT_CODE)  # kill PID ends the run as ^C does: its temp folders (~180 MB each) are removed
    raise SystemExit(main())
