"""Non-CNN baselines (cifarkit.baselines): features, methods, subsampling, selection on validation, notebook 05."""

import json
from dataclasses import replace

import numpy as np
import pytest

from cifarkit import run_folder
from cifarkit.analysis import baselines as B
from cifarkit.analysis.stats import mcnemar
from cifarkit.data import Dataset, load_dataset
from cifarkit.data.synthetic import make_synthetic

# Small settings so that every method runs in about a second on tiny data.
FAST_OPTIONS = {
    "logreg": {"pca_components": 30},
    "knn": {"pca_components": 20},
    "random_forest": {"n_estimators": 30},
    "hog_svm": {"epochs": 20},
}


@pytest.fixture(scope="module")
def ds():
    return load_dataset("synthetic:60", image_size=32, progress=False)


@pytest.fixture(scope="module")
def results(ds):
    return B.run_baselines(ds, B.DEFAULT_METHODS, seed=0, options=FAST_OPTIONS, n_boot=200, progress=None)


def _dataset(x, y, names, image_size, seed=0, val=0.2, test=0.2):
    """A Dataset split class by class from arrays (for custom sizes and class counts)."""
    rng = np.random.default_rng(seed)
    parts = {"train": [], "val": [], "test": []}
    for c in range(len(names)):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_val, n_test = int(len(idx) * val), int(len(idx) * test)
        parts["val"].append(idx[:n_val])
        parts["test"].append(idx[n_val : n_val + n_test])
        parts["train"].append(idx[n_val + n_test :])
    sel = {k: np.sort(np.concatenate(v)) for k, v in parts.items()}
    return Dataset(
        x_train=x[sel["train"]],
        y_train=y[sel["train"]],
        x_val=x[sel["val"]],
        y_val=y[sel["val"]],
        x_test=x[sel["test"]],
        y_test=y[sel["test"]],
        class_names=list(names),
        source="arrays",
        source_kind="synthetic",
        source_sha256=None,
        image_size=tuple(image_size),
        seed=seed,
    )


# ------------------------------------------------------------------ features
def test_hog_and_colour_features_have_the_expected_shapes_and_values():
    x, y, _ = make_synthetic(5, 4, 32, seed=0)
    hog = B.hog_features(x)
    # 32x32 images: 4 px cells -> 8x8 cells -> 7x7 blocks of 2x2 cells x 9 orientations
    assert B.hog_cell_size((32, 32)) == 4
    assert hog.shape == (20, 7 * 7 * 4 * 9) == (20, B.hog_feature_length((32, 32)))
    assert hog.dtype == np.float32 and np.isfinite(hog).all() and hog.min() >= 0
    # L2-Hys: every block has unit norm (or is all zero: flat background)
    blocks = hog.reshape(20, 49, 36)
    norms = np.linalg.norm(blocks, axis=-1)
    assert np.all((np.abs(norms - 1) < 1e-3) | (norms < 1e-3)) and (norms > 0.5).mean() > 0.5

    col = B.colour_histograms(x, bins=16)
    assert col.shape == (20, 48)
    np.testing.assert_allclose(col.reshape(20, 3, 16).sum(-1), 1.0, atol=1e-5)  # one histogram per channel
    # a pure red image puts all red mass in the top bin and all green/blue mass in the bottom bin
    red = np.zeros((1, 8, 8, 3), np.uint8)
    red[..., 0] = 255
    h = B.colour_histograms(red, bins=4).reshape(3, 4)
    np.testing.assert_array_equal(h, [[0, 0, 0, 1], [1, 0, 0, 0], [1, 0, 0, 0]])

    both = B.hog_colour_features(x)
    assert both.shape == (20, hog.shape[1] + 48)


