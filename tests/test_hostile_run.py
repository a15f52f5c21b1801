"""run_all.py against hostile input: every mistake a user can make is one clear line and exit code 2.

Each refused case runs the real command line (``sys.executable run_all.py ...``) and asserts the exit
code, the single ``run_all.py: error: ...`` line (no traceback) and that nothing was written: neither
in the output folder nor in the working directory. Then one writer per run (two ``--resume`` of one run
at once: exactly one runs), distinct folders for runs that start in the same second, a folder index
that is not cifarkit's left alone, and passwords that never reach a file, the log or the console.
"""

import asyncio
import glob
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from conftest import REPO, signal_when

from cifarkit import run_folder, secrets
from cifarkit.data import write_synthetic_image_folder
from cifarkit.report import execute, runner

RUN_ALL = str(REPO / "run_all.py")
SMOKE = ("--profile", "smoke", "--data", "synthetic:40", "--no-pdf")
PASSWORD = "SECRETPW123"
STORAGE_URL = f"postgresql://u:{PASSWORD}@127.0.0.1:1/db"
MODELS_TEXT = "densenet_bc_100, fastnet, resnet110, resnet20"


@pytest.fixture
def cwd(tmp_path):
    """The working directory of the command: it must stay empty."""
    path = tmp_path / "cwd"
    path.mkdir()
    yield path
    assert list(path.iterdir()) == [], "run_all.py wrote into its working directory"


