"""What a study found: trial counts, the epochs pruning saved, a trials table, importances, and the best
trial, written to ``best_params.json`` and read back as training settings by :func:`tuned_settings`.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from cifarkit import files, provenance, run_folder
from cifarkit.analysis.tuning.spaces import merge_settings, params_to_settings
from cifarkit.analysis.tuning.storage import OBJECTIVE, mask_url
from cifarkit.wording import plural

BEST_PARAMS_NAME = "best_params.json"


@dataclass
class TuneResult:
    """What :func:`tune` returns.

    Attributes:
        study: the ``optuna.Study`` (all trials, from every worker and earlier runs).
        study_name: its name.
        storage: the storage URL, password masked.
        best: the best complete trial as written to ``best_params.json`` (None before any completes).
        counts: trials per state (complete, pruned, failed, running, waiting) and ``total``.
        budget: :func:`epoch_budget` of the study.
        new_trials: trials this call ran (not those of other workers meanwhile).
        seconds: wall time of this call.
        out_dir: the tuning folder.
        best_params_path: where the best parameters were written (None when none completed).
        skipped_params: parameters of the space left out for this model/data, with the reason.
    """

    study: object
    study_name: str
    storage: str
    best: dict | None
    counts: dict
    budget: dict
    new_trials: int
    seconds: float
    out_dir: Path
    best_params_path: Path | None
    skipped_params: dict = field(default_factory=dict)


def trial_counts(study) -> dict:
    """Number of trials in each state: complete, pruned, failed, running, waiting, and total."""
    from optuna.trial import TrialState

    names = {
        TrialState.COMPLETE: "complete",
        TrialState.PRUNED: "pruned",
        TrialState.FAIL: "failed",
        TrialState.RUNNING: "running",
        TrialState.WAITING: "waiting",
    }
    counts = dict.fromkeys(names.values(), 0)
    for t in study.get_trials(deepcopy=False):
        counts[names[t.state]] += 1
    counts["total"] = sum(counts.values())
    return counts


def _trial_epochs(t) -> int:
    run = t.user_attrs.get("epochs_run")
    return int(run) if run is not None else len(t.intermediate_values)


def epoch_budget(study) -> dict:
    """Training epochs the finished trials ran, against what they would have run without pruning.

    Without pruning every complete or pruned trial would have run all its
    planned epochs; a failed trial stops where it crashed either way, so it
    counts with the epochs it ran on both sides.

    Returns:
        ``epochs_run``, ``epochs_without_pruning``, ``saved_epochs``,
        ``saved_fraction`` (0..1; None without finished trials),
        ``trials`` (finished trials counted) and ``pruned``.
    """
    from optuna.trial import TrialState

    default_planned = int(study.user_attrs.get("epochs", 0) or 0)
    run = without = n = pruned = 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)):
        epochs = _trial_epochs(t)
        planned = int(t.user_attrs.get("epochs_planned", default_planned) or epochs)
        run += epochs
        without += epochs if t.state == TrialState.FAIL else max(planned, epochs)
        n += 1
        pruned += t.state == TrialState.PRUNED
    return {
        "epochs_run": run,
        "epochs_without_pruning": without,
        "saved_epochs": without - run,
        "saved_fraction": (1.0 - run / without) if without else None,
        "trials": n,
        "pruned": pruned,
    }


def budget_summary(budget: dict) -> str:
    """:func:`epoch_budget` in words: ``"12 epochs run, of 20 without pruning (pruning saved 40%)"``.

    The count agrees with its noun (``"1 epoch run, of 1 without pruning"``); the share reads ``n/a`` when no
    trial finished.
    """
    saved = "n/a" if budget["saved_fraction"] is None else f"{budget['saved_fraction']:.0%}"
    return (
        f"{plural(budget['epochs_run'], 'epoch')} run, of {budget['epochs_without_pruning']} without pruning "
        f"(pruning saved {saved})"
    )


def trials_table(study):
    """One row per trial: number, state, value, epochs run, seconds, worker, failure reason and the parameters."""
    import pandas as pd

    rows = []
    for t in study.get_trials(deepcopy=False):
        row = {
            "trial": t.number,
            "state": t.state.name.lower().replace("fail", "failed"),
            "val_acc": t.value,
            "epochs_run": _trial_epochs(t),
            "seconds": t.user_attrs.get("seconds"),
            "worker": t.user_attrs.get("worker"),
            "fail_reason": t.user_attrs.get("fail_reason", ""),
        }
        row.update(t.params)
        rows.append(row)
    return pd.DataFrame(rows)


def best_trial_record(study) -> dict | None:
    """The best complete trial as a JSON-serializable dict (what ``best_params.json`` holds), or None."""
    from optuna.trial import TrialState

    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return None
    best = study.best_trial
    attrs = study.user_attrs
    space = attrs.get("space", "default")
    return json.loads(
        json.dumps(
            {
                "study_name": study.study_name,
                "value": best.value,
                "objective": attrs.get("objective", OBJECTIVE),
                "trial_number": best.number,
                "model": attrs.get("model"),
                "recipe": attrs.get("recipe"),
                "epochs": attrs.get("epochs"),
                "space": space,
                "params": best.params,
                "settings": merge_settings(attrs.get("fixed_settings") or {}, params_to_settings(space, best.params)),
                "data": attrs.get("data"),
                "seed": attrs.get("seed"),
                "trials_finished": sum(t.state.is_finished() for t in study.get_trials(deepcopy=False)),
            },
            default=float,
        )
    )


def write_best_params(study, out_dir, storage: str | None = None) -> Path | None:
    """Write the best complete trial to ``<out_dir>/best_params.json`` (atomically); None if none completed."""
    record = best_trial_record(study)
    if record is None:
        return None
    record["storage"] = mask_url(storage) if storage else None
    record["written_at"] = provenance.now_iso()
    return files.atomic_write_json(Path(out_dir) / BEST_PARAMS_NAME, record)


def tuning_signal(
    best_value,
    baseline_value,
    n_val: int,
    *,
    y_val=None,
    best_pred=None,
    baseline_pred=None,
    level: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
) -> dict:
    """Whether the best trial beat the recipe's own settings by more than the validation noise.

    Both are scored on the same ``n_val`` validation images. With both trials' predictions
    the interval of the difference is a paired bootstrap over those images; without them, a
    normal approximation that treats the two accuracies as independent (wider than the paired
    one, so it errs on the side of keeping the recipe).

    Returns:
        ``{"margin", "ci", "level", "n_val", "reliable", "method"}``; ``margin`` and ``ci`` are None (and
        ``reliable`` False) without a baseline or a best value.
    """
    from scipy.stats import norm

    from cifarkit.analysis.stats import paired_difference_ci

    out = {"margin": None, "ci": None, "level": level, "n_val": int(n_val), "reliable": False, "method": None}
    if best_value is None or baseline_value is None or not n_val:
        return out
    if y_val is not None and best_pred is not None and baseline_pred is not None:
        d = paired_difference_ci(y_val, best_pred, baseline_pred, n_boot=n_boot, level=level, seed=seed)
        margin, ci = d["difference"], [d["ci_low"], d["ci_high"]]
        out["method"] = f"paired bootstrap over the validation images ({n_boot} resamples)"
    else:
        b, r = float(best_value), float(baseline_value)
        se = ((b * (1 - b) + r * (1 - r)) / n_val) ** 0.5
        z = float(norm.ppf(0.5 + level / 2))
        margin, ci = b - r, [b - r - z * se, b - r + z * se]
        out["method"] = "normal approximation, independent binomial variances (conservative)"
    out.update(margin=float(margin), ci=[float(ci[0]), float(ci[1])], reliable=bool(ci[0] > 0))
    return out


def record_signal(path, signal: dict) -> Path:
    """Add the tuning ``signal`` (:func:`tuning_signal`) to a ``best_params.json`` (atomically)."""
    path = Path(path)
    best, _ = _read_best_params(path)
    best["signal"] = signal
    return files.atomic_write_json(path, best)


def importances(study) -> dict | None:
    """Parameter importances of the complete trials (Optuna's default evaluator), or None below 2 complete trials."""
    import optuna
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < 2:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return {k: float(v) for k, v in optuna.importance.get_param_importances(study).items()}
        except (ValueError, RuntimeError):
            return None


def tuned_settings(source: str, run_dir, *, model: str, recipe: str) -> dict:
    """The best parameters of a tuning run, as training-setting overrides for the training notebook.

    Args:
        source: ``"auto"`` (``<run_dir>/tune/best_params.json`` if it exists and
            was tuned for this model and recipe), ``"none"`` (ignore tuning) or
            a path to a ``best_params.json``.
        run_dir: the run folder.
        model, recipe: what the training run uses; with ``auto``, parameters
            tuned for another model or recipe are not applied. With an explicit
            path they are, minus model options ``model`` does not accept.

    Returns:
        ``{"mode", "source", "applied", "settings", "params", "study_name",
        "value", "trial_number", "tuned_for", "signal", "note"}``; ``settings`` is empty
        when nothing is applied. With ``auto``, a record whose tuning signal (written by
        02_tune, :func:`record_signal`) says the best trial did not beat the recipe beyond
        the validation noise is not applied.

    Raises:
        FileNotFoundError: an explicit path that does not exist.
        ValueError: a file that is not a best-parameters record.
    """
    record = {
        "mode": source,
        "source": None,
        "applied": False,
        "settings": {},
        "params": {},
        "study_name": None,
        "value": None,
        "trial_number": None,
        "tuned_for": None,
        "signal": None,
        "note": "",
    }
    mode = (source or "none").strip()
    if mode.lower() == "none":
        record["note"] = "tuning ignored (TUNED_PARAMS is none)"
        return record
    if mode.lower() == "auto":
        path = Path(run_dir) / run_folder.TUNE_DIR / BEST_PARAMS_NAME
        if not path.exists():
            record["note"] = f"none in this run (02_tune wrote no {run_folder.TUNE_DIR}/{BEST_PARAMS_NAME})"
            return record
    else:
        path = Path(mode).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"TUNED_PARAMS points to {path}, which does not exist. Give the best_params.json written by "
                f"02_tune (in <run>/tune/), auto, or none."
            )
    best, settings = _read_best_params(path)
    record.update(
        source=str(path),
        params=best.get("params", {}),
        study_name=best.get("study_name"),
        value=best.get("value"),
        trial_number=best.get("trial_number"),
        tuned_for={k: best.get(k) for k in ("model", "recipe", "epochs", "space", "data")},
    )
    mismatch = [
        f"{k} {best.get(k)!r} (this run: {v!r})" for k, v in (("model", model), ("recipe", recipe)) if best.get(k) != v
    ]
    if mismatch and mode.lower() == "auto":
        record["note"] = "not applied: tuned for " + " and ".join(mismatch)
        return record
    signal = best.get("signal")
    record["signal"] = signal
    if mode.lower() == "auto" and signal is not None and not signal.get("reliable"):
        record["note"] = "not applied: " + describe_signal(signal)
        return record
    notes = []
    if mismatch:
        notes.append("tuned for " + " and ".join(mismatch))
    notes += _drop_unknown_options(settings, model)
    settings.pop("model", None)
    settings.pop("epochs", None)
    settings.pop("seed", None)
    record.update(applied=True, settings=settings, note="; ".join(notes))
    return record


