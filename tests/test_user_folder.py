"""The whole study on a user's own image folder, as awkward and as hostile as one can be, in one run.

The folder has 3 classes in mixed and non-square sizes, imbalanced, with a corrupt file; its name and its
class folders carry HTML and markdown payloads. ``run_all.py`` runs the smoke profile on it (a subprocess,
as a user would, at ``--image-size 64``), once for this module. The tests assert that every report adapts
to the data (the class names, the class count, the image size and the skipped file), and, in a real
headless Chromium, that no payload runs in any report, the study book or the dashboards: each would set
``window.__pwned`` if it ran. A payload that calls ``alert()`` blocks Chromium's printing, so every PDF
must also have printed in normal time.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cifarkit.paths import PROJECT_ROOT
from cifarkit.report import runner

pytestmark = [pytest.mark.notebook, pytest.mark.slow]

# class folder -> (number of images, list of source sizes cycled through, the pattern drawn)
CLASSES = {
    "dent <img src=x onerror=window.__pwned=1>": (36, [(64, 64)], "disc"),
    "ok <svg onload=window.__pwned=2>": (60, [(64, 64), (100, 100), (120, 90)], None),
    "scratch [x](javascript:window.__pwned=3)": (28, [(80, 48), (64, 64)], "line"),
}
NAMES = sorted(CLASSES)
CORRUPT_IN = "ok <svg onload=window.__pwned=2>"  # the class folder that holds broken.png
FOLDER = "defects <svg onload=window.__pwned=4> & co"


def write_defect_folder(root: Path) -> Path:
    """A tiny 'industrial defects' folder: one pattern per class, in several sizes, plus one corrupt file."""
    rng = np.random.default_rng(0)
    for name, (n, sizes, pattern) in CLASSES.items():
        (root / name).mkdir(parents=True)
        for i in range(n):
            w, h = sizes[i % len(sizes)]
            img = rng.integers(90, 140, (h, w, 3)).astype(np.uint8)
            if pattern == "disc":  # a dark disc
                yy, xx = np.mgrid[:h, :w]
                img[(yy - h / 2) ** 2 + (xx - w / 2) ** 2 < (min(h, w) / 4) ** 2] = 30
            elif pattern == "line":  # a bright diagonal line
                for t in range(min(h, w)):
                    img[t, max(0, min(w - 1, t + rng.integers(-1, 2)))] = 250
            Image.fromarray(img).save(root / name / f"{name.split()[0]}_{i:03d}.png")
    (root / CORRUPT_IN / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    return root


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory):
    data = write_defect_folder(tmp_path_factory.mktemp("defects") / FOLDER)
    out = tmp_path_factory.mktemp("folder_runs")
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
    return proc, runs[0], out


def test_every_notebook_runs_and_every_report_is_written(folder_run):
    proc, run_dir, _ = folder_run
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
    for name, entry in manifest["notebooks"].items():
        assert entry["parameters"].get("IMAGE_SIZE", 64) == 64
        assert entry["outputs"]["html"] and entry["outputs"]["pdf"], name
        assert entry["render_seconds"]["pdf"] < 60, (name, entry["render_seconds"])  # printing was not blocked
    assert (run_dir / "study.pdf").is_file()


def test_the_metrics_keep_the_class_names_as_they_are_and_count_the_skipped_file(folder_run):
    _, run_dir, _ = folder_run
    explore = json.loads((run_dir / "metrics" / "01_explore_data.json").read_text())
    assert explore["class_names"] == NAMES and explore["num_classes"] == 3  # data is kept; only display escapes
    assert explore["skipped_files"] == 1
    assert "broken.png" in (run_dir / "01_explore_data.html").read_text()
    train = json.loads((run_dir / "metrics" / "03_train.json").read_text())
    assert train["data"]["class_names"] == NAMES
    assert train["data"]["image_size"] == [64, 64]
    evaluate = json.loads((run_dir / "metrics" / "04_evaluate.json").read_text())
    assert sorted(evaluate["per_class"]) == NAMES
    assert "balanced_acc" in evaluate
    baselines = json.loads((run_dir / "metrics" / "05_baselines.json").read_text())
    assert all(0.0 <= b["test_acc"] <= 1.0 for b in baselines["baselines"])
    arch = json.loads((run_dir / "metrics" / "06_architectures_and_ensembles.json").read_text())
    assert arch["data"]["class_names"] == NAMES and len(arch["models"]) >= 2


def _pages(run_dir: Path, out: Path) -> list[Path]:
    names = json.loads((run_dir / "manifest.json").read_text())["notebooks"]
    return [run_dir / f"{n}.html" for n in names] + [run_dir / "study.html", run_dir / "index.html", out / "index.html"]


def test_no_payload_runs_in_a_real_browser_and_the_reports_show_the_names_as_text(folder_run, chromium_driver):
    _, run_dir, out = folder_run
    for page in _pages(run_dir, out):
        chromium_driver.get(page.as_uri())
        assert chromium_driver.execute_script("return document.readyState") == "complete"
        assert chromium_driver.execute_script("return window.__pwned === undefined"), page.name
        chromium_driver.execute_script("window.scrollTo(0, document.body.scrollHeight)")  # lazy handlers too
        assert chromium_driver.execute_script("return window.__pwned === undefined"), page.name
        text = chromium_driver.execute_script("return document.body.innerText")
        links = chromium_driver.execute_script(
            "return Array.from(document.querySelectorAll('a[href]')).map(a => a.getAttribute('href'))"
        )
        assert not [h for h in links if h.strip().lower().startswith("javascript:")], page.name
        if page.name.split("_")[0] in {"01", "04", "05", "06"}:  # the reports name every class, as text
            assert all(n in text for n in NAMES), page.name


def test_class_names_given_on_the_command_line_are_escaped_too(tmp_path, chromium_driver):
    names = ["<img src=x onerror=window.__pwned=5>", "b", "c", "<svg onload=window.__pwned=6>"]
    result = runner.run_study(
        "smoke", data="synthetic:40", out=tmp_path, only=["01"], class_names=names, log=lambda *a: None
    )
    assert result.ok, [(nb.name, nb.error) for nb in result.notebooks]
    for page in (result.run_dir / "01_explore_data.html", result.run_dir / "index.html"):
        chromium_driver.get(page.as_uri())
        assert chromium_driver.execute_script("return window.__pwned === undefined"), page.name
