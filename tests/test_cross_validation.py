"""Cross-validation (notebook 07, ``cifarkit.analysis.cross_validation``): folds, pooled metrics, the auto rule,
the refusals, and the notebook through run_all's code path (synthetic data; and the domain profile on a grouped,
imbalanced image folder)."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix, roc_auc_score

from cifarkit.analysis import cross_validation as cv
from cifarkit.analysis import cv_baselines, decisions
from cifarkit.paths import PROJECT_ROOT
from cifarkit.report import estimate, runner


# ------------------------------------------------------------------ folds
def _random_grouping(rng):
    """Labels and group ids: 2-4 classes of unequal size, groups of 1-8 images, every group one class."""
    k = int(rng.integers(2, 5))
    labels, groups = [], []
    g = 0
    for c in range(k):
        n_groups = int(rng.integers(6, 30))
        for _ in range(n_groups):
            size = int(rng.integers(1, 9))
            labels += [c] * size
            groups += [f"g{g}"] * size
            g += 1
    order = rng.permutation(len(labels))
    return np.asarray(labels)[order], np.asarray(groups)[order], k


def test_folds_never_split_a_group_and_keep_the_class_proportions():
    rng = np.random.default_rng(0)
    checked = 0
    for trial in range(60):
        y, groups, k_classes = _random_grouping(rng)
        names = [f"c{c}" for c in range(k_classes)]
        pooled = cv.Pooled(
            np.zeros((len(y), 1, 1, 3), np.uint8), y, groups, np.full(len(y), "train"), np.arange(len(y))
        )
        decision = cv.decide(0, n_test=10, n_images=len(y))
        try:
            fold_of = cv.plan_folds(decision, pooled, names, 0.1, seed=trial)
        except ValueError as exc:  # too few groups in some class: refused with the reason
            assert "groups" in str(exc)
            continue
        checked += 1
        k = decision.k
        assert sorted(set(fold_of)) == list(range(k))
        for g in np.unique(groups):  # a group lies in one fold
            assert len(set(fold_of[groups == g])) == 1
        sizes = {g: int((groups == g).sum()) for g in np.unique(groups)}
        for c in range(k_classes):
            biggest = max(sizes[g] for g in np.unique(groups[y == c]))
            per_fold = np.bincount(fold_of[y == c], minlength=k)
            assert per_fold.min() >= 1  # every fold holds out every class
            # stratified: each fold within two of the class's largest groups of its share
            assert np.abs(per_fold - (y == c).sum() / k).max() <= 2 * biggest, (trial, c, per_fold)
        for f in range(k):  # the validation carve takes whole groups out of the other folds
            train, val, held = cv.fold_indices(pooled, fold_of, f, 0.1, seed=trial)
            assert sorted(np.concatenate([train, val, held])) == list(range(len(y)))
            assert not set(groups[train]) & set(groups[val]) and not set(groups[val]) & set(groups[held])
            assert not set(groups[train]) & set(groups[held])
            assert set(y[val]) == set(range(k_classes)) and set(y[train]) == set(range(k_classes))
    assert checked >= 40


def test_ungrouped_folds_are_stratified_to_one_image():
    rng = np.random.default_rng(1)
    for trial in range(20):
        y = rng.choice(3, size=int(rng.integers(40, 300)), p=[0.6, 0.3, 0.1])
        k = int(rng.integers(2, 8))
        fold_of = cv.make_folds(y, None, k, seed=trial)
        for c in range(3):
            counts = np.bincount(fold_of[y == c], minlength=k)
            assert counts.max() - counts.min() <= 1
    # seeded: the same seed gives the same folds, another seed others
    y = np.repeat([0, 1], 50)
    assert (cv.make_folds(y, None, 5, 3) == cv.make_folds(y, None, 5, 3)).all()
    assert (cv.make_folds(y, None, 5, 3) != cv.make_folds(y, None, 5, 4)).any()


# ------------------------------------------------------------------ pooled metrics
def _fake_folds(y, probs, fold_of):
    return [
        {"fold": f + 1, "held_out": np.flatnonzero(fold_of == f), "probs": probs[fold_of == f]}
        for f in range(fold_of.max() + 1)
    ]


@pytest.mark.parametrize("num_classes", [2, 4])
def test_pooled_out_of_fold_metrics_agree_with_scikit_learn(num_classes):
    rng = np.random.default_rng(num_classes)
    n = 240
    y = rng.integers(0, num_classes, n)
    logits = rng.normal(size=(n, num_classes)) + 1.5 * np.eye(num_classes)[y]
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    fold_of = cv.make_folds(y, None, 4, seed=0)
    oof, folds_back = cv.out_of_fold(_fake_folds(y, probs, fold_of), n, num_classes)
    np.testing.assert_allclose(oof, probs)
    assert (folds_back == fold_of).all()
    names = [f"c{c}" for c in range(num_classes)]
    record, _ = cv.pooled_metrics(y, oof, names, n_boot=200, seed=0)
    pred = probs.argmax(1)
    assert record["accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert record["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, pred))
    sk_auc = roc_auc_score(y, probs[:, 1]) if num_classes == 2 else roc_auc_score(y, probs, multi_class="ovr")
    assert record["roc_auc"] == pytest.approx(sk_auc)
    for key in ("accuracy", "balanced_accuracy", "roc_auc"):
        lo, hi = record[f"{key}_ci"]
        assert lo <= record[key] <= hi
    for f in range(4):  # per fold, the same scores as scikit-learn's on that fold
        held = fold_of == f
        s = cv.score_fold(y[held], probs[held])
        assert s["accuracy"] == pytest.approx(accuracy_score(y[held], pred[held]))
        assert s["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y[held], pred[held]))
        sk = (
            roc_auc_score(y[held], probs[held, 1])
            if num_classes == 2
            else roc_auc_score(y[held], probs[held], multi_class="ovr", labels=range(num_classes))
        )
        assert s["roc_auc"] == pytest.approx(sk)


def test_holm_adjustment_matches_a_hand_computed_case():
    # sorted 0.01, 0.03, 0.04 -> 3 x 0.01 = 0.03, 2 x 0.03 = 0.06, 1 x 0.04 = 0.04 raised to the running 0.06
    assert cv_baselines.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert cv_baselines.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert cv_baselines.holm([]) == []
    with pytest.raises(ValueError, match=r"p-values must lie in \[0, 1\]"):
        cv_baselines.holm([1.2])


def test_cnn_against_baselines_counts_the_discordant_images():
    y = np.array([0, 1, 0, 1, 0, 1, 0, 1, 0, 1])
    cnn = np.array([0, 1, 0, 1, 0, 1, 0, 1, 1, 0])  # 8 right
    weak = np.array(
        [0, 0, 1, 1, 0, 0, 1, 1, 0, 0]
    )  # 5 right; CNN right only on 1, 2, 5, 6 (b = 4), weak only on 8 (c = 1)
    same = cnn.copy()
    result = cv_baselines.compare(
        y, cnn, [{"name": "weak", "pred": weak}, {"name": "same", "pred": same}], alpha=0.05, n_boot=200
    )
    weak_row, same_row = result["baselines"]
    assert (weak_row["b"], weak_row["c"]) == (4, 1) and (same_row["b"], same_row["c"]) == (0, 0)
    assert weak_row["accuracy"] == pytest.approx(0.5) and result["cnn"]["accuracy"] == pytest.approx(0.8)
    assert weak_row["difference"] == pytest.approx((4 - 1) / 10)
    # exact McNemar: two-sided binomial P(X <= 1 | n = 5, 1/2) x 2 = 12/32; Holm over two: x 2 for the smaller p
    assert weak_row["p_value"] == pytest.approx(12 / 32) and same_row["p_value"] == 1.0
    assert weak_row["p_holm"] == pytest.approx(0.75) and result["best_baseline"] == "same"
    assert result["cnn_beats_all"] is False
    strong = cv_baselines.compare(np.zeros(60, int), np.zeros(60, int), [{"name": "w", "pred": np.ones(60, int)}])
    assert strong["cnn_beats_all"] is True and strong["baselines"][0]["p_holm"] < 1e-6
    with pytest.raises(ValueError, match="alpha must lie between 0 and 1"):
        cv_baselines.compare(y, cnn, [], alpha=0)


def test_cross_validated_baselines_score_each_image_once_on_the_cnns_folds():
    from cifarkit.analysis.baselines import run_baselines
    from cifarkit.data import load_dataset

    ds = load_dataset("synthetic:30", image_size=16, progress=False)
    pooled = cv.pool(ds)
    fold_of = cv.make_folds(pooled.y, None, 3, seed=0)
    got = cv_baselines.run_fold_baselines(ds, pooled, fold_of, "logreg,knn", 0.1, seed=0)
    assert [b["name"] for b in got] == ["logreg", "knn"] and all(len(b["selected"]) == 3 for b in got)
    tr, va, te = cv.fold_indices(pooled, fold_of, 1, 0.1, 0)
    direct = run_baselines(cv.fold_dataset(ds, pooled, tr, va, te, 1, 3), "knn", seed=0, n_boot=100, progress=None)
    np.testing.assert_array_equal(got[1]["pred"][te], direct[0]["test_pred"])  # fold 2's held-out images
    assert all(((b["pred"] >= 0) & (b["pred"] < ds.num_classes)).all() for b in got)


def test_pooled_operating_point_counts_the_calls_of_every_fold():
    rng = np.random.default_rng(7)
    n = 300
    y = rng.integers(0, 2, n)
    p1 = np.clip(0.35 * y + rng.uniform(0, 0.65, n), 0, 1)
    probs = np.stack([1 - p1, p1], 1)
    fold_of = cv.make_folds(y, None, 3, seed=0)
    val_sets = []
    for _ in range(3):
        yv = rng.integers(0, 2, 40)
        pv = np.clip(0.35 * yv + rng.uniform(0, 0.65, 40), 0, 1)
        val_sets.append((yv, np.stack([1 - pv, pv], 1)))
    op = cv.operating_points_cv(y, probs, fold_of, val_sets, ["neg", "pos"], "youden")
    thresholds = [decisions.choose_threshold(yv == 1, pv[:, 1], "youden")["threshold"] for yv, pv in val_sets]
    assert op["thresholds"] == pytest.approx(thresholds)
    called = np.zeros(n, int)
    for f, t in enumerate(thresholds):
        called[fold_of == f] = probs[fold_of == f, 1] >= t
    (tn, fp), (fn, tp) = confusion_matrix(y, called)
    assert op["pooled"]["counts"] == {"tp": tp, "fp": fp, "tn": tn, "fn": fn}
    lo, hi = decisions.wilson_interval(tp, tp + fn)
    assert op["pooled"]["sensitivity"]["ci"] == pytest.approx([lo, hi])
    # without validation carves: the default decision, said in the notes
    op = cv.operating_points_cv(y, probs, fold_of, [(None, None)] * 3, ["neg", "pos"], "sensitivity>=0.9")
    assert op["thresholds"] == [0.5, 0.5, 0.5] and len(op["notes"]) == 3


# ------------------------------------------------------------------ the auto rule and the refusals
def test_auto_rule_threshold_is_the_width_of_a_single_test_splits_interval():
    n = cv.auto_min_test_images()
    assert n == 381
    assert cv.wilson_half_width(n) <= 0.05 < cv.wilson_half_width(n - 1)
    lo, hi = decisions.wilson_interval(n // 2, 2 * (n // 2))  # agrees with the interval 04 uses
    assert (hi - lo) / 2 == pytest.approx(cv.wilson_half_width(2 * (n // 2)))
    on = cv.decide(0, n_test=n - 1, n_images=3800)
    assert on.run and on.k == 5 and on.auto and "380 images" in on.reason
    off = cv.decide(0, n_test=n, n_images=3810)
    assert not off.run and "381" in off.reason and "+-5.0 points" in off.reason
    assert not cv.decide(1, n_test=10, n_images=100).run
    assert cv.decide(3, n_test=10_000, n_images=60_000).k == 3  # asked for: runs whatever the size


@pytest.mark.parametrize("bad", [-1, 2.5, True, "5"])
def test_cv_folds_must_be_a_whole_number(bad):
    with pytest.raises(ValueError, match=r"CV_FOLDS must be a whole number: 0 \(auto\), 1 \(off\)"):
        cv.decide(bad, n_test=10, n_images=100)


def _pooled(y, groups):
    return cv.Pooled(
        np.zeros((len(y), 1, 1, 3), np.uint8), np.asarray(y), groups, np.full(len(y), "train"), np.arange(len(y))
    )


def test_too_few_groups_reduce_the_auto_folds_or_refuse_with_the_largest_k():
    y = np.array([0] * 40 + [1] * 12)
    names = ["common", "rare"]
    common = [f"a{i // 2}" for i in range(40)]
    three = np.array(common + [f"r{i // 4}" for i in range(12)])  # class 'rare' in 3 groups
    auto = cv.decide(0, n_test=10, n_images=len(y))
    fold_of = cv.plan_folds(auto, _pooled(y, three), names, 0.1, seed=0)
    assert auto.k == 3 and fold_of.max() == 2
    assert auto.notes == ["5 folds reduced to 3 because class 'rare' has images from only 3 groups"]
    with pytest.raises(
        ValueError, match=r"CV_FOLDS = 4 needs every class.*only 3 groups: at most 3 folds.*CV_FOLDS to 3"
    ):
        cv.plan_folds(cv.decide(4, n_test=10, n_images=len(y)), _pooled(y, three), names, 0.1, seed=0)
    # 2 groups: a fold's training part keeps 1, which its validation carve cannot share; without a carve it works
    two = np.array(common + [f"r{i // 6}" for i in range(12)])
    with pytest.raises(ValueError, match=r"at least 2 folds and keep enough for each fold's validation carve"):
        cv.plan_folds(cv.decide(0, n_test=10, n_images=len(y)), _pooled(y, two), names, 0.1, seed=0)
    assert cv.plan_folds(cv.decide(2, n_test=10, n_images=len(y)), _pooled(y, two), names, 0.0, seed=0).max() == 1
    one = np.array(common + ["r0"] * 12)
    with pytest.raises(ValueError, match=r"'rare' has images from only 1 groups\. .*or set CV_FOLDS = 1"):
        cv.plan_folds(cv.decide(0, n_test=10, n_images=len(y)), _pooled(y, one), names, 0.0, seed=0)
    # ungrouped: images count instead of groups
    y = np.array([0] * 50 + [1] * 7)
    with pytest.raises(ValueError, match=r"CV_FOLDS = 10 .*'rare' has only 7 images: at most 7 folds"):
        cv.plan_folds(cv.decide(10, n_test=10, n_images=len(y)), _pooled(y, None), names, 0.1, seed=0)


def test_the_estimate_follows_the_auto_rule():
    _, plan = runner.plan_run("domain", data="synthetic:40")  # 16 test images: cross-validation runs
    tp = estimate.estimate_run(plan, probe=False, log=lambda *a: None)
    assert tp.estimates["07_cross_validation"].how.startswith("5 folds x 48 epochs of fastnet")
    assert tp.estimates["07_cross_validation"].how.endswith("with the baselines")
    parts = tp.estimates["07_cross_validation"].parts
    assert "fold5" in parts and all(parts[f"baseline_{m}"] > 0 for m in ("logreg", "knn", "random_forest", "hog_svm"))
    _, plan = runner.plan_run("domain", only=["07"])  # the official CIFAR-10: 10,000 test images
    tp = estimate.estimate_run(plan, probe=False, log=lambda *a: None)
    assert "no cross-validation" in tp.estimates["07_cross_validation"].how


# ------------------------------------------------------------------ the notebook through run_all
def _check_recorded_against_files(run_dir: Path) -> dict:
    m = json.loads((run_dir / "metrics" / "07_cross_validation.json").read_text())
    with np.load(run_dir / "predictions" / "07_cross_validation_oof.npz") as oof:
        y, probs = oof["y_true"], oof["probs"]
    with np.load(run_dir / "predictions" / "07_cross_validation_folds.npz") as f:
        fold = f["fold"]
        group = f["group"]
    assert len(y) == m["n_images"] == len(fold) and sorted(set(fold)) == list(range(m["k"]))
    assert m["pooled"]["accuracy"] == pytest.approx(accuracy_score(y, probs.argmax(1)))
    assert m["pooled"]["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, probs.argmax(1)))
    for rec in m["folds"]:
        held = fold == rec["fold"] - 1
        assert rec["n"] == int(held.sum())
        assert rec["accuracy"] == pytest.approx(accuracy_score(y[held], probs[held].argmax(1)), abs=1e-6)
    if m["grouped"]:
        for g in np.unique(group):
            assert len(set(fold[group == g])) == 1
    if m.get("baselines"):  # the CNN-versus-baselines table, recomputed from the saved out-of-fold predictions
        with np.load(run_dir / "predictions" / "07_cross_validation_folds.npz") as f:
            preds = {k[len("baseline_") :]: f[k] for k in f.files if k.startswith("baseline_")}
        cnn_ok = probs.argmax(1) == y
        assert m["baselines"]["cnn"]["accuracy"] == pytest.approx(m["pooled"]["accuracy"])
        assert [r["name"] for r in m["baselines"]["baselines"]] == list(preds)
        for r in m["baselines"]["baselines"]:
            base_ok = preds[r["name"]] == y
            assert r["accuracy"] == pytest.approx(base_ok.mean())
            assert (r["b"], r["c"]) == (int((cnn_ok & ~base_ok).sum()), int((~cnn_ok & base_ok).sum()))
    return m


@pytest.mark.notebook
def test_notebook_07_runs_two_folds_through_run_all(tmp_path):
    """The smoke profile's 07 (--only 07): 2 folds of 1 epoch on synthetic data, recorded and reported."""
    result = runner.run_study("smoke", data="synthetic:40", out=tmp_path, only=["07"], pdf=False, log=lambda *a: None)
    assert result.ok, [(nb.name, nb.error) for nb in result.notebooks]
    m = _check_recorded_against_files(result.run_dir)
    assert m["k"] == 2 and not m["grouped"] and m["cross_validation"]["reason"] == "CV_FOLDS = 2 asks for 2 folds"
    assert m["model"] == "simple_cnn" and all(f["epochs_run"] == 1 for f in m["folds"])
    html = (result.run_dir / "07_cross_validation.html").read_text()
    assert "Pooled out-of-fold accuracy" in html and "Cross-validation: 2 folds" in html
    assert len(re.findall(r'src="data:image/png;base64,', html)) >= 2  # the fold plot and the pooled ROC
    # CV_FOLDS 1: the notebook says in one line why, records it, and trains nothing
    result = runner.run_study(
        "smoke",
        data="synthetic:40",
        out=tmp_path,
        only=["07"],
        overrides={"CV_FOLDS": 1},
        pdf=False,
        log=lambda *a: None,
    )
    assert result.ok
    m = json.loads((result.run_dir / "metrics" / "07_cross_validation.json").read_text())
    assert m["cross_validation"]["ran"] is False and "folds" not in m
    assert (
        "Cross-validation did not run:</strong> CV_FOLDS = 1 turns cross-validation off"
        in (result.run_dir / "07_cross_validation.html").read_text()
    )


