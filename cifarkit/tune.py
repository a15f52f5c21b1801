"""Hyperparameter search with Optuna: named search spaces, pruned trials, resumable studies.

A trial trains ``model`` with a recipe for a few epochs on the training split
(:func:`cifarkit.train.train`) and scores it by its validation accuracy after
the last epoch. The test split is withheld from every trial: :func:`tune`
hands :func:`~cifarkit.train.train` a copy of the data whose test split is
empty, so no test image is ever read while tuning. ::

    from cifarkit.tune import tune
    result = tune(ds, model="fastnet", recipe="fast", space="default", epochs=3,
                  n_trials=20, out_dir="runs/x/tune")
    result.best["settings"]        # TrainConfig overrides of the best trial

Search spaces live in one registry, :data:`SPACES` (name -> :class:`SearchSpace`),
so a notebook parameter or ``--space`` picks one by name and
:func:`register_space` adds more. A parameter is either a
:class:`~cifarkit.recipes.TrainConfig` setting (``lr``, ``weight_decay``,
``batch_size``, ``crop``, ``cutout``, ``label_smoothing``, ``schedule``) or a
model option (``dropout``, ``width_multiplier``, passed through
``TrainConfig.model_options``); a model option the model does not accept
(``cifarkit.models.model_info(name)["options"]``) is left out of the space for
that model. ``lr`` and ``weight_decay`` are searched on a log scale around the
recipe's own value (``lr`` from 0.2x to 5x), because a good rate depends on
the recipe's optimizer and base batch size; the sampled values are absolute.

Storage: by default an SQLite file ``<out_dir>/optuna.db``; any SQLAlchemy URL
that Optuna accepts also works (``postgresql://user@host:5432/db``), which is
how several worker processes or machines share one study
(``python -m cifarkit tune --storage URL ...``). A study remembers the search
space, model, recipe, epochs per trial and data in its user attributes;
opening it again with other values is an error before any trial runs (use a
new study name). Trials of a worker that died are marked failed after a few
minutes (Optuna's heartbeat).

How many trials: ``n_trials`` with ``count="add"`` (the default, Optuna's own
meaning and what workers use) runs that many more trials in this call, so
parallel workers add up; with ``count="total"`` (what the notebook uses) the
study is topped up to ``n_trials`` finished trials, so re-running a finished
notebook adds none and an interrupted one runs only what is missing.

Sampling: TPE, seeded per trial from ``(seed, trial number)``: a fresh study
with the same seed proposes the same first trials, a resumed study does not
repeat its earlier proposals, and parallel workers never draw the same
random start-up trial. Pruning (``"median"``, ``"halving"``,
``"hyperband"`` or ``"none"``) compares each trial's validation accuracy
after every epoch with the other trials' at the same epoch and stops the
poor ones early; :func:`epoch_budget` measures the epochs this saves.

A trial that crashes (diverged loss, out of memory, an invalid combination)
is marked failed with its reason in the trial's ``fail_reason`` user
attribute, and the study goes on; ``max_consecutive_failures`` crashes in a
row stop it with an error, since that points at a setup problem rather than
at bad hyperparameters.
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

from cifarkit import reporting
from cifarkit.recipes import TrainConfig, config_keys, resolve_recipe

#: What a trial scores; tuning always maximizes it.
OBJECTIVE = "val_acc"
DIRECTION = "maximize"
PRUNERS = ("median", "halving", "hyperband", "none")
COUNT_MODES = ("add", "total")
DB_NAME = "optuna.db"
BEST_PARAMS_NAME = "best_params.json"
TUNE_DIR_NAME = "tune"
#: Format of the study user attributes this module writes.
STUDY_FORMAT = 1
#: Study user attributes that must match for a study to be resumed.
CHECKED_ATTRS = ("objective", "space", "model", "recipe", "epochs", "data", "space_definition", "fixed_settings")
#: Trial files deleted after a trial (large; the tuned model is retrained by 02_train).
TRIAL_FILES_DROPPED = ("checkpoint.pt", "nan_checkpoint.pt", "model.keras")
#: TPE proposes at random for this many trials before it models the results.
TPE_STARTUP_TRIALS = 5
#: Median pruning waits for this many finished trials before it prunes.
MEDIAN_STARTUP_TRIALS = 3
#: Heartbeat of running trials (seconds), and after how long without one a trial counts as dead.
HEARTBEAT_INTERVAL = 60
HEARTBEAT_GRACE = 240


class TuneError(ValueError):
    """Bad tuning input: unknown search space or pruner, unreachable storage, conflicting study."""


# --------------------------------------------------------------------------- search spaces


@dataclass(frozen=True)
class Param:
    """One searched hyperparameter.

    Attributes:
        name: a :class:`~cifarkit.recipes.TrainConfig` field, or a model option
            when ``model_option`` is true.
        kind: ``"float"``, ``"int"`` or ``"categorical"``.
        low, high: bounds of ``float``/``int`` parameters; with ``relative``
            they are multiples of the recipe's value of ``name``.
        log: sample on a log scale.
        step: grid step of ``int``/``float`` parameters (None: continuous).
        choices: values of a ``categorical`` parameter.
        relative: bounds are relative to the recipe's value; ``fallback``
            gives absolute bounds when that value is 0.
        fallback: absolute ``(low, high)`` used when the recipe's value is 0.
        model_option: passed to the model builder through ``TrainConfig.model_options``.
        help: what the parameter does, for tables.
    """

    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple = ()
    relative: bool = False
    fallback: tuple | None = None
    model_option: bool = False
    help: str = ""

    def distribution(self, base: TrainConfig, *, model_options: list[str], n_train: int, image_size: int):
        """The Optuna distribution of this parameter for a run, or a string saying why it is left out."""
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        if self.model_option and self.name not in model_options:
            return f"model {base.model!r} has no option {self.name!r}"
        if self.kind == "categorical":
            choices = tuple(self.choices)
            if self.name == "batch_size":
                choices = tuple(c for c in choices if c <= n_train)
                if not choices:
                    return f"the training split ({n_train} images) is smaller than every batch size {self.choices}"
            return CategoricalDistribution(choices)
        low, high = self.low, self.high
        if self.relative:
            ref = getattr(base, self.name)
            if ref > 0:
                low, high = low * ref, high * ref
            elif self.fallback:
                low, high = self.fallback
            else:
                return f"the recipe's {self.name} is 0"
        if self.kind == "int":
            if self.name == "cutout":
                high = min(int(high), image_size // 2)
            step = int(self.step or 1)
            high = low + (int(high) - int(low)) // step * step
            if high <= low:
                return f"no room for {self.name} at {image_size}x{image_size} pixels"
            return IntDistribution(int(low), int(high), log=self.log, step=step)
        return FloatDistribution(float(low), float(high), log=self.log, step=self.step)


@dataclass(frozen=True)
class SearchSpace:
    """A named list of :class:`Param`."""

    name: str
    description: str
    params: tuple


#: name -> search space; add more with :func:`register_space`.
SPACES: dict[str, SearchSpace] = {}

_LR = Param("lr", "float", 0.2, 5.0, log=True, relative=True,
            help="base learning rate, 0.2x to 5x the recipe's (log scale)")
_WD = Param("weight_decay", "float", 0.1, 10.0, log=True, relative=True, fallback=(1e-5, 1e-2),
            help="weight decay, 0.1x to 10x the recipe's (log scale)")
_BATCH = Param("batch_size", "categorical", choices=(64, 128, 256, 512),
               help="batch size; the lr scales with it linearly unless the recipe says lr_scaling none")
_DROPOUT = Param("dropout", "float", 0.0, 0.5, model_option=True, help="dropout rate of the model")
_WIDTH = Param("width_multiplier", "categorical", choices=(0.5, 0.75, 1.0, 1.25), model_option=True,
               help="scales every layer width of the model")
_CROP = Param("crop", "int", 0, 4, step=2, help="random-crop padding in pixels (augmentation strength)")
_CUTOUT = Param("cutout", "int", 0, 12, step=4, help="cutout square side in pixels (0 = off)")
_SMOOTH = Param("label_smoothing", "float", 0.0, 0.3, help="label smoothing of the loss")
_SCHEDULE = Param("schedule", "categorical", choices=("cosine", "onecycle", "step"),
                  help="learning-rate schedule after warmup")


def register_space(name: str, params, description: str = "") -> SearchSpace:
    """Add a search space to :data:`SPACES` under ``name``.

    Raises:
        ValueError: the name is taken, a parameter is neither a training
            setting nor a model option, or a name appears twice.
    """
    if name in SPACES:
        raise ValueError(f"Search space {name!r} is already registered; pick another name.")
    params = tuple(params)
    names = [p.name for p in params]
    if len(set(names)) != len(names):
        raise ValueError(f"Search space {name!r} lists a parameter twice: {names}.")
    for p in params:
        if p.kind not in ("float", "int", "categorical"):
            raise ValueError(f"Parameter {p.name!r} has kind {p.kind!r}; use float, int or categorical.")
        if not p.model_option and (p.name not in config_keys() or p.name in ("model", "model_options", "epochs", "seed")):
            raise ValueError(
                f"Parameter {p.name!r} of search space {name!r} is not a searchable training setting; "
                f"use a TrainConfig field or set model_option=True for a model builder option."
            )
    space = SearchSpace(name, description, params)
    SPACES[name] = space
    return space


register_space("default", (_LR, _WD, _BATCH, _DROPOUT, _WIDTH, _CROP, _CUTOUT, _SMOOTH, _SCHEDULE),
               "every knob: optimizer, batch size, model width and dropout, augmentation, label smoothing, schedule")
register_space("optimizer", (_LR, _WD, _BATCH, _SCHEDULE),
               "learning rate, weight decay, batch size and schedule; the model stays as it is")
register_space("regularization", (_WD, _DROPOUT, _CROP, _CUTOUT, _SMOOTH),
               "weight decay, dropout, augmentation strength and label smoothing")
register_space("lr", (_LR, _WD), "learning rate and weight decay only: the cheapest useful search")


def list_spaces() -> list[str]:
    """Names of the registered search spaces, sorted."""
    return sorted(SPACES)


def get_space(name: str) -> SearchSpace:
    """The search space registered as ``name``; unknown names raise :class:`TuneError` listing the known ones."""
    if name not in SPACES:
        raise TuneError(f"Unknown search space {name!r}. Known search spaces: {', '.join(list_spaces())}.")
    return SPACES[name]


def resolve_space(space: str, base: TrainConfig, *, n_train: int, image_size: int = 32) -> tuple[dict, dict]:
    """The Optuna distributions of a search space for one model, recipe and data size.

    Args:
        space: a name from :func:`list_spaces`.
        base: the recipe's config for the model (the centre of relative ranges).
        n_train: training images (batch sizes above it are dropped).
        image_size: image side (cutout stays at most half of it).

    Returns:
        ``(distributions, skipped)``: parameter name -> distribution, and
        parameter name -> why it is left out.
    """
    from cifarkit.models import model_info

    options = model_info(base.model)["options"]
    dists, skipped = {}, {}
    for p in get_space(space).params:
        d = p.distribution(base, model_options=options, n_train=n_train, image_size=image_size)
        if isinstance(d, str):
            skipped[p.name] = d
        else:
            dists[p.name] = d
    return dists, skipped


def describe_space(space: str, base: TrainConfig, *, n_train: int, image_size: int = 32) -> list[dict]:
    """One row per parameter of a search space: name, range, scale, recipe value, and why one is skipped."""
    from optuna.distributions import CategoricalDistribution

    dists, skipped = resolve_space(space, base, n_train=n_train, image_size=image_size)
    defaults = _builder_defaults(base.model)
    rows = []
    for p in get_space(space).params:
        current = base.model_options.get(p.name, defaults.get(p.name, "")) if p.model_option else getattr(base, p.name)
        row = {"parameter": p.name, "kind": "model option" if p.model_option else "training setting",
               "recipe value": current, "what it does": p.help}
        d = dists.get(p.name)
        if d is None:
            row.update({"range": "", "scale": "", "searched": f"no: {skipped[p.name]}"})
        elif isinstance(d, CategoricalDistribution):
            row.update({"range": ", ".join(map(str, d.choices)), "scale": "choice", "searched": "yes"})
        else:
            step = f" step {d.step:g}" if d.step not in (None, 1) else ""
            row.update({"range": f"{d.low:g} .. {d.high:g}{step}", "scale": "log" if d.log else "linear", "searched": "yes"})
        rows.append(row)
    return rows


def _contains(dist, value) -> bool:
    from optuna.distributions import CategoricalDistribution

    if isinstance(dist, CategoricalDistribution):
        return value in dist.choices
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not dist.low <= value <= dist.high:
        return False
    if dist.step is not None:
        k = (value - dist.low) / dist.step
        return abs(k - round(k)) < 1e-9
    return True


def _builder_defaults(model: str) -> dict:
    """Default values of a model builder's keyword options (what a model gets when the recipe sets none)."""
    import inspect

    from cifarkit.models.registry import get_builder

    return {k: p.default for k, p in inspect.signature(get_builder(model)).parameters.items()
            if p.default is not inspect.Parameter.empty}


