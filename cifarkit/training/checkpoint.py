"""What a training run writes to its folder, and how a killed run comes back to the same numbers.

``checkpoint.pt`` (after every epoch, atomically) holds the weights with
batch-norm statistics, the optimizer and lookahead state, the schedule
position, every RNG state (Python, numpy, torch, input pipeline), the history
and the config. A run resumes only with the same config and data. Results
depend on the CPU thread count (oneDNN splits reductions by thread), so the
count is stored and a deterministic run resumed with another count warns.
"""

from __future__ import annotations

import csv
import io
import json
import random
import time
from pathlib import Path

import numpy as np

from cifarkit import backend
from cifarkit.files import atomic_write_bytes, atomic_write_json
from cifarkit.training.config import TrainConfig, default_settings

CHECKPOINT_NAME = "checkpoint.pt"
NAN_CHECKPOINT_NAME = "nan_checkpoint.pt"
MODEL_NAME = "model.keras"
METRICS_NAME = "metrics.json"
HISTORY_JSON = "history.json"
HISTORY_CSV = "history.csv"
CHECKPOINT_FORMAT = 1
#: Settings that may differ between a checkpoint and the run resuming it (they change no result).
RESUME_IGNORED_KEYS = ("eval_batch_size",)


def run_paths(out_dir: Path) -> dict:
    """File name -> path of what a run writes to ``out_dir``."""
    return {
        "checkpoint": out_dir / CHECKPOINT_NAME,
        "history_json": out_dir / HISTORY_JSON,
        "history_csv": out_dir / HISTORY_CSV,
        "model": out_dir / MODEL_NAME,
        "metrics": out_dir / METRICS_NAME,
    }


def write_history(out_dir: Path, history: list) -> None:
    """Write ``history.json`` and ``history.csv`` atomically."""
    atomic_write_json(out_dir / HISTORY_JSON, history)
    columns: list[str] = []
    for row in history:
        columns += [k for k in row if k not in columns]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: repr(v) if isinstance(v, float) else v for k, v in row.items()})
    atomic_write_bytes(out_dir / HISTORY_CSV, text.getvalue().encode())


def save_torch(obj, path: Path) -> None:
    """``torch.save`` through a temporary file and a rename."""
    buf = io.BytesIO()
    backend.torch().save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path) -> dict:
    """Read a checkpoint written by the training loop (safe loading: tensors and plain Python values only)."""
    return backend.torch().load(Path(path), map_location="cpu", weights_only=True)