def cli(cwd, *args, timeout=300):
    return subprocess.run(
        [sys.executable, RUN_ALL, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def assert_refused(out, *fragments):
    """Exit code 2 and exactly one ``run_all.py: error:`` line holding every fragment; no traceback."""
    console = out.stdout + out.stderr
    assert out.returncode == 2, console
    assert "Traceback" not in console and out.stdout == "", console
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("run_all.py: error: "), out.stderr
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
    assert not re.search(r"object at 0x[0-9a-f]+", lines[0])
    return lines[0]


def snapshot(folder):
    """Every file under ``folder`` with its bytes (to assert that nothing changed)."""
    if not folder.exists():
        return None
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else None for p in sorted(folder.rglob("*"))}


def fake_run(parent, name="20260101-000000-smoke", **extra):
    """A run folder as a first session leaves it before running anything: resume reads only this."""
    run_dir = parent / name
    run_dir.mkdir(parents=True)
    manifest = {
        "run_id": name,
        "profile": "smoke",
        "overrides": {},
        "data": {"source": "synthetic:40", "sha256": None, "argument": "synthetic:40"},
        "started_at": "2026-01-01T00:00:00+0000",
        "notebooks": {},
        **extra,
    }
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    return run_dir


# ------------------------------------------------------------------ parameters, checked before any kernel starts
PARAMETER_CASES = {
    "int-given-text": (
        ["--only", "03", "-p", "EPOCHS", "abc"],
        [
            "Parameter EPOCHS of notebook 03_train must be a whole number (int) from 0 to 10000",
            "received 'abc' (str, set by -p EPOCHS)",
        ],
    ),
    "int-negative": (["--only", "03", "-p", "EPOCHS", "-3"], ["EPOCHS of notebook 03_train", "received -3 (int"]),
    "int-given-fraction": (
        ["--only", "03", "-p", "BATCH_SIZE", "2.5"],
        ["BATCH_SIZE of notebook 03_train must be a whole number (int) from 0 to 65536", "received 2.5 (float"],
    ),
    "int-above-range": (
        ["--only", "02", "-p", "N_TRIALS", "200000"],
        ["N_TRIALS of notebook 02_tune must be a whole number (int) from 0 to 100000", "received 200000"],
    ),
    "int-open-range": (
        ["--only", "01", "-p", "PCA_SAMPLES", "-1"],
        ["PCA_SAMPLES of notebook 01_explore_data must be a whole number (int) of at least 0", "received -1"],
    ),
    "seed-above-range": (  # scikit-learn refuses seeds of 2**32 and more inside the kernel: refused before it
        ["--only", "01", "-p", "SEED", str(2**32)],
        ["SEED of notebook 01_explore_data must be a whole number (int) from 0 to 2147483647", "received 4294967296"],
    ),
    "int-below-range": (
        ["--only", "04", "-p", "N_BOOT", "10"],
        ["N_BOOT of notebook 04_evaluate must be a whole number (int) from 100 to 1000000", "received 10"],
    ),
    "float-given-text": (
        ["--only", "03", "-p", "LR", "fast"],
        ["LR of notebook 03_train must be a number (float) from 0 to 1000", "received 'fast' (str"],
    ),
    "float-negative": (["--only", "03", "-p", "LR", "-0.1"], ["LR of notebook 03_train", "received -0.1 (float"]),
    "float-nan": (["--only", "03", "-p", "LR", ".nan"], ["LR of notebook 03_train", "received nan (float"]),
    "float-above-range": (
        ["--only", "01", "-p", "VAL_FRACTION", "0.95"],
        ["VAL_FRACTION of notebook 01_explore_data must be a number (float) from 0 to 0.9", "received 0.95"],
    ),
    "bool-given-text": (
        ["--only", "04", "-p", "TTA", "maybe"],
        ["TTA of notebook 04_evaluate must be true or false (bool)", "received 'maybe' (str"],
    ),
    "bool-given-number": (
        ["--only", "03", "-p", "DETERMINISTIC", "1"],
        ["DETERMINISTIC of notebook 03_train must be true or false (bool)", "received 1 (int"],
    ),
    "dict-given-text": (
        ["--only", "03", "-p", "OVERRIDES", "weight_decay"],
        ["OVERRIDES of notebook 03_train must be a mapping (dict)", "received 'weight_decay' (str"],
    ),
    "dict-given-list": (
        ["--only", "05", "-p", "METHOD_OPTIONS", "[1, 2]"],
        ["METHOD_OPTIONS of notebook 05_baselines must be a mapping (dict)", "received [1, 2] (list"],
    ),
    "str-given-number": (
        ["--only", "02", "-p", "STUDY_NAME", "2024"],
        ["STUDY_NAME of notebook 02_tune must be a text (str)", "received 2024 (int", "quote it for YAML"],
    ),
    "choice-pruner": (
        ["--only", "02", "-p", "PRUNER", "fastest"],
        ["PRUNER of notebook 02_tune must be one of median, halving, hyperband, none", "received 'fastest'"],
    ),
    "choice-device": (
        ["--only", "03", "-p", "DEVICE", "tpu"],
        ["DEVICE of notebook 03_train must be one of auto, cpu, gpu", "received 'tpu'"],
    ),
    "choice-augment": (
        ["--only", "03", "-p", "AUGMENT", "mixup"],
        ["AUGMENT of notebook 03_train must be one of recipe, no-flip, none, flip, crop+flip, crop+flip+cutout"],
    ),
    "model-unknown": (
        ["--only", "03", "-p", "MODEL", "resnet9"],
        [f"MODEL of notebook 03_train must be one of {MODELS_TEXT}", "received 'resnet9'"],
    ),
    "backbone-unknown": (
        ["--only", "03", "-p", "BACKBONE", "resnet9000"],
        ["BACKBONE of notebook 03_train must be one of none, ", "efficientnet_b0", "received 'resnet9000'"],
    ),
    "recipe-unknown": (
        ["--only", "02", "-p", "RECIPE", "turbo"],
        ["RECIPE of notebook 02_tune must be one of default, fast, fast8, paper, paper_densenet", "received 'turbo'"],
    ),
    "image-size-too-large": (
        ["--only", "01", "--image-size", "100000"],
        [
            "IMAGE_SIZE of notebook 01_explore_data must be a whole number (int) from 8 to 1024",
            "received 100000 (int, set by --image-size)",
        ],
    ),
    "image-size-too-small": (["--only", "01", "--image-size", "4"], ["--image-size must be a whole number of pixels"]),
    "class-names-count-synthetic": (
        ["--only", "01", "--class-names", "a", "b", "c", "d", "e"],
        ["gives 5 names (a, b, c, d, e) but the data synthetic:40 has 4 classes (circle, square, triangle, cross)"],
    ),
    "parameter-name-unknown": (["--only", "01", "-p", "EPOCHZ", "3"], ["Unknown parameter(s) EPOCHZ"]),
    # -p NOTEBOOK.NAME: one notebook's parameter
    "per-notebook-unknown-notebook": (
        ["--only", "03", "-p", "09.EPOCHS", "3"],
        ["Unknown notebook '09'", "Known notebooks: 01_explore_data"],
    ),
    "per-notebook-unknown-parameter": (
        ["--only", "03", "-p", "03.N_TRIALS", "3"],
        ["Notebook 03_train declares no parameter(s) N_TRIALS (set for it alone by -p 03_train.NAME", "EPOCHS"],
    ),
    "per-notebook-bad-value": (
        ["--only", "03", "-p", "03_train.EPOCHS", "-3"],
        ["EPOCHS of notebook 03_train", "received -3 (int, set by -p 03_train.EPOCHS or --budget)"],
    ),
    "per-notebook-not-run": (
        ["--only", "03", "-p", "02.EPOCHS", "3"],
        ["-p sets parameters of 02_tune, which this run does not execute (it runs 03_train)"],
    ),
    "per-notebook-no-name": (["--only", "03", "-p", "03.", "3"], ["-p 03. names no parameter after the dot"]),
}


@pytest.mark.parametrize("case", sorted(PARAMETER_CASES))
def test_bad_parameter_values_are_refused_before_anything_runs(case, tmp_path, cwd):
    args, fragments = PARAMETER_CASES[case]
    out_dir = tmp_path / "out"
    assert_refused(cli(cwd, *SMOKE, "--out", out_dir, *args), *fragments)
    assert not out_dir.exists()  # refused before the output folder was created


def test_a_password_in_one_notebooks_parameter_is_refused_without_showing_it(tmp_path, cwd):
    # a per-notebook setting would be written into the manifest as it is: only the every-notebook path (masked,
    # the kernel gets it through its environment) or CIFARKIT_STORAGE may carry a password
    out = cli(cwd, *SMOKE, "--out", tmp_path / "out", "--only", "02", "-p", "02.STORAGE", STORAGE_URL)
    line = assert_refused(out, "-p 02.STORAGE carries a password", "-p STORAGE URL", "CIFARKIT_STORAGE")
    assert PASSWORD not in out.stdout + out.stderr and PASSWORD not in line
    assert not (tmp_path / "out").exists()


def test_one_notebooks_parameter_reaches_that_notebook_and_the_reproduce_command(tmp_path, cwd):
    """-p 01.SEED 1 sets SEED in 01 only (03 keeps the profile's 0); the manifest keeps it and the study book's
    command gives it back in the same form, which run_all.py reads as the same split."""
    import run_all
    from cifarkit.report import book
    from cifarkit.report.plan import parse_value, split_parameters

    out = cli(cwd, *SMOKE, "--out", tmp_path / "out", "--only", "01", "03", "-p", "01.SEED", "1", "-p", "EPOCHS", "1")
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    (run_dir,) = [p for p in (tmp_path / "out").iterdir() if (p / "manifest.json").is_file()]
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["notebook_overrides"] == {"01_explore_data": {"SEED": 1}}
    assert manifest["overrides"] == {"EPOCHS": 1}
    nbs = manifest["notebooks"]
    assert nbs["01_explore_data"]["parameters"]["SEED"] == 1 and nbs["03_train"]["parameters"]["SEED"] == 0
    argv = book.reproduce_command(manifest)
    assert argv[argv.index("01_explore_data.SEED") - 1] == "-p"
    args = run_all.build_parser().parse_args(argv[1:])
    common, per_notebook = split_parameters({name: parse_value(value) for name, value in args.param})
    assert (common, per_notebook) == (manifest["overrides"], manifest["notebook_overrides"])


def test_class_names_are_counted_on_a_generated_folder_before_any_notebook(tmp_path, cwd):
    data = write_synthetic_image_folder(tmp_path / "three", n_per_class=4, num_classes=3)
    out_dir = tmp_path / "out"
    out = cli(cwd, "--profile", "smoke", "--data", data, "--only", "01", "--class-names", "a,b", "--out", out_dir)
    assert_refused(out, "gives 2 names (a, b) but the data", "has 3 classes")
    assert not out_dir.exists()


# ------------------------------------------------------------------ the output folder
def test_out_naming_a_file_is_refused_and_the_file_kept(tmp_path, cwd):
    target = tmp_path / "notes.txt"
    target.write_text("mine")
    assert_refused(cli(cwd, *SMOKE, "--only", "01", "--out", target), f"{target} (--out) is a file, not a folder")
    assert target.read_text() == "mine"


def test_out_below_a_file_is_refused(tmp_path, cwd):
    target = tmp_path / "notes.txt"
    target.write_text("mine")
    out = cli(cwd, *SMOKE, "--only", "01", "--out", target / "runs")
    assert_refused(out, f"Cannot create the output folder {target / 'runs'} (--out): not a directory")
    assert target.read_text() == "mine"


def test_out_read_only_is_refused(tmp_path, cwd):
    out_dir = tmp_path / "read-only"
    out_dir.mkdir()
    out_dir.chmod(0o555)
    try:
        if os.access(out_dir, os.W_OK):
            pytest.skip(
                "running as root: permissions do not stop root (test_out_below_a_file covers an unwritable --out)"
            )
        out = cli(cwd, *SMOKE, "--only", "01", "--out", out_dir)
        assert_refused(out, f"Cannot create the run folder in {out_dir} (--out): permission denied")
        assert list(out_dir.iterdir()) == []
    finally:
        out_dir.chmod(0o755)


def test_out_that_refuses_writing_is_one_message_even_for_root(tmp_path, monkeypatch):
    """Root ignores permissions; a folder the OS refuses (read-only mount, ACL) is simulated at ``mkdir``."""
    out_dir = tmp_path / "read-only"
    out_dir.mkdir()
    real_mkdir = type(out_dir).mkdir

    def refusing_mkdir(self, *args, **kwargs):
        if self.parent == out_dir:
            raise PermissionError(13, "Permission denied", str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(type(out_dir), "mkdir", refusing_mkdir)
    with pytest.raises(ValueError, match=r"Cannot create the run folder in .*read-only \(--out\): permission denied"):
        runner.run_study("smoke", data="synthetic:40", out=out_dir, only=["01"], pdf=False, log=str)
    assert list(out_dir.iterdir()) == []


def test_a_disk_that_refuses_the_manifest_is_one_message_and_no_lock_left(tmp_path, monkeypatch, capsys):
    """An OS error while the run folder is written (here: a full disk at the first manifest) is one line and
    exit code 2 from run_all.py; the lock is released and the empty run folder removed."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("run_all_under_test", RUN_ALL)
    run_all = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run_all)

    def full_disk(path, obj):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(runner.files, "atomic_write_json", full_disk)
    out_dir = tmp_path / "out"
    code = run_all.main(
        ["--profile", "smoke", "--data", "synthetic:40", "--only", "01", "--no-pdf", "--out", str(out_dir)]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith("run_all.py: error: could not write the run's files: no space left on device: ")
    assert err[0].endswith("manifest.json")
    assert list(out_dir.iterdir()) == []  # no run folder, no lock file


# ------------------------------------------------------------------ --resume of what is no run
RESUME_CASES = {
    "corrupt-manifest": ("{not json", ["manifest.json is not valid JSON", "the file is damaged"]),
    "manifest-is-an-array": ("[1, 2]", ["manifest.json holds an array, not the JSON object run_all.py writes"]),
    "manifest-is-a-string": ('"hello"', ["manifest.json holds a string"]),
    "manifest-of-something-else": ('{"title": "my notes"}', ["records no profile and notebooks", "not a run"]),
    "no-manifest": (None, ["No run to resume at", "it has no manifest.json"]),
}


@pytest.mark.parametrize("case", sorted(RESUME_CASES))
def test_resume_of_a_folder_that_is_no_run_is_refused(case, tmp_path, cwd):
    text, fragments = RESUME_CASES[case]
    folder = tmp_path / "folder"
    folder.mkdir()
    if text is not None:
        (folder / "manifest.json").write_text(text)
    before = snapshot(folder)
    assert_refused(cli(cwd, "--resume", folder), *fragments)
    assert snapshot(folder) == before  # no lock file, nothing else


def test_resume_of_a_file_is_refused(tmp_path, cwd):
    target = tmp_path / "manifest.json"
    target.write_text("{}")
    assert_refused(cli(cwd, "--resume", target), "No run to resume at", "it is not a folder")


def test_resume_with_a_bad_parameter_leaves_the_run_as_it_was(tmp_path, cwd):
    run_dir = fake_run(tmp_path)
    before = snapshot(run_dir)
    assert_refused(cli(cwd, "--resume", run_dir, "--only", "03", "-p", "EPOCHS", "abc"), "EPOCHS of notebook 03_train")
    assert snapshot(run_dir) == before  # the lock taken for the check is gone again


def test_resume_of_a_run_another_process_writes_is_refused(tmp_path, cwd):
    run_dir = fake_run(tmp_path)
    with run_folder.acquire_lock(run_dir, "2026-01-01T00:00:00+0000"):
        before = snapshot(run_dir)
        out = cli(cwd, "--resume", run_dir, "--only", "01")
        assert_refused(out, f"Run {run_dir} is being written by process {os.getpid()}", "Wait for it to finish")
        assert snapshot(run_dir) == before
    assert sorted(p.name for p in run_dir.iterdir()) == ["manifest.json"]


# ------------------------------------------------------------------ the lock itself
def test_the_lock_is_exclusive_released_and_says_who_holds_it(tmp_path):
    run_dir = fake_run(tmp_path)
    assert run_folder.lock_holder(run_dir) is None
    lock = run_folder.acquire_lock(run_dir, "T0")
    holder = run_folder.lock_holder(run_dir)
    assert holder["pid"] == os.getpid() and holder["started_at"] == "T0"
    with pytest.raises(run_folder.RunLocked, match=rf"being written by process {os.getpid()} \(started T0\)"):
        run_folder.acquire_lock(run_dir, "T1", tries=2)
    lock.release()
    assert not (run_dir / run_folder.LOCK).exists() and run_folder.lock_holder(run_dir) is None
    with run_folder.acquire_lock(run_dir, "T2"):  # free again
        assert run_folder.lock_holder(run_dir)["started_at"] == "T2"


def test_a_lock_dies_with_its_process(tmp_path):
    run_dir = fake_run(tmp_path)
    code = (
        "import sys, time; from cifarkit import run_folder; "
        f"lock = run_folder.acquire_lock({str(run_dir)!r}, 'T'); print('locked', flush=True); time.sleep(120)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        assert run_folder.lock_holder(run_dir)["pid"] == proc.pid
        with pytest.raises(run_folder.RunLocked):
            run_folder.acquire_lock(run_dir, "T", tries=1)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
    assert (run_dir / run_folder.LOCK).exists()  # the file of a killed run stays behind ...
    assert run_folder.lock_holder(run_dir) is None  # ... but holds no lock: not a stale lock
    with run_folder.acquire_lock(run_dir, "T3"):
        assert run_folder.lock_holder(run_dir)["pid"] == os.getpid()


def test_run_folders_started_at_once_with_one_id_are_distinct(tmp_path):
    made, errors = [], []

    def make():
        try:
            made.append(run_folder.create_run_dir(tmp_path, "20260101-000000-smoke"))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=make) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    names = sorted(p.name for p in made)
    assert names == sorted(["20260101-000000-smoke"] + [f"20260101-000000-smoke-{k}" for k in range(2, 9)])
    with pytest.raises(ValueError, match="exists already"):
        run_folder.create_run_dir(tmp_path, "20260101-000000-smoke", exact=True)


def test_two_runs_started_in_the_same_second_get_their_own_folders(tmp_path, monkeypatch):
    """Two runs at once with one run id (the clock's second): two folders, two manifests, no error."""
    monkeypatch.setattr(runner, "new_run_id", lambda profile: f"20260101-000000-{profile}")

    def fake_execute(source, nb_out, params, run_dir, socket_dir, env=None):
        nb_out.write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))

    monkeypatch.setattr(runner, "execute_notebook", fake_execute)
    rendered = {"render_seconds": {}, "outputs": {}, "pdf_skipped": None, "error": None}
    monkeypatch.setattr(runner, "render_reports", lambda *a, **k: rendered)
    results, errors = [], []

    def run():
        try:
            results.append(
                runner.run_study("smoke", data="synthetic:40", out=tmp_path, only=["01"], pdf=False, log=str)
            )
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(r.run_id for r in results) == ["20260101-000000-smoke", "20260101-000000-smoke-2"]
    for r in results:
        manifest = json.loads((r.run_dir / "manifest.json").read_text())
        assert manifest["run_id"] == r.run_dir.name == r.run_id and manifest["status"] == "ok"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "20260101-000000-smoke",
        "20260101-000000-smoke-2",
        "index.html",
    ]