def matching_trial(study, params: dict, states=None):
    """The first trial whose parameters include all of ``params`` (e.g. the enqueued recipe baseline), or None."""
    from optuna.trial import TrialState

    if not params:
        return None
    for t in study.get_trials(deepcopy=False, states=states or (TrialState.COMPLETE,)):
        if all(k in t.params and t.params[k] == v for k, v in params.items()):
            return t
    return None


def recipe_params(space: str, base: TrainConfig, *, n_train: int, image_size: int = 32) -> dict:
    """The recipe's own values of a search space's parameters, as a trial to enqueue first (a baseline).

    Model options the recipe leaves unset take the model builder's default.
    Values outside the searched range are left out (the sampler picks them).
    """
    dists, _ = resolve_space(space, base, n_train=n_train, image_size=image_size)
    defaults = _builder_defaults(base.model)
    by_name = {p.name: p for p in get_space(space).params}
    out = {}
    for name, dist in dists.items():
        if by_name[name].model_option:
            value = base.model_options.get(name, defaults.get(name))
        else:
            value = getattr(base, name)
        if isinstance(value, int) and not isinstance(value, bool) and type(dist).__name__ == "FloatDistribution":
            value = float(value)
        if value is not None and _contains(dist, value):
            out[name] = value
    return out


def _suggest(trial, name: str, dist):
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(name, dist.choices)
    if isinstance(dist, FloatDistribution):
        return trial.suggest_float(name, dist.low, dist.high, log=dist.log, step=dist.step)
    return trial.suggest_int(name, dist.low, dist.high, log=dist.log, step=dist.step)


