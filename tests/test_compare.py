"""``python -m cifarkit compare``: real smoke runs compared image by image, and the refusals.

Three runs of 03 and 04 share one module fixture (each ~25 s on 2 cores): A (one epoch),
B (two epochs: the same split, so the same test images) and a run with another SEED,
whose split (and so test images) differ. The report's numbers are checked against what
is computed here from the runs' stored predictions and metrics; the refusals exit 2
with one line and no traceback. Other cases copy these run folders and edit the copy.
"""

import base64
import html
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from cifarkit import run_folder
from cifarkit.analysis import stats
from cifarkit.report import compare, render, runner, safety

DATA = "synthetic:60"  # 24 test images, 6 per class
ENV = {**os.environ, "KERAS_BACKEND": "torch"}
HOSTILE = "<svg onload=alert(1)>"


def cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "cifarkit", "compare", *map(str, args)], capture_output=True, text=True, env=ENV
    )


def assert_refused(out, *phrases):
    assert out.returncode == 2, out.stdout + out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cifarkit compare: error: "), out.stderr
    assert "Traceback" not in out.stderr + out.stdout
    for phrase in phrases:
        assert phrase in lines[0], (phrase, lines[0])
    return lines[0]


def section(page: str, anchor: str) -> str:
    return re.search(rf'<section id="{anchor}">(.*?)</section>', page, re.S).group(1)


def cells(row_html: str) -> list[str]:
    return [re.sub(r"<[^>]+>", " ", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row_html, re.S)]


# ------------------------------------------------------------------ without runs
def test_fewer_than_two_runs_and_a_folder_that_is_not_a_run(tmp_path):
    assert_refused(cli(tmp_path), "at least two runs; got 1")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert_refused(cli(tmp_path / "a", tmp_path / "b"), f"{tmp_path / 'a'} is not a run folder", "manifest.json")
    assert_refused(cli(tmp_path / "missing", tmp_path / "b"), "is not a run folder: it does not exist")
    (tmp_path / "c" / "manifest.json").parent.mkdir()
    (tmp_path / "c" / "manifest.json").write_text("[1, 2]")
    assert_refused(cli(tmp_path / "c", tmp_path / "b"), "not a run's manifest")
    assert not any(p.name.startswith("compare-") for p in tmp_path.iterdir())


# ------------------------------------------------------------------ real runs
@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CIFARKIT_DATA_DIR", str(tmp_path_factory.mktemp("compare-cache")))
        quiet = dict(data=DATA, out=out, only=["03", "04"], pdf=False, log=lambda *a: None)
        a = runner.run_study("smoke", run_id="run-a", overrides={"DATA_SUBSET": 0}, **quiet)
        b = runner.run_study("smoke", run_id="run-b", overrides={"DATA_SUBSET": 0, "EPOCHS": 2}, **quiet)
        c = runner.run_study("smoke", run_id="run-seed1", overrides={"DATA_SUBSET": 0, "SEED": 1}, **quiet)
    assert a.ok and b.ok and c.ok
    return SimpleNamespace(out=out, a=a.run_dir, b=b.run_dir, seed1=c.run_dir)


@pytest.fixture(scope="module")
def paired(runs):
    """``python -m cifarkit compare run-a run-b``: the written report."""
    res = cli(runs.a, runs.b)
    assert res.returncode == 0, res.stdout + res.stderr
    folder = runs.out / "compare-run-a-vs-run-b"
    return SimpleNamespace(
        folder=folder,
        stdout=res.stdout,
        page=(folder / "index.html").read_text(),
        result=json.loads((folder / "compare.json").read_text()),
        pa=run_folder.load_predictions(runs.a),
        pb=run_folder.load_predictions(runs.b),
    )


