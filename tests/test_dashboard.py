"""Dashboards: real runs, then their pages opened in real headless Chromium (Selenium + chromedriver).

Three runs share one output folder: a smoke run of 01 and 03, a second run of 01,
and a run whose 01 fails on a bad parameter. In the browser every <img> must have
loaded (``naturalWidth > 0``), every link must point at a file that exists, no
resource may come from the network, and a screenshot is saved. Without Chromium
or chromedriver the browser tests skip with the reason, except on CI
(``CIFARKIT_REQUIRE_SERVICES=1``), where they fail.
"""

import base64
import json
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from conftest import require_tool

from cifarkit.report import dashboard, headline, runner


def require(tool: str) -> str:
    return require_tool(tool)


# ------------------------------------------------------------------ tolerant metrics (no run needed)
def test_headline_metrics_tolerate_absent_and_differently_shaped_keys():
    h = dashboard.headline_metrics({})
    assert all(v is None for v in h.values())
    h = dashboard.headline_metrics(
        {"model": "resnet20", "epochs_run": 3, "test_acc": 0.8123, "test_acc_ci": [0.80, 0.82], "macro_f1": 0.81}
    )
    assert (h["model"], h["epochs"], h["test_acc"], h["test_acc_ci"], h["macro_f1"]) == (
        "resnet20",
        3,
        0.8123,
        [0.80, 0.82],
        0.81,
    )
    assert dashboard.headline_metrics({"test_acc_ci": {"lo": 0.1, "hi": 0.2}})["test_acc_ci"] == [0.1, 0.2]
    assert dashboard.headline_metrics({"test_acc_ci": [0.1]})["test_acc_ci"] is None
    assert dashboard.headline_metrics({"test_acc": "n/a"})["test_acc"] is None
    # 05: best baseline as a name, a dict, a number, or only a table of baselines
    table = {"logreg": {"test_acc": 0.39}, "knn": {"test_acc": 0.33}}
    assert dashboard.headline_metrics({"baselines": table})["best_baseline"] == ("logreg", 0.39)
    assert dashboard.headline_metrics({"best_baseline": "knn", "baselines": table})["best_baseline"] == ("knn", 0.33)
    assert dashboard.headline_metrics({"best_baseline": {"name": "svm", "test_acc": 0.41}})["best_baseline"] == (
        "svm",
        0.41,
    )
    assert dashboard.headline_metrics({"baselines": [{"name": "rf", "accuracy": 0.45}]})["best_baseline"] == (
        "rf",
        0.45,
    )
    assert dashboard.headline_metrics({"best_baseline": 0.5})["best_baseline"] == (None, 0.5)
    # 02 and 06
    h = dashboard.headline_metrics({"best_value": 0.7, "ensemble_gain": 0.012})
    assert h["best_value"] == 0.7 and h["ensemble_gain"] == 0.012


# ------------------------------------------------------------------ labelled results, captions, study book (no run needed)
def _png(colour: int) -> str:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 6), (colour, 0, 0)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def _figure_cell(colour: int) -> dict:
    return {
        "cell_type": "code",
        "source": "plot()",
        "outputs": [{"output_type": "display_data", "data": {"image/png": _png(colour)}}],
    }