@pytest.mark.notebook
def test_two_resumes_of_one_run_at_once_exactly_one_runs(tmp_path, cwd):
    run_dir = fake_run(tmp_path)
    cmd = [sys.executable, RUN_ALL, "--resume", str(run_dir), "--only", "01", "--no-pdf"]
    procs = [subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in "ab"]
    outs = [p.communicate(timeout=600) for p in procs]
    codes = [p.returncode for p in procs]
    assert sorted(codes) == [0, 2], outs
    winner = codes.index(0)
    loser = subprocess.CompletedProcess(cmd, 2, *outs[1 - winner])
    assert_refused(loser, f"is being written by process {procs[winner].pid}")
    assert "Traceback" not in outs[winner][0] + outs[winner][1]
    manifest = json.loads((run_dir / "manifest.json").read_text())
    entry = manifest["notebooks"]["01_explore_data"]
    assert entry["status"] == "ok" and "previous_attempts" not in entry  # executed once, by one process
    assert len(manifest["resumed_at"]) == 1 and manifest["status"] == "ok"
    assert not (run_dir / run_folder.LOCK).exists()


# ------------------------------------------------------------------ the folder index belongs to its owner
@pytest.mark.notebook
def test_a_users_own_index_html_is_left_alone(tmp_path, cwd):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    mine = "<html><body>my own index</body></html>"
    (out_dir / "index.html").write_text(mine)
    out = cli(cwd, *SMOKE, "--only", "01", "--out", out_dir)
    assert out.returncode == 0, out.stdout + out.stderr
    assert (out_dir / "index.html").read_text() == mine
    notes = [ln for ln in out.stdout.splitlines() if "was not written by cifarkit" in ln]
    assert len(notes) == 1 and str(out_dir / "index.html") in notes[0]  # said once
    (run_dir,) = [p for p in out_dir.iterdir() if p.is_dir()]
    page = (run_dir / "index.html").read_text()
    assert '<meta name="generator" content="cifarkit">' in page and "../index.html" not in page
    console = out.stdout + out.stderr
    assert "Traceback" not in console and "ERROR" not in console and "KeyboardInterrupt" not in console


