"""Class names and paths built to attack a reader's browser, through the whole study and into real Chromium.

A data folder whose name and class folders are HTML payloads runs the smoke study end to end; every
report, the study book and the dashboards are then opened in headless Chromium. Each payload would set
``window.__pwned`` if it ran: the tests assert that it never does, that the payload is shown as text,
and that every PDF printed in normal time (a payload that calls ``alert()`` blocks Chromium's printing).
"""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cifarkit.report import runner

pytestmark = [pytest.mark.notebook, pytest.mark.slow]

PAYLOADS = [
    "<img src=x onerror=window.__pwned=1>",
    "<svg onload=window.__pwned=2>",
    "[x](javascript:window.__pwned=3)",
]
FOLDER = "data <svg onload=window.__pwned=4> & co"


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile") / FOLDER
    rng = np.random.default_rng(0)
    for k, name in enumerate(PAYLOADS):
        (root / name).mkdir(parents=True)
        for i in range(25):
            img = np.zeros((32, 32, 3), np.uint8)
            img[..., k] = 150 + rng.integers(0, 100)
            img[8 * (i % 3) : 8 * (i % 3) + 12, 10:22] = 255
            Image.fromarray(img).save(root / name / f"{i}.png")
    out = tmp_path_factory.mktemp("hostile-runs")
    result = runner.run_study("smoke", data=str(root), out=out, log=lambda *a: None)
    return result, out


def test_the_study_runs_and_every_report_is_written(hostile_run):
    result, _ = hostile_run
    assert result.ok, [(nb.name, nb.error) for nb in result.notebooks]
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    for name, entry in manifest["notebooks"].items():
        assert entry["outputs"]["html"] and entry["outputs"]["pdf"], name
        assert entry["render_seconds"]["pdf"] < 60, (name, entry["render_seconds"])  # printing was not blocked
    assert (result.run_dir / "study.pdf").is_file()


def _pages(result, out) -> list[Path]:
    names = json.loads((result.run_dir / "manifest.json").read_text())["notebooks"]
    return [result.run_dir / f"{n}.html" for n in names] + [
        result.run_dir / "study.html",
        result.run_dir / "index.html",
        out / "index.html",
    ]


def test_no_payload_runs_in_a_real_browser(hostile_run, chromium_driver):
    result, out = hostile_run
    for page in _pages(result, out):
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
        if page.name.startswith("01_"):  # the class names are shown, as text
            assert all(p in text for p in PAYLOADS[:2]), page.name


def test_the_payloads_reach_the_metrics_unchanged(hostile_run):
    result, _ = hostile_run
    metrics = json.loads((result.run_dir / "metrics" / "01_explore_data.json").read_text())
    assert sorted(metrics["class_names"]) == sorted(PAYLOADS)  # data is kept as it is; only its display is escaped


def test_class_names_given_on_the_command_line_are_escaped_too(tmp_path, chromium_driver):
    names = ["<img src=x onerror=window.__pwned=5>", "b", "c", "<svg onload=window.__pwned=6>"]
    result = runner.run_study(
        "smoke", data="synthetic:40", out=tmp_path, only=["01"], class_names=names, log=lambda *a: None
    )
    assert result.ok, [(nb.name, nb.error) for nb in result.notebooks]
    for page in (result.run_dir / "01_explore_data.html", result.run_dir / "index.html"):
        chromium_driver.get(page.as_uri())
        assert chromium_driver.execute_script("return window.__pwned === undefined"), page.name
