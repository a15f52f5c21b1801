"""run_all.py's checks and bookkeeping: profiles, parameters, manifest, failure handling."""

import json
import subprocess
import sys

import pytest

from cifarkit import config, runner
from conftest import REPO


def test_profiles_are_complete():
    names = config.list_profiles()
    assert {"smoke", "quick", "standard", "full"} <= set(names)
    for name in names:
        prof = config.load_profile(name)
        assert prof.description and prof.expected_minutes > 0
        # every parameter a profile sets is declared by its notebook
        runner.plan_run(name)


def test_unknown_profile_is_rejected_with_the_valid_ones():
    with pytest.raises(ValueError, match=r"Unknown profile 'fastest'.*smoke"):
        config.load_profile("fastest")


def test_unknown_parameter_and_notebook_are_rejected():
    with pytest.raises(ValueError, match=r"Unknown parameter\(s\) EPOCHZ.*Valid parameters:.*SEED"):
        runner.plan_run("smoke", {"EPOCHZ": 3})
    with pytest.raises(ValueError, match=r"Unknown notebook '09'"):
        runner.plan_run("smoke", only=["09"])


def test_parse_value_reads_like_yaml():
    assert runner.parse_value("3") == 3
    assert runner.parse_value("0.5") == 0.5
    assert runner.parse_value("true") is True
    assert runner.parse_value("resnet20") == "resnet20"
    assert runner.parse_value("[1, 2]") == [1, 2]


def test_cli_rejects_bad_input_before_running(tmp_path):
    out = subprocess.run([sys.executable, str(REPO / "run_all.py"), "--profile", "nope", "--out", str(tmp_path)],
                         capture_output=True, text=True)
    assert out.returncode == 2
    assert "Unknown profile 'nope'" in out.stderr and "standard" in out.stderr
    assert list(tmp_path.iterdir()) == []  # nothing was created
    out = subprocess.run([sys.executable, str(REPO / "run_all.py"), "--profile", "smoke", "-p", "NOPE", "1",
                          "--out", str(tmp_path)], capture_output=True, text=True)
    assert out.returncode == 2 and "Unknown parameter(s) NOPE" in out.stderr
    assert list(tmp_path.iterdir()) == []


def test_cli_list_shows_profiles_and_parameters():
    out = subprocess.run([sys.executable, str(REPO / "run_all.py"), "--list"], capture_output=True, text=True,
                         check=True)
    for word in ("smoke", "quick", "standard", "full", "01_explore_data", "DATA_SUBSET"):
        assert word in out.stdout


def test_describe_data_hashes_files(tmp_path):
    f = tmp_path / "a.tar.gz"
    f.write_bytes(b"abc")
    info = runner.describe_data(str(f))
    assert info["sha256"] == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert runner.describe_data(None)["source"].startswith("cifar10")