# ------------------------------------------------------------------ secrets
def test_secrets_mask_reveal_and_spot_credentials(monkeypatch):
    assert secrets.has_credentials(STORAGE_URL) and not secrets.has_credentials("postgresql://u@host:5432/db")
    assert not secrets.has_credentials("sqlite:///tune/optuna.db") and not secrets.has_credentials(3)
    assert secrets.mask(STORAGE_URL) == "postgresql://u:***@127.0.0.1:1/db"
    assert secrets.mask("postgresql+psycopg2://me:p%40ss@h:5432/db?sslmode=require") == (
        "postgresql+psycopg2://me:***@h:5432/db?sslmode=require"
    )
    assert secrets.mask("postgresql://me:p@ss@h/db") == "postgresql://me:***@h/db"  # an unencoded @ masked too
    assert secrets.mask("no url") == "no url" and secrets.is_masked(secrets.mask(STORAGE_URL))
    assert (
        secrets.mask_text(f"cannot open {STORAGE_URL}: refused")
        == "cannot open postgresql://u:***@127.0.0.1:1/db: refused"
    )
    assert secrets.env_name("STORAGE") == "CIFARKIT_SECRET_STORAGE"
    masked = secrets.mask(STORAGE_URL)
    monkeypatch.delenv("CIFARKIT_SECRET_STORAGE", raising=False)
    monkeypatch.delenv("CIFARKIT_STORAGE", raising=False)
    assert secrets.reveal("STORAGE", masked) == masked  # nothing to reveal it with
    assert secrets.reveal("STORAGE", "") == ""
    monkeypatch.setenv("CIFARKIT_SECRET_STORAGE", STORAGE_URL)
    assert secrets.reveal("STORAGE", masked) == STORAGE_URL
    assert secrets.reveal("STORAGE", "postgresql://u:***@otherhost/db") == "postgresql://u:***@otherhost/db"
    assert secrets.reveal("STORAGE", "sqlite:///x.db") == "sqlite:///x.db"
    monkeypatch.setenv("CIFARKIT_STORAGE", STORAGE_URL)
    assert secrets.reveal("STORAGE", "") == STORAGE_URL and secrets.reveal("STUDY_NAME", "") == ""
    assert secrets.mask_values({"a": [STORAGE_URL], "b": 1}) == {"a": [masked], "b": 1}
    assert secrets.secret_environment({"STORAGE": STORAGE_URL, "X": masked, "N": 3}) == {
        "CIFARKIT_SECRET_STORAGE": STORAGE_URL
    }


