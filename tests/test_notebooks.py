"""Notebooks run through run_all's code path (``runner.run_study``) and their recorded results are asserted."""

import base64
import html
import json
import re

import numpy as np
import pytest

from cifarkit.analysis.tuning import get_space
from cifarkit.data import load_dataset
from cifarkit.report import runner

pytestmark = pytest.mark.notebook


def _png_images(html: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=\s]+)"', html)]


@pytest.fixture(scope="module")
def smoke_run(smoke_study):
    return smoke_study  # the whole study in the smoke profile (tests/conftest.py)


def test_smoke_run_succeeds_and_writes_manifest(smoke_run):
    assert smoke_run.ok, [(nb.name, nb.error) for nb in smoke_run.notebooks]
    manifest = json.loads((smoke_run.run_dir / "manifest.json").read_text())
    assert manifest["profile"] == "smoke" and manifest["status"] == "ok"
    assert manifest["data"]["source"] == "synthetic:40"
    for key in ("python", "keras", "torch", "papermill"):
        assert key in manifest["versions"]
    assert manifest["hardware"]["cpu_count"] >= 1
    assert "commit" in manifest["git"]
    assert list(manifest["notebooks"]) == [
        "01_explore_data",
        "02_tune",
        "03_train",
        "04_evaluate",
        "05_baselines",
        "06_architectures_and_ensembles",
    ]
    for name in manifest["notebooks"]:
        entry = manifest["notebooks"][name]
        assert entry["status"] == "ok" and entry["execute_seconds"] > 0
        assert entry["started_at"] <= entry["finished_at"]
        assert entry["parameters"]["DATA_SUBSET"] == 20


def test_explore_notebook_records_the_data_it_saw(smoke_run):
    run_dir = smoke_run.run_dir
    metrics = json.loads((run_dir / "metrics" / "01_explore_data.json").read_text())
    # the same data, loaded directly, must give the numbers the notebook recorded
    ds = load_dataset("synthetic:40", subset=20, seed=0)
    assert metrics["class_names"] == ds.class_names and metrics["num_classes"] == 4
    assert metrics["counts"]["train"] == {c: int((ds.y_train == i).sum()) for i, c in enumerate(ds.class_names)}
    assert metrics["total_images"] == len(ds.x_train) + len(ds.x_val) + len(ds.x_test)
    mean, std = ds.channel_stats()
    np.testing.assert_allclose(metrics["channel_mean"], mean, atol=1e-6)
    np.testing.assert_allclose(metrics["channel_std"], std, atol=1e-6)
    assert metrics["duplicates"]["across"]["train-test"] == 0
    assert metrics["skipped_files"] == 0
    assert metrics["embedding_samples"]["pca"] > 0 and metrics["embedding_samples"]["tsne"] > 0
    html = (run_dir / "01_explore_data.html").read_text()
    images = _png_images(html)
    assert len(images) >= 6  # counts, grid, histograms, mean images, PCA, t-SNE
    assert all(img.startswith(b"\x89PNG") for img in images)
    assert "circle" in html and "Exact duplicates" in html
    assert not re.search(r'<img[^>]+src="(?!data:)', html)


def test_explore_with_samples_of_0_skips_the_embeddings_and_says_so(tmp_path):
    """``-p 01.PCA_SAMPLES 0 -p 01.TSNE_SAMPLES 0``: 01 runs, draws neither plot, says why, records 0 images."""
    result = runner.run_study(
        "smoke",
        data="synthetic:40",
        only=["01"],
        pdf=False,
        out=tmp_path,
        notebook_overrides={"01_explore_data": {"PCA_SAMPLES": 0, "TSNE_SAMPLES": 0}},
        log=lambda *a: None,
    )
    assert result.ok, [(nb.name, nb.error) for nb in result.notebooks]
    metrics = json.loads((result.run_dir / "metrics" / "01_explore_data.json").read_text())
    assert metrics["embedding_samples"] == {"pca": 0, "tsne": 0} and metrics["pca_explained_variance"] == []
    assert "pca" not in metrics["figures"] and "tsne" not in metrics["figures"]
    page = html.unescape((result.run_dir / "01_explore_data.html").read_text())
    assert "No PCA plot: PCA_SAMPLES is 0 in this run." in page
    assert "No t-SNE plot: TSNE_SAMPLES is 0 in this run." in page
    assert not re.search(r"t-SNE of raw pixels \(\d", page)  # the interactive t-SNE's title, with its count
    assert len(_png_images(page)) == len(metrics["figures"])  # one picture per figure listed: no PCA, no t-SNE


