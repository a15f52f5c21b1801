"""The whole study on a user's own image folder: 3 classes, mixed and non-square sizes, imbalance, a corrupt file.

Runs ``run_all.py`` itself (a subprocess, as a user would) with the smoke profile
and asserts that every report adapts to the data: the class names, the class
count, the image size and the skipped file.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cifarkit.paths import PROJECT_ROOT

pytestmark = [pytest.mark.notebook, pytest.mark.slow]

# class -> (number of images, list of source sizes cycled through)
CLASSES = {
    "dent": (36, [(64, 64)]),
    "ok": (60, [(64, 64), (100, 100), (120, 90)]),
    "scratch": (28, [(80, 48), (64, 64)]),
}


def write_defect_folder(root: Path) -> Path:
    """A tiny 'industrial defects' folder: one pattern per class, in several sizes, plus one corrupt file."""
    rng = np.random.default_rng(0)
    for _k, (name, (n, sizes)) in enumerate(CLASSES.items()):
        (root / name).mkdir(parents=True)
        for i in range(n):
            w, h = sizes[i % len(sizes)]
            img = rng.integers(90, 140, (h, w, 3)).astype(np.uint8)
            if name == "dent":  # a dark disc
                yy, xx = np.mgrid[:h, :w]
                img[(yy - h / 2) ** 2 + (xx - w / 2) ** 2 < (min(h, w) / 4) ** 2] = 30
            elif name == "scratch":  # a bright diagonal line
                for t in range(min(h, w)):
                    img[t, max(0, min(w - 1, t + rng.integers(-1, 2)))] = 250
            Image.fromarray(img).save(root / name / f"{name}_{i:03d}.png")
    (root / "ok" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    return root


@pytest.fixture(scope="module")
def custom_run(tmp_path_factory):
    data = write_defect_folder(tmp_path_factory.mktemp("defects") / "defects")
    out = tmp_path_factory.mktemp("custom_runs")
    proc = subprocess.run(
        [
            sys.executable,
            str(PROJECT_ROOT / "run_all.py"),
            "--profile",
            "smoke",
            "--data",
            str(data),
            "--image-size",
            "64",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=900,
    )
    runs = [p for p in out.iterdir() if p.is_dir()]
    assert len(runs) == 1, proc.stdout + proc.stderr
    return proc, runs[0]


def test_every_notebook_runs_on_the_custom_folder(custom_run):
    proc, run_dir = custom_run
    manifest = json.loads((run_dir / "manifest.json").read_text())
    failed = {k: v.get("error") for k, v in manifest["notebooks"].items() if v["status"] != "ok"}
    assert proc.returncode == 0 and not failed, (failed, proc.stdout[-3000:], proc.stderr[-3000:])
    assert set(manifest["notebooks"]) >= {
        "01_explore_data",
        "03_train",
        "04_evaluate",
        "05_baselines",
        "06_architectures_and_ensembles",
    }
    for entry in manifest["notebooks"].values():
        assert entry["parameters"].get("IMAGE_SIZE", 64) == 64


def test_reports_name_the_classes_and_count_the_skipped_file(custom_run):
    _, run_dir = custom_run
    names = sorted(CLASSES)
    explore = json.loads((run_dir / "metrics" / "01_explore_data.json").read_text())
    assert explore["class_names"] == names and explore["num_classes"] == 3
    assert explore["skipped_files"] == 1
    html = (run_dir / "01_explore_data.html").read_text()
    assert "broken.png" in html
    train = json.loads((run_dir / "metrics" / "03_train.json").read_text())
    assert train["data"]["class_names"] == names
    assert train["data"]["image_size"] == [64, 64]
    evaluate = json.loads((run_dir / "metrics" / "04_evaluate.json").read_text())
    assert sorted(evaluate["per_class"]) == names
    assert "balanced_acc" in evaluate
    baselines = json.loads((run_dir / "metrics" / "05_baselines.json").read_text())
    assert all(0.0 <= b["test_acc"] <= 1.0 for b in baselines["baselines"])
    arch = json.loads((run_dir / "metrics" / "06_architectures_and_ensembles.json").read_text())
    assert arch["data"]["class_names"] == names and len(arch["models"]) >= 2
    for nb in ("01_explore_data", "04_evaluate", "05_baselines", "06_architectures_and_ensembles"):
        text = (run_dir / f"{nb}.html").read_text()
        assert all(n in text for n in names), nb