def test_credentials_are_found_and_masked_alike_in_urls_free_text_and_nested_values():
    """One rule for "holds a password" (carries_credentials) and for "what gets masked" (mask_text, mask_values)."""
    blank = "postgresql://u:pa ss@127.0.0.1:1/db"  # not a valid URL, but what a user may type: masked whole
    assert secrets.mask_text(blank) == "postgresql://u:***@127.0.0.1:1/db"
    assert secrets.mask_values({"STORAGE": f"  {blank} "}) == {"STORAGE": "  postgresql://u:***@127.0.0.1:1/db "}
    assert secrets.mask_text("see http://a:b@c and mail x@y") == "see http://a:***@c and mail x@y"
    masked = secrets.mask(STORAGE_URL)
    for value in (STORAGE_URL, masked, blank, f"tuned against {masked} on Monday", {"a": [1, ("x", STORAGE_URL)]}):
        assert secrets.carries_credentials(value), value
        assert PASSWORD not in str(secrets.mask_values(value)) and "pa ss" not in str(secrets.mask_values(value))
    for value in ("sqlite:///x.db", "postgresql://u@host:5432/db", "mail me@example.org", {"a": [1, None]}, 3):
        assert not secrets.carries_credentials(value), value
        assert secrets.mask_values(value) == value