def params_to_settings(space: str, params: dict) -> dict:
    """Turn a trial's parameters into :func:`~cifarkit.recipes.resolve_recipe` overrides.

    Model options go under ``model_options``; everything else is a training setting.
    """
    by_name = {p.name: p for p in get_space(space).params}
    settings, options = {}, {}
    for name, value in params.items():
        if isinstance(value, (np.integer,)):
            value = int(value)
        elif isinstance(value, (np.floating,)):
            value = float(value)
        if by_name.get(name) is not None and by_name[name].model_option:
            options[name] = value
        else:
            settings[name] = value
    if options:
        settings["model_options"] = options
    return settings


def merge_settings(*layers: dict) -> dict:
    """Merge dicts of training settings left to right; ``model_options`` are merged key by key."""
    out: dict = {}
    options: dict = {}
    for layer in layers:
        for key, value in (layer or {}).items():
            if key == "model_options":
                options.update(value or {})
            else:
                out[key] = value
    if options:
        out["model_options"] = options
    return out


# --------------------------------------------------------------------------- samplers, pruners, storage


def _make_sampler(seed: int):
    import optuna

    class TrialSeededTPESampler(optuna.samplers.TPESampler):
        """TPE whose random state is reseeded from ``(seed, trial number)`` before each trial."""

        def before_trial(self, study, trial):
            state = int(np.random.SeedSequence([int(seed), int(trial.number)]).generate_state(1)[0])
            for rng_owner in (self, getattr(self, "_random_sampler", None)):
                lazy = getattr(rng_owner, "_rng", None)
                if lazy is not None:  # private in Optuna; without it TPE stays seeded once per process
                    lazy.rng.seed(state)
            super().before_trial(study, trial)

    return TrialSeededTPESampler(seed=int(seed), n_startup_trials=TPE_STARTUP_TRIALS)


