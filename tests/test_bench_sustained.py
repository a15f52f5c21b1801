"""Tests of ``benchmarks/bench_sustained.py``: its summary on hand-made cycles (medians and per-cycle ratios
computed by hand) and its refusal of arguments that cannot run."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import load_script

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    return load_script(REPO / "benchmarks" / "bench_sustained.py", "bench_sustained_under_test")


def test_summary_takes_medians_of_arms_and_of_per_cycle_ratios(bench):
    cycles = [  # loop/keras 0.75, keras/torch 1.0; loop GFLOP/s 0.5 x 150 = 75 of 150: share 0.5
        {"torch": 200.0, "keras": 200.0, "burst": 210.0, "loop": 150.0, "matmul_gflop_per_s": 150.0},
        # 0.9, 1.1, share 0.5 x 99 / 90 = 0.55 (a slow minute: every arm slower, the matrix product too)
        {"torch": 100.0, "keras": 110.0, "burst": 200.0, "loop": 99.0, "matmul_gflop_per_s": 90.0},
        # 1.0, 0.95, share 0.5 x 171 / 190 = 0.45
        {"torch": 180.0, "keras": 171.0, "burst": 190.0, "loop": 171.0, "matmul_gflop_per_s": 190.0},
    ]
    s = bench.summarize(cycles, train_gflop_per_image=0.5)
    assert s["median_img_per_s"] == {"torch": 180.0, "keras": 171.0, "burst": 200.0, "loop": 150.0}
    # the median of the ratios (0.75, 0.9, 1.0) is 0.9; the ratio of the medians (150/171 = 0.877) would differ
    assert s["median_loop_over_keras"] == 0.9
    assert s["median_keras_over_torch"] == 1.0
    assert s["range_img_per_s"]["loop"] == [99.0, 171.0]
    assert s["range_img_per_s"]["burst"] == [190.0, 210.0]
    assert s["median_share_of_cycle_matmul"]["loop"] == 0.5  # median of 0.5, 0.55, 0.45
    # torch: 0.5 x 200 / 150 = 0.667, 0.5 x 100 / 90 = 0.556, 0.5 x 180 / 190 = 0.474
    assert s["median_share_of_cycle_matmul"]["torch"] == 0.556
    assert s["median_matmul_gflop_per_s"] == 150.0
    assert "median_share_of_cycle_best_yardstick" not in s  # cycles without the conv yardstick (older runs)


def test_summary_shares_the_faster_yardstick_of_each_cycle(bench):
    cycles = [  # conv faster: loop 0.5 x 150 / 250 = 0.3
        {
            "torch": 200.0,
            "keras": 200.0,
            "burst": 210.0,
            "loop": 150.0,
            "matmul_gflop_per_s": 150.0,
            "conv_gflop_per_s": 250.0,
        },
        # matmul faster: 0.5 x 99 / 90 = 0.55
        {
            "torch": 100.0,
            "keras": 110.0,
            "burst": 200.0,
            "loop": 99.0,
            "matmul_gflop_per_s": 90.0,
            "conv_gflop_per_s": 60.0,
        },
        # conv faster: 0.5 x 171 / 200 = 0.4275
        {
            "torch": 180.0,
            "keras": 171.0,
            "burst": 190.0,
            "loop": 171.0,
            "matmul_gflop_per_s": 190.0,
            "conv_gflop_per_s": 200.0,
        },
    ]
    s = bench.summarize(cycles, train_gflop_per_image=0.5)
    assert s["median_conv_gflop_per_s"] == 200.0
    assert s["median_share_of_cycle_best_yardstick"]["loop"] == 0.427  # median of 0.3, 0.55, 0.4275 (rounded)
    # torch: 0.5 x 200 / 250 = 0.4, 0.5 x 100 / 90 = 0.556, 0.5 x 180 / 200 = 0.45
    assert s["median_share_of_cycle_best_yardstick"]["torch"] == 0.45
    assert s["median_share_of_cycle_matmul"]["loop"] == 0.5  # the matmul share as before


def test_conv_yardstick_times_a_real_convolution(bench):
    rate = bench.conv_block(0.05, batch=2, channels=8, size=8)
    assert 0.01 < rate < 1e5  # GFLOP/s of a tiny real convolution: positive and finite


def test_refuses_a_missing_data_source_and_too_few_images(bench, tmp_path, capsys):
    with pytest.raises(SystemExit):
        bench.main(["--data", str(tmp_path / "absent.tar.gz"), "--output", str(tmp_path / "s.json")])
    assert "no such file or folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bench.main(["--images", "100", "--data", str(tmp_path), "--output", str(tmp_path / "s.json")])
    assert "--images >= 512" in capsys.readouterr().err
    assert not (tmp_path / "s.json").exists()


def test_summary_shares_the_measured_fma_peak_of_each_cycle(bench):
    base = {"torch": 200.0, "keras": 200.0, "burst": 210.0, "matmul_gflop_per_s": 150.0, "conv_gflop_per_s": 160.0}
    cycles = [  # loop 0.5 x 150 / 300 = 0.25, 0.5 x 120 / 200 = 0.3, 0.5 x 160 / 400 = 0.2
        {**base, "loop": 150.0, "fma_gflop_per_s": 300.0},
        {**base, "loop": 120.0, "fma_gflop_per_s": 200.0},
        {**base, "loop": 160.0, "fma_gflop_per_s": 400.0},
    ]
    s = bench.summarize(cycles, train_gflop_per_image=0.5)
    assert s["median_fma_gflop_per_s"] == 300.0
    assert s["median_share_of_cycle_fma_peak"]["loop"] == 0.25  # median of 0.25, 0.3, 0.2
    assert s["median_share_of_cycle_fma_peak"]["torch"] == 0.333  # 0.5 x 200 / 300, /200, /400: 0.333, 0.5, 0.25
    cycles[1]["fma_gflop_per_s"] = None  # a cycle where it could not be measured: no share claimed
    assert "median_share_of_cycle_fma_peak" not in bench.summarize(cycles, train_gflop_per_image=0.5)


@pytest.fixture(scope="module")
def fma():
    return load_script(REPO / "benchmarks" / "fma_peak.py", "fma_peak_under_test")


def test_fma_peak_runs_its_compiled_kernel_and_checks_its_result(fma, tmp_path):
    width = fma.widest(fma.cpu_flags())
    if width is None or fma.compiler() is None:
        result = fma.measure(0.05)
        assert result["gflop_per_s"] is None and result["why"]  # says why rather than reporting a number
        pytest.skip(f"no vector FMA or C compiler here: {result['why']}")
    result = fma.measure(0.05, threads=1)
    assert result["width_bits"] == width and result["threads"] == 1 and result["chains"] == fma.CHAINS
    assert 1.0 < result["gflop_per_s"] < 1e4  # a real rate: one core of any x86 CPU with FMA is in this range
    # the kernel's arithmetic, checked: every chain converges to 2.0 (its checksum is what run_kernel verifies)
    exe = fma.build(width, tmp_path)
    lanes = fma.WIDTHS[width]["lanes"]
    assert fma.run_kernel(exe, 2, 100_000, lanes)["gflop_per_s"] > 0
    bad = tmp_path / "bad"  # a "kernel" whose checksum is wrong is refused, not reported
    bad.write_text("#!/bin/sh\necho 0.5 7.0\n")
    bad.chmod(0o755)
    with pytest.raises(RuntimeError, match="checksum is 7.0"):
        fma.run_kernel(bad, 1, 10, lanes)


def test_fma_peak_names_what_is_missing(fma, monkeypatch):
    monkeypatch.setattr(fma, "cpu_flags", lambda: {"sse2"})
    assert "no AVX2+FMA or AVX-512" in fma.measure(0.05)["why"]
    monkeypatch.setattr(fma, "cpu_flags", lambda: {"fma", "avx2"})
    assert "lack avx512f" in fma.measure(0.05, width=512)["why"]
    monkeypatch.setattr(fma, "compiler", lambda: None)
    assert "no C compiler" in fma.measure(0.05)["why"]


def test_fma_peak_output_records_command_date_and_machine(fma, tmp_path, capsys):
    out = tmp_path / "peak.json"
    assert fma.main(["--seconds", "0.05", "--threads", "1", "--output", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    record = json.loads(out.read_text())
    assert record["result"] == printed  # the printed measurement, as measured (or its "why")
    assert record["command"].endswith(f"fma_peak.py --seconds 0.05 --threads 1 --output {out}")
    assert record["date"].endswith("UTC") and record["machine"]["cpu_count"] == os.cpu_count()
    assert set(record["git"]) == {"commit", "dirty"}  # which code measured it
    assert list(tmp_path.iterdir()) == [out]  # written whole, no temp file left
