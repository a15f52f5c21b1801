"""One trial of a study: the data it sees, the settings it samples, its training and what it leaves behind.

A trial trains on the training split and is scored on the validation split; it gets a copy of the data
whose test split is empty (:func:`validation_only`), so no test image is ever read while tuning. A trial
that crashes (diverged loss, out of memory, an invalid combination) is marked failed with its reason in
the trial's ``fail_reason`` user attribute, and the study goes on.
"""

from __future__ import annotations

import contextlib
import gc
import json
import math
import os
import shutil
import socket
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cifarkit.analysis.tuning.results import _trial_epochs
from cifarkit.analysis.tuning.spaces import merge_settings, params_to_settings
from cifarkit.analysis.tuning.storage import OBJECTIVE, suggest
from cifarkit.training import resolve_recipe
from cifarkit.wording import plural

#: Trial files deleted after a trial (large; the tuned model is retrained by 03_train).
TRIAL_FILES_DROPPED = ("checkpoint.pt", "nan_checkpoint.pt", "model.keras")


def validation_only(dataset):
    """A :class:`cifarkit.data.Dataset` with the training and validation splits of ``dataset`` and an empty test split.

    Reads only the training and validation arrays and the provenance fields, so
    tuning cannot see a test image even by accident.
    """
    from cifarkit.data import Dataset

    x_train = dataset.x_train
    empty_x = np.zeros((0,) + tuple(x_train.shape[1:]), dtype=x_train.dtype)
    return Dataset(
        x_train=x_train,
        y_train=dataset.y_train,
        x_val=dataset.x_val,
        y_val=dataset.y_val,
        x_test=empty_x,
        y_test=np.zeros((0,), dtype=np.int64),
        class_names=list(dataset.class_names),
        source=getattr(dataset, "source", ""),
        source_kind=getattr(dataset, "source_kind", ""),
        source_sha256=getattr(dataset, "source_sha256", None),
        image_size=tuple(dataset.image_size),
        split_origin=getattr(dataset, "split_origin", ""),
        val_fraction=getattr(dataset, "val_fraction", None),
        test_fraction=getattr(dataset, "test_fraction", None),
        seed=getattr(dataset, "seed", None),
        subset=getattr(dataset, "subset", None),
    )


def data_identity(dataset) -> dict:
    """What identifies the tuning data: the file's checksum (else its source), image size, split sizes and seed."""
    ident = {"sha256": dataset.source_sha256} if dataset.source_sha256 else {"source": str(dataset.source)}
    ident.update(
        {
            "image_size": [int(s) for s in dataset.image_size],
            "class_names": list(dataset.class_names),
            "train": int(len(dataset.y_train)),
            "val": int(len(dataset.y_val)),
            "val_fraction": dataset.val_fraction,
            "seed": dataset.seed,
            "subset": dataset.subset,
        }
    )
    return json.loads(json.dumps(ident))