def test_train_notebook_records_a_trained_model(smoke_run):
    run_dir = smoke_run.run_dir
    metrics = json.loads((run_dir / "metrics" / "03_train.json").read_text())
    assert metrics["model"] == "simple_cnn" and metrics["epochs_run"] == 1
    assert len(metrics["history"]) == 1
    assert 0.0 <= metrics["test_acc"] <= 1.0 and 0.0 <= metrics["val_acc"] <= 1.0
    assert metrics["params"] > 1000
    assert metrics["train_seconds"] > 0 and metrics["median_images_per_s"] > 0
    model_path = run_dir / "models" / "simple_cnn" / "model.keras"
    assert model_path.is_file() and metrics["model_path"] == str(model_path)
    html = (run_dir / "03_train.html").read_text()
    assert len(_png_images(html)) >= 3  # schedule, learning curves, throughput
    tuned = metrics["tuned_params"]
    if not tuned["applied"]:  # the note says why in its own words, once
        assert tuned["note"].startswith("not applied: ") and "not applied: not applied" not in html
        assert "Tuned settings:</strong> not applied: " in html


def test_failed_notebook_is_rendered_and_the_run_goes_on(tmp_path):
    # a value that passes the checks made before the run but fails inside the notebook: a PRETRAINED file that
    # exists but is no Keras file (found only by opening it). 03 fails; 01 (independent) runs.
    damaged = tmp_path / "damaged.keras"
    damaged.write_text("not a model")
    result = runner.run_study(
        "smoke",
        data="synthetic:40",
        out=tmp_path / "runs",
        notebook_overrides={"03_train": {"PRETRAINED": str(damaged)}},
        only=["01", "03"],
        log=lambda *a: None,
    )
    status = {nb.name: nb.status for nb in result.notebooks}
    assert status == {"01_explore_data": "ok", "03_train": "failed"}
    failed = result.notebooks[1]
    assert failed.error.startswith(f"ValueError: {damaged} is not a zip archive, as a Keras .keras file is")
    html = (result.run_dir / "03_train.html").read_text()
    assert "is not a zip archive" in html  # the error is visible in the rendered report
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    assert manifest["status"] == "failed" and manifest["notebooks"]["03_train"]["error"]
    assert not result.ok


def test_explore_notebook_on_real_cifar10(shared_archive, tmp_path):
    """A few hundred real images per class through the exploration notebook."""
    result = runner.run_study(
        "smoke",
        data=str(shared_archive),
        out=tmp_path,
        only=["01"],
        overrides={"DATA_SUBSET": 200, "TSNE_SAMPLES": 300},
        log=lambda *a: None,
    )
    assert result.ok, result.notebooks[0].error
    metrics = json.loads((result.run_dir / "metrics" / "01_explore_data.json").read_text())
    assert metrics["class_names"] == [
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ]
    assert all(v == 200 for v in metrics["counts"]["train"].values())
    assert metrics["data"]["source_sha256"] == "b215d45e51121fd309686efffe2998e003a79756f22ad7671c80bc14564b4c2a"
    # CIFAR-10's well-known channel means (0.491, 0.482, 0.447); a 2,000-image subset lands close
    np.testing.assert_allclose(metrics["channel_mean"], [0.491, 0.482, 0.447], atol=0.03)
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    assert manifest["data"]["sha256"] == metrics["data"]["source_sha256"]


