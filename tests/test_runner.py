"""run_all.py's checks and bookkeeping: profiles, parameters, manifest, failure handling."""

import json
import os
import subprocess
import sys

import pytest
from conftest import REPO

from cifarkit import run_folder
from cifarkit.report import book, profiles, render, runner


def test_profiles_are_complete():
    names = profiles.list_profiles()
    assert {"smoke", "quick", "standard", "full"} <= set(names)
    for name in names:
        prof = profiles.load_profile(name)
        assert prof.description and prof.expected_minutes > 0
        # every parameter a profile sets is declared by its notebook
        runner.plan_run(name)


def test_unknown_profile_is_rejected_with_the_valid_ones():
    with pytest.raises(ValueError, match=r"Unknown profile 'fastest'.*smoke"):
        profiles.load_profile("fastest")


def test_unknown_parameter_and_notebook_are_rejected():
    with pytest.raises(ValueError, match=r"Unknown parameter\(s\) EPOCHZ.*Valid parameters:.*SEED"):
        runner.plan_run("smoke", {"EPOCHZ": 3}, only=["01", "03"])
    with pytest.raises(ValueError, match=r"Unknown notebook '09'"):
        runner.plan_run("smoke", only=["09"])


def test_parse_value_reads_like_yaml():
    assert runner.parse_value("3") == 3
    assert runner.parse_value("0.5") == 0.5
    assert runner.parse_value("true") is True
    assert runner.parse_value("resnet20") == "resnet20"
    assert runner.parse_value("[1, 2]") == [1, 2]