@dataclass
class TrialRunner:
    """The objective of a study's trials and the callback after each, for one :func:`~.study.tune` call.

    ``ran`` counts the trials this worker ran; after ``max_consecutive_failures`` failed trials
    in a row the callback stops the study and sets ``stopped``.
    """

    data: object
    dists: dict
    space: str
    recipe: str
    epochs: int
    overrides: dict
    fixed: dict
    study_name: str
    trial_root: Path
    progress: bool
    train_progress: bool
    max_consecutive_failures: int
    worker: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    ran: int = 0
    in_a_row: int = 0
    stopped: bool = False

    def objective(self, trial) -> float:
        """Train one trial with sampled settings and return its validation accuracy (nan when it failed)."""
        import optuna

        params = {name: suggest(trial, name, d) for name, d in self.dists.items()}
        sampled = params_to_settings(self.space, params)
        settings = merge_settings(self.overrides, sampled, self.fixed)
        trial.set_user_attr("settings", json.loads(json.dumps(sampled)))
        trial.set_user_attr("epochs_planned", int(self.epochs))
        trial.set_user_attr("worker", self.worker)
        records: list[dict] = []
        pruned = []

        def report(record):
            records.append(record)
            trial.report(float(record[OBJECTIVE]), int(record["epoch"]))
            # after the last epoch there is nothing left to save: the trial completes
            if int(record["epoch"]) < int(self.epochs) and trial.should_prune():
                pruned.append(int(record["epoch"]))
                return True
            return False

        t0 = time.perf_counter()
        trial_dir = self.trial_root / f"trial_{trial.number:05d}"
        try:
            from cifarkit.training import train

            config = resolve_recipe(self.recipe, **settings)
            result = train(
                self.data,
                config,
                trial_dir,
                resume=False,
                progress=self.train_progress,
                callbacks=[report],
                run_info={"tune": {"study": self.study_name, "trial": trial.number}},
            )
            value = result.metrics.get(OBJECTIVE)
            if not pruned and len(self.data.y_val):  # kept for the paired comparison with the recipe's trial
                _save_val_predictions(trial_dir, result.model, self.data.x_val)
        except Exception as e:  # noqa: BLE001 - any crash ends this trial only; the reason is kept
            trial.set_user_attr("fail_reason", f"{type(e).__name__}: {e}"[:2000])
            trial.set_user_attr("fail_traceback", traceback.format_exc()[-1500:])
            value = float("nan")
            _free_memory()
        finally:
            trial.set_user_attr("epochs_run", len(records))
            trial.set_user_attr("seconds", round(time.perf_counter() - t0, 3))
            _drop_trial_files(trial_dir)
        if pruned and value is not None and math.isfinite(value):
            raise optuna.TrialPruned(f"pruned after epoch {pruned[0]} of {self.epochs}")
        if value is None:
            trial.set_user_attr("fail_reason", "no validation accuracy was recorded")
            return float("nan")
        return float(value)

    def after_trial(self, study, frozen) -> None:
        """Print the trial's line and stop the study after too many failures in a row."""
        from optuna.trial import TrialState

        self.ran += 1
        if self.progress:
            _print_trial(frozen, int(self.epochs))
        if frozen.state == TrialState.FAIL:
            self.in_a_row += 1
            if self.in_a_row >= self.max_consecutive_failures:
                self.stopped = True
                study.stop()
        else:
            self.in_a_row = 0

    def run(self, study, to_run: int, *, timeout, shown_url: str) -> int:
        """Run ``to_run`` trials of ``study`` (fewer after ``timeout`` seconds); the number this worker ran.

        Raises:
            RuntimeError: ``max_consecutive_failures`` trials failed in a row.
        """
        import optuna
        from optuna.trial import TrialState

        if to_run:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                with _quiet_failed_trial_warnings():
                    study.optimize(
                        self.objective,
                        n_trials=to_run,
                        timeout=timeout,
                        callbacks=[self.after_trial],
                        gc_after_trial=True,
                    )
        if self.stopped:
            last = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.FAIL][-1]
            raise RuntimeError(
                f"{self.max_consecutive_failures} trials in a row failed, which points at a setup problem rather than at "
                f"bad hyperparameters; the last: {last.user_attrs.get('fail_reason', 'unknown')}. "
                f"The study {self.study_name!r} keeps its trials in {shown_url}."
            )
        return self.ran  # this worker's; others may add trials at the same time


def _format_params(params: dict) -> str:
    parts = []
    for k, v in params.items():
        parts.append(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}")
    return " ".join(parts)


def _print_trial(t, epochs: int) -> None:
    from optuna.trial import TrialState

    run = _trial_epochs(t)
    secs = t.user_attrs.get("seconds")
    secs_text = f"{secs:7.1f} s" if secs is not None else "      ? s"
    if t.state == TrialState.COMPLETE:
        status = f"complete val_acc {t.value:.4f}"
    elif t.state == TrialState.PRUNED:
        last = t.value if t.value is not None else float("nan")
        status = f"pruned   val_acc {last:.4f}"
    else:
        reason = t.user_attrs.get("fail_reason", "unknown error")
        status = f"failed   ({reason[:100]})"
    print(
        f"trial {t.number:4d}  {status:<34} {run}/{plural(epochs, 'epoch'):<9} {secs_text}  {_format_params(t.params)}",
        flush=True,
    )


VAL_PREDICTIONS = "val_pred.npy"


def _save_val_predictions(trial_dir: Path, model, x_val) -> None:
    import numpy as np

    from cifarkit.training import predict_logits

    np.save(trial_dir / VAL_PREDICTIONS, predict_logits(model, x_val).argmax(1).astype(np.int32))


def trial_val_predictions(out_dir, study_name: str, trial_number: int):
    """The validation predictions a complete trial saved (``None`` when it saved none)."""
    import numpy as np

    path = Path(out_dir) / "trials" / _safe_name(study_name) / f"trial_{int(trial_number):05d}" / VAL_PREDICTIONS
    return np.load(path) if path.is_file() else None


def _safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "study"


def _drop_trial_files(trial_dir: Path) -> None:
    for name in TRIAL_FILES_DROPPED:
        with contextlib.suppress(FileNotFoundError):
            (trial_dir / name).unlink()
    if trial_dir.exists() and not any(trial_dir.iterdir()):
        shutil.rmtree(trial_dir, ignore_errors=True)


def _free_memory() -> None:
    gc.collect()
    with contextlib.suppress(Exception):
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()


@contextlib.contextmanager
def _quiet_failed_trial_warnings():
    """Optuna logs a warning for every failed trial; our own line already says why, so drop it."""
    import logging

    logger = logging.getLogger("optuna")

    class _Filter(logging.Filter):
        def filter(self, record):
            return (
                "failed with value nan" not in record.getMessage()
                and "nan is not acceptable" not in record.getMessage()
            )

    f = _Filter()
    logger.addFilter(f)
    for h in logger.handlers:
        h.addFilter(f)
    try:
        yield
    finally:
        logger.removeFilter(f)
        for h in logger.handlers:
            h.removeFilter(f)