@pytest.mark.notebook
@pytest.mark.slow
def test_mcnemar_and_the_paired_difference_match_a_hand_computation(runs, paired):
    y, pa, pb = paired.pa["y_true"], paired.pa["y_pred"], paired.pb["y_pred"]
    b = int(np.sum((pa == y) & (pb != y)))
    c = int(np.sum((pa != y) & (pb == y)))
    assert b + c > 0  # the two runs disagree somewhere, so the test below means something
    (pair,) = paired.result["pairs"]
    assert (pair["mcnemar"]["b"], pair["mcnemar"]["c"]) == (b, c)
    row = re.search(r"<tr><td>A vs B</td>.*?</tr>", section(paired.page, "mcnemar"), re.S).group(0)
    both_right, b_cell, c_cell, both_wrong = cells(row)[1:5]
    assert (int(b_cell), int(c_cell)) == (b, c)
    assert int(both_right) + b + c + int(both_wrong) == len(y)
    mc = stats.mcnemar(y, pa, pb)
    assert html.escape(stats.format_p(mc["p_value"])) in row and pair["mcnemar"]["p_value"] == pytest.approx(
        mc["p_value"]
    )
    # the difference B - A and its paired-bootstrap interval, with the runs' own N_BOOT (smoke: 200) and seed
    manifest = json.loads((runs.a / "manifest.json").read_text())
    n_boot = manifest["notebooks"]["04_evaluate"]["parameters"]["N_BOOT"]
    ref = stats.paired_difference_ci(y, pb, pa, n_boot=n_boot, seed=0)
    assert paired.result["bootstrap"]["n_boot"] == n_boot == 200
    assert pair["difference"] == pytest.approx(ref["difference"]) == pytest.approx(np.mean(pb == y) - np.mean(pa == y))
    assert pair["ci"] == pytest.approx([ref["ci_low"], ref["ci_high"]])
    text = f"{100 * ref['difference']:+.2f} points"
    ci = f"95% CI {100 * ref['ci_low']:+.2f} to {100 * ref['ci_high']:+.2f}"
    assert text in section(paired.page, "metrics") and ci in section(paired.page, "metrics")
    assert text in section(paired.page, "verdict-section") and text in paired.stdout
    # side by side: what each run recorded
    for letter, run in (("A", runs.a), ("B", runs.b)):
        m = json.loads((run / "metrics" / "04_evaluate.json").read_text())
        i = "AB".index(letter)
        assert (
            paired.result["metrics"][i]["test_acc"]
            == m["test_acc"]
            == paired.result["metrics"][i]["test_acc_from_predictions"]
        )
        assert f"{100 * m['test_acc']:.2f}%" in section(paired.page, "metrics")
    # a verdict sentence from cifarkit.analysis.verdicts.gain
    assert re.search(r"(improves|lowers|changes) test accuracy by", section(paired.page, "verdict-section"))


@pytest.mark.notebook
@pytest.mark.slow
def test_the_parameter_diff_names_what_differs_and_nothing_else(paired):
    groups = {g["group"]: [r["name"] for r in g["rows"]] for g in paired.result["diff"]["groups"]}
    differing = sorted(name for names in groups.values() for name in names)
    assert differing == ["03_train EPOCHS", "command-line overrides", "epochs"]
    diff = section(paired.page, "diff")
    rows = re.findall(r"<tr><td>.*?</tr>", diff, re.S)
    assert [cells(r)[1] for r in rows] == ["command-line overrides", "03_train EPOCHS", "epochs"]
    assert cells(rows[1])[2:] == ["1", "2"]
    for equal in ("SEED", "N_BOOT", "DATA_SUBSET", "sha256", "commit", "batch_size"):
        assert not any(equal == cells(r)[1].split()[-1] for r in rows)
    same = re.search(r"<b>The same in every run:</b>(.*?)</p>", diff, re.S).group(1)
    assert "notebook parameters" in same and "package versions" in same and "git: commit" in same


@pytest.mark.notebook
@pytest.mark.slow
def test_per_class_deltas_and_the_learning_curves(runs, paired):
    ma = json.loads((runs.a / "metrics" / "04_evaluate.json").read_text())
    mb = json.loads((runs.b / "metrics" / "04_evaluate.json").read_text())
    rows = paired.result["per_class_f1"]
    assert [r["class"] for r in rows] == paired.pa["class_names"]  # the data's order
    for r in rows:
        fa, fb = ma["per_class"][r["class"]]["f1"], mb["per_class"][r["class"]]["f1"]
        assert r["f1"] == pytest.approx([fa, fb]) and r["delta"] == pytest.approx([fb - fa])
    total = sum(r["delta"][0] for r in rows)
    assert paired.result["per_class_delta_sums"] == pytest.approx([total])
    assert total / len(rows) == pytest.approx(mb["macro_f1"] - ma["macro_f1"])
    table = section(paired.page, "per-class")
    assert f"{total:+.3f}" in re.search(r"sum of the deltas.*?</tr>", table, re.S).group(0)
    assert "data:image/png;base64," in table
    # the learning curves: one figure, embedded, from each run's 03 history
    curves = section(paired.page, "curves")
    (src,) = re.findall(r'<img src="data:image/png;base64,([^"]+)"', curves)
    assert base64.b64decode(src)[:8] == b"\x89PNG\r\n\x1a\n"
    for letter, run in (("A", runs.a), ("B", runs.b)):
        history = json.loads((run / "metrics" / "03_train.json").read_text())["history"]
        assert [p["val_acc"] for p in paired.result["curves"][letter]] == [h["val_acc"] for h in history]
    assert [len(paired.result["curves"][k]) for k in "AB"] == [1, 2]
    # the page is self-contained and script-free
    safety.check_html(paired.page, allowed_scripts=[])
    assert "<script" not in paired.page and not re.search(r'(src|href)="https?:', paired.page)


