"""Hyperparameter search with Optuna: :func:`tune` runs a new study or resumes one. ::

    from cifarkit.analysis.tuning import tune
    result = tune(ds, model="fastnet", recipe="fast", space="default", epochs=3,
                  n_trials=20, out_dir="runs/x/tune")
    result.best["settings"]        # TrainConfig overrides of the best trial

Each trial trains ``model`` with a recipe for a few epochs and scores its validation accuracy after the
last one. A study remembers its search space, model, recipe, epochs per trial and data; opening it again
with other values is an error before any trial runs (use a new study name). ``count="add"`` (Optuna's
meaning, what workers use) runs ``n_trials`` more, so parallel workers add up; ``count="total"`` (the
notebook) tops the study up to ``n_trials`` finished trials, so a re-run adds only what is missing.
``max_consecutive_failures`` failed trials in a row stop the study with an error: that points at a setup
problem rather than at bad hyperparameters.
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cifarkit.analysis.tuning.results import (
    TuneResult,
    best_trial_record,
    epoch_budget,
    trial_counts,
    write_best_params,
)
from cifarkit.analysis.tuning.spaces import TuneError, _contains, get_space, merge_settings, resolve_space
from cifarkit.analysis.tuning.storage import (
    OBJECTIVE,
    PRUNERS,
    _check_study,
    default_storage,
    mask_url,
    open_storage,
    open_study,
)
from cifarkit.analysis.tuning.trials import (
    TrialRunner,
    _format_params,
    _safe_name,
    data_identity,
    validation_only,
)
from cifarkit.training import TrainConfig, resolve_recipe
from cifarkit.wording import plural

COUNT_MODES = ("add", "total")


def check_arguments(
    *,
    model=None,
    recipe="default",
    space="default",
    epochs=3,
    n_trials=10,
    count="add",
    timeout=None,
    pruner="median",
    seed=0,
    overrides=None,
    device="auto",
    max_consecutive_failures=5,
) -> TrainConfig:
    """Check :func:`tune`'s arguments that do not depend on the data; returns the recipe's config for the model.

    The CLI calls it before loading the data, so bad input fails at once.

    Raises:
        TuneError: unknown space, pruner or count mode.
        ValueError: unknown model or recipe, bad numbers or settings.
    """
    from cifarkit.models import check_model_options, list_models

    get_space(space)
    if pruner not in PRUNERS:
        raise TuneError(f"Unknown pruner {pruner!r}. Known pruners: {', '.join(PRUNERS)}.")
    if count not in COUNT_MODES:
        raise TuneError(f"count must be one of {', '.join(COUNT_MODES)}; got {count!r}.")
    for name, value, minimum in (
        ("epochs", epochs, 1),
        ("n_trials", n_trials, 0),
        ("max_consecutive_failures", max_consecutive_failures, 1),
        ("seed", seed, 0),
    ):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
            raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0):
        raise ValueError(f"timeout must be a positive number of seconds or None, got {timeout!r}.")
    overrides = dict(overrides or {})
    blocked = sorted(set(overrides) & {"model", "epochs", "seed"})
    if blocked:
        raise ValueError(f"overrides may not set {', '.join(blocked)}; pass them as tune() arguments instead.")
    if model and model not in list_models():
        raise ValueError(f"Unknown model {model!r}. Known models: {', '.join(list_models())}.")
    fixed = {"epochs": int(epochs), "seed": int(seed), "device": device}
    if model:
        fixed["model"] = model
    base = resolve_recipe(recipe, **merge_settings(overrides, fixed))
    check_model_options(base.model, base.model_options)
    return base


def default_study_name(model: str, recipe: str, space: str, epochs: int) -> str:
    """``<model>-<recipe>-<space>-<epochs>ep``: names the settings a study must keep."""
    return f"{model}-{recipe}-{space}-{epochs}ep"


def tune(
    dataset,
    *,
    out_dir,
    model: str | None = None,
    recipe: str = "default",
    space: str = "default",
    epochs: int = 3,
    n_trials: int = 10,
    count: str = "add",
    timeout: float | None = None,
    storage: str | None = None,
    study_name: str | None = None,
    pruner: str = "median",
    seed: int = 0,
    overrides: dict | None = None,
    device: str = "auto",
    progress: bool = True,
    train_progress: bool = False,
    max_consecutive_failures: int = 5,
    enqueue=None,
) -> TuneResult:
    """Search hyperparameters of ``model`` with Optuna, scoring trials by validation accuracy.

    Args:
        dataset: a :class:`cifarkit.data.Dataset` with a validation split; its test split is never read.
        out_dir: tuning folder: ``optuna.db`` (default storage), ``best_params.json`` and
            ``trials/<study>/trial_NNNNN/`` (history and metrics of each trial; checkpoints and models are deleted).
        model: registered model name (default: the recipe's, else resnet20).
        recipe: the recipe every trial starts from.
        space: search space name (:func:`list_spaces`).
        epochs: training epochs of every trial (the schedule is fitted to them).
        n_trials: trials to run (``count="add"``) or to reach (``count="total"``).
        count: ``"add"`` runs ``n_trials`` more; ``"total"`` tops the study up to ``n_trials`` finished
            (complete, pruned or failed) trials.
        timeout: stop starting new trials after this many seconds (None: no limit).
        storage: SQLAlchemy URL of the Optuna storage (default: ``sqlite:///<out_dir>/optuna.db``).
        study_name: default :func:`default_study_name`.
        pruner: ``median``, ``halving``, ``hyperband`` or ``none`` (:func:`make_pruner`).
        seed: training seed of every trial and seed of the sampler.
        overrides: fixed training settings for every trial (applied before the sampled ones).
        device: training device, ``auto``, ``cpu`` or ``gpu``.
        progress, train_progress: print one line per trial; show the training progress bars of each trial.
        max_consecutive_failures: stop with ``RuntimeError`` after this many failed trials in a row.
        enqueue: parameter dicts to try before the sampler proposes anything (e.g. :func:`recipe_params`,
            the recipe's own values, as a baseline); a set the study already holds is not enqueued again.

    Returns:
        A :class:`TuneResult`.

    Raises:
        TuneError: (a ``ValueError``) unknown space, pruner or count mode, unreachable storage, or a study
            of that name with other settings; raised before any trial runs.
        ValueError: unknown model or recipe, invalid settings or epochs, no validation split.
        RuntimeError: ``max_consecutive_failures`` trials failed in a row.
    """
    import optuna

    t_start = time.perf_counter()
    # ---- check everything before any trial
    options = dict(
        model=model,
        recipe=recipe,
        space=space,
        epochs=epochs,
        n_trials=n_trials,
        count=count,
        timeout=timeout,
        pruner=pruner,
        seed=seed,
        overrides=overrides,
        device=device,
        max_consecutive_failures=max_consecutive_failures,
    )
    setup = _check_inputs(dataset, options, out_dir=out_dir, storage=storage, study_name=study_name, enqueue=enqueue)
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        # ---- open (or create) the study
        study, to_run = _open_study(setup, progress)
        # ---- run the trials (the objective and the after-trial callback: trials.TrialRunner)
        new_trials = _run_trials(study, setup, to_run, progress, train_progress)
        # ---- report the result
        return _report(study, setup, new_trials, t_start, progress)
    finally:
        optuna.logging.set_verbosity(verbosity)


@dataclass
class _Setup:
    """What :func:`tune` checked before any trial; the later steps share it."""

    base: TrainConfig
    recipe: str
    space: str
    epochs: int
    n_trials: int
    count: str
    timeout: float | None
    pruner: str
    seed: int
    max_consecutive_failures: int
    overrides: dict
    fixed: dict
    data: object
    dists: dict
    skipped: dict
    enqueue: list
    study_name: str
    out_dir: Path
    url: str
    shown_url: str
    rdb: object
    expected: dict


def _check_inputs(dataset, options: dict, *, out_dir, storage, study_name, enqueue) -> _Setup:
    """Check the arguments, the data, the enqueued parameters, the storage and an existing study of that name."""
    from optuna.distributions import distribution_to_json

    base = check_arguments(**options)
    space, recipe, epochs = options["space"], options["recipe"], int(options["epochs"])
    overrides = dict(options["overrides"] or {})
    fixed = {"epochs": epochs, "seed": int(options["seed"]), "device": options["device"], "model": base.model}
    data = _check_data(dataset)
    dists, skipped = resolve_space(space, base, n_train=len(data.y_train), image_size=int(data.image_size[0]))
    if not dists:
        raise TuneError(f"Search space {space!r} has no parameter that applies to model {base.model!r}: {skipped}.")
    enqueue = _check_enqueue(enqueue, dists, space, base.model)
    study_name = study_name or default_study_name(base.model, recipe, space, epochs)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    url = storage or default_storage(out_dir)
    rdb = open_storage(url)
    expected = {
        "objective": OBJECTIVE,
        "space": space,
        "model": base.model,
        "recipe": recipe,
        "epochs": epochs,
        "data": data_identity(data),
        "space_definition": {k: json.loads(distribution_to_json(d)) for k, d in dists.items()},
        "fixed_settings": json.loads(json.dumps(overrides, default=str)),
    }
    _check_study(rdb, study_name, expected)
    return _Setup(
        base=base,
        recipe=recipe,
        space=space,
        epochs=epochs,
        n_trials=options["n_trials"],
        count=options["count"],
        timeout=options["timeout"],
        pruner=options["pruner"],
        seed=options["seed"],
        max_consecutive_failures=options["max_consecutive_failures"],
        overrides=overrides,
        fixed=fixed,
        data=data,
        dists=dists,
        skipped=skipped,
        enqueue=enqueue,
        study_name=study_name,
        out_dir=out_dir,
        url=url,
        shown_url=mask_url(url),
        rdb=rdb,
        expected=expected,
    )


def _check_data(dataset):
    """The training and validation splits of ``dataset`` (:func:`validation_only`); neither may be empty."""
    data = validation_only(dataset)
    if len(data.y_val) == 0:
        raise ValueError(
            "Tuning scores trials on the validation split, but this data has none. "
            "Load it with val_fraction > 0 (VAL_FRACTION, --val-fraction)."
        )
    if len(data.y_train) == 0:
        raise ValueError("The training split is empty; load more data.")
    return data


def _check_enqueue(enqueue, dists: dict, space: str, model: str) -> list[dict]:
    """The enqueued parameter dicts, each checked against the search space's distributions."""
    enqueue = [dict(p) for p in (enqueue or ())]
    for params in enqueue:
        bad = {k: v for k, v in params.items() if k not in dists or not _contains(dists[k], v)}
        if bad:
            raise TuneError(
                f"Enqueued parameters {bad} are not in search space {space!r} for {model!r} "
                f"(searched: {', '.join(f'{k} {d}' for k, d in dists.items())})."
            )
    return enqueue


def _open_study(setup: _Setup, progress: bool):
    """Open the study, enqueue the given parameters and say what runs; ``(study, trials to run)``."""
    import optuna
    from optuna.trial import TrialState

    s = setup
    study = open_study(s.rdb, s.study_name, s.expected, seed=s.seed, pruner=s.pruner, epochs=s.epochs)
    finished = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)))
    to_run = int(s.n_trials) if s.count == "add" else max(0, int(s.n_trials) - finished)
    if to_run:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            for params in s.enqueue:
                study.enqueue_trial(params, skip_if_exists=True)
    if progress:
        print(
            f"study {s.study_name!r} in {s.shown_url}: {plural(finished, 'finished trial')}; running {to_run} more "
            f"({s.base.model}, recipe {s.recipe}, {plural(s.epochs, 'epoch')} per trial, space {s.space}: {', '.join(s.dists)}; "
            f"pruner {s.pruner}" + (f"; timeout {s.timeout:g} s" if s.timeout else "") + ")",
            flush=True,
        )
        if s.skipped:
            print("  left out: " + "; ".join(f"{k} ({v})" for k, v in s.skipped.items()), flush=True)
    return study, to_run


