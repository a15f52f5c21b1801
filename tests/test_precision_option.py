"""run_all.py --precision: what mixed_precision="auto" means for a whole run, recorded in its manifest."""

import json

import pytest

import run_all
from cifarkit import backend
from cifarkit.training import TrainConfig
from cifarkit.training.precision import ENV_MIXED_PRECISION, autocast_dtype, default_mixed_precision


def test_the_environment_decides_what_auto_means_and_explicit_settings_stay(monkeypatch):
    torch = backend.torch()
    monkeypatch.setenv(ENV_MIXED_PRECISION, "off")
    assert autocast_dtype(TrainConfig(model="fastnet"), "cpu") is None
    assert autocast_dtype(TrainConfig(model="fastnet", mixed_precision="bf16"), "cpu") == torch.bfloat16
    monkeypatch.setenv(ENV_MIXED_PRECISION, "bf16")
    assert autocast_dtype(TrainConfig(model="fastnet"), "cpu") == torch.bfloat16
    assert autocast_dtype(TrainConfig(model="fastnet", mixed_precision="off"), "cpu") is None
    monkeypatch.setenv(ENV_MIXED_PRECISION, "half")
    with pytest.raises(ValueError, match=f"{ENV_MIXED_PRECISION}='half' is not one of"):
        default_mixed_precision()
    monkeypatch.delenv(ENV_MIXED_PRECISION)
    assert default_mixed_precision() == "auto"


def test_auto_keeps_imagenet_backbones_in_float32_on_cpu(monkeypatch):
    monkeypatch.delenv(ENV_MIXED_PRECISION, raising=False)
    # measured slower in bf16 on CPU (benchmarks/results/backbones.json), whatever the CPU's bf16 units
    assert autocast_dtype(TrainConfig(model="mobilenet_v2"), "cpu") is None
    expected = backend.torch().bfloat16 if backend.cpu_native_bf16() else None
    assert autocast_dtype(TrainConfig(model="fastnet"), "cpu") == expected


def test_run_all_precision_off_trains_float32_and_the_manifest_says_so(monkeypatch, tmp_path):
    monkeypatch.delenv(ENV_MIXED_PRECISION, raising=False)
    # monkeypatch restores the variable that run_all sets for its kernels
    monkeypatch.setenv(ENV_MIXED_PRECISION, "")
    code = run_all.main(
        ["--profile", "smoke", "--data", "synthetic:20", "--out", str(tmp_path), "--only", "03", "--no-pdf"]
        + ["--precision", "off", "-p", "MODEL", "fastnet", "-p", "RECIPE", "fast"]
    )
    assert code == 0
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["precision"] == "off"
    metrics = json.loads((run_dir / "models" / "fastnet" / "metrics.json").read_text())
    assert metrics["mixed_precision"] == "off"  # float32 even on a CPU with bf16 units