def _fake_run(root: Path) -> Path:
    """A finished run of 02 and 06 written by hand: metrics, a notebook with figures under headings, a study book."""
    run = root / "20260101-000000-fake"
    (run / "metrics").mkdir(parents=True)
    hostile = "<img src=x onerror=alert(1)>"
    cells = [
        {"cell_type": "markdown", "source": "# Hyperparameter tuning\n\nText.\n\n## Optimization **history**"},
        _figure_cell(10),
        {"cell_type": "markdown", "source": ["## Parameter importances\n", "```\n# not a heading\n```\n"]},
        _figure_cell(20),
        _figure_cell(30),
        {"cell_type": "markdown", "source": f"### Slices of `{hostile}` \\_x"},
        _figure_cell(40),
    ]
    (run / "02_tune.ipynb").write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    (run / "metrics" / "02_tune.json").write_text(
        json.dumps({"model": "fastnet", "epochs_per_trial": 2, "epochs_run": 10, "best_value": 0.7, "best_trial": 3})
    )
    comparison = [
        {"model": "fastnet", "epochs": 10, "test_acc": 0.91, "ci_low": 0.90, "ci_high": 0.92, "val_acc": 0.9},
        {"model": "resnet20", "epochs": 1, "test_acc": 0.55, "ci_low": 0.53, "ci_high": 0.57, "val_acc": 0.5},
    ]
    (run / "metrics" / "06_architectures_and_ensembles.json").write_text(
        json.dumps(
            {
                "comparison": comparison,
                "ensemble_gain": 0.012,
                "ensemble_gain_ci": [-0.003, 0.027],
                "ensembles": {"best_method": "soft"},
            }
        )
    )
    (run / "study.html").write_text("<html></html>")
    (run / "study.bib").write_text("")
    entry = {"status": "ok", "parameters": {"MODEL": "fastnet"}}
    manifest = {
        "run_id": run.name,
        "profile": "smoke",
        "status": "ok",
        "started_at": "2026-01-01T00:00:00+0000",
        "finished_at": "2026-01-01T00:01:00+0000",
        "notebooks": {"02_tune": entry, "06_architectures_and_ensembles": entry},
        "study_book": {"html": "study.html", "pdf": None, "bib": "study.bib", "pdf_skipped": "PDF not requested"},
    }
    (run / "manifest.json").write_text(json.dumps(manifest))
    return run


def test_rows_label_validation_and_test_and_give_epochs_per_trial():
    tune = {"model": "fastnet", "epochs_per_trial": 2, "epochs_run": 10, "best_value": 0.7, "best_trial": 3}
    assert headline.model_text("02_tune", tune) == "fastnet (2 epochs per trial)"
    assert headline.result_lines("02_tune", tune) == [
        ("best validation accuracy", "70.00% (trial 3, 2 epochs per trial)")
    ]
    train = {"model": "simple_cnn", "epochs_run": 1, "val_acc": 0.5, "test_acc": 0.25, "test_acc_ci": [0.1, 0.4]}
    assert headline.model_text("03_train", train) == "simple_cnn (1 epoch)"
    assert headline.result_lines("03_train", train) == [
        ("validation accuracy", "50.00% after 1 epoch"),
        ("test accuracy", "25.00% [10.00%, 40.00%]"),
    ]
    labels = [
        label
        for label, _ in headline.result_lines("04_evaluate", {"test_acc": 0.5, "macro_f1": 0.4, "balanced_acc": 0.45})
    ]
    assert labels == ["test accuracy", "macro F1, test", "balanced accuracy, test"]
    assert headline.result_lines("06_architectures_and_ensembles", {}) == []


def test_run_page_of_a_hand_made_run(tmp_path):
    run = _fake_run(tmp_path)
    page = dashboard.write_run_dashboard(run).read_text()
    row = re.search(r'<tr class="ok" id="nb-02_tune">.*?</tr>', page, re.S).group(0)
    assert "fastnet (2 epochs per trial)" in row and "(10 epochs)" not in row
    assert "best validation accuracy:</span> 70.00% (trial 3, 2 epochs per trial)" in row
    row = re.search(r'<tr class="ok" id="nb-06_architectures_and_ensembles">.*?</tr>', page, re.S).group(0)
    assert "fastnet, 10 epochs, test accuracy:</span> 91.00% [90.00%, 92.00%]" in row
    assert "resnet20, 1 epoch, test accuracy:</span> 55.00% [53.00%, 57.00%]" in row
    assert "ensemble (soft vote) gain over its best member, test accuracy:</span> +1.20 pp [-0.30 pp, +2.70 pp]" in row
    # thumbnails captioned with the heading above them in the notebook, escaped; never a file name
    captions = re.findall(r"<figcaption[^>]*>(.*?)</figcaption>", page)
    assert captions == [
        "Optimization history",
        "Parameter importances (1 of 2)",
        "Parameter importances (2 of 2)",
        "Slices of &lt;img src=x onerror=alert(1)&gt; _x",
    ]
    assert "<img src=x" not in page and "02_tune_1.png</figcaption>" not in page
    # the study book, at the top: the files that exist, and why the PDF is missing
    top = page[: page.index("<h2>")]
    assert 'href="study.html"' in top and 'href="study.bib"' in top and 'href="study.pdf"' not in top
    assert "study.pdf skipped: PDF not requested" in top
    index = dashboard.write_index(tmp_path).read_text()
    assert "No comparison reports in this folder yet" in index and "python -m cifarkit compare RUN_A RUN_B" in index