def _run_trials(study, setup: _Setup, to_run: int, progress: bool, train_progress: bool) -> int:
    """Run ``to_run`` trials (fewer after a timeout); the number this worker ran."""
    s = setup
    runner = TrialRunner(
        data=s.data,
        dists=s.dists,
        space=s.space,
        recipe=s.recipe,
        epochs=s.epochs,
        overrides=s.overrides,
        fixed=s.fixed,
        study_name=s.study_name,
        trial_root=s.out_dir / "trials" / _safe_name(s.study_name),
        progress=progress,
        train_progress=train_progress,
        max_consecutive_failures=s.max_consecutive_failures,
    )
    return runner.run(study, to_run, timeout=s.timeout, shown_url=s.shown_url)


def _report(study, setup: _Setup, new_trials: int, t_start: float, progress: bool) -> TuneResult:
    """Write ``best_params.json``, print the best trial and return the :class:`TuneResult`."""
    s = setup
    path = write_best_params(study, s.out_dir, s.url)
    best = best_trial_record(study)
    counts = trial_counts(study)
    budget = epoch_budget(study)
    if progress:
        if best:
            print(
                f"best: trial {best['trial_number']} val_acc {best['value']:.4f} ({plural(s.epochs, 'epoch')} per trial) "
                f"{_format_params(best['params'])}; {counts['complete']} complete, {counts['pruned']} pruned, "
                f"{counts['failed']} failed; written to {path}",
                flush=True,
            )
        else:
            print(f"no complete trial yet: {counts}", flush=True)
    return TuneResult(
        study=study,
        study_name=s.study_name,
        storage=s.shown_url,
        best=best,
        counts=counts,
        budget=budget,
        new_trials=new_trials,
        seconds=time.perf_counter() - t_start,
        out_dir=s.out_dir,
        best_params_path=path,
        skipped_params=s.skipped,
    )