def test_the_kernel_gets_the_password_through_its_environment_only(tmp_path, monkeypatch):
    """papermill receives the masked value (written into the notebook); the real one is in the environment
    while the kernel starts, and gone afterwards."""
    import papermill

    seen = {}

    def fake_papermill(nb, out, parameters, **kwargs):
        seen.update(parameters=dict(parameters), env=os.environ.get("CIFARKIT_SECRET_STORAGE"))

    monkeypatch.setattr(papermill, "execute_notebook", fake_papermill)
    monkeypatch.delenv("CIFARKIT_SECRET_STORAGE", raising=False)
    params = {"STORAGE": STORAGE_URL, "SEED": 0}
    masked = secrets.mask_values(params)
    source = REPO / "notebooks" / "02_tune.py"
    error = execute.execute_notebook(
        source, tmp_path / "x.ipynb", masked, tmp_path, str(tmp_path), env=secrets.secret_environment(params)
    )
    assert error is None
    assert seen == {"parameters": {"STORAGE": "postgresql://u:***@127.0.0.1:1/db", "SEED": 0}, "env": STORAGE_URL}
    assert "CIFARKIT_SECRET_STORAGE" not in os.environ


@pytest.mark.notebook
def test_a_password_in_a_parameter_reaches_no_file_and_no_console(tmp_path, cwd):
    out_dir = tmp_path / "out"
    out = cli(cwd, *SMOKE, "--only", "02", "-p", "STORAGE", STORAGE_URL, "--out", out_dir)
    console = out.stdout + out.stderr
    assert out.returncode == 1, console  # the study cannot connect to port 1: 02 fails, which is fine here
    assert PASSWORD not in console and "Traceback" not in out.stderr
    files = [p for p in out_dir.rglob("*") if p.is_file()]
    assert len(files) >= 4  # manifest, notebook, its HTML, the dashboards
    assert [str(p) for p in files if PASSWORD.encode() in p.read_bytes()] == []
    (run_dir,) = [p for p in out_dir.iterdir() if p.is_dir()]
    manifest = json.loads((run_dir / "manifest.json").read_text())
    masked = "postgresql://u:***@127.0.0.1:1/db"
    assert manifest["overrides"]["STORAGE"] == masked and masked in manifest["command"]
    entry = manifest["notebooks"]["02_tune"]
    assert entry["parameters"]["STORAGE"] == masked and entry["status"] == "failed"
    nb = json.loads((run_dir / "02_tune.ipynb").read_text())
    assert nb["metadata"]["papermill"]["parameters"]["STORAGE"] == masked