def test_rebuild_of_an_empty_folder_and_a_bad_path(tmp_path):
    assert dashboard.rebuild(tmp_path) == [tmp_path / "index.html"]
    assert "No runs here yet" in (tmp_path / "index.html").read_text()
    out = subprocess.run(
        [sys.executable, "-m", "cifarkit.report.dashboard", str(tmp_path / "missing")], capture_output=True, text=True
    )
    assert out.returncode == 2 and "is not a folder" in out.stderr


# ------------------------------------------------------------------ three real runs
@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    quiet = dict(out=out, data="synthetic:40", log=lambda *a: None)
    first = runner.run_study("smoke", only=["01", "03"], run_id="20260101-000001-smoke", **quiet)
    second = runner.run_study(
        "smoke", only=["01"], overrides={"GRID_PER_CLASS": 2}, pdf=False, run_id="20260101-000002-smoke", **quiet
    )
    # 01 fails inside its kernel on data that is not there (a badly typed parameter is refused before any run)
    failing = runner.run_study(
        "smoke",
        only=["01"],
        pdf=False,
        run_id="20260101-000003-smoke",
        **{**quiet, "data": str(out.parent / "no-such-data.tar.gz")},
    )
    return out, first, second, failing


@pytest.mark.notebook
@pytest.mark.slow
def test_run_pages_hold_metrics_links_figures_and_failures(runs):
    out, first, second, failing = runs
    assert first.ok and second.ok and not failing.ok
    page = (first.run_dir / "index.html").read_text()
    metrics = json.loads((first.run_dir / "metrics" / "03_train.json").read_text())
    assert f"{100 * metrics['test_acc']:.2f}%" in page and "simple_cnn (1 epoch)" in page
    row = re.search(r'<tr class="ok" id="nb-03_train">.*?</tr>', page, re.S).group(0)
    assert f"validation accuracy:</span> {100 * metrics['val_acc']:.2f}% after 1 epoch" in row
    assert f"test accuracy:</span> {100 * metrics['test_acc']:.2f}% [" in row
    assert "<figcaption" in page and "Learning curves</figcaption>" in page  # captions: the notebook's headings
    assert not re.search(r"<figcaption[^>]*>[^<]*\.png</figcaption>", page)
    assert 'href="study.html"' in page[: page.index("<h2>")]  # the study book, at the top
    for name in ("01_explore_data", "03_train"):
        nb = json.loads((first.run_dir / f"{name}.ipynb").read_text())
        pngs = sum(  # PNG outputs, and the static images of interactive figures
            "image/png" in o.get("data", {}) or 'class="ck-static"' in "".join(o.get("data", {}).get("text/html", ""))
            for c in nb["cells"]
            for o in c.get("outputs", [])
        )
        figures = sorted((first.run_dir / "figures").glob(f"{name}_*.png"))
        assert len(figures) == pngs > 0 and all(f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for f in figures)
        shown = re.findall(rf'<img src="figures/{name}_\d+\.png"', page)
        assert len(shown) == min(pngs, dashboard.THUMBNAILS_PER_NOTEBOOK)
        for ext in ("html", "ipynb"):
            assert f'href="{name}.{ext}"' in page
    manifest = json.loads((first.run_dir / "manifest.json").read_text())
    if manifest["renderers"]["pdf"]:
        assert 'href="01_explore_data.pdf"' in page and 'href="03_train.pdf"' in page
    else:
        assert "PDF skipped" in page
    assert manifest["profile_description"] in page and manifest["git"]["commit"] in page
    assert 'href="../index.html"' in page
    # the failed notebook: a red row with its error
    failed = (failing.run_dir / "index.html").read_text()
    row = re.search(r'<tr class="failed" id="nb-01_explore_data">.*?</tr>', failed, re.S).group(0)
    assert "FileNotFoundError" in row and failing.notebooks[0].error[:40] in row.replace("&#x27;", "'")
    assert "PDF skipped" in (second.run_dir / "index.html").read_text()


