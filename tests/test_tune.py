"""Tests of hyperparameter tuning (cifarkit.analysis.tuning, ``python -m cifarkit tune``).

Every trial trains a narrow ``simple_cnn`` for one to three epochs on the
synthetic shapes at 16x16 pixels with Optuna (the real engine) and an SQLite
file in a temp folder, so a trial takes about half a second on one CPU
thread. The scale-out test starts a real PostgreSQL server on loopback and
runs two worker processes against one study.
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import psycopg2
import pytest
from optuna.trial import TrialState

from cifarkit import backend  # noqa: F401  (configures the Keras backend first)
from cifarkit.analysis.tuning import (
    SPACES,
    Param,
    TuneError,
    best_trial_record,
    describe_space,
    epoch_budget,
    get_space,
    list_spaces,
    load_study,
    merge_settings,
    open_storage,
    plot_study,
    recipe_params,
    register_space,
    resolve_space,
    trial_counts,
    trials_table,
    tune,
    tuned_settings,
)
from cifarkit.cli import main
from cifarkit.data import load_dataset
from cifarkit.models import list_models, model_info
from cifarkit.training import resolve_recipe

REPO = Path(__file__).resolve().parent.parent
#: A narrow simple_cnn: every trial uses it (the searched parameters come on top).
SMALL = {"model_options": {"widths": [8, 16, 16], "dense_units": 16}, "batch_size": 32}
#: The learning rate over a huge range: low rates learn nothing in an epoch, high ones diverge.
if "test_wide_lr" not in SPACES:
    register_space("test_wide_lr", (Param("lr", "float", 1e-3, 1e9, log=True),))


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """One torch thread: on a shared 2-core machine, two threads per tiny batch mostly wait on each other."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def ds():
    return load_dataset("synthetic:60", image_size=16, progress=False)


def run(ds, out, **kwargs):
    settings = dict(
        model="simple_cnn", recipe="default", space="lr", epochs=1, n_trials=2, overrides=SMALL, progress=False
    )
    settings.update(kwargs)
    return tune(ds, out_dir=out, **settings)


# --------------------------------------------------------------------------- search spaces


def test_space_registry_covers_the_knobs_and_adapts_to_each_model():
    assert {"default", "optimizer", "regularization", "lr"} <= set(list_spaces())
    names = {p.name for p in get_space("default").params}
    assert {
        "lr",
        "weight_decay",
        "batch_size",
        "dropout",
        "width_multiplier",
        "crop",
        "cutout",
        "label_smoothing",
        "schedule",
    } <= names
    for model in list_models():
        base = resolve_recipe("default", model=model)
        dists, skipped = resolve_space("default", base, n_train=5000)
        options = model_info(model)["options"]
        for opt in ("dropout", "width_multiplier"):
            assert (opt in dists) == (opt in options), model
            if opt not in options:
                assert "no option" in skipped[opt]
        assert dists["lr"].low == pytest.approx(0.2 * base.lr) and dists["lr"].high == pytest.approx(5 * base.lr)
    # ranges follow the recipe (fast: lr 1.5 at batch 1024) and the data (no batch above the training split)
    fast = resolve_recipe("fast")
    dists, _ = resolve_space("default", fast, n_train=200, image_size=16)
    assert dists["lr"].low == pytest.approx(0.3) and dists["lr"].log
    assert dists["batch_size"].choices == (64, 128)
    assert dists["cutout"].high == 8
    rows = describe_space("default", resolve_recipe("default", model="densenet_bc_100"), n_train=5000)
    assert next(r for r in rows if r["parameter"] == "width_multiplier")["searched"].startswith("no:")
    # the recipe's own values as a baseline trial, builder defaults for model options
    baseline = recipe_params("default", resolve_recipe("default", model="simple_cnn"), n_train=5000)
    assert baseline["lr"] == 0.1 and baseline["dropout"] == 0.3 and baseline["width_multiplier"] == 1.0
    with pytest.raises(TuneError, match="Unknown search space 'nope'. Known search spaces: default"):
        get_space("nope")
    with pytest.raises(ValueError, match="already registered"):
        register_space("default", ())
    with pytest.raises(ValueError, match="not a searchable training setting"):
        register_space("bad", (Param("learning_rate", "float", 0.1, 1.0),))
    assert "bad" not in SPACES