def describe_signal(signal: dict) -> str:
    """One sentence on a :func:`tuning_signal`: the margin, its interval and what follows."""
    if signal.get("margin") is None:
        return "no trial with the recipe's own settings completed, so tuning cannot be compared with the recipe"
    lo, hi = signal["ci"]
    verdict = (
        "tuning beat the recipe beyond validation noise"
        if signal.get("reliable")
        else "the study found no reliable improvement over the recipe"
    )
    return (
        f"{verdict} (margin {100 * signal['margin']:+.2f} points, {100 * signal['level']:.0f}% CI "
        f"{100 * lo:+.2f} to {100 * hi:+.2f}, on {signal['n_val']:,} validation images)"
    )


def _read_best_params(path: Path) -> tuple[dict, dict]:
    """The record in a ``best_params.json`` and a copy of its settings; ValueError if it is not one."""
    try:
        best = json.loads(path.read_text())
        settings = dict(best["settings"])
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise ValueError(
            f"{path} is not a best-parameters file written by cifarkit's tuning ({type(e).__name__}: {e})."
        ) from None
    return best, settings


def _drop_unknown_options(settings: dict, model: str) -> list[str]:
    """Remove from ``settings`` the model options ``model`` does not accept; a note saying which, if any."""
    from cifarkit.models import model_info

    options = settings.get("model_options") or {}
    accepted = model_info(model)["options"]
    dropped = sorted(set(options) - set(accepted))
    if not dropped:
        return []
    settings["model_options"] = {k: v for k, v in options.items() if k in accepted}
    if not settings["model_options"]:
        settings.pop("model_options")
    return [f"model option(s) {', '.join(dropped)} dropped ({model} does not accept them)"]