def to_cpu(obj):
    """A copy of ``obj`` with every tensor moved to the CPU (dicts, lists and tuples walked)."""
    torch = backend.torch()
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [to_cpu(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(to_cpu(v) for v in obj)
    return obj


# --------------------------------------------------------------------------- RNG and data identity
def rng_state() -> dict:
    torch = backend.torch()
    np_state = np.random.get_state(legacy=False)
    state = {
        "python": random.getstate(),
        "numpy": {
            "bit_generator": np_state["bit_generator"],
            "key": [int(k) for k in np_state["state"]["key"]],
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch = backend.torch()
    random.setstate(state["python"])
    s = state["numpy"]
    np.random.set_state(
        {
            "bit_generator": s["bit_generator"],
            "state": {"key": np.asarray(s["key"], dtype=np.uint32), "pos": s["pos"]},
            "has_gauss": s["has_gauss"],
            "gauss": s["gauss"],
        }
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def dataset_fingerprint(dataset) -> dict:
    """Provenance fields that must match for a checkpoint to be resumed on this data."""
    info = dataset.to_dict() if hasattr(dataset, "to_dict") else {}
    keep = (
        "source",
        "source_sha256",
        "image_size",
        "class_names",
        "counts",
        "val_fraction",
        "test_fraction",
        "seed",
        "subset",
    )
    fp = {k: info[k] for k in keep if k in info}
    fp["train_shape"] = list(dataset.x_train.shape)
    return json.loads(json.dumps(fp, default=str))


def _diff_keys(a: dict, b: dict, ignore=()) -> list[str]:
    keys = sorted((set(a) | set(b)) - set(ignore))
    return [k for k in keys if a.get(k) != b.get(k)]


def check_resumable(state: dict, config: TrainConfig, dataset, path: Path) -> None:
    """Raise ``ValueError`` unless the checkpoint ``state`` was written with ``config`` on ``dataset``."""
    # settings added after a checkpoint was written take their defaults (they did not exist then)
    saved = {**default_settings(), **state.get("config", {})}
    now = config.to_dict()
    differ = _diff_keys(saved, now, ignore=RESUME_IGNORED_KEYS)
    if differ:
        details = "; ".join(f"{k}: checkpoint {saved.get(k)!r}, now {now.get(k)!r}" for k in differ)
        raise ValueError(
            f"The checkpoint {path} was written with a different config ({details}). "
            "Use another out_dir for a new run, or resume=False to start this one over."
        )
    differ = _diff_keys(state.get("dataset", {}), dataset_fingerprint(dataset))
    if differ:
        raise ValueError(
            f"The checkpoint {path} was written for different data (differs in {', '.join(differ)}). "
            "Use another out_dir for a new run, or resume=False to start this one over."
        )


# --------------------------------------------------------------------------- a run's whole state
def run_state(run) -> dict:
    """Everything needed to continue ``run`` (a ``loop._Run``) exactly where it is."""
    torch = backend.torch()
    return {
        "format": CHECKPOINT_FORMAT,
        "epoch": run.epoch,
        "global_step": run.global_step,
        "variables": [v.value.detach().to("cpu", copy=True) for v in run.model.variables],
        "variable_paths": [v.path for v in run.model.variables],
        "optimizer": to_cpu(run.optimizer.state_dict()),
        "lookahead": run.lookahead.state_dict() if run.lookahead is not None else None,
        "scaler": run.step.scaler.state_dict() if run.step.scaler is not None else None,
        "rng": rng_state(),
        "pipeline": run.pipeline.state_dict(),
        "history": [dict(r) for r in run.history],
        "config": run.config.to_dict(),
        "dataset": dataset_fingerprint(run.dataset),
        "train_seconds": run.train_seconds,
        "elapsed_seconds": run.elapsed_before + (time.perf_counter() - run.t_start),
        "torch_version": str(torch.__version__),
        "torch_threads": torch.get_num_threads(),
    }


def restore_run(run, state: dict) -> None:
    """Put ``run`` (built, not yet trained) back into the state :func:`run_state` saved."""
    torch = backend.torch()
    variables = run.model.variables
    if len(state["variables"]) != len(variables):
        raise ValueError(
            f"The checkpoint holds {len(state['variables'])} variables but model {run.config.model!r} has "
            f"{len(variables)}; it was written by another version of the model. Use another out_dir or resume=False."
        )
    for v, value in zip(variables, state["variables"]):
        if tuple(v.shape) != tuple(value.shape):
            raise ValueError(
                f"Checkpoint variable for {v.path} has shape {tuple(value.shape)}, the model wants {tuple(v.shape)}."
            )
        v.assign(value.numpy() if value.dtype != torch.bfloat16 else value.float().numpy())
    run.optimizer.load_state_dict(state["optimizer"])
    if run.config.lookahead_every:
        run.start_lookahead()
        if state.get("lookahead") is not None:
            run.lookahead.load_state_dict(state["lookahead"])
    if state.get("scaler") and run.step.scaler is not None:
        run.step.scaler.load_state_dict(state["scaler"])
    run.pipeline.load_state_dict(state["pipeline"])
    set_rng_state(state["rng"])
    run.epoch = int(state["epoch"])
    run.global_step = int(state["global_step"])
    run.history = [dict(r) for r in state["history"]]
    run.train_seconds = float(state["train_seconds"])
    run.elapsed_before = float(state["elapsed_seconds"])