@pytest.mark.notebook
@pytest.mark.slow
def test_index_lists_runs_newest_first_and_rebuild_reproduces_it(runs):
    out, first, second, failing = runs
    index = (out / "index.html").read_text()
    ids = re.findall(r'<a href="(\d{8}-\d{6}-smoke)/index.html">', index)
    assert ids == [failing.run_id, second.run_id, first.run_id]  # by started_at, newest first
    assert "3 runs, newest first" in index
    assert re.search(rf'<tr class="failed"><td><a href="{failing.run_id}/index.html">', index)
    acc = json.loads((first.run_dir / "metrics" / "03_train.json").read_text())["test_acc"]
    assert f"{100 * acc:.2f}%" in index
    assert "Comparisons of runs" in index and "python -m cifarkit compare RUN_A RUN_B" in index
    before = {p: p.read_bytes() for p in [out / "index.html"] + [r.run_dir / "index.html" for r in runs[1:]]}
    res = subprocess.run([sys.executable, "-m", "cifarkit.report.dashboard", str(out)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert {p: p.read_bytes() for p in before} == before  # the runner's pages and a rebuild agree


# ------------------------------------------------------------------ in a real browser
@pytest.fixture(scope="module")
def browser(chromium_driver):
    return chromium_driver  # tests/conftest.py: real headless Chromium through chromedriver


def open_and_check(driver, page: Path, screenshot: Path) -> dict:
    """Open ``page``; every image loaded, every link resolves to an existing file, nothing from the network."""
    driver.get(page.resolve().as_uri())
    assert driver.execute_script("return document.readyState") == "complete"
    images = driver.execute_script(
        "return Array.from(document.images).map(i => ({src: i.getAttribute('src'), done: i.complete, w: i.naturalWidth}))"
    )
    broken = [i["src"][:80] for i in images if not (i["done"] and i["w"] > 0)]
    assert not broken, f"images that did not load on {page.name}: {broken}"
    links = driver.execute_script(
        "return Array.from(document.querySelectorAll('a[href]')).map(a => ({raw: a.getAttribute('href'), href: a.href}))"
    )
    for link in links:
        if link["raw"].startswith("#"):
            continue
        url = urlparse(link["href"])
        assert url.scheme == "file", f"{page.name} links outside the run: {link['raw']}"
        assert Path(unquote(url.path)).is_file(), f"{page.name}: the link {link['raw']} leads nowhere"
    resources = driver.execute_script("return performance.getEntriesByType('resource').map(r => r.name)")
    assert all(r.startswith(("file:", "data:")) for r in resources), resources
    driver.save_screenshot(str(screenshot))
    data = screenshot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    return {"images": images, "links": [link["raw"] for link in links]}


@pytest.mark.notebook
@pytest.mark.slow
def test_dashboards_and_reports_work_in_chromium(runs, browser, tmp_path):
    out, first, second, failing = runs
    seen = open_and_check(browser, out / "index.html", tmp_path / "index.png")
    assert len(seen["links"]) == 3
    run_page = open_and_check(browser, first.run_dir / "index.html", tmp_path / "run.png")
    assert len(run_page["images"]) >= 6
    assert browser.execute_script("return document.querySelectorAll('tr.failed').length") == 0
    # every page a dashboard links to opens too: run pages, and the HTML reports with their embedded figures
    for run in (second, failing):
        open_and_check(browser, run.run_dir / "index.html", tmp_path / f"{run.run_id}.png")
    browser.get((failing.run_dir / "index.html").as_uri())
    color = browser.execute_script("return getComputedStyle(document.querySelector('tr.failed td')).color")
    assert color == "rgb(183, 28, 28)"  # the failed notebook is shown in red
    for name in ("01_explore_data", "03_train"):
        report = open_and_check(browser, first.run_dir / f"{name}.html", tmp_path / f"{name}.png")
        assert len(report["images"]) >= 3 and all(i["src"].startswith("data:image/png") for i in report["images"])
        assert browser.find_element("id", "ck-facts").is_displayed()
        assert browser.find_element("id", "ck-provenance").is_displayed()
