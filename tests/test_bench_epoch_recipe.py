"""Tests of ``benchmarks/bench_epoch_recipe.py``: the summary of recorded runs on hand-made result files
(means and the seed standard deviation computed by hand), and its refusal of an unknown variant."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import load_script

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    return load_script(REPO / "benchmarks" / "bench_epoch_recipe.py", "bench_epoch_recipe_under_test")


def _write_run(folder: Path, name: str, val, test: float, seconds: float, rates=(900.0, 1000.0, 1100.0)):
    curve = [{"epoch": i + 1, "images_per_sec": r} for i, r in enumerate(rates)]
    counts = (
        {"train": 45000, "val": 5000, "test": 10000} if val is not None else {"train": 50000, "val": 0, "test": 10000}
    )
    data = {
        "command": f"python benchmarks/bench_time_to_accuracy.py --output {name}.json",
        "date": "2026-12-01T00:00:00+00:00",
        "machine": {"cpu": "test cpu"},
        "data": {"counts": counts},
        "training_precision": "bfloat16",
        "curve": curve,
        "final": {"val_acc": val, "test_acc": test, "test_acc_flip_tta": test + 0.005, "train_seconds": seconds},
        "val_acc_gaussian_noise": {"1": 0.8, "3": 0.7, "5": 0.6} if val is not None else None,
    }
    (folder / f"{name}.json").write_text(json.dumps(data))


def test_summary_groups_seeds_by_variant_with_hand_computed_means(bench, tmp_path):
    _write_run(tmp_path, "base_s0", 0.89, 0.88, 300.0)
    _write_run(tmp_path, "w125_s0", 0.90, 0.89, 450.0)
    _write_run(tmp_path, "w125_s1", 0.92, 0.91, 470.0)
    _write_run(tmp_path, "w125_s2", 0.91, 0.90, 460.0)
    summary = bench.summarize(tmp_path)
    rows = {v["variant"]: v for v in summary["variants"]}
    assert set(rows) == {"base", "w125"}
    assert rows["base"]["seeds"] == [0] and rows["base"]["sd_test_acc"] is None
    w = rows["w125"]
    assert w["seeds"] == [0, 1, 2]
    assert w["mean_val_acc"] == pytest.approx(0.91)
    assert w["mean_test_acc"] == pytest.approx(0.90)
    assert w["mean_train_seconds"] == pytest.approx(460.0)
    assert w["sd_test_acc"] == pytest.approx(0.01)  # sample sd of 0.89, 0.91, 0.90
    assert w["overrides"] == ['model_options={"width_multiplier": 1.25}']
    run = next(r for r in summary["runs"] if r["file"] == "base_s0.json")
    assert run["epochs"] == 3 and run["median_img_per_s"] == 1000.0 and run["val_acc_gaussian_noise_sev5"] == 0.6


def test_runs_on_all_training_images_are_their_own_rows_without_validation(bench, tmp_path, capsys):
    _write_run(tmp_path, "w150altflip_s0", 0.905, 0.898, 700.0)
    _write_run(tmp_path, "w150altflip+all_s0", None, 0.900, 780.0)
    _write_run(tmp_path, "w150altflip+all_s1", None, 0.904, 800.0)
    summary = bench.summarize(tmp_path)
    rows = {v["variant"]: v for v in summary["variants"]}
    assert set(rows) == {"w150altflip", "w150altflip+all"}
    refit = rows["w150altflip+all"]
    assert refit["mean_val_acc"] is None and refit["train_images"] == 50000
    assert refit["mean_test_acc"] == pytest.approx(0.902) and refit["mean_train_seconds"] == pytest.approx(790.0)
    assert refit["overrides"] == rows["w150altflip"]["overrides"] == bench.VARIANTS["w150altflip"]
    assert rows["w150altflip"]["train_images"] == 45000
    run = next(r for r in summary["runs"] if r["file"] == "w150altflip+all_s1.json")
    assert run["val_acc_gaussian_noise_sev5"] is None
    bench.print_table(summary)
    line = next(t for t in capsys.readouterr().out.splitlines() if t.startswith("w150altflip+all"))
    assert line.split()[1:4] == ["0,1", "-", "90.20%"]


def test_unknown_variant_is_refused_with_the_known_names(bench, tmp_path, capsys):
    with pytest.raises(SystemExit):
        bench.main(["--variants", "base,wider", "--out-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert "unknown variant(s) ['wider']" in err and "w125" in err
    assert not (tmp_path / "summary.json").exists()


def test_summarize_with_nothing_recorded_says_so_and_writes_nothing(bench, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        bench.main(["--summarize", "--out-dir", str(tmp_path)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"no recorded runs in {tmp_path}" in err and "--variants base --seeds 0" in err
    assert not (tmp_path / "summary.json").exists()


def test_summary_file_keeps_every_runs_command(bench, tmp_path, capsys):
    _write_run(tmp_path, "base_s0", 0.89, 0.88, 300.0)
    _write_run(tmp_path, "w125_s1", 0.92, 0.91, 470.0)
    assert bench.main(["--summarize", "--out-dir", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["run_commands"] == [
        "python benchmarks/bench_time_to_accuracy.py --output base_s0.json",
        "python benchmarks/bench_time_to_accuracy.py --output w125_s1.json",
    ]
    assert summary["command"].endswith(f"--summarize --out-dir {tmp_path}")
    assert "base" in capsys.readouterr().out