# ------------------------------------------------------------------ the domain profile end to end
def write_grouped_folder(root: Path) -> Path:
    """Two imbalanced classes (90 'benign', 42 'malignant'), 3 images per patient, patient id in the file name."""
    rng = np.random.default_rng(0)
    patient = 0
    for name, n in (("benign", 90), ("malignant", 42)):
        (root / name).mkdir(parents=True)
        for i in range(n):
            if i % 3 == 0:
                patient += 1
            img = rng.integers(80, 150, (40, 40, 3)).astype(np.uint8)
            if name == "malignant":  # a dark blob, at a place of its own per patient
                cy, cx = 12 + patient % 16, 12 + (3 * patient) % 16
                yy, xx = np.mgrid[:40, :40]
                img[(yy - cy) ** 2 + (xx - cx) ** 2 < 36] = 25
            Image.fromarray(img).save(root / name / f"p{patient:03d}_{i % 3}.png")
    return root


@pytest.mark.slow
@pytest.mark.notebook
def test_domain_profile_on_a_grouped_imbalanced_folder(tmp_path):
    data = write_grouped_folder(tmp_path / "scans")
    out = tmp_path / "runs"
    cmd = [sys.executable, str(PROJECT_ROOT / "run_all.py"), "--profile", "domain", "--data", str(data)]
    cmd += ["--group-by", r"p(\d+)_", "--image-size", "32", "-p", "EPOCHS", "2", "--no-pdf", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=1200)
    runs = [p for p in out.iterdir() if p.is_dir()]
    assert proc.returncode == 0 and len(runs) == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    run_dir = runs[0]
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert list(manifest["notebooks"]) == [
        "01_explore_data",
        "03_train",
        "04_evaluate",
        "05_baselines",
        "07_cross_validation",
    ]
    assert "07_cross_validation" in manifest["time_plan"]["notebooks"]
    m = _check_recorded_against_files(run_dir)
    assert m["grouped"] and m["cross_validation"]["auto"] and m["k"] == 5  # a test split of ~13 images
    assert m["config"]["class_weight"] == "balanced" and m["config"]["crop"] == 12
    assert m["operating_point"]["positive_class"] == "malignant" and len(m["operating_point"]["thresholds"]) == 5
    assert m["single_split"]["from"] == "04_evaluate"
    assert [r["name"] for r in m["baselines"]["baselines"]] == ["logreg", "knn", "random_forest", "hog_svm"]
    assert m["baselines"]["n"] == m["n_images"] and m["baselines"]["alpha"] == 0.05
    m3 = json.loads((run_dir / "metrics" / "03_train.json").read_text())
    w = m3["class_weights"]
    assert w[1] > w[0]  # the rarer class weighs more
    m5 = json.loads((run_dir / "metrics" / "05_baselines.json").read_text())
    assert m5["mcnemar"][m5["best_baseline"]["name"]]["p_value"] is not None
    book = (run_dir / "study.html").read_text()
    assert "Cross-validation (07_cross_validation)" in book and "All 5 notebooks ran" in book
    assert "-fold cross-validation over all" in book
    assert re.search(
        r"Cross-validated accuracy: <b>[0-9.]+% \(95% CI [0-9.]+ to [0-9.]+%\) over all 132 images, 5 folds", book
    )