@pytest.mark.notebook
@pytest.mark.slow
def test_the_pdf_opens_with_the_headline_difference(paired):
    if not render.find_chromium() or not shutil.which("pdftotext"):
        if os.environ.get("CIFARKIT_REQUIRE_SERVICES") == "1":
            pytest.fail("Chromium and poppler-utils are required (CIFARKIT_REQUIRE_SERVICES=1)")
        assert "pdf skipped" in paired.stdout
        pytest.skip("Chromium or pdftotext is not installed: the PDF is skipped (said above)")
    pdf = paired.folder / "compare.pdf"
    assert pdf.read_bytes()[:5] == b"%PDF-"
    page1 = subprocess.run(
        ["pdftotext", "-f", "1", "-l", "1", "-layout", str(pdf), "-"], capture_output=True, text=True
    )
    text = " ".join(page1.stdout.split())
    pair = paired.result["pairs"][0]
    assert f"Test accuracy B − A: {100 * pair['difference']:+.2f} points" in text
    assert f"McNemar {pair['mcnemar']['p_text']}" in text


@pytest.mark.notebook
@pytest.mark.slow
def test_three_runs_give_every_pair_and_the_folder_index_lists_the_comparison(runs, paired, tmp_path):
    copy = tmp_path / "run-b-copy"
    shutil.copytree(runs.b, copy)
    out = compare.write_comparison([runs.a, runs.b, copy], tmp_path / "three", pdf=False)
    result = out["result"]
    assert [(p["a"], p["b"]) for p in result["pairs"]] == [("A", "B"), ("A", "C"), ("B", "C")]
    assert result["pairs"][2]["mcnemar"]["b"] == result["pairs"][2]["mcnemar"]["c"] == 0  # a copy agrees with itself
    assert result["pairs"][0]["ci"] == paired.result["pairs"][0]["ci"]
    page = out["html"].read_text()
    assert [cells(r)[0] for r in re.findall(r"<tr><td>.*?</tr>", section(page, "mcnemar"), re.S)] == [
        "A vs B",
        "A vs C",
        "B vs C",
    ]
    assert out["pdf"] is None and "not requested" in out["pdf_skipped"]
    # the runs' folder index (written by the runner) lists the CLI's comparison and says how to make one
    index = (runs.out / "index.html").read_text()
    assert 'href="compare-run-a-vs-run-b/index.html"' in index
    assert "python -m cifarkit compare RUN_A RUN_B" in index


# ------------------------------------------------------------------ refusals on real runs
@pytest.mark.notebook
@pytest.mark.slow
def test_runs_on_different_test_images_are_refused(runs):
    line = assert_refused(cli(runs.a, runs.seed1), "run-seed1", "other test images", "fingerprints differ")
    assert "split seed (SEED) must match" in line and "SEED is 0 in one and 1 in the other" in line
    assert not (runs.out / "compare-run-a-vs-run-seed1").exists()


@pytest.mark.notebook
@pytest.mark.slow
def test_a_run_without_stored_predictions_is_refused(runs, tmp_path):
    bare = tmp_path / "run-without-predictions"
    shutil.copytree(runs.b, bare)
    shutil.rmtree(bare / run_folder.PREDICTIONS_DIR)
    assert_refused(cli(runs.a, bare), f"{bare} holds no stored test predictions", "04_evaluate", "--resume")
    assert_refused(cli(runs.a, runs.a), "given twice")


# ------------------------------------------------------------------ hostile text from the data
@pytest.mark.notebook
@pytest.mark.slow
def test_class_names_and_run_ids_with_markup_are_escaped(runs, tmp_path):
    copies = []
    for run in (runs.a, runs.b):
        copy = tmp_path / f"{run.name}-hostile"
        shutil.copytree(run, copy)
        pred = run_folder.load_predictions(copy)
        names = [f"{HOSTILE}{k}" for k in range(len(pred["class_names"]))]
        np.savez_compressed(
            run_folder.predictions_path(copy),
            **{**{k: pred[k] for k in ("y_true", "y_pred", "probs", "fingerprint")}, "class_names": np.array(names)},
        )
        metrics_path = copy / "metrics" / "04_evaluate.json"
        m = json.loads(metrics_path.read_text())
        m["per_class"] = {new: m["per_class"][old] for old, new in zip(pred["class_names"], names)}
        metrics_path.write_text(json.dumps(m))
        manifest = json.loads((copy / "manifest.json").read_text())
        manifest["run_id"] = f"{HOSTILE}{run.name}"
        (copy / "manifest.json").write_text(json.dumps(manifest))
        copies.append(copy)
    out = compare.write_comparison(copies, tmp_path / "report", pdf=False)
    page = out["html"].read_text()
    assert "<svg" not in page and HOSTILE not in page
    assert page.count("&lt;svg onload=alert(1)&gt;") >= len(names) + 2  # the classes, and the run ids
    assert [r["class"] for r in out["result"]["per_class_f1"]] == names
    safety.check_html(page, allowed_scripts=[])
    assert json.loads((tmp_path / "report" / "compare.json").read_text())["runs"][0]["run_id"] == f"{HOSTILE}run-a"


def test_default_out_dir_is_beside_run_a(tmp_path):
    assert compare.default_out_dir([tmp_path / "x" / "r1", tmp_path / "y" / "r2"]) == (
        tmp_path / "x" / "compare-r1-vs-r2"
    )
    assert compare.default_out_dir([Path("a"), Path("b"), Path("c")]).name == "compare-a-vs-b-vs-c"