def test_tuning_feeds_training_in_the_smoke_profile(smoke_run):
    """02 runs before 03 in profiles that tune; 03 trains with 02's best settings only when they beat the
    recipe's own settings beyond the validation noise."""
    run_dir = smoke_run.run_dir
    tune = json.loads((run_dir / "metrics" / "02_tune.json").read_text())
    best = json.loads((run_dir / "tune" / "best_params.json").read_text())
    assert tune["counts"]["complete"] >= 1 and tune["counts"]["total"] == tune["n_trials_requested"]
    assert 0.0 <= tune["best_value"] <= 1.0
    train = json.loads((run_dir / "metrics" / "03_train.json").read_text())
    applied = train["tuned_params"]
    assert applied["source"].endswith("best_params.json")
    assert train["config"]["batch_size"] == 32  # the smoke profile sets BATCH_SIZE for 03
    assert best["value"] == tune["best_value"]
    # the margin over the recipe's own trial, with a paired interval from both trials' validation predictions
    signal = best["signal"]
    assert tune["tuning_signal"] == signal and signal["n_val"] == train["data"]["counts"]["val"]
    assert signal["method"].startswith("paired bootstrap")
    assert signal["ci"][0] <= signal["margin"] <= signal["ci"][1]
    assert signal["margin"] == pytest.approx(tune["best_value"] - tune["baseline_value"], abs=1e-9)
    assert applied["applied"] is signal["reliable"] is (signal["ci"][0] > 0)
    if applied["applied"]:
        explicit = {"batch_size"}  # explicit settings of 03 win over tuned ones
        checked = 0
        for key, value in applied["settings"].items():
            if key in train["config"] and key not in explicit:
                assert train["config"][key] == value, key
                checked += 1
        assert checked >= 1
    else:
        assert applied["settings"] == {} and "no reliable improvement" in applied["note"]
    # the search space's table shows every parameter's description whole (pandas cut cells at 50 characters
    # with "..." where 02 had not imported plots, which sets the tables' display options)
    page = (run_dir / "02_tune.html").read_text()
    helps = [p.help for p in get_space(tune["space"]).params]
    assert any(len(h) > 50 for h in helps)
    for text in helps:
        assert text in page or html.escape(text) in page, text


def test_architectures_notebook_records_members_and_ensembles(smoke_run):
    run_dir = smoke_run.run_dir
    m = json.loads((run_dir / "metrics" / "06_architectures_and_ensembles.json").read_text())
    train = json.loads((run_dir / "metrics" / "03_train.json").read_text())
    # the 03 model is found through the run directory and joined by the profile's two architectures; the first
    # (simple_cnn:default:1:1) is 03's model again, so it trains with 03's recorded settings, only the seed changed
    assert [x["origin"] for x in m["models"]] == ["03_train", "trained in 06 with 03's settings", "trained in 06"]
    seed_folder = run_dir / "models" / "06_simple_cnn_default_1ep_seed1"
    assert json.loads((seed_folder / "metrics.json").read_text())["config"] == dict(train["config"], seed=1)
    assert m["models"][0]["model_path"] == train["model_path"]
    n = m["n_test"]
    for row in m["comparison"]:
        assert row["ci_low"] <= row["test_acc"] <= row["ci_high"]
        assert row["params"] > 0 and row["inference_img_per_s"] > 0
        # accuracies are multiples of 1/n on the recorded test split
        assert abs(row["test_acc"] * n - round(row["test_acc"] * n)) < 1e-6
    # the 03 member's test accuracy in 06 equals what 03 recorded (same model, same test split)
    assert m["comparison"][0]["test_acc"] == pytest.approx(train["test_acc"], abs=1e-6)
    ens = m["ensembles"]
    assert set(ens["methods"]) == {"soft", "hard", "weighted"}
    w = ens["methods"]["weighted"]["weights"]
    # members chosen on validation (within 3 points of the best), each calibrated by its own temperature
    assert sorted(ens["members"] + ens["left_out"]) == sorted(r["model"] for r in m["comparison"])
    assert len(w) == len(ens["members"]) == len(ens["temperatures"]) >= 2 and sum(w) == pytest.approx(1.0)
    assert all(t > 0 for t in ens["temperatures"]) and ens["degenerate"] == (max(w) >= 0.95)
    # 03's model again with seed 1: two seeds of one model, their spread reported
    seeds = m["seeds"]
    assert seeds["n"] == 2 and seeds["seeds"] == [0, 1] and seeds["test_accs"][0] == pytest.approx(train["test_acc"])
    assert seeds["mean"] == pytest.approx(np.mean(seeds["test_accs"]))
    assert seeds["sd"] == pytest.approx(np.std(seeds["test_accs"], ddof=1))
    best = ens["methods"][ens["best_method"]]
    assert m["ensemble_gain"] == pytest.approx(best["test_acc"] - ens["best_member_test_acc"])
    assert [r["model"] for r in m["replication"]] == ["resnet20"]  # the only published architecture trained
    assert m["replication"][0]["comparison"].startswith("for reference only: 1 of the paper's 164 epochs")
    assert m["replication"][0]["reasons"][0] == "1 of the paper's 164 epochs"  # what the study book reads
    assert m["full_cifar10"] is False
    html = (run_dir / "06_architectures_and_ensembles.html").read_text()
    assert len(_png_images(html)) >= 4  # two Pareto plots, McNemar heatmap, ensemble bars