def test_settings_merge_model_options():
    merged = merge_settings(
        {"lr": 1.0, "model_options": {"widths": [8]}}, {"model_options": {"dropout": 0.1}}, {"lr": 2.0}
    )
    assert merged == {"lr": 2.0, "model_options": {"widths": [8], "dropout": 0.1}}


# --------------------------------------------------------------------------- bad input


def test_bad_input_fails_before_any_trial(ds, tmp_path):
    with pytest.raises(TuneError, match="Unknown search space"):
        run(ds, tmp_path / "a", space="nope")
    with pytest.raises(ValueError, match="Unknown model 'resnet21'. Known models"):
        run(ds, tmp_path / "a", model="resnet21")
    with pytest.raises(TuneError, match="Unknown pruner"):
        run(ds, tmp_path / "a", pruner="sometimes")
    url = "postgresql://nobody@127.0.0.1:1/x"
    with pytest.raises(
        TuneError, match=r"Cannot connect to the Optuna storage postgresql://nobody@127.0.0.1:1/x.*running"
    ):
        run(ds, tmp_path / "a", storage=url)
    with pytest.raises(TuneError, match="Cannot parse the storage URL"):
        run(ds, tmp_path / "a", storage="not a url")
    assert not (tmp_path / "a" / "trials").exists()


def test_study_name_conflicts_are_caught_before_any_trial(ds, tmp_path):
    first = run(ds, tmp_path, study_name="s", n_trials=1)
    assert first.counts["total"] == 1
    with pytest.raises(TuneError, match=r"Study 's' already exists with other settings \(space: study has 'lr'"):
        run(ds, tmp_path, study_name="s", space="optimizer")
    with pytest.raises(TuneError, match="epochs: study has 1, this run 2"):
        run(ds, tmp_path, study_name="s", epochs=2)
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    optuna.create_study(study_name="down", storage=url, direction="minimize")
    with pytest.raises(TuneError, match="direction"):
        run(ds, tmp_path, study_name="down")
    assert trial_counts(load_study("s", url))["total"] == 1
    assert len(load_study("down", url).trials) == 0


# --------------------------------------------------------------------------- studies


def test_sqlite_study_resumes_and_counts(ds, tmp_path):
    a = run(ds, tmp_path, n_trials=2, seed=3)
    assert a.counts == {"complete": 2, "pruned": 0, "failed": 0, "running": 0, "waiting": 0, "total": 2}
    assert a.storage == f"sqlite:///{(tmp_path / 'optuna.db').resolve()}"
    b = run(ds, tmp_path, n_trials=2, seed=3)  # count="add": two more
    trials = b.study.get_trials()
    assert b.new_trials == 2 and [t.number for t in trials] == [0, 1, 2, 3]
    lrs = [t.params["lr"] for t in trials]
    assert len(set(lrs)) == 4  # the resumed run does not repeat the first proposals
    c = run(ds, tmp_path, n_trials=4, count="total", seed=3)  # already 4: nothing to do
    assert c.new_trials == 0 and c.counts["total"] == 4
    d = run(ds, tmp_path, n_trials=5, count="total", seed=3)  # tops up to 5
    assert d.new_trials == 1 and d.counts["total"] == 5
    # the same seed proposes the same first trial in a fresh study
    fresh = run(ds, tmp_path / "again", n_trials=1, seed=3)
    assert fresh.study.trials[0].params == trials[0].params
    # best_params.json: the best complete trial, with what produced it
    best = json.loads((tmp_path / "best_params.json").read_text())
    values = [t.value for t in d.study.get_trials(states=(TrialState.COMPLETE,))]
    assert best["value"] == max(values) and best["model"] == "simple_cnn" and best["epochs"] == 1
    assert best["study_name"] == "simple_cnn-default-lr-1ep" and best["space"] == "lr"
    assert (
        best["settings"]["lr"] == best["params"]["lr"] and best["settings"]["model_options"] == SMALL["model_options"]
    )
    assert best == {**best_trial_record(d.study), "storage": best["storage"], "written_at": best["written_at"]}
    table = trials_table(d.study)
    assert list(table["trial"]) == [0, 1, 2, 3, 4] and set(table["state"]) == {"complete"}
    assert epoch_budget(d.study) == {
        "epochs_run": 5,
        "epochs_without_pruning": 5,
        "saved_epochs": 0,
        "saved_fraction": 0.0,
        "trials": 5,
        "pruned": 0,
    }