def test_key_results_and_dashboard_lines_escape_what_comes_from_the_data():
    from cifarkit.report.headline import result_lines
    from cifarkit.report.key_results import key_results_html

    bad = "<img src=x onerror=alert(1)>"
    y = np.array([0] * 30 + [1] * 30)
    rng = np.random.default_rng(0)
    p1 = np.clip(0.3 * y + rng.uniform(0, 0.7, 60), 0, 1)
    probs = np.stack([1 - p1, p1], 1)
    fold_of = cv.make_folds(y, None, 3, seed=0)
    pooled, _ = cv.pooled_metrics(y, probs, ["a", bad], n_boot=100)
    op = cv.operating_points_cv(y, probs, fold_of, [(y[:20], probs[:20])] * 3, ["a", bad], "youden")
    metrics = {
        "cross_validation": {"ran": True, "notes": [f"5 folds reduced to 3 because class {bad!r} has 3 groups"]},
        "k": 3,
        "n_images": 60,
        "grouped": True,
        "data": {"class_names": ["a", bad]},
        "pooled": pooled,
        "fold_summary": {"accuracy": cv.spread([0.6, 0.7, 0.65]), "roc_auc": cv.spread([0.7, 0.8, 0.75])},
        "operating_point": op,
        "single_split": {"from": bad, "test_acc_ci": [0.4, 0.8]},
    }
    html = key_results_html("07_cross_validation", metrics)
    assert "<img" not in html and "&lt;img src=x" in html and "Pooled out-of-fold accuracy" in html
    assert "reduced to 3" in html and "wide against 40.0 for the single test split" in html
    lines = dict(result_lines("07_cross_validation", metrics))
    assert lines["accuracy, pooled out-of-fold, 3 folds"].startswith(f"{100 * pooled['accuracy']:.2f}%")
    off = {"cross_validation": {"ran": False, "reason": bad}}
    assert "&lt;img" in key_results_html("07_cross_validation", off) and "<img" not in key_results_html(
        "07_cross_validation", off
    )
    assert result_lines("07_cross_validation", off) == [("cross-validation", "not run")]