def make_pruner(name: str, epochs: int):
    """An Optuna pruner by name: ``median``, ``halving`` (successive halving), ``hyperband`` or ``none``.

    Steps are epochs (1 to ``epochs``). ``median`` stops a trial whose
    validation accuracy after an epoch is below the median of earlier trials
    at that epoch, once :data:`MEDIAN_STARTUP_TRIALS` trials have finished;
    ``halving`` and ``hyperband`` keep the best third of the trials at epoch
    1, 3, 9, ... (reduction factor 3).
    """
    import optuna

    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=MEDIAN_STARTUP_TRIALS, n_warmup_steps=0)
    if name == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(int(epochs), 1), reduction_factor=3)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise TuneError(f"Unknown pruner {name!r}. Known pruners: {', '.join(PRUNERS)}.")


def default_storage(out_dir) -> str:
    """The SQLite URL of ``<out_dir>/optuna.db``."""
    return "sqlite:///" + str((Path(out_dir) / DB_NAME).resolve())


def mask_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (for messages and metrics)."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is shown as given
        return str(url)


def open_storage(url: str):
    """Open an Optuna RDB storage, turning connection problems into a :class:`TuneError`.

    Args:
        url: an SQLAlchemy URL (``sqlite:///path.db``, ``postgresql://user@host:port/db``, ...).

    Returns:
        An ``optuna.storages.RDBStorage`` with heartbeats, so trials of a dead worker are failed.
    """
    import optuna
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError

    shown = mask_url(url)
    try:
        parsed = make_url(url)
    except ArgumentError as e:
        raise TuneError(
            f"Cannot parse the storage URL {url!r} ({e}). Give an SQLAlchemy URL such as "
            f"sqlite:///path/to/optuna.db or postgresql://user@host:5432/dbname."
        ) from None
    engine_kwargs: dict = {}
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine_kwargs["connect_args"] = {"timeout": 60}
    elif backend == "postgresql":
        engine_kwargs["connect_args"] = {"connect_timeout": 10}
        engine_kwargs["pool_pre_ping"] = True
        if parsed.drivername == "postgresql":
            url = _postgres_driver_url(parsed)
    last_error = None
    for attempt in range(3):  # workers that start together may race to create the tables
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(
                    url, engine_kwargs=engine_kwargs, heartbeat_interval=HEARTBEAT_INTERVAL, grace_period=HEARTBEAT_GRACE
                )
        except OperationalError as e:
            text = str(getattr(e, "orig", None) or e).strip()
            reason = text.splitlines()[0] if text else type(e).__name__
            advice = (
                "Check that its folder exists and is writable, and that no other program holds the file locked"
                if backend == "sqlite" else
                "Check that the database server is running and reachable at that host and port, and that the user, "
                "password and database name are right (create the database first, e.g. createdb); or leave --storage "
                "out to use an SQLite file in the output folder"
            )
            raise TuneError(f"Cannot connect to the Optuna storage {shown}: {reason}. {advice}.") from None
        except (ImportError, ModuleNotFoundError) as e:
            raise TuneError(
                f"The storage URL {shown} needs a database driver that is not installed ({e}). "
                f"Install it (PostgreSQL: pip install psycopg2-binary, or write postgresql+psycopg2://...) or use an sqlite:/// URL."
            ) from None
        except SQLAlchemyError as e:
            last_error = e
            time.sleep(0.5 + attempt)
    raise TuneError(f"Cannot open the Optuna storage {shown}: {type(last_error).__name__}: {last_error}.")


def _postgres_driver_url(parsed) -> str:
    """Pin a plain ``postgresql://`` URL to a driver that is installed.

    SQLAlchemy 2.1 made psycopg (3) the default PostgreSQL driver, while 2.0
    used psycopg2; the project installs psycopg2-binary, so a plain URL gets
    ``+psycopg2`` unless psycopg is importable.
    """
    import importlib.util

    if importlib.util.find_spec("psycopg") is None and importlib.util.find_spec("psycopg2") is not None:
        parsed = parsed.set(drivername="postgresql+psycopg2")
    return parsed.render_as_string(hide_password=False)