def test_the_start_up_trials_are_known_before_the_study_runs(ds, tmp_path):
    """What the time estimate relies on: a new study proposes, for its first trial numbers, what
    preview_startup_trials draws in memory, whatever earlier trials scored; an enqueued trial 0 changes none of
    the later draws. (TPE models results only after TPE_STARTUP_TRIALS finished trials.)"""
    from optuna.distributions import json_to_distribution

    from cifarkit.analysis.tuning.storage import TPE_STARTUP_TRIALS, preview_startup_trials

    plain = run(ds, tmp_path / "plain", space="default", n_trials=3, seed=7)
    recipe = recipe_params("default", resolve_recipe("default", model="simple_cnn", **SMALL), n_train=48, image_size=16)
    first = run(ds, tmp_path / "first", space="default", n_trials=3, seed=7, enqueue=[recipe])
    space = plain.study.user_attrs["space_definition"]
    dists = {name: json_to_distribution(json.dumps(d)) for name, d in space.items()}
    assert {"batch_size", "lr", "weight_decay"} <= set(dists)  # a categorical and continuous ones
    preview = preview_startup_trials(dists, seed=7, n_trials=3)
    assert [t.params for t in plain.study.trials] == preview
    assert [t.params for t in first.study.trials][1:] == preview[1:]
    assert first.study.trials[0].params != preview[0]  # the recipe's own settings took trial 0
    assert len(preview_startup_trials(dists, seed=7, n_trials=50)) == TPE_STARTUP_TRIALS
    assert preview_startup_trials(dists, seed=8, n_trials=3) != preview


def test_failed_trials_are_recorded_and_the_study_goes_on(ds, tmp_path, capsys):
    result = run(
        ds, tmp_path, space="test_wide_lr", n_trials=3, epochs=1, progress=True, enqueue=[{"lr": 1e9}, {"lr": 0.05}]
    )
    trials = result.study.get_trials()
    assert trials[0].state == TrialState.FAIL and trials[0].params == {"lr": 1e9}
    assert trials[0].user_attrs["fail_reason"].startswith("TrainingDivergedError: Training diverged")
    assert trials[1].state == TrialState.COMPLETE and trials[1].params == {"lr": 0.05}
    assert len(trials) == 3 and result.counts["failed"] >= 1 and result.counts["complete"] >= 1
    out = capsys.readouterr().out
    assert "trial    0  failed   (TrainingDivergedError" in out and "trial    1  complete val_acc" in out
    assert result.best["trial_number"] != 0
    # a study that only fails stops: it is a setup problem, not bad hyperparameters
    with pytest.raises(RuntimeError, match="2 trials in a row failed.*TrainingDivergedError"):
        run(
            ds,
            tmp_path / "b",
            space="test_wide_lr",
            n_trials=4,
            max_consecutive_failures=2,
            enqueue=[{"lr": 1e9}, {"lr": 3e8}],
        )


def test_pruning_stops_poor_trials_early(ds, tmp_path):
    result = run(
        ds,
        tmp_path,
        space="test_wide_lr",
        epochs=3,
        n_trials=7,
        pruner="median",
        seed=1,
        enqueue=[{"lr": 0.05}, {"lr": 0.1}, {"lr": 0.03}],
    )
    pruned = result.study.get_trials(states=(TrialState.PRUNED,))
    assert pruned, trials_table(result.study)
    assert all(t.user_attrs["epochs_run"] < 3 for t in pruned)
    budget = result.budget
    assert budget["pruned"] == len(pruned) and budget["epochs_run"] < budget["epochs_without_pruning"]
    expected_run = sum(t.user_attrs["epochs_run"] for t in result.study.trials)
    assert budget["epochs_run"] == expected_run and budget["saved_fraction"] > 0
    # pruned trials keep their per-epoch validation accuracy, which the intermediate plot draws
    fig, reason = plot_study(result.study, "intermediate")
    assert reason is None and fig.axes[0].lines