def test_cli_rejects_bad_input_before_running(tmp_path):
    out = subprocess.run(
        [sys.executable, str(REPO / "run_all.py"), "--profile", "nope", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2
    assert "Unknown profile 'nope'" in out.stderr and "standard" in out.stderr
    assert list(tmp_path.iterdir()) == []  # nothing was created
    out = subprocess.run(
        [
            sys.executable,
            str(REPO / "run_all.py"),
            "--profile",
            "smoke",
            "-p",
            "NOPE",
            "1",
            "--only",
            "01",
            "03",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2 and "Unknown parameter(s) NOPE" in out.stderr
    assert list(tmp_path.iterdir()) == []


def test_cli_list_shows_profiles_and_parameters():
    out = subprocess.run(
        [sys.executable, str(REPO / "run_all.py"), "--list"], capture_output=True, text=True, check=True
    )
    for word in ("smoke", "quick", "standard", "full", "01_explore_data", "DATA_SUBSET"):
        assert word in out.stdout


def test_describe_data_hashes_files(tmp_path):
    f = tmp_path / "a.tar.gz"
    f.write_bytes(b"abc")
    info = runner.describe_data(str(f))
    assert info["sha256"] == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert runner.describe_data(None)["source"].startswith("cifar10")


# ---------------------------------------------------------------- custom-domain options
def test_domain_parameters_accept_commas_or_spaces():
    assert runner.domain_parameters(64, "benign,malignant") == {"IMAGE_SIZE": 64, "CLASS_NAMES": "benign,malignant"}
    assert runner.domain_parameters(class_names="benign malignant")["CLASS_NAMES"] == "benign,malignant"
    assert runner.domain_parameters(class_names="sea lion, cat")["CLASS_NAMES"] == "sea lion,cat"
    assert runner.domain_parameters(class_names=["a", "b"])["CLASS_NAMES"] == "a,b"
    assert runner.domain_parameters() == {}
    for bad in (4, "big", 32.5):
        with pytest.raises(ValueError, match=r"--image-size must be a whole number"):
            runner.domain_parameters(image_size=bad)
    with pytest.raises(ValueError, match=r"distinct"):
        runner.domain_parameters(class_names="cat,cat")


def test_image_size_and_class_names_reach_every_notebook_that_declares_them():
    # synthetic data has 4 classes: 4 names fit (the count is checked before any notebook runs)
    _, plan = runner.plan_run("smoke", only=["01", "03"], data="synthetic:40", image_size=48, class_names="a b c d")
    for spec, params in plan:
        declared = runner.notebook_parameters(spec)
        assert params.get("IMAGE_SIZE") == (48 if "IMAGE_SIZE" in declared else None)
        assert params.get("CLASS_NAMES") == ("a,b,c,d" if "CLASS_NAMES" in declared else None)
    assert any("CLASS_NAMES" in params for _, params in plan)


def test_missing_notebook_file_is_named(monkeypatch, tmp_path):
    monkeypatch.setattr(profiles, "NOTEBOOKS_DIR", tmp_path)
    with pytest.raises(FileNotFoundError, match=r"01_explore_data.*does not exist.*--skip 01"):
        runner.plan_run("smoke", only=["01"])


def test_cli_rejects_bad_custom_options_and_resume_targets(tmp_path):
    def run(*args):
        return subprocess.run([sys.executable, str(REPO / "run_all.py"), *args], capture_output=True, text=True)

    out = run("--profile", "smoke", "--only", "01", "--image-size", "4", "--out", str(tmp_path))
    assert out.returncode == 2 and "--image-size must be a whole number" in out.stderr
    out = run("--resume", str(tmp_path / "nope"))
    assert out.returncode == 2 and "No run to resume" in out.stderr
    out = run("--resume", str(tmp_path), "--out", str(tmp_path))
    assert out.returncode == 2 and "--out does not go with --resume" in out.stderr
    assert list(tmp_path.iterdir()) == []


def _fake_run(tmp_path, **extra):
    """A run folder as an earlier session leaves it (only what resume reads before running anything)."""
    run_dir = tmp_path / "20260101-000000-smoke"
    run_dir.mkdir()
    manifest = {
        "run_id": run_dir.name,
        "profile": "smoke",
        "overrides": {},
        "data": {"source": "synthetic:40", "sha256": None, "argument": "synthetic:40"},
        "class_names": ["a", "b", "c", "d"],
        "notebooks": {},
        **extra,
    }
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    return run_dir


def test_resume_refuses_a_conflicting_profile_data_or_class_names(tmp_path):
    run_dir = _fake_run(tmp_path)
    with pytest.raises(ValueError, match=r"profile 'quick'.*used profile 'smoke'"):
        runner.run_study("quick", resume=run_dir, log=lambda *a: None)
    with pytest.raises(ValueError, match=r"--data synthetic:60.*used synthetic:40"):
        runner.run_study(data="synthetic:60", resume=run_dir, log=lambda *a: None)
    with pytest.raises(ValueError, match=r"class-names 'w,x,y,z'"):
        runner.run_study(class_names="w,x,y,z", resume=run_dir, only=["01"], log=lambda *a: None)
    # a live runner still writing the folder: it holds the run's lock
    with run_folder.acquire_lock(run_dir, "2026-01-01T00:00:00+0000"):
        assert run_folder.lock_holder(run_dir)["pid"] == os.getpid()
        with pytest.raises(ValueError, match=rf"being written by process {os.getpid()}"):
            runner.run_study(resume=run_dir, log=lambda *a: None)
        assert sorted(p.name for p in run_dir.iterdir()) == [run_folder.LOCK, "manifest.json"]  # nothing ran
    assert run_folder.lock_holder(run_dir) is None
    assert sorted(p.name for p in run_dir.iterdir()) == ["manifest.json"]


def test_resume_refuses_a_setting_of_a_notebook_it_keeps(tmp_path):
    run_dir = _fake_run(tmp_path, notebooks={"01_explore_data": {"status": "ok", "parameters": {"SEED": 0}}})
    before = (run_dir / "manifest.json").read_text()
    with pytest.raises(ValueError, match=r"parameters of 01_explore_data, which succeeded in an earlier session.*"):
        runner.run_study(
            resume=run_dir, only=["01", "03"], notebook_overrides={"01_explore_data": {"SEED": 5}}, log=lambda *a: None
        )
    assert (run_dir / "manifest.json").read_text() == before
    assert sorted(p.name for p in run_dir.iterdir()) == ["manifest.json"]


def test_kept_notebooks_are_pinned_to_the_values_they_ran_with():
    url = "postgresql://ana:***@db.example/optuna"
    manifest = {
        "notebooks": {
            "01_explore_data": {"status": "ok", "parameters": {"SEED": 0, "DATA": "/a", "TSNE_SAMPLES": 500}},
            "02_tune": {"status": "ok", "parameters": {"SEED": 1, "STORAGE": url, "EPOCHS": 2}},
            "03_train": {"status": "failed", "parameters": {"SEED": 0, "EPOCHS": 1}},
        }
    }
    overrides = {"SEED": 1, "DATA": "/b", "STORAGE": "postgresql://ana:other@db.example/optuna"}
    per_notebook = {"01_explore_data": {"TSNE_SAMPLES": 500}, "03_train": {"EPOCHS": 4}}
    # 01 ran with SEED 0 (now 1) and the same TSNE_SAMPLES; 02 with SEED 1 as now and a password (never pinned);
    # 03 failed and runs again with the new values; DATA is the run's own and never pinned
    assert runner.kept_parameter_pins(manifest, overrides, per_notebook) == {"01_explore_data": {"SEED": 0}}
    assert runner.kept_parameter_pins(manifest, {"EPOCHS": 3}, None) == {"02_tune": {"EPOCHS": 2}}
    assert runner.kept_parameter_pins(manifest, {"STORAGE": url}, None) == {}
    manifest["notebooks"]["02_tune"]["parameters"]["OPTIONS"] = {"storage": [url]}  # a password inside a mapping
    assert runner.kept_parameter_pins(manifest, {"OPTIONS": {"storage": []}}, None) == {}
    manifest["notebooks"]["02_tune"]["parameters"]["NOTE"] = f"tuned against {url} on Monday"  # free text
    assert runner.kept_parameter_pins(manifest, {"NOTE": "tuned again"}, None) == {}


@pytest.mark.notebook
@pytest.mark.slow
def test_resume_keeps_what_succeeded_and_runs_the_rest(tmp_path, monkeypatch):
    # session 1: no Chromium (PDF skipped, with the fix), custom class names, 03 fails on a missing PRETRAINED
    # (a value of the wrong type would be refused before any notebook ran: tests/test_hostile_run.py)
    monkeypatch.setenv("CIFARKIT_CHROMIUM", str(tmp_path / "no-such-browser"))
    missing_model = str(tmp_path / "no-such-model.keras")
    first = runner.run_study(
        "smoke",
        data="synthetic:40",
        out=tmp_path,
        only=["01", "03"],
        overrides={"PRETRAINED": missing_model},
        class_names="disc box tri plus",
        log=lambda *a: None,
    )
    assert {nb.name: nb.status for nb in first.notebooks} == {"01_explore_data": "ok", "03_train": "failed"}
    run_dir = first.run_dir
    m1 = json.loads((run_dir / "manifest.json").read_text())
    assert m1["class_names"] == ["disc", "box", "tri", "plus"]
    assert json.loads((run_dir / "metrics" / "01_explore_data.json").read_text())["class_names"] == m1["class_names"]
    assert "apt-get install chromium" in m1["renderers"]["pdf_skipped"]
    e01 = m1["notebooks"]["01_explore_data"]
    assert e01["outputs"]["html"] == "01_explore_data.html" and e01["outputs"]["pdf"] is None
    assert "apt-get install chromium" in e01["pdf_skipped"] and not (run_dir / "01_explore_data.pdf").exists()
    assert not (run_dir / run_folder.LOCK).exists()

    # session 2: resume with a valid EPOCHS and another SEED; 01 is kept (it ran with SEED 0), 03 runs again
    monkeypatch.delenv("CIFARKIT_CHROMIUM")
    second = runner.run_study(
        resume=run_dir, only=["01", "03"], overrides={"EPOCHS": 1, "PRETRAINED": "", "SEED": 1}, log=lambda *a: None
    )
    assert second.ok and second.run_dir == run_dir
    assert [(nb.name, nb.status, nb.reused) for nb in second.notebooks] == [
        ("01_explore_data", "ok", True),
        ("03_train", "ok", False),
    ]
    m2 = json.loads((run_dir / "manifest.json").read_text())
    e01b, e02 = m2["notebooks"]["01_explore_data"], m2["notebooks"]["03_train"]
    for key in ("started_at", "finished_at", "execute_seconds", "parameters"):
        assert e01b[key] == e01[key]  # the earlier entry and its timings are kept
    assert e02["status"] == "ok" and e02["resumed"] == 1 and e02["parameters"]["EPOCHS"] == 1
    assert e02["parameters"]["DATA"] == "synthetic:40"  # the run's data, not given again
    assert [a["status"] for a in e02["previous_attempts"]] == ["failed"]
    assert e02["previous_attempts"][0]["parameters"]["PRETRAINED"] == missing_model
    assert len(m2["resumed_at"]) == 1 and m2["resumed_at"][0]["notebooks"] == ["03_train"]
    assert m2["status"] == "ok" and m2["started_at"] == m1["started_at"]
    assert m2["duration_seconds"] == pytest.approx(
        m1["duration_seconds"] + m2["resumed_at"][0]["duration_seconds"], abs=0.02
    )
    assert m2["overrides"] == {"PRETRAINED": "", "EPOCHS": 1, "SEED": 1}
    # the kept 01 is pinned to the SEED it ran with, so the record and the book's command say what ran
    assert e01b["parameters"]["SEED"] == 0 and e02["parameters"]["SEED"] == 1
    assert m2["notebook_overrides"] == {"01_explore_data": {"SEED": 0}}
    argv = book.reproduce_command(m2)
    assert argv[argv.index("SEED") - 1 : argv.index("SEED") + 2] == ["-p", "SEED", "1"]
    assert argv[argv.index("01_explore_data.SEED") - 1 : argv.index("01_explore_data.SEED") + 2] == [
        "-p",
        "01_explore_data.SEED",
        "0",
    ]
    with pytest.raises(ValueError, match=r"01_explore_data, which succeeded in an earlier session"):
        runner.run_study(resume=run_dir, notebook_overrides={"01_explore_data": {"SEED": 2}}, log=lambda *a: None)
    assert json.loads((run_dir / "metrics" / "03_train.json").read_text())["epochs_run"] == 1
    if render.find_chromium():  # the kept notebook's report gets the PDF it lacked
        assert e01b["outputs"]["pdf"] == "01_explore_data.pdf" and (run_dir / "01_explore_data.pdf").is_file()
    assert "03_train" in (run_dir / "index.html").read_text()
    assert (tmp_path / "index.html").read_text().count(run_dir.name) >= 1