# --------------------------------------------------------------------------- data


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
    ident.update({
        "image_size": [int(s) for s in dataset.image_size],
        "class_names": list(dataset.class_names),
        "train": int(len(dataset.y_train)),
        "val": int(len(dataset.y_val)),
        "val_fraction": dataset.val_fraction,
        "seed": dataset.seed,
        "subset": dataset.subset,
    })
    return json.loads(json.dumps(ident))


# --------------------------------------------------------------------------- results


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

    names = {TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned", TrialState.FAIL: "failed",
             TrialState.RUNNING: "running", TrialState.WAITING: "waiting"}
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
    return json.loads(json.dumps({
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
    }, default=float))


def write_best_params(study, out_dir, storage: str | None = None) -> Path | None:
    """Write the best complete trial to ``<out_dir>/best_params.json`` (atomically); None if none completed."""
    record = best_trial_record(study)
    if record is None:
        return None
    record["storage"] = mask_url(storage) if storage else None
    record["written_at"] = reporting.now_iso()
    return reporting.atomic_write_json(Path(out_dir) / BEST_PARAMS_NAME, record)


# --------------------------------------------------------------------------- the study


def _check_study(storage, study_name: str, expected: dict) -> bool:
    """Raise :class:`TuneError` if ``study_name`` exists with another direction or other settings; True if it exists."""
    from optuna.study import StudyDirection

    try:
        study_id = storage.get_study_id_from_name(study_name)
    except KeyError:
        return False
    directions = storage.get_study_directions(study_id)
    if list(directions) != [StudyDirection.MAXIMIZE]:
        raise TuneError(
            f"Study {study_name!r} already exists in this storage with direction(s) "
            f"{', '.join(d.name.lower() for d in directions)}; tuning maximizes {OBJECTIVE}. Use another study name."
        )
    attrs = storage.get_study_user_attrs(study_id)
    if "space" not in attrs:
        if storage.get_all_trials(study_id, deepcopy=False):
            raise TuneError(
                f"Study {study_name!r} already exists in this storage with trials that cifarkit.tune did not make "
                f"(no search-space record). Use another study name."
            )
        return True
    differ = [k for k in CHECKED_ATTRS if k in attrs and attrs[k] != expected[k]]
    if differ:
        details = "; ".join(
            f"{k}: study has {_short(attrs[k])}, this run {_short(expected[k])}" for k in differ
        )
        raise TuneError(
            f"Study {study_name!r} already exists with other settings ({details}). Its trials would not be "
            f"comparable; use another study name (or the same settings to resume it)."
        )
    return True