class GuardedTestSplit:
    """A real Dataset whose test split raises when anything reads it."""

    def __init__(self, ds):
        self._ds = ds
        self.touched = []

    def __getattr__(self, name):
        return getattr(self._ds, name)

    @property
    def x_test(self):
        self.touched.append("x_test")
        raise RuntimeError("tuning read the test images")

    @property
    def y_test(self):
        self.touched.append("y_test")
        raise RuntimeError("tuning read the test labels")


def test_tuning_never_reads_the_test_split(ds, tmp_path):
    guarded = GuardedTestSplit(ds)
    result = run(guarded, tmp_path, n_trials=2)
    assert guarded.touched == []
    assert result.counts["complete"] == 2  # a read would have failed the trials
    metrics = json.loads(next((tmp_path / "trials").rglob("metrics.json")).read_text())
    assert metrics["test_acc"] is None and metrics["dataset"]["counts"]["test"] == 0
    assert metrics["dataset"]["counts"]["val"] == len(ds.y_val)
    # the trial's files stay small: histories and metrics, no checkpoints or models
    assert not list((tmp_path / "trials").rglob("*.keras")) and not list((tmp_path / "trials").rglob("*.pt"))


def test_plots_say_why_a_small_study_has_none(ds, tmp_path):
    result = run(ds, tmp_path, n_trials=1)
    fig, reason = plot_study(result.study, "history")
    assert reason is None and fig is not None
    for kind in ("importances", "parallel", "slice"):
        fig, reason = plot_study(result.study, kind)
        assert fig is None and "at least 2 complete trials" in reason


# --------------------------------------------------------------------------- the training notebook's view


def test_tuned_settings_feed_training(ds, tmp_path):
    run_dir = tmp_path / "run"
    none = tuned_settings("auto", run_dir, model="simple_cnn", recipe="default")
    # the run folder's own path is not repeated in the report
    assert none["applied"] is False and none["note"] == "none in this run (02_tune wrote no tune/best_params.json)"
    run(
        ds,
        run_dir / "tune",
        space="default",
        n_trials=1,
        overrides={"model_options": SMALL["model_options"]},
        enqueue=[{"batch_size": 64}],
    )
    best = json.loads((run_dir / "tune" / "best_params.json").read_text())
    rec = tuned_settings("auto", run_dir, model="simple_cnn", recipe="default")
    assert rec["applied"] and rec["source"] == str(run_dir / "tune" / "best_params.json")
    assert rec["settings"]["batch_size"] == 64 and rec["settings"]["lr"] == best["params"]["lr"]
    # explicit settings of the training run come after the tuned ones
    config = resolve_recipe(
        "default", **merge_settings(rec["settings"], {"lr": 0.01}, {"model": "simple_cnn", "epochs": 1})
    )
    assert config.lr == 0.01 and config.batch_size == 64
    assert config.model_options["dropout"] == best["params"]["dropout"]
    # tuned for another model: auto leaves them out, an explicit path drops the options the model lacks
    other = tuned_settings("auto", run_dir, model="densenet_bc_100", recipe="default")
    assert other["applied"] is False and "tuned for model 'simple_cnn'" in other["note"]
    explicit = tuned_settings(
        str(run_dir / "tune" / "best_params.json"), run_dir, model="densenet_bc_100", recipe="default"
    )
    assert explicit["applied"] and set(explicit["settings"]["model_options"]) == {"dropout"}
    assert "width_multiplier" in explicit["note"]
    assert tuned_settings("none", run_dir, model="simple_cnn", recipe="default")["applied"] is False
    with pytest.raises(FileNotFoundError, match="TUNED_PARAMS points to"):
        tuned_settings(str(tmp_path / "missing.json"), run_dir, model="simple_cnn", recipe="default")


