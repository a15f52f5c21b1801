"""Where a study lives and how it draws trials: Optuna storage, opening a study, sampler and pruner.

Storage is an SQLite file ``<out_dir>/optuna.db`` by default; any SQLAlchemy URL that Optuna accepts
(``postgresql://user@host:5432/db``) lets several workers or machines share one study
(``python -m cifarkit tune --storage URL``). Trials of a worker that died are marked failed after a few
minutes (Optuna's heartbeat). The sampler is TPE reseeded per trial from ``(seed, trial number)``: a fresh
study with the same seed proposes the same first trials, a resumed one does not repeat its earlier
proposals, and parallel workers never draw the same random start-up trial. A study records the settings
its trials share (:data:`CHECKED_ATTRS`); opening it with other ones is an error.
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

import numpy as np

from cifarkit.analysis.tuning.spaces import TuneError

#: What a trial scores; tuning always maximizes it.
OBJECTIVE = "val_acc"
DIRECTION = "maximize"
PRUNERS = ("median", "halving", "hyperband", "none")
DB_NAME = "optuna.db"
#: Format of the study user attributes this module writes.
STUDY_FORMAT = 1
#: Study user attributes that must match for a study to be resumed.
CHECKED_ATTRS = ("objective", "space", "model", "recipe", "epochs", "data", "space_definition", "fixed_settings")
#: TPE proposes at random for this many trials before it models the results.
TPE_STARTUP_TRIALS = 5
#: Median pruning waits for this many finished trials before it prunes.
MEDIAN_STARTUP_TRIALS = 3
#: Heartbeat of running trials (seconds), and after how long without one a trial counts as dead.
HEARTBEAT_INTERVAL = 60
HEARTBEAT_GRACE = 240


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
                    url,
                    engine_kwargs=engine_kwargs,
                    heartbeat_interval=HEARTBEAT_INTERVAL,
                    grace_period=HEARTBEAT_GRACE,
                )
        except OperationalError as e:
            text = str(getattr(e, "orig", None) or e).strip()
            reason = text.splitlines()[0] if text else type(e).__name__
            advice = (
                "Check that its folder exists and is writable, and that no other program holds the file locked"
                if backend == "sqlite"
                else "Check that the database server is running and reachable at that host and port, and that the user, "
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


# --------------------------------------------------------------------------- studies


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


def open_study(rdb, study_name: str, expected: dict, *, seed: int, pruner: str, epochs: int):
    """Create the study or load it; a new one records ``expected`` as its user attributes.

    Raises :class:`TuneError` if the study exists with other settings (:func:`_check_study`). Trials of a
    worker that died are marked failed.
    """
    import optuna

    study = optuna.create_study(
        storage=rdb,
        study_name=study_name,
        direction=DIRECTION,
        load_if_exists=True,
        sampler=_make_sampler(seed),
        pruner=make_pruner(pruner, int(epochs)),
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
    return study


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
                f"Study {study_name!r} already exists in this storage with trials that cifarkit did not make "
                f"(no search-space record). Use another study name."
            )
        return True
    differ = [k for k in CHECKED_ATTRS if k in attrs and attrs[k] != expected[k]]
    if differ:
        details = "; ".join(f"{k}: study has {_short(attrs[k])}, this run {_short(expected[k])}" for k in differ)
        raise TuneError(
            f"Study {study_name!r} already exists with other settings ({details}). Its trials would not be "
            f"comparable; use another study name (or the same settings to resume it)."
        )
    return True


def _short(value) -> str:
    text = json.dumps(value, sort_keys=True, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


# --------------------------------------------------------------------------- sampler and pruner


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


def suggest(trial, name: str, dist):
    """``trial``'s value for parameter ``name`` drawn from the Optuna distribution ``dist``."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(name, dist.choices)
    if isinstance(dist, FloatDistribution):
        return trial.suggest_float(name, dist.low, dist.high, log=dist.log, step=dist.step)
    return trial.suggest_int(name, dist.low, dist.high, log=dist.log, step=dist.step)


def preview_startup_trials(dists: dict, *, seed: int, n_trials: int) -> list[dict]:
    """The parameters a new study with ``seed`` over ``dists`` (in their order, as a trial suggests them) draws for
    its first ``min(n_trials, TPE_STARTUP_TRIALS)`` trial numbers, known before any trial runs.

    The sampler is reseeded from ``(seed, trial number)`` and draws at random until :data:`TPE_STARTUP_TRIALS`
    trials have finished, so these draws do not depend on what earlier trials scored. A study that enqueues
    trial 0 (the recipe's own settings) runs that instead of the first draw; the later ones are the same. What
    TPE proposes after the start-up trials depends on their results and is not previewed.
    """
    import optuna

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.create_study(direction=DIRECTION, sampler=_make_sampler(int(seed)))  # in memory
        draws = []
        for _ in range(max(0, min(int(n_trials), TPE_STARTUP_TRIALS))):
            trial = study.ask()
            draws.append({name: suggest(trial, name, d) for name, d in dists.items()})
            study.tell(trial, 0.0)
        return draws
    finally:
        optuna.logging.set_verbosity(verbosity)


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