def _children(pid: int) -> set[int]:
    """The child processes of ``pid`` (Linux: /proc/PID/task/*/children)."""
    found = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found.update(int(c) for c in (task / "children").read_text().split())
        except OSError:
            pass
    return found


def _cmdline(pid: int) -> str:
    """The command line of ``pid``, or "" when it has exited since it was listed (a short-lived child)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_text()
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.notebook
@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads child processes from /proc (Linux)")
@pytest.mark.parametrize(
    "signum, code, said", [(signal.SIGTERM, 143, "terminated (SIGTERM)"), (signal.SIGINT, 130, "interrupted")]
)
def test_sigterm_or_ctrl_c_stops_a_run_in_the_middle_of_a_notebook(signum, code, said, tmp_path, cwd):
    """``kill PID`` (a scheduler's time limit, ``docker stop``) or ^C in the middle of a notebook: the notebook is
    recorded as interrupted, the lock released, the kernel gone (killed, not asked to shut down mid-cell, which
    printed the kernel's traceback into the console), the exit code and one line saying how to resume."""
    out_dir = tmp_path / "out"
    cmd = [sys.executable, RUN_ALL, *SMOKE, "--only", "03", "--out", str(out_dir)]
    # as from a terminal: SIGINT at its default (pytest-xdist's workers ignore it, and a child would inherit that)
    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    kernels: set[int] = set()

    def in_a_notebook():
        manifests = list(out_dir.glob("*/manifest.json"))
        running = manifests and '"status": "running"' in manifests[0].read_text()
        kernels.update(c for c in _children(proc.pid) if "ipykernel" in _cmdline(c))
        return bool(running and kernels)

    # settle: inside the notebook's cells
    stdout, stderr = signal_when(proc, in_a_notebook, signum, what="a notebook's kernel", within=240, settle=3)
    assert proc.returncode == code, stdout + stderr
    assert stderr == f"run_all.py: {said} (a run it started continues with --resume <its folder>)\n", stderr
    (run_dir,) = [p for p in out_dir.iterdir() if p.is_dir()]
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["notebooks"]["03_train"]["status"] == "interrupted" and manifest["status"] == "failed"
    assert "finished_at" in manifest and not (run_dir / run_folder.LOCK).exists()
    assert (run_dir / "index.html").exists() and (out_dir / "index.html").exists()
    deadline = time.monotonic() + 20
    while any(_alive(k) for k in kernels) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not any(_alive(k) for k in kernels), "the notebook's kernel outlived the run"


def _postgres_with_password(password: str):
    """Start a PostgreSQL server on loopback that only admits ``postgres`` with ``password``.

    Yields the URL with the password; skips (fails under ``CIFARKIT_REQUIRE_SERVICES=1``) without a server.
    """

    def unavailable(reason):
        if os.environ.get("CIFARKIT_REQUIRE_SERVICES") == "1":
            pytest.fail(f"CIFARKIT_REQUIRE_SERVICES=1 but {reason}")
        pytest.skip(reason)

    found = {
        n: (sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{n}")) or [shutil.which(n)])[-1] for n in ("initdb", "pg_ctl")
    }
    if not all(found.values()):
        unavailable("PostgreSQL server binaries (initdb, pg_ctl) are not installed (apt install postgresql)")
    prefix, owner = [], None
    if os.geteuid() == 0:  # the server refuses to run as root
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            unavailable("running as root and there is no 'postgres' user to run the server as")
        prefix = ["runuser", "-u", "postgres", "--"]
    root = Path(tempfile.mkdtemp(prefix="cifarkit-pg-"))
    sock, pwfile = root / "sock", root / "pw"
    sock.mkdir()
    pwfile.write_text(password + "\n")
    if owner:
        for path in (root, sock, pwfile):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = root / "data"
    try:
        run = dict(check=True, capture_output=True, text=True, timeout=120)
        subprocess.run(
            [*prefix, found["initdb"], "-D", data, "-U", "postgres", "--auth=scram-sha-256", f"--pwfile={pwfile}"],
            **run,
        )
        options = f"-p {port} -k {sock} -c listen_addresses=127.0.0.1"
        subprocess.run([*prefix, found["pg_ctl"], "-D", data, "-l", root / "log", "-w", "-o", options, "start"], **run)
        yield f"postgresql://postgres:{password}@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*prefix, found["pg_ctl"], "-D", data, "-m", "immediate", "-w", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def password_postgres():
    yield from _postgres_with_password(PASSWORD)


@pytest.mark.postgres
@pytest.mark.notebook
@pytest.mark.slow
def test_the_notebook_connects_with_the_real_password_that_no_file_holds(password_postgres, tmp_path, cwd, monkeypatch):
    """A server that needs the password: 02 succeeds only if the kernel got the real URL (-p STORAGE, then
    $CIFARKIT_STORAGE with nothing on the command line); still no file, log or console line holds it."""
    out_dir = tmp_path / "out"
    first = cli(cwd, *SMOKE, "--only", "02", "-p", "STORAGE", password_postgres, "--out", out_dir)
    monkeypatch.setenv("CIFARKIT_STORAGE", password_postgres)
    second = cli(cwd, *SMOKE, "--only", "02", "-p", "STUDY_NAME", "from-env", "--out", out_dir)
    for out in (first, second):
        console = out.stdout + out.stderr
        assert out.returncode == 0, console
        assert PASSWORD not in console and "Traceback" not in console
    assert [str(p) for p in out_dir.rglob("*") if p.is_file() and PASSWORD.encode() in p.read_bytes()] == []
    runs = sorted(p for p in out_dir.iterdir() if p.is_dir())
    assert len(runs) == 2
    for run_dir in runs:
        metrics = json.loads((run_dir / "metrics" / "02_tune.json").read_text())
        assert metrics["counts"]["complete"] >= 1  # trials ran against the password-protected server
        assert not (run_dir / "tune" / "optuna.db").exists()  # not the SQLite fallback


# ------------------------------------------------------------------ console noise, object addresses
def test_kernels_are_not_interrupted_when_they_are_shut_down(tmp_path):
    """jupyter_client interrupts a kernel before shutting it down; ours does not (the interrupt made ipykernel
    log "KeyboardInterrupt caught in kernel"), but an interrupt asked for outside a shutdown still goes."""
    manager = execute._kernel_manager_class(str(tmp_path))(kernel_name="python3")
    sent = []

    async def record(signum):
        sent.append(signum)

    manager._async_signal_kernel = record
    manager.shutting_down = True
    asyncio.run(manager._async_interrupt_kernel())
    assert sent == []
    manager.shutting_down = False
    with pytest.raises(RuntimeError, match="No kernel is running"):  # the normal path, no kernel to signal
        asyncio.run(manager.interrupt_kernel())


def test_errors_name_objects_instead_of_showing_their_address():
    class Method:
        pass

    text = execute.short_error(ValueError(f"skipped: {Method()} failed on {STORAGE_URL}"))
    assert text == "ValueError: skipped: Method failed on postgresql://u:***@127.0.0.1:1/db"


@pytest.mark.notebook
def test_no_validation_split_trains_and_evaluates_but_refuses_selection(tmp_path, cwd):
    """VAL_FRACTION 0: 03 trains and says there is no validation split; 05 (best CNN by validation) and 06
    (calibration and ensemble choice) stop at once with the one-line reason instead of choosing on test."""
    out_dir = tmp_path / "out"
    out = cli(cwd, *SMOKE, "--only", "03", "05", "06", "-p", "VAL_FRACTION", "0", "--out", out_dir)
    assert out.returncode == 1, out.stdout + out.stderr
    (run_dir,) = [p for p in out_dir.iterdir() if p.is_dir()]
    entries = json.loads((run_dir / "manifest.json").read_text())["notebooks"]
    assert entries["03_train"]["status"] == "ok"
    assert "no validation split (VAL_FRACTION = 0)" in (run_dir / "03_train.html").read_text()
    for name, purpose in [("05_baselines", "choose the best CNN"), ("06_architectures_and_ensembles", "ensembles")]:
        assert entries[name]["status"] == "failed"
        error = entries[name]["error"]
        assert error.startswith("ValueError: This step needs a validation split to") and purpose in error
        assert "VAL_FRACTION > 0" in error and "never used for choosing" in error