# --------------------------------------------------------------------------- command line


def cli(*args, cwd, timeout=300):
    env = dict(os.environ, OMP_NUM_THREADS="1", KERAS_BACKEND="torch")
    return subprocess.run(
        [sys.executable, "-m", "cifarkit", "tune", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


TINY_CLI = [
    "--data",
    "synthetic:40",
    "--image-size",
    "16",
    "--model",
    "simple_cnn",
    "--space",
    "lr",
    "--epochs",
    "1",
    "--set",
    "batch_size=32",
    "--set",
    'model_options={"widths": [8, 16, 16], "dense_units": 16}',
]


def test_cli_runs_a_study_and_rejects_bad_input(tmp_path, capsys):
    out = tmp_path / "tune"
    p = cli(*TINY_CLI, "--n-trials", "2", "--out", str(out), "--study", "cli", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "trial    0  complete val_acc" in p.stdout and "trial    1" in p.stdout
    assert "2 trials run here" in p.stdout
    best = json.loads((out / "best_params.json").read_text())
    assert best["study_name"] == "cli" and best["model"] == "simple_cnn"
    p = cli(*TINY_CLI, "--out", str(out), "--storage", "postgresql://nobody@127.0.0.1:1/x", cwd=tmp_path)
    assert p.returncode == 2 and p.stderr.strip() == p.stderr.strip().splitlines()[0]
    assert p.stderr.startswith(
        "cifarkit tune: error: Cannot connect to the Optuna storage postgresql://nobody@127.0.0.1:1/x"
    )
    # the same entry point in this process (spares starting Python and torch again)
    assert main(["tune", *TINY_CLI, "--n-trials", "2", "--total", "--out", str(out), "--study", "cli"]) == 0
    assert "0 trials run here" in capsys.readouterr().out
    for args, message in (
        (["--space", "nope"], "Unknown search space 'nope'"),
        (["--model", "resnet21"], "Unknown model 'resnet21'"),
        (["--pruner", "often"], "Unknown pruner 'often'"),
        (["--study", "cli", "--epochs", "2"], "already exists with other settings"),
        (["--set", "nope=1"], "Unknown training setting(s) 'nope'"),
    ):
        assert main(["tune", *TINY_CLI, "--out", str(out), *args]) == 2, args
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("cifarkit tune: error:") and message in err[0], (args, err)
    assert trial_counts(load_study("cli", f"sqlite:///{out / 'optuna.db'}"))["total"] == 2


# --------------------------------------------------------------------------- scale-out on PostgreSQL


def _postgres_bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def postgres_url():
    """A real PostgreSQL server on loopback for the test (run as user postgres when we are root)."""
    require = os.environ.get("CIFARKIT_REQUIRE_SERVICES") == "1"

    def unavailable(reason):
        if require:
            pytest.fail(f"CIFARKIT_REQUIRE_SERVICES=1 but {reason}")
        pytest.skip(reason)

    initdb, pg_ctl = _postgres_bin("initdb"), _postgres_bin("pg_ctl")
    if not initdb or not pg_ctl:
        unavailable("PostgreSQL server binaries (initdb, pg_ctl) are not installed (apt install postgresql)")
    prefix: list[str] = []
    if os.geteuid() == 0:
        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            unavailable("running as root and there is no 'postgres' user to run the server as")
        prefix = ["runuser", "-u", "postgres", "--"] if shutil.which("runuser") else None
        if prefix is None:
            unavailable("running as root and runuser is missing")
    root = Path(tempfile.mkdtemp(prefix="cifarkit-pg-"))
    data, sock, log = root / "data", root / "sock", root / "server.log"
    sock.mkdir()
    if os.geteuid() == 0:
        for p in (root, sock):
            os.chown(p, pw.pw_uid, pw.pw_gid)
    port = _free_port()
    started = False
    try:
        subprocess.run(
            [*prefix, initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        )
        subprocess.run(
            [
                *prefix,
                pg_ctl,
                "-D",
                str(data),
                "-l",
                str(log),
                "-w",
                "-t",
                "60",
                "-o",
                f"-p {port} -k {sock} -c listen_addresses=127.0.0.1",
                "start",
            ],
            check=True,
            capture_output=True,
            text=True,
            timeout=90,
        )
        started = True
        conn = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
        conn.autocommit = True
        conn.cursor().execute("CREATE DATABASE tune_test")
        conn.close()
        yield f"postgresql://postgres@127.0.0.1:{port}/tune_test"
    except subprocess.CalledProcessError as e:
        server_log = log.read_text() if log.exists() else ""
        pytest.fail(f"could not start PostgreSQL: {e.cmd}: {e.stderr}\n{server_log}")
    finally:
        if started:
            subprocess.run(
                [*prefix, pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"], capture_output=True, timeout=60
            )
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.postgres
@pytest.mark.slow
def test_two_workers_share_a_postgres_study(postgres_url, tmp_path):
    n = (3, 2)
    # A start line on the real server: the tables exist, the test holds the trials table locked, both workers
    # block on their first read of it, and only then are they released together. Without it the first worker
    # could finish its tiny trials before the second had imported Keras (seen on a loaded 2-core machine).
    open_storage(postgres_url)
    gate = psycopg2.connect(postgres_url)
    gate.cursor().execute("LOCK TABLE trials IN ACCESS EXCLUSIVE MODE")
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cifarkit",
                "tune",
                *TINY_CLI,
                "--epochs",
                "2",
                "--pruner",
                "median",
                "--n-trials",
                str(k),
                "--study",
                "shared",
                "--storage",
                postgres_url,
                "--out",
                str(tmp_path / f"w{i}"),
            ],
            cwd=tmp_path,
            env=dict(os.environ, OMP_NUM_THREADS="1", KERAS_BACKEND="torch"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i, k in enumerate(n)
    ]
    try:
        _wait_until_the_workers_wait(postgres_url, procs)
    finally:
        gate.rollback()  # the lock goes with the transaction
        gate.close()
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, f"worker failed:\n{out}\n{err}"
    study = load_study("shared", postgres_url)
    trials = study.get_trials()
    numbers = [t.number for t in trials]
    assert len(trials) == sum(n) and sorted(numbers) == list(range(sum(n)))  # each trial recorded once
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    workers = {}
    for t in trials:
        workers.setdefault(t.user_attrs["worker"], []).append((t.datetime_start, t.datetime_complete))
    assert len(workers) == 2
    (a, b) = workers.values()  # the workers really ran at the same time (they were released together)
    assert min(s for s, _ in a) < max(e for _, e in b) and min(s for s, _ in b) < max(e for _, e in a)
    complete = [t.value for t in trials if t.state == TrialState.COMPLETE]
    assert study.best_value == max(complete)
    assert study.user_attrs["model"] == "simple_cnn" and study.user_attrs["epochs"] == 2
    for i, k in enumerate(n):
        assert f"{k} trials run here" in outs[i][0]
        best = json.loads((tmp_path / f"w{i}" / "best_params.json").read_text())
        assert best["study_name"] == "shared" and best["storage"] == postgres_url
    # the study as a whole is reachable from a third process, as the notebook would open it
    assert trial_counts(load_study("shared", postgres_url))["total"] == sum(n)
    open_storage(postgres_url)


def _wait_until_the_workers_wait(url, procs, timeout=300):
    """Return once every worker's server session waits for a lock (at the start line); fail if a worker exits."""
    watcher = psycopg2.connect(url)
    watcher.autocommit = True
    deadline = time.monotonic() + timeout
    try:
        while True:
            cur = watcher.cursor()
            cur.execute("SELECT count(DISTINCT pid) FROM pg_locks WHERE NOT granted")
            if cur.fetchone()[0] >= len(procs):
                return
            for p in procs:
                if p.poll() is not None:
                    out, err = p.communicate()
                    pytest.fail(f"a worker exited before reaching the trials table:\n{out}\n{err}")
            if time.monotonic() > deadline:
                pytest.fail(f"the workers did not reach the trials table within {timeout} s")
            time.sleep(0.2)
    finally:
        watcher.close()