def test_hog_orientation_follows_the_edges():
    # vertical stripes vary along x only: the gradient is horizontal (angle 0), so the energy is in
    # the bins next to 0/180 degrees; horizontal stripes put it in the bins around 90 degrees
    stripes = ((np.arange(32) // 2) % 2 * 255).astype(np.uint8)
    vertical = np.broadcast_to(stripes[None, None, :, None], (1, 32, 32, 3)).copy()
    horizontal = np.broadcast_to(stripes[None, :, None, None], (1, 32, 32, 3)).copy()
    hv = B.hog_features(vertical).reshape(-1, 9).sum(0)
    hh = B.hog_features(horizontal).reshape(-1, 9).sum(0)
    assert hv[[0, 8]].sum() > 0.9 * hv.sum()
    assert hh[[3, 4, 5]].sum() > 0.9 * hh.sum()


def test_features_differ_between_classes():
    x, y, _ = make_synthetic(20, 4, 32, seed=1)
    # nearest class mean: HOG separates the shapes almost perfectly; colour histograms, dominated by the
    # randomly tinted background, still do far better than chance (0.25)
    for feats, min_acc in ((B.hog_features(x), 0.9), (B.colour_histograms(x), 0.4)):
        means = np.stack([feats[y == c].mean(0) for c in range(4)])
        within = np.mean([np.linalg.norm(feats[y == c] - means[c], axis=1).mean() for c in range(4)])
        between = min(np.linalg.norm(means[i] - means[j]) for i in range(4) for j in range(i + 1, 4))
        assert between > 0.2 * within, (between, within)
        pred = np.argmin(((feats[:, None, :] - means[None]) ** 2).sum(-1), axis=1)
        assert np.mean(pred == y) > min_acc


def test_hog_cell_scales_with_the_image_size():
    assert [B.hog_cell_size(s) for s in (16, 32, 64, (96, 128), 224)] == [2, 4, 8, 12, 28]
    x, _, _ = make_synthetic(2, 2, (64, 48), seed=0)  # 64 high, 48 wide
    assert x.shape[1:3] == (64, 48)
    h = B.hog_features(x)
    assert h.shape == (4, B.hog_feature_length((64, 48)))
    with pytest.raises(ValueError, match="fewer than one block"):
        B.hog_features(np.zeros((1, 4, 4, 3), np.uint8), cell=4)
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\)"):
        B.hog_features(np.zeros((2, 32, 32), np.uint8))


# ------------------------------------------------------------ subsampling
def test_stratified_subsample_keeps_class_shares():
    y = np.repeat(np.arange(4), [100, 50, 30, 20])
    idx = B.stratified_subsample(y, 40, seed=0)
    assert len(idx) == 40 and len(np.unique(idx)) == 40 and np.all(np.diff(idx) > 0)
    np.testing.assert_array_equal(np.bincount(y[idx]), [20, 10, 6, 4])
    assert not np.array_equal(idx, B.stratified_subsample(y, 40, seed=1))  # the seed picks the images
    np.testing.assert_array_equal(idx, B.stratified_subsample(y, 40, seed=0))
    # rounding: every class keeps at least one image and the total is exact
    idx = B.stratified_subsample(y, 7, seed=0)
    assert len(idx) == 7 and set(y[idx]) == {0, 1, 2, 3}
    # no cap, or a cap above the size, keeps everything
    for cap in (None, 0, 200, 10**6):
        np.testing.assert_array_equal(B.stratified_subsample(y, cap), np.arange(200))


def test_subsampling_is_stated_in_the_results(ds):
    res = B.run_baselines(
        ds, "knn,random_forest", max_train={"random_forest": 40}, options=FAST_OPTIONS, n_boot=50, progress=None
    )
    by = {r["name"]: r for r in res}
    assert by["random_forest"]["train_images_used"] == 40
    assert by["knn"]["train_images_used"] == by["knn"]["train_images_available"] == len(ds.y_train)
    (rf,) = B.run_baselines(ds, "random_forest", max_train=40, options=FAST_OPTIONS, n_boot=50, progress=None)
    assert rf["train_images_used"] == 40
    frame = B.comparison_frame(res, [], {})
    table = B.format_comparison(frame, train_available=len(ds.y_train))
    assert f"40 of {len(ds.y_train)}" in set(table["train images used"])
    with pytest.raises(ValueError, match="Known methods"):
        B.run_baselines(ds, "knn", max_train={"knnn": 10}, progress=None)
    with pytest.raises(ValueError, match="non-negative int"):
        B.run_baselines(ds, "knn", max_train=-5, progress=None)


# ---------------------------------------------------------------- methods
def test_every_method_beats_chance_on_synthetic_shapes(ds, results):
    assert [r["name"] for r in results] == ["logreg", "knn", "random_forest", "hog_svm"]
    chance = 1 / ds.num_classes
    for r in results:
        assert r["test_pred"].shape == ds.y_test.shape and r["val_pred"].shape == ds.y_val.shape
        assert set(np.unique(r["test_pred"])) <= set(range(ds.num_classes))
        assert r["test_acc"] == pytest.approx(np.mean(r["test_pred"] == ds.y_test))
        assert r["val_acc"] == pytest.approx(np.mean(r["val_pred"] == ds.y_val))
        assert r["test_acc"] >= chance + 0.35, (r["name"], r["test_acc"])
        assert r["val_acc"] >= chance + 0.35, (r["name"], r["val_acc"])
        lo, hi = r["test_acc_ci"]
        assert 0 <= lo <= r["test_acc"] <= hi <= 1
        assert r["train_seconds"] > 0 and r["predict_seconds"] > 0
        assert r["features"] and r["selected"]
        assert r["train_images_used"] == len(ds.y_train)
        public = B.public_result(r)
        assert "test_pred" not in public and "val_pred" not in public
        json.dumps(public)  # serializable as is


def test_unknown_method_lists_the_known_ones(ds):
    with pytest.raises(ValueError, match=r"Unknown baseline method\(s\) 'svm'.*logreg, knn, random_forest, hog_svm"):
        B.run_baselines(ds, "logreg,svm", progress=None)
    with pytest.raises(ValueError, match="No baseline method"):
        B.parse_methods(" , ")
    assert B.parse_methods(" knn, logreg,knn ") == ["knn", "logreg"]
    assert B.list_methods() == ["logreg", "knn", "random_forest", "hog_svm"]
    with pytest.raises(ValueError, match="Bad options for baseline 'knn'"):
        B.run_baselines(ds, "knn", options={"knn": {"n_trees": 3}}, progress=None)


def test_hog_svm_liblinear_solver_and_bad_solver(ds):
    (r,) = B.run_baselines(
        ds, "hog_svm", options={"hog_svm": {"solver": "liblinear", "cs": (0.01, 0.1)}}, n_boot=50, progress=None
    )
    assert r["selected"]["solver"] == "liblinear" and r["selected"]["C"] in (0.01, 0.1)
    assert set(r["val_scores"]) == {"C=0.01", "C=0.1"} and r["test_acc"] > 0.6
    with pytest.raises(ValueError, match="Unknown solver 'adam'"):
        B.run_baselines(ds, "hog_svm", options={"hog_svm": {"solver": "adam"}}, progress=None)


def test_knn_k_is_chosen_on_validation():
    # noisy training labels: a point's own (noisy) label is best predicted by k=1 when the validation
    # images ARE the training images with those labels, and by a large k when validation is clean.
    x, y, names = make_synthetic(40, 4, 32, seed=2)
    rng = np.random.default_rng(0)
    y_noisy = y.copy()
    flip = rng.random(len(y)) < 0.3
    y_noisy[flip] = rng.integers(0, 4, flip.sum())
    x_clean, y_clean, _ = make_synthetic(20, 4, 32, seed=3)
    common = dict(class_names=names, source="arrays", source_kind="synthetic", source_sha256=None, image_size=(32, 32))
    memorize = Dataset(x_train=x, y_train=y_noisy, x_val=x, y_val=y_noisy, x_test=x_clean, y_test=y_clean, **common)
    clean = replace(memorize, x_val=x_clean, y_val=y_clean)
    opts = {"knn": {"ks": (1, 5, 15), "pca_components": 20}}
    (mem,) = B.run_baselines(memorize, "knn", options=opts, n_boot=50, progress=None)
    (cln,) = B.run_baselines(clean, "knn", options=opts, n_boot=50, progress=None)
    assert mem["selected"]["k"] == 1 and mem["val_scores"]["k=1"] == 1.0
    assert cln["selected"]["k"] > 1
    assert cln["val_scores"][f"k={cln['selected']['k']}"] == max(cln["val_scores"].values())


def test_test_split_does_not_influence_selection(ds, results):
    # scramble the test labels and images: every choice and validation score must stay the same
    rng = np.random.default_rng(5)
    scrambled = replace(ds, y_test=rng.permutation(ds.y_test), x_test=ds.x_test[rng.permutation(len(ds.x_test))])
    again = B.run_baselines(scrambled, B.DEFAULT_METHODS, seed=0, options=FAST_OPTIONS, n_boot=50, progress=None)
    for a, b in zip(results, again):
        assert a["selected"] == b["selected"] and a["val_scores"] == b["val_scores"] and a["val_acc"] == b["val_acc"]
    # the validation split does drive the choices of the methods that have a grid
    grids = {r["name"]: r for r in results if len(r["val_scores"]) > 1}
    assert set(grids) == {"logreg", "knn", "hog_svm"}
    for r in grids.values():
        assert r["val_acc"] == max(r["val_scores"].values())


def test_custom_data_any_size_and_class_count():
    x, y, names = make_synthetic(30, 6, (40, 48), seed=4)
    data = _dataset(x, y, names, (40, 48))
    res = B.run_baselines(data, "hog_svm,knn", options=FAST_OPTIONS, n_boot=50, progress=None)
    svm = res[0]
    assert svm["selected"]["hog_cell"] == 5
    assert svm["selected"]["feature_dims"] == B.hog_feature_length((40, 48)) + 48
    for r in res:
        assert set(np.unique(r["test_pred"])) <= set(range(6))
        assert r["test_acc"] > 1 / 6 + 0.3


def test_comparison_with_a_cnn(ds, results):
    # a stand-in "CNN": the true labels with a few errors (the comparison code only needs predictions)
    pred = ds.y_test.copy()
    pred[:2] = (pred[:2] + 1) % ds.num_classes
    cnn = {
        "name": "cnn",
        "test_pred": pred,
        "test_acc": float(np.mean(pred == ds.y_test)),
        "test_acc_ci": [0.8, 1.0],
        "val_acc": 0.9,
        "epochs": 3,
        "train_seconds": 1.0,
        "predict_seconds": 0.1,
        "train_images_used": len(ds.y_train),
    }
    tests = B.compare_with_cnn(results, cnn, ds.y_test)
    for r in results:
        t = tests[r["name"]]
        assert t == {**mcnemar(ds.y_test, pred, r["test_pred"]), "p_text": t["p_text"]}
        cnn_ok, base_ok = pred == ds.y_test, r["test_pred"] == ds.y_test
        assert t["b"] == np.sum(cnn_ok & ~base_ok) and t["c"] == np.sum(~cnn_ok & base_ok)
        assert t["b"] + t["c"] <= len(ds.y_test)
        assert t["p_text"].startswith("p ")
    assert B.best_by_validation([dict(cnn, name="a", val_acc=0.5), dict(cnn, name="b", val_acc=0.7)])["name"] == "b"
    frame = B.comparison_frame(results, [cnn], tests, best_cnn="cnn")
    assert list(frame["kind"]) == ["CNN"] + ["baseline"] * 4 and frame["best_cnn"].tolist()[0]
    assert list(frame["test_acc"][1:]) == sorted(frame["test_acc"][1:], reverse=True)
    text = B.conclusion(results, cnn, tests, num_classes=4, test_images=len(ds.y_test))
    best = max(results, key=lambda r: r["test_acc"])
    assert best["title"] in text and f"{best['test_acc']:.1%}" in text
    # 24 test images cannot give p < 0.001 against the strong baselines: the verdict says so
    assert B.cnn_beats_all(results, cnn, tests) is False and "does **not** beat" in text


def test_cnn_trained_on_other_splits_is_refused(ds):
    recorded = ds.to_dict()
    B.check_same_data(recorded, ds)  # the same splits pass
    with pytest.raises(ValueError, match="other splits.*seed 1 vs 0"):
        B.check_same_data(dict(recorded, seed=1), ds)
    with pytest.raises(ValueError, match="split sizes"):
        B.check_same_data(dict(recorded, counts={"train": 1, "val": 1, "test": 1}), ds)


def test_accuracy_comparison_plot(ds, results):
    import matplotlib

    matplotlib.use("Agg")
    from cifarkit.analysis import plots

    frame = B.comparison_frame(results, [], {})
    fig = plots.accuracy_comparison(frame, num_classes=ds.num_classes)
    ax = fig.axes[0]
    assert len(ax.patches) == len(results)
    assert sorted(p.get_width() for p in ax.patches) == pytest.approx(sorted(r["test_acc"] for r in results))


# ---------------------------------------------------------------- notebook
@pytest.mark.notebook
@pytest.mark.slow
def test_baselines_notebook_records_results(smoke_study, tmp_path):
    result = smoke_study  # the whole smoke study on synthetic:40 (tests/conftest.py)
    assert result.ok, [(nb.name, nb.error) for nb in result.notebooks]
    run_dir = result.run_dir
    m = json.loads((run_dir / "metrics" / "05_baselines.json").read_text())
    train = json.loads((run_dir / "metrics" / "03_train.json").read_text())
    ds = load_dataset("synthetic:40", subset=20, seed=0, progress=False)
    n_test = len(ds.y_test)
    names = [b["name"] for b in m["baselines"]]
    assert names == ["logreg", "knn", "random_forest", "hog_svm"]
    for b in m["baselines"]:
        assert 0 <= b["test_acc"] <= 1 and 0 <= b["val_acc"] <= 1
        lo, hi = b["test_acc_ci"]
        assert lo <= b["test_acc"] <= hi
        assert "test_pred" not in b and "val_pred" not in b
        assert 0 < b["train_images_used"] <= len(ds.y_train)
        t = m["mcnemar"][b["name"]]
        # b + c discordant pairs cannot exceed the test images, and they pin the accuracy difference
        assert t["b"] >= 0 and t["c"] >= 0 and t["b"] + t["c"] <= n_test
        assert (t["b"] - t["c"]) / n_test == pytest.approx(m["cnn"]["test_acc"] - b["test_acc"], abs=1e-9)
        assert 0 <= t["p_value"] <= 1 and t["p_text"].startswith("p ")
    assert m["best_baseline"]["test_acc"] == max(b["test_acc"] for b in m["baselines"])
    assert m["best_baseline"]["name"] in names
    assert m["cnn"]["name"] == train["model"]
    assert m["cnn"]["val_acc"] == pytest.approx(train["val_acc"], abs=1e-6)
    assert m["cnn"]["test_acc"] == pytest.approx(train["test_acc"], abs=1e-6)
    lo, hi = m["cnn"]["test_acc_ci"]
    assert lo <= m["cnn"]["test_acc"] <= hi
    expected = all(
        m["cnn"]["test_acc"] > b["test_acc"] and m["mcnemar"][b["name"]]["p_value"] < 0.001 for b in m["baselines"]
    )
    assert m["all_cnn_beat_baselines_p001"] is expected
    assert m["total_seconds"] > 0
    html = (run_dir / "05_baselines.html").read_text()
    assert "McNemar" in html and "data:image/png;base64" in html

    # models recorded by notebook 06 join the comparison; one recorded twice counts once
    # (in a copy of the run's metrics: the smoke study's own run folder is shared by other tests)
    import shutil

    work = tmp_path / "run"
    (work / "metrics").mkdir(parents=True)
    shutil.copy(run_dir / "metrics" / "03_train.json", work / "metrics" / "03_train.json")
    copy = work / "models" / "copy" / "model.keras"
    copy.parent.mkdir(parents=True)
    shutil.copy(train["model_path"], copy)
    (work / "metrics" / "06_architectures_and_ensembles.json").write_text(
        json.dumps(
            {
                "models": [
                    {"name": train["model"], "model_path": train["model_path"], "epochs": 1},
                    {"name": "copy", "model_path": str(copy), "epochs": 1},
                ]
            }
        )
    )
    cnns = run_folder.find_run_models(work)
    assert [(c["name"], c["source"]) for c in cnns] == [
        (train["model"], "03_train"),
        ("copy", "06_architectures_and_ensembles"),
    ]
    scored = B.evaluate_cnns(cnns, ds, n_boot=50, progress=None)
    np.testing.assert_array_equal(scored[0]["test_pred"], scored[1]["test_pred"])
    assert scored[0]["test_acc"] == pytest.approx(m["cnn"]["test_acc"])
    assert B.best_by_validation(scored)["name"] == train["model"]  # ties go to the first