def _short(value) -> str:
    text = json.dumps(value, sort_keys=True, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def default_study_name(model: str, recipe: str, space: str, epochs: int) -> str:
    """``<model>-<recipe>-<space>-<epochs>ep``: names the settings a study must keep."""
    return f"{model}-{recipe}-{space}-{epochs}ep"


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
    print(f"trial {t.number:4d}  {status:<34} {run}/{epochs} epochs {secs_text}  {_format_params(t.params)}", flush=True)


def check_arguments(*, model=None, recipe="default", space="default", epochs=3, n_trials=10, count="add",
                    timeout=None, pruner="median", seed=0, overrides=None, device="auto",
                    max_consecutive_failures=5) -> TrainConfig:
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
    for name, value, minimum in (("epochs", epochs, 1), ("n_trials", n_trials, 0),
                                 ("max_consecutive_failures", max_consecutive_failures, 1), ("seed", seed, 0)):
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
        dataset: a :class:`cifarkit.data.Dataset` with a validation split. Its
            test split is never read.
        out_dir: tuning folder: ``optuna.db`` (default storage),
            ``best_params.json`` and ``trials/<study>/trial_NNNNN/`` (history
            and metrics of each trial; checkpoints and models are deleted).
        model: registered model name (default: the recipe's, else resnet20).
        recipe: the recipe every trial starts from.
        space: search space name (:func:`list_spaces`).
        epochs: training epochs of every trial (the schedule is fitted to them).
        n_trials: trials to run (``count="add"``) or to reach (``count="total"``).
        count: ``"add"`` runs ``n_trials`` more; ``"total"`` tops the study up
            to ``n_trials`` finished (complete, pruned or failed) trials.
        timeout: stop starting new trials after this many seconds (None: no limit).
        storage: SQLAlchemy URL of the Optuna storage (default: ``sqlite:///<out_dir>/optuna.db``).
        study_name: default :func:`default_study_name`.
        pruner: ``median``, ``halving``, ``hyperband`` or ``none`` (:func:`make_pruner`).
        seed: training seed of every trial and seed of the sampler.
        overrides: fixed training settings for every trial (applied before the sampled ones).
        device: training device, ``auto``, ``cpu`` or ``gpu``.
        progress: print one line per trial.
        train_progress: show the training progress bars of each trial.
        max_consecutive_failures: stop with ``RuntimeError`` after this many failed trials in a row.
        enqueue: parameter dicts to try before the sampler proposes anything
            (e.g. :func:`recipe_params`, the recipe's own values, as a baseline);
            a set the study already holds is not enqueued again.

    Returns:
        A :class:`TuneResult`.

    Raises:
        TuneError: (a ``ValueError``) unknown space, pruner or count mode,
            unreachable storage, or a study of that name with other settings;
            raised before any trial runs.
        ValueError: unknown model or recipe, invalid settings or epochs, no validation split.
        RuntimeError: ``max_consecutive_failures`` trials failed in a row.
    """
    import optuna
    from optuna.trial import TrialState

    t_start = time.perf_counter()
    # ---- check everything before any trial
    base = check_arguments(model=model, recipe=recipe, space=space, epochs=epochs, n_trials=n_trials, count=count,
                           timeout=timeout, pruner=pruner, seed=seed, overrides=overrides, device=device,
                           max_consecutive_failures=max_consecutive_failures)
    overrides = dict(overrides or {})
    fixed = {"epochs": int(epochs), "seed": int(seed), "device": device, "model": base.model}
    data = validation_only(dataset)
    if len(data.y_val) == 0:
        raise ValueError(
            "Tuning scores trials on the validation split, but this data has none. "
            "Load it with val_fraction > 0 (VAL_FRACTION, --val-fraction)."
        )
    if len(data.y_train) == 0:
        raise ValueError("The training split is empty; load more data.")
    dists, skipped = resolve_space(space, base, n_train=len(data.y_train), image_size=int(data.image_size[0]))
    if not dists:
        raise TuneError(f"Search space {space!r} has no parameter that applies to model {base.model!r}: {skipped}.")
    enqueue = [dict(p) for p in (enqueue or ())]
    for params in enqueue:
        bad = {k: v for k, v in params.items() if k not in dists or not _contains(dists[k], v)}
        if bad:
            raise TuneError(
                f"Enqueued parameters {bad} are not in search space {space!r} for {base.model!r} "
                f"(searched: {', '.join(f'{k} {d}' for k, d in dists.items())})."
            )
    study_name = study_name or default_study_name(base.model, recipe, space, int(epochs))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    url = storage or default_storage(out_dir)
    shown_url = mask_url(url)
    rdb = open_storage(url)
    from optuna.distributions import distribution_to_json

    expected = {
        "objective": OBJECTIVE,
        "space": space,
        "model": base.model,
        "recipe": recipe,
        "epochs": int(epochs),
        "data": data_identity(data),
        "space_definition": {k: json.loads(distribution_to_json(d)) for k, d in dists.items()},
        "fixed_settings": json.loads(json.dumps(overrides, default=str)),
    }
    _check_study(rdb, study_name, expected)

    # ---- open (or create) the study
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.create_study(
            storage=rdb, study_name=study_name, direction=DIRECTION, load_if_exists=True,
            sampler=_make_sampler(seed), pruner=make_pruner(pruner, int(epochs)),
        )
        if "space" not in study.user_attrs:
            for key, value in expected.items():
                study.set_user_attr(key, value)
            study.set_user_attr("format", STUDY_FORMAT)
            study.set_user_attr("seed", int(seed))
            _check_study(rdb, study_name, expected)  # a worker that started at the same moment wrote the same
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)  # trials of a worker that died count as failed
        finished = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)))
        to_run = int(n_trials) if count == "add" else max(0, int(n_trials) - finished)
        if to_run:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                for params in enqueue:
                    study.enqueue_trial(params, skip_if_exists=True)
        trial_root = out_dir / "trials" / _safe_name(study_name)
        worker = f"{socket.gethostname()}:{os.getpid()}"
        if progress:
            print(
                f"study {study_name!r} in {shown_url}: {finished} finished trial(s); running {to_run} more "
                f"({base.model}, recipe {recipe}, {epochs} epoch(s) per trial, space {space}: {', '.join(dists)}; "
                f"pruner {pruner}" + (f"; timeout {timeout:g} s" if timeout else "") + ")",
                flush=True,
            )
            if skipped:
                print("  left out: " + "; ".join(f"{k} ({v})" for k, v in skipped.items()), flush=True)

        def objective(trial):
            params = {name: _suggest(trial, name, d) for name, d in dists.items()}
            sampled = params_to_settings(space, params)
            settings = merge_settings(overrides, sampled, fixed)
            trial.set_user_attr("settings", json.loads(json.dumps(sampled)))
            trial.set_user_attr("epochs_planned", int(epochs))
            trial.set_user_attr("worker", worker)
            records: list[dict] = []
            pruned = []

            def report(record):
                records.append(record)
                trial.report(float(record[OBJECTIVE]), int(record["epoch"]))
                # after the last epoch there is nothing left to save: the trial completes
                if int(record["epoch"]) < int(epochs) and trial.should_prune():
                    pruned.append(int(record["epoch"]))
                    return True
                return False

            t0 = time.perf_counter()
            trial_dir = trial_root / f"trial_{trial.number:05d}"
            try:
                from cifarkit.train import train

                config = resolve_recipe(recipe, **settings)
                result = train(data, config, trial_dir, resume=False, progress=train_progress, callbacks=[report],
                               run_info={"tune": {"study": study_name, "trial": trial.number}})
                value = result.metrics.get(OBJECTIVE)
            except Exception as e:  # noqa: BLE001 - any crash ends this trial only; the reason is kept
                trial.set_user_attr("fail_reason", f"{type(e).__name__}: {e}"[:2000])
                trial.set_user_attr("fail_traceback", traceback.format_exc()[-1500:])
                value = float("nan")
                _free_memory()
            finally:
                trial.set_user_attr("epochs_run", len(records))
                trial.set_user_attr("seconds", round(time.perf_counter() - t0, 3))
                _drop_trial_files(trial_dir)
            if pruned and math.isfinite(value):
                raise optuna.TrialPruned(f"pruned after epoch {pruned[0]} of {epochs}")
            if value is None:
                trial.set_user_attr("fail_reason", "no validation accuracy was recorded")
                return float("nan")
            return float(value)

        failures = {"in_a_row": 0, "stopped": False, "ran": 0}

        def after_trial(study, frozen):
            failures["ran"] += 1
            if progress:
                _print_trial(frozen, int(epochs))
            if frozen.state == TrialState.FAIL:
                failures["in_a_row"] += 1
                if failures["in_a_row"] >= max_consecutive_failures:
                    failures["stopped"] = True
                    study.stop()
            else:
                failures["in_a_row"] = 0

        if to_run:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                with _quiet_failed_trial_warnings():
                    study.optimize(objective, n_trials=to_run, timeout=timeout, callbacks=[after_trial], gc_after_trial=True)
        new_trials = failures["ran"]  # this worker's; others may add trials at the same time
        if failures["stopped"]:
            last = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.FAIL][-1]
            raise RuntimeError(
                f"{max_consecutive_failures} trials in a row failed, which points at a setup problem rather than at "
                f"bad hyperparameters; the last: {last.user_attrs.get('fail_reason', 'unknown')}. "
                f"The study {study_name!r} keeps its trials in {shown_url}."
            )
        path = write_best_params(study, out_dir, url)
        best = best_trial_record(study)
        counts = trial_counts(study)
        budget = epoch_budget(study)
        if progress:
            if best:
                print(
                    f"best: trial {best['trial_number']} val_acc {best['value']:.4f} ({epochs} epoch(s) per trial) "
                    f"{_format_params(best['params'])}; {counts['complete']} complete, {counts['pruned']} pruned, "
                    f"{counts['failed']} failed; written to {path}",
                    flush=True,
                )
            else:
                print(f"no complete trial yet: {counts}", flush=True)
    finally:
        optuna.logging.set_verbosity(verbosity)
    return TuneResult(
        study=study, study_name=study_name, storage=shown_url, best=best, counts=counts, budget=budget,
        new_trials=new_trials, seconds=time.perf_counter() - t_start, out_dir=out_dir,
        best_params_path=path, skipped_params=skipped,
    )


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
            return "failed with value nan" not in record.getMessage() and "nan is not acceptable" not in record.getMessage()

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


def load_study(study_name: str, storage: str):
    """Open an existing study (for plots and tables); unknown names raise :class:`TuneError`."""
    import optuna

    rdb = open_storage(storage)
    try:
        rdb.get_study_id_from_name(study_name)
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(rdb)]
        raise TuneError(
            f"No study named {study_name!r} in {mask_url(storage)}. Studies there: {', '.join(names) or 'none'}."
        ) from None
    return optuna.load_study(study_name=study_name, storage=rdb)


# --------------------------------------------------------------------------- plots


PLOTS = ("history", "intermediate", "importances", "parallel", "slice")


def plot_study(study, kind: str):
    """Draw one of Optuna's matplotlib plots of a study, or say why it cannot be drawn.

    Args:
        study: an ``optuna.Study``.
        kind: ``history`` (value per trial and best so far), ``intermediate``
            (validation accuracy per epoch of every trial, pruned ones included),
            ``importances`` (needs >= 2 complete trials), ``parallel``
            (parallel coordinates) or ``slice`` (value against each parameter).

    Returns:
        ``(figure, None)`` or ``(None, reason)``.
    """
    from optuna.trial import TrialState
    from optuna.visualization import matplotlib as ovm

    if kind not in PLOTS:
        raise ValueError(f"Unknown plot {kind!r}. Known plots: {', '.join(PLOTS)}.")
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if kind == "intermediate":
        if not any(t.intermediate_values for t in study.get_trials(deepcopy=False)):
            return None, "no trial has reported a validation accuracy yet"
    elif not complete:
        return None, "no trial has completed yet (pruned and failed trials have no final value)"
    if kind in ("importances", "parallel", "slice"):
        varying = [p for p in {k for t in complete for k in t.params} if len({repr(t.params.get(p)) for t in complete}) > 1]
        if len(complete) < 2 or not varying:
            return None, f"needs at least 2 complete trials with different parameters; this study has {len(complete)} complete"
    if kind == "slice":
        return _slice_figure(study, complete), None
    funcs = {
        "history": ovm.plot_optimization_history,
        "intermediate": ovm.plot_intermediate_values,
        "importances": ovm.plot_param_importances,
        "parallel": ovm.plot_parallel_coordinate,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ax = funcs[kind](study)
        except (ValueError, RuntimeError, ZeroDivisionError) as e:
            return None, f"{type(e).__name__}: {e}"
        fig = ax.figure
        if kind == "intermediate":
            if ax.get_legend() is not None:
                ax.get_legend().remove()  # one entry per trial is unreadable
            from matplotlib.ticker import MaxNLocator

            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_xlabel("epoch")
            ax.set_ylabel("validation accuracy")
            ax.set_title("Validation accuracy after each epoch, one line per trial")
        if kind == "history":
            ax.set_ylabel("validation accuracy")
        if kind == "parallel":
            fig.set_size_inches(max(8.0, 1.3 * (len(complete[0].params) + 1)), 5.0)
        fig.tight_layout()
    return fig, None


def _slice_figure(study, complete, ncols: int = 3):
    """Validation accuracy against each parameter (a grid of scatter plots, colour = trial number)."""
    import matplotlib.pyplot as plt
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    names = sorted({k for t in complete for k in t.params})
    nrows = -(-len(names) // ncols)
    from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

    fig, axes = plt.subplots(nrows, min(ncols, len(names)), figsize=(4.0 * min(ncols, len(names)) + 1.0, 3.0 * nrows),
                             squeeze=False, sharey=True, layout="constrained")
    numbers = np.array([t.number for t in complete])
    values = np.array([t.value for t in complete])
    for ax, name in zip(axes.flat, names):
        dist = next(t.distributions[name] for t in complete if name in t.distributions)
        xs = [t.params.get(name) for t in complete]
        keep = np.array([x is not None for x in xs])
        if isinstance(dist, CategoricalDistribution):
            labels = [str(c) for c in dist.choices]
            x = np.array([labels.index(str(v)) if v is not None else -1 for v in xs], dtype=float)
            ax.set_xticks(range(len(labels)), labels)
            ax.set_xlim(-0.5, len(labels) - 0.5)
        else:
            x = np.array([v if v is not None else np.nan for v in xs], dtype=float)
            if isinstance(dist, (FloatDistribution, IntDistribution)) and dist.log:
                ax.set_xscale("log")
                ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
                ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
                ax.xaxis.set_minor_formatter(NullFormatter())  # 2x10^-1, 3x10^-1, ... labels collide
        sc = ax.scatter(x[keep], values[keep], c=numbers[keep], cmap="viridis", s=28, edgecolor="k", linewidth=0.3,
                        vmin=numbers.min(), vmax=max(numbers.max(), numbers.min() + 1))
        ax.set_xlabel(name)
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(names):]:
        ax.set_visible(False)
    for row in axes:
        row[0].set_ylabel("validation accuracy")
    fig.colorbar(sc, ax=axes.ravel().tolist(), label="trial number", shrink=0.8, ticks=MaxNLocator(integer=True))
    fig.suptitle(f"Validation accuracy of {len(complete)} complete trials against each parameter")
    return fig


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


# --------------------------------------------------------------------------- using the result


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
        "value", "trial_number", "tuned_for", "note"}``; ``settings`` is empty
        when nothing is applied.

    Raises:
        FileNotFoundError: an explicit path that does not exist.
        ValueError: a file that is not a best-parameters record.
    """
    from cifarkit.models import model_info

    record = {"mode": source, "source": None, "applied": False, "settings": {}, "params": {}, "study_name": None,
              "value": None, "trial_number": None, "tuned_for": None, "note": ""}
    mode = (source or "none").strip()
    if mode.lower() == "none":
        record["note"] = "tuning ignored (TUNED_PARAMS is none)"
        return record
    if mode.lower() == "auto":
        path = Path(run_dir) / TUNE_DIR_NAME / BEST_PARAMS_NAME
        if not path.exists():
            record["note"] = f"no tuned parameters in this run ({path} does not exist); the recipe's settings are used"
            return record
    else:
        path = Path(mode).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"TUNED_PARAMS points to {path}, which does not exist. Give the best_params.json written by "
                f"03_tune (in <run>/tune/), auto, or none."
            )
    try:
        best = json.loads(path.read_text())
        settings = dict(best["settings"])
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise ValueError(f"{path} is not a best-parameters file written by cifarkit.tune ({type(e).__name__}: {e}).") from None
    record.update(source=str(path), params=best.get("params", {}), study_name=best.get("study_name"),
                  value=best.get("value"), trial_number=best.get("trial_number"),
                  tuned_for={k: best.get(k) for k in ("model", "recipe", "epochs", "space", "data")})
    mismatch = [f"{k} {best.get(k)!r} (this run: {v!r})" for k, v in (("model", model), ("recipe", recipe)) if best.get(k) != v]
    if mismatch and mode.lower() == "auto":
        record["note"] = "not applied: tuned for " + " and ".join(mismatch)
        return record
    notes = []
    if mismatch:
        notes.append("tuned for " + " and ".join(mismatch))
    options = settings.get("model_options") or {}
    accepted = model_info(model)["options"]
    dropped = sorted(set(options) - set(accepted))
    if dropped:
        settings["model_options"] = {k: v for k, v in options.items() if k in accepted}
        if not settings["model_options"]:
            settings.pop("model_options")
        notes.append(f"model option(s) {', '.join(dropped)} dropped ({model} does not accept them)")
    settings.pop("model", None)
    settings.pop("epochs", None)
    settings.pop("seed", None)
    record.update(applied=True, settings=settings, note="; ".join(notes))
    return record


__all__ = [
    "SPACES", "Param", "SearchSpace", "TuneError", "TuneResult", "register_space", "list_spaces", "get_space",
    "resolve_space", "describe_space", "recipe_params", "matching_trial", "params_to_settings", "merge_settings", "make_pruner", "open_storage",
    "default_storage", "mask_url", "validation_only", "tune", "trial_counts", "epoch_budget", "trials_table",
    "best_trial_record", "write_best_params", "load_study", "plot_study", "importances", "tuned_settings",
]

