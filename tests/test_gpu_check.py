"""Tests of ``benchmarks/gpu_check.py``: its dry run exercises every part on the CPU, and it refuses to run without CUDA."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import load_script

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "gpu_check.py"
SECTIONS = ("time_to_accuracy", "throughput", "quick_profile")


def _run(*args, timeout=120, **env):
    environ = dict(os.environ, KERAS_BACKEND="torch", PYTHONPATH=str(REPO), **env)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *args], cwd=REPO, env=environ, capture_output=True, text=True, timeout=timeout
    )
    return done, time.perf_counter() - start


@pytest.fixture(scope="module")
def gpu_check():
    return load_script(SCRIPT, "gpu_check_under_test")


def test_dry_run_exercises_every_part_and_is_marked_as_such(tmp_path):
    out = tmp_path / "gpu_check.json"
    done, seconds = _run("--dry-run", "--no-quick", "--output", str(out), timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert seconds < 60, f"the dry run took {seconds:.0f} s"
    record = json.loads(out.read_text())
    assert record["dry_run"] is True and "DRY RUN" in record["note"] and "Not a GPU measurement" in record["note"]
    assert record["device"] == "cpu" and record["data"]["source"].startswith("synthetic")
    for key in ("command", "date", "machine", "versions", "goals", "seconds_total", *SECTIONS):
        assert key in record, key
    assert "--dry-run" in record["command"] and "gpu_name" in record["machine"] and "torch" in record["machine"]
    assert record["goals"]["fastnet_93_train_seconds"] == 10.0 and record["goals"]["standard_profile_seconds"] == 300

    tta = record["time_to_accuracy"]
    assert "error" not in tta, tta
    assert set(tta["time_to"]) == {"90%", "93%"} and len(tta["curve"]) == 2
    assert tta["resolved"] == {
        "device": "cpu",
        "mixed_precision": tta["resolved"]["mixed_precision"],
        "compiled": False,
        "channels_last": True,
        "input_pipeline": "torch",
    }
    assert tta["config"]["model"] == "fastnet" and tta["config"]["eval_test_every_epoch"] is True

    tp = record["throughput"]
    assert "error" not in tp, tp
    assert [r["model"] for r in tp["results"]] == ["fastnet", "resnet20", "resnet56"]
    for r in tp["results"]:
        assert r["img_per_s"] > 0 and r["batch"] == 8 and r["variant"] == "eager" and r["channels_last"] is True
        assert {"graph_breaks", "unique_graphs"} <= set(r["dynamo"]) and r["warmup"]["settled"]
    assert tp["pipeline_alone"]["img_per_s"] > 0
    assert record["quick_profile"]["skipped"] is True and record["quick_profile"]["reason"] == "--no-quick"
    assert "gpu_check DRY RUN" in done.stdout and "fastnet b8 eager" in done.stdout


def test_dry_run_of_the_quick_profile_part(tmp_path):
    out = tmp_path / "gpu_check.json"
    done, _ = _run("--dry-run", "--no-tta", "--no-throughput", "--output", str(out), timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads(out.read_text())
    quick = record["quick_profile"]
    assert quick["returncode"] == 0 and not quick["timed_out"] and quick["wall_seconds"] > 0, quick
    assert quick["command"].startswith("python run_all.py --profile smoke") and "--no-pdf" in quick["command"]
    assert record["time_to_accuracy"] == {"skipped": True, "reason": "--no-tta"}
    assert record["throughput"] == {"skipped": True, "reason": "--no-throughput"}


def test_without_cuda_it_refuses_in_one_line(tmp_path):
    out = tmp_path / "gpu_check.json"
    done, _ = _run("--output", str(out), timeout=60, CUDA_VISIBLE_DEVICES="")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "no CUDA device" in lines[0] and "--dry-run" in lines[0], done.stderr
    assert not out.exists()


def test_quick_command_and_timeout_kill(gpu_check, tmp_path):
    cmd = gpu_check.quick_command("../shared/x.tar.gz", "/tmp/out", dry_run=False)
    assert cmd[1:] == [
        str(REPO / "run_all.py"),
        "--profile",
        "quick",
        "--data",
        "../shared/x.tar.gz",
        "--no-pdf",
        "--out",
        "/tmp/out",
    ]
    start = time.perf_counter()
    result = gpu_check.run_timed(
        [sys.executable, "-c", "import time; print('started', flush=True); time.sleep(60)"], 2.0, tmp_path / "log"
    )
    assert result["timed_out"] and time.perf_counter() - start < 20 and "started" in result["log_tail"]


def test_time_to_threshold_with_and_without_warmup(gpu_check):
    history = [
        {"epoch": 1, "epoch_seconds": 30.0, "test_acc_monitor": 0.5},
        {"epoch": 2, "epoch_seconds": 2.0, "test_acc_monitor": 0.91},
        {"epoch": 3, "epoch_seconds": 2.2, "test_acc_monitor": 0.94},
        {"epoch": 4, "epoch_seconds": 1.8, "test_acc_monitor": 0.93},
    ]
    warmup = gpu_check.warmup_estimate([r["epoch_seconds"] for r in history])
    assert warmup == pytest.approx(28.0)
    hit = gpu_check.first_reaching(history, 0.93, warmup)
    assert hit == {"epoch": 3, "train_seconds": 34.2, "train_seconds_excluding_warmup": 6.2, "test_acc": 0.94}
    assert gpu_check.first_reaching(history, 0.99, warmup) is None
    assert gpu_check.warmup_estimate([5.0]) == 0.0


def test_data_resolution(gpu_check, tmp_path, monkeypatch):
    assert gpu_check.resolve_data("/anything", dry_run=True)[0].startswith("synthetic")
    archive = tmp_path / "cifar.tar.gz"
    archive.write_bytes(b"")
    assert gpu_check.resolve_data(str(archive), dry_run=False) == (str(archive), None)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        gpu_check.resolve_data(str(tmp_path / "missing.tar.gz"), dry_run=False)
    monkeypatch.setattr(gpu_check, "DEFAULT_DATA", tmp_path / "absent.tar.gz")
    source, note = gpu_check.resolve_data(None, dry_run=False)
    assert source == "synthetic:5000" and "--data PATH" in note and "mean nothing" in note
