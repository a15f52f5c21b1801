"""Decisions (cifarkit.analysis.decisions): ROC and precision-recall curves against scikit-learn, bootstrap
intervals of the areas, operating points worked out by hand, Wilson intervals, PPV/NPV by Bayes' rule, the
rule parser's errors, the figures, the key results and notebook 04 run through run_all's code path."""

import json

import matplotlib.pyplot as plt
import numpy as np
import pytest
from scipy.stats import binomtest
from sklearn import metrics as skm

from cifarkit import run_folder
from cifarkit.analysis import decisions, plots
from cifarkit.report import key_results


def _random_problem(n=300, k=4, seed=0, decimals=None):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    logits = rng.normal(0, 1, (n, k))
    logits[np.arange(n), y] += 1.0  # better than chance, not perfect
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    if decimals is not None:  # many ties
        p = np.round(p, decimals)
        p[:, -1] = 1 - p[:, :-1].sum(1)
    return y, p


# The hand case: ten validation scores, highest first, and whether each is positive (6 positive, 4 negative).
#   score    0.95 0.90 0.80 0.70 0.60 0.50 0.40 0.30 0.20 0.10
#   label     P    P    N    P    P    N    P    N    N    P
# Calling score >= t positive, for each t (TP/FP of 6/4, sensitivity, specificity, J):
#   above all  0/0  0     1     0
#   0.95       1/0  1/6   1     0.167
#   0.90       2/0  2/6   1     0.333
#   0.80       2/1  2/6   3/4   0.083
#   0.70       3/1  3/6   3/4   0.25
#   0.60       4/1  4/6   3/4   0.417   <- Youden's J is largest here
#   0.50       4/2  4/6   2/4   0.167
#   0.40       5/2  5/6   2/4   0.333   <- the most specific of those with sensitivity >= 0.8
#   0.30       5/3  5/6   1/4   0.083
#   0.20       5/4  5/6   0    -0.167
#   0.10       6/4  1     0     0
HAND_SCORES = np.array([0.95, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1])
HAND_LABELS = np.array([1, 1, 0, 1, 1, 0, 1, 0, 0, 1])


# --------------------------------------------------------------------------- the rule and its parameters


def test_parse_rule_reads_every_allowed_form():
    assert decisions.parse_rule("youden") == decisions.Rule("youden")
    assert decisions.parse_rule(" Youden ").text == "youden"
    rule = decisions.parse_rule("Sensitivity >= 0.95")
    assert (rule.kind, rule.target, rule.text, rule.other_side) == (
        "sensitivity",
        0.95,
        "sensitivity>=0.95",
        "specificity",
    )
    assert decisions.parse_rule("specificity>=0.9").other_side == "sensitivity"
    assert decisions.parse_rule("ppv>=.8") == decisions.Rule("ppv", 0.8)
    assert decisions.parse_rule("npv≥0.99") == decisions.Rule("npv", 0.99)
    assert decisions.parse_rule("npv>=1").target == 1.0
    assert "Youden" in decisions.parse_rule("youden").describe()
    assert "at least 0.95" in decisions.parse_rule("sensitivity>=0.95").describe()


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("", "received ''"),
        ("sens>=0.9", "received 'sens>=0.9'"),
        ("sensitivity>0.9", "received 'sensitivity>0.9'"),
        ("sensitivity<=0.9", "received"),
        ("recall>=0.9", "received 'recall>=0.9'"),
        ("sensitivity>=95", "(0, 1]"),
        ("ppv>=0", "(0, 1]"),
        (0.95, "received 0.95"),
        (None, "received None"),
    ],
)
def test_parse_rule_errors_say_what_was_received_and_what_is_allowed(text, fragment):
    with pytest.raises(ValueError) as err:
        decisions.parse_rule(text)
    message = str(err.value)
    assert fragment in message
    assert "OPERATING_POINT" in message and "youden" in message and "sensitivity, specificity, ppv, npv" in message


def test_prevalence_and_positive_class_are_checked():
    assert decisions.check_prevalence(0) == 0.0 and decisions.check_prevalence(0.02) == 0.02
    for bad in (-0.1, 1, 1.5, float("nan"), "0.1", True):
        with pytest.raises(ValueError, match="PREVALENCE"):
            decisions.check_prevalence(bad)
    assert decisions.positive_classes(["benign", "malignant"]) == ([1], "positive class")
    assert decisions.positive_classes(["benign", "malignant"], "benign") == ([0], "positive class")
    assert decisions.positive_classes(["a", "b", "c"]) == ([0, 1, 2], "one-vs-rest")
    assert decisions.positive_classes(["ok", "Dent", "scratch"], "dent") == ([1], "positive class")
    with pytest.raises(ValueError) as err:
        decisions.positive_classes(["ok", "dent"], "crack")
    assert "'crack'" in str(err.value) and "'ok', 'dent'" in str(err.value)
    with pytest.raises(ValueError, match="at least two classes"):
        decisions.positive_classes(["only"])


# --------------------------------------------------------------------------- intervals and Bayes' rule


def test_wilson_interval_known_values_and_scipy():
    lo, hi = decisions.wilson_interval(8, 10)
    assert (lo, hi) == (pytest.approx(0.4902, abs=5e-5), pytest.approx(0.9433, abs=5e-5))
    lo, hi = decisions.wilson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=5e-5)
    assert decisions.wilson_interval(10, 10) == (pytest.approx(0.7225, abs=5e-5), pytest.approx(1.0))
    assert decisions.wilson_interval(0, 0) == (None, None)
    rng = np.random.default_rng(0)
    for _ in range(20):
        n = int(rng.integers(1, 500))
        k = int(rng.integers(0, n + 1))
        for level in (0.9, 0.95, 0.99):
            ref = binomtest(k, n).proportion_ci(confidence_level=level, method="wilson")
            assert decisions.wilson_interval(k, n, level) == (
                pytest.approx(ref.low, abs=1e-12),
                pytest.approx(ref.high, abs=1e-12),
            )
    with pytest.raises(ValueError):
        decisions.wilson_interval(11, 10)


def test_predictive_values_by_hand_and_at_the_test_prevalence():
    # sensitivity 0.9, specificity 0.8, prevalence 0.1:
    # PPV = 0.09 / (0.09 + 0.2 * 0.9) = 1/3; NPV = 0.8 * 0.9 / (0.72 + 0.1 * 0.1) = 0.72 / 0.73
    ppv, npv = decisions.predictive_values(0.9, 0.8, 0.1)
    assert ppv == pytest.approx(1 / 3) and npv == pytest.approx(0.72 / 0.73)
    # at the prevalence of the counts themselves, Bayes' rule gives back TP / (TP + FP) and TN / (TN + FN)
    tp, fp, tn, fn = 30, 12, 50, 8
    r = decisions.rates(tp, fp, tn, fn)
    ppv, npv = decisions.predictive_values(r["sensitivity"], r["specificity"], (tp + fn) / 100)
    assert ppv == pytest.approx(tp / (tp + fp)) and npv == pytest.approx(tn / (tn + fn))
    y = np.r_[np.ones(tp + fn, bool), np.zeros(fp + tn, bool)]
    called = np.r_[np.ones(tp, bool), np.zeros(fn, bool), np.ones(fp, bool), np.zeros(tn, bool)]
    at = decisions.predictive_values_bootstrap(y, called, 0.02, n_boot=500, seed=1)
    se, sp = tp / (tp + fn), tn / (tn + fp)
    assert at["ppv"] == pytest.approx(se * 0.02 / (se * 0.02 + (1 - sp) * 0.98))
    assert at["npv"] == pytest.approx(sp * 0.98 / (sp * 0.98 + (1 - se) * 0.02))
    assert at["ppv_ci"][0] <= at["ppv"] <= at["ppv_ci"][1] and at["npv_ci"][0] <= at["npv"] <= at["npv_ci"][1]
    assert at == decisions.predictive_values_bootstrap(y, called, 0.02, n_boot=500, seed=1)  # seeded


# --------------------------------------------------------------------------- curves and areas


@pytest.mark.parametrize("decimals", [None, 1])
def test_binary_curves_match_scikit_learn(decimals):
    y, p = _random_problem(200, 2, seed=3, decimals=decimals)
    c = decisions.binary_curves(y == 1, p[:, 1])
    assert c["auc"] == pytest.approx(skm.roc_auc_score(y, p[:, 1]))
    assert c["average_precision"] == pytest.approx(skm.average_precision_score(y, p[:, 1]))
    prec, rec, thr = skm.precision_recall_curve(y, p[:, 1])
    np.testing.assert_allclose(c["precision"], prec)
    np.testing.assert_allclose(c["recall"], rec)
    np.testing.assert_allclose(c["pr_thresholds"], thr)
    fpr, tpr, _ = skm.roc_curve(y, p[:, 1], drop_intermediate=False)
    np.testing.assert_allclose(c["fpr"], fpr)
    np.testing.assert_allclose(c["tpr"], tpr)
    assert (c["n_pos"], c["n_neg"]) == (int((y == 1).sum()), int((y == 0).sum()))
    # hand-made: one positive above both negatives, one between them -> 3 of 4 pairs ordered
    hand = decisions.binary_curves([1, 0, 1, 0], [0.9, 0.6, 0.5, 0.1])
    assert hand["auc"] == pytest.approx(0.75)
    assert hand["average_precision"] == pytest.approx(0.5 * 1 + 0.5 * (2 / 3))
    none = decisions.binary_curves([0, 0, 0], [0.1, 0.2, 0.3])
    assert none["auc"] is None and none["average_precision"] is None


def test_bootstrap_areas_equal_scikit_learn_on_each_resample():
    n, k, n_boot, seed = 60, 3, 40, 7
    y, p = _random_problem(n, k, seed=2, decimals=1)  # ties: they count half in the AUC
    auc, ap = decisions.bootstrap_auc_ap(y, p, n_boot=n_boot, seed=seed)
    assert auc.shape == ap.shape == (n_boot, k)
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))  # the same draws, in one chunk
    for b in range(n_boot):
        for c in range(k):
            truth, score = y[idx[b]] == c, p[idx[b], c]
            assert auc[b, c] == pytest.approx(skm.roc_auc_score(truth, score), abs=1e-12)
            assert ap[b, c] == pytest.approx(skm.average_precision_score(truth, score), abs=1e-12)


def test_curve_summary_multiclass_one_vs_rest_matches_scikit_learn():
    y, p = _random_problem(400, 4, seed=5)
    names = ["cat", "dog", "$x$", "<b>"]
    s = decisions.curve_summary(y, p, names, n_boot=300, seed=0)
    rec = s["json"]
    assert rec["roc_auc_macro"] == pytest.approx(skm.roc_auc_score(y, p, multi_class="ovr", average="macro"))
    for c, name in enumerate(names):
        assert rec["roc_auc"][name] == pytest.approx(skm.roc_auc_score(y == c, p[:, c]))
        assert rec["average_precision"][name] == pytest.approx(skm.average_precision_score(y == c, p[:, c]))
        lo, hi = rec["roc_auc_ci"][name]
        assert 0 <= lo <= rec["roc_auc"][name] <= hi <= 1
        lo, hi = rec["average_precision_ci"][name]
        assert 0 <= lo <= rec["average_precision"][name] <= hi <= 1
    assert rec["average_precision_macro"] == pytest.approx(np.mean(list(rec["average_precision"].values())))
    lo, hi = rec["roc_auc_macro_ci"]
    assert lo <= rec["roc_auc_macro"] <= hi and hi - lo < 0.1
    assert rec["n_boot"] == 300 and rec["n_boot_valid"] == 300 and sum(rec["n_pos"].values()) == 400
    json.dumps(rec)  # JSON-ready
    table = decisions.auc_table(rec)
    assert list(table.index) == [*names, "macro average"]
    fpr, tpr = s["macro_curve"]
    assert fpr[0] == 0 and fpr[-1] == 1 and np.all(np.diff(tpr) >= -1e-12)
    # two classes: each class's AUC is the other's (p0 = 1 - p1), and equals scikit-learn's binary AUC
    y2, p2 = _random_problem(150, 2, seed=9)
    rec2 = decisions.curve_summary(y2, p2, ["neg", "pos"], n_boot=100)["json"]
    assert (
        rec2["roc_auc"]["pos"]
        == pytest.approx(rec2["roc_auc"]["neg"])
        == pytest.approx(skm.roc_auc_score(y2, p2[:, 1]))
    )


def test_a_class_missing_from_the_test_split_has_no_auc():
    y = np.array([0, 0, 1, 1, 0, 1])
    p = np.array([[0.7, 0.2, 0.1], [0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.3, 0.5, 0.2], [0.5, 0.4, 0.1], [0.1, 0.8, 0.1]])
    rec = decisions.curve_summary(y, p, ["a", "b", "c"], n_boot=50)["json"]
    assert rec["roc_auc"]["c"] is None and rec["roc_auc_ci"]["c"] is None and rec["average_precision"]["c"] is None
    assert rec["roc_auc_macro"] == pytest.approx(np.mean([rec["roc_auc"]["a"], rec["roc_auc"]["b"]]))


# --------------------------------------------------------------------------- operating points


def test_counts_at_thresholds_match_a_direct_count():
    y, p = _random_problem(100, 2, seed=1, decimals=2)
    thresholds = decisions.candidate_thresholds(p[:, 1])
    assert thresholds[0] > p[:, 1].max() and np.all(np.diff(thresholds) < 0)
    c = decisions.counts_at(y == 1, p[:, 1], thresholds)
    for i, t in enumerate(thresholds):
        called = p[:, 1] >= t
        assert c["tp"][i] == np.sum(called & (y == 1)) and c["fp"][i] == np.sum(called & (y == 0))
        assert c["tn"][i] == np.sum(~called & (y == 0)) and c["fn"][i] == np.sum(~called & (y == 1))


def test_operating_points_worked_out_by_hand():
    pick = decisions.choose_threshold(HAND_LABELS, HAND_SCORES, "youden")
    assert pick["threshold"] == 0.6 and pick["constraint_met"]
    v = pick["validation"]
    assert (v["tp"], v["fp"], v["tn"], v["fn"]) == (4, 1, 3, 2)
    assert v["sensitivity"] == pytest.approx(4 / 6) and v["specificity"] == pytest.approx(3 / 4)
    assert v["ppv"] == pytest.approx(4 / 5) and v["npv"] == pytest.approx(3 / 5)
    assert v["youden_j"] == pytest.approx(4 / 6 + 3 / 4 - 1) and v["accuracy"] == pytest.approx(0.7)

    pick = decisions.choose_threshold(HAND_LABELS, HAND_SCORES, "sensitivity>=0.8")
    assert pick["threshold"] == 0.4 and pick["constraint_met"]
    v = pick["validation"]
    assert (v["tp"], v["fp"], v["tn"], v["fn"]) == (5, 2, 2, 1)
    assert v["sensitivity"] == pytest.approx(5 / 6) and v["specificity"] == pytest.approx(0.5)
    assert v["ppv"] == pytest.approx(5 / 7) and v["npv"] == pytest.approx(2 / 3)

    # specificity >= 0.75: 0.95, 0.9 (spec 1), 0.8 ... 0.6 (spec 3/4); the most sensitive is 0.6
    assert decisions.choose_threshold(HAND_LABELS, HAND_SCORES, "specificity>=0.75")["threshold"] == 0.6
    # PPV >= 0.8 at 0.95, 0.9 (1.0) and 0.6 (4/5); the most sensitive is 0.6
    assert decisions.choose_threshold(HAND_LABELS, HAND_SCORES, "ppv>=0.8")["threshold"] == 0.6
    # sensitivity 1 needs every positive: the lowest score
    assert decisions.choose_threshold(HAND_LABELS, HAND_SCORES, "sensitivity>=1")["threshold"] == 0.1
    # NPV never reaches 0.99 (its best is 2/3 at 0.4): the closest is used, and said so
    pick = decisions.choose_threshold(HAND_LABELS, HAND_SCORES, "npv>=0.99")
    assert pick["threshold"] == 0.4 and pick["constraint_met"] is False
    assert pick["validation"]["npv"] == pytest.approx(2 / 3)


def test_youden_ties_go_to_the_higher_threshold():
    # J = 0.6 at 0.55 (sens 0.8, spec 0.8) and at 0.35 (sens 1, spec 0.6)
    scores = np.array([0.95, 0.85, 0.75, 0.65, 0.55, 0.45, 0.35, 0.25, 0.15, 0.05])
    labels = np.array([1, 1, 0, 1, 1, 0, 1, 0, 0, 0])
    pick = decisions.choose_threshold(labels, scores, "youden")
    assert pick["threshold"] == 0.55 and pick["validation"]["youden_j"] == pytest.approx(0.6)
    with pytest.raises(ValueError, match="positive and negative"):
        decisions.choose_threshold(np.ones(4), np.linspace(0, 1, 4), "youden")


def _two_class(scores, labels):
    scores = np.asarray(scores, dtype=float)
    return np.asarray(labels), np.stack([1 - scores, scores], axis=1)


def test_operating_points_choose_on_validation_and_score_on_test():
    y_val, p_val = _two_class(HAND_SCORES, HAND_LABELS)
    # test: 5 positive, 5 negative; at threshold 0.4 -> called 0.9, 0.7, 0.5, 0.45, 0.42 (P P N P N) and
    # not called 0.39, 0.3, 0.2 (P, N, P) and 0.1, 0.05 (N, N): TP 3, FP 2, TN 3, FN 2
    y_test, p_test = _two_class([0.9, 0.7, 0.5, 0.45, 0.42, 0.39, 0.3, 0.2, 0.1, 0.05], [1, 1, 0, 1, 0, 1, 0, 1, 0, 0])
    op = decisions.operating_points(
        y_val, p_val, y_test, p_test, ["benign", "malignant"], "sensitivity>=0.8", prevalence=0.1, n_boot=200
    )
    assert op["mode"] == "positive class" and op["positive_class"] == "malignant"  # the second class
    assert op["threshold"] == 0.4 and op["chosen_on"] == "validation" and op["n_val"] == 10
    assert op["validation"]["sensitivity"] == pytest.approx(5 / 6)
    t = op["test"]
    assert t["counts"] == {"tp": 3, "fp": 2, "tn": 3, "fn": 2}
    assert t["confusion_matrix"] == [[3, 2], [2, 3]] and t["n"] == 10 and t["prevalence"] == 0.5
    for key in ("sensitivity", "specificity", "ppv", "npv"):
        assert t[key]["value"] == pytest.approx(0.6) and (t[key]["k"], t[key]["n"]) == (3, 5)
        assert t[key]["ci"] == pytest.approx(list(decisions.wilson_interval(3, 5)))
    assert t["accuracy"]["value"] == pytest.approx(0.6) and t["accuracy"]["n"] == 10
    at = t["at_prevalence"]
    assert at["prevalence"] == 0.1
    assert at["ppv"] == pytest.approx(0.06 / (0.06 + 0.4 * 0.9)) and at["npv"] == pytest.approx(0.54 / (0.54 + 0.04))
    assert op["per_class"]["malignant"]["threshold"] == 0.4 and op["notes"] == []
    assert "Wilson" in op["interval_method"]
    json.dumps(op)
    table = decisions.operating_table(op)
    assert list(table.index[:5]) == ["sensitivity", "specificity", "PPV", "NPV", "accuracy"]
    assert table.loc["sensitivity", "test count"] == "3/5"
    assert decisions.confusion_2x2(op, "malignant", "benign").to_numpy().tolist() == [[3, 2], [2, 3]]

    # the other class named positive: its probability is thresholded instead
    op0 = decisions.operating_points(
        y_val, p_val, y_test, p_test, ["benign", "malignant"], "youden", positive_class="benign"
    )
    assert op0["positive_class"] == "benign" and op0["chosen_on"] == "validation"

    # no validation split: the default threshold 0.5 (the argmax), and a note that says so
    none = decisions.operating_points(None, None, y_test, p_test, ["benign", "malignant"], "youden")
    assert none["threshold"] == 0.5 and none["chosen_on"] == "default" and none["validation"] is None
    assert none["n_val"] == 0 and "no validation split" in none["notes"][0]
    assert none["test"]["counts"] == {"tp": 2, "fp": 1, "tn": 4, "fn": 3}  # called 0.9, 0.7, 0.5


def test_operating_points_one_vs_rest_for_more_classes():
    y_val, p_val = _random_problem(300, 3, seed=11)
    y_test, p_test = _random_problem(200, 3, seed=12)
    names = ["a", "b", "c"]
    op = decisions.operating_points(y_val, p_val, y_test, p_test, names, "specificity>=0.9", n_boot=100)
    assert op["mode"] == "one-vs-rest" and op["positive_class"] is None and list(op["per_class"]) == names
    for c, name in enumerate(names):
        e = op["per_class"][name]
        again = decisions.choose_threshold(y_val == c, p_val[:, c], "specificity>=0.9")
        assert e["threshold"] == again["threshold"] and e["validation"]["specificity"] >= 0.9
        called = p_test[:, c] >= e["threshold"]
        assert e["test"]["counts"]["tp"] == np.sum(called & (y_test == c))
        assert e["test"]["counts"]["fp"] == np.sum(called & (y_test != c))
    assert op["macro"]["sensitivity"] == pytest.approx(
        np.mean([e["test"]["sensitivity"]["value"] for e in op["per_class"].values()])
    )
    assert list(decisions.operating_table(op).index) == names
    # one class named among three: only its probability is thresholded
    op_b = decisions.operating_points(y_val, p_val, y_test, p_test, names, "youden", positive_class="b", n_boot=100)
    assert op_b["mode"] == "positive class" and list(op_b["per_class"]) == ["b"] and op_b["threshold"] is not None
    # no validation split: each class is called when it is the most probable
    none = decisions.operating_points(None, None, y_test, p_test, names, "youden")
    pred = p_test.argmax(1)
    assert none["per_class"]["a"]["threshold"] is None
    assert none["per_class"]["a"]["test"]["counts"]["tp"] == np.sum((pred == 0) & (y_test == 0))


# --------------------------------------------------------------------------- figures and key results


def test_roc_and_pr_figures_fit_the_page_with_readable_text():
    y, p = _random_problem(120, 3, seed=4)
    names = ["$cat$", "dog", "bird"]
    s = decisions.curve_summary(y, p, names, n_boot=50)
    op = decisions.operating_points(y, p, y, p, names, "youden", n_boot=50)
    roc_points, pr_points = decisions.figure_points(op, names)
    assert set(roc_points) == {0, 1, 2}
    e = op["per_class"]["dog"]
    assert roc_points[1]["test"] == pytest.approx(
        (1 - e["test"]["specificity"]["value"], e["test"]["sensitivity"]["value"])
    )
    figs = [
        plots.roc_curves(s["curves"], names, macro=s["macro_curve"], points=roc_points, title="ROC of $cat$"),
        plots.pr_curves(s["curves"], names, points=pr_points),
        plots.roc_curves(s["curves"], names, show=[1], points={1: roc_points[1]}),
    ]
    for fig in figs:
        assert fig.get_size_inches()[0] <= plots.PAGE_WIDTH
        texts = [t for t in fig.findobj(plt.Text) if t.get_text()]
        assert min(t.get_fontsize() for t in texts) >= 8
        fig.canvas.draw()  # a "$" read as mathtext would fail here: the figures' style turns mathtext off
        legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
        plt.close(fig)
    assert not any("cat" in t for t in legend)  # the single-class figure shows only dog
    assert "$cat$ (AUC" in " ".join(t.get_text() for t in figs[0].axes[0].get_legend().get_texts())  # as written


def _metrics_for_key_results(op, rec):
    return {"n_test": 10, "test_acc": 0.6, "test_acc_ci": [0.3, 0.8], **rec, "operating_point": op}


def test_key_results_show_the_auc_and_the_operating_point():
    y_val, p_val = _two_class(HAND_SCORES, HAND_LABELS)
    y_test, p_test = _two_class(np.linspace(0.05, 0.95, 10), [0, 0, 1, 0, 0, 1, 1, 0, 1, 1])
    names = ["ok", "<b>bad</b>"]
    op = decisions.operating_points(y_val, p_val, y_test, p_test, names, "sensitivity>=0.8", prevalence=0.05)
    rec = decisions.curve_summary(y_test, p_test, names, n_boot=100)["json"]
    rows, says = key_results.key_results("04_evaluate", json.loads(json.dumps(_metrics_for_key_results(op, rec))))
    table = dict(rows)
    assert table["ROC AUC (<b>bad</b> positive)"].startswith(f"{rec['roc_auc']['<b>bad</b>']:.3f} (95% CI")
    assert "chosen on 10 validation images by sensitivity&gt;=0.8" in table["Operating point (<b>bad</b> positive)"]
    sens = op["test"]["sensitivity"]["value"]
    assert table["Test sensitivity / specificity"].startswith(f"{100 * sens:.1f}% (95% CI")
    assert "Test PPV / NPV (prevalence 50.0%)" in table and "PPV / NPV at prevalence 5.00%" in table
    assert any("it was chosen for" in s for s in says)
    html = key_results.key_results_html("04_evaluate", _metrics_for_key_results(op, rec))
    assert "<b>bad" not in html and "&lt;b&gt;bad" in html

    y3, p3 = _random_problem(200, 3, seed=1)
    names3 = ["a", "b", "<i>c</i>"]
    op3 = decisions.operating_points(y3, p3, y3, p3, names3, "youden", n_boot=50)
    rec3 = decisions.curve_summary(y3, p3, names3, n_boot=50)["json"]
    rows3, _ = key_results.key_results("04_evaluate", _metrics_for_key_results(op3, rec3))
    table3 = dict(rows3)
    assert table3["ROC AUC (macro average)"].startswith(f"{rec3['roc_auc_macro']:.3f} (95% CI")
    assert "one threshold per class" in table3["Operating points (one-vs-rest)"]
    assert "Mean test sensitivity / specificity over 3 classes" in table3
    assert "<i>" not in table3["Lowest test sensitivity"]


# --------------------------------------------------------------------------- the notebook


@pytest.mark.notebook
@pytest.mark.slow
def test_evaluate_notebook_records_the_decision_numbers(smoke_study):
    result = smoke_study  # the whole smoke study on synthetic:40 (tests/conftest.py)
    assert result.ok, [(nb.name, nb.error) for nb in result.notebooks]
    run_dir = result.run_dir
    m = json.loads((run_dir / "metrics" / "04_evaluate.json").read_text())
    test = run_folder.load_predictions(run_dir)
    val = run_folder.load_predictions(run_dir, split="val")
    names = test["class_names"]
    y, p = test["y_true"], test["probs"].astype(np.float64)
    assert list(m["roc_auc"]) == names and list(m["average_precision"]) == names
    for c, name in enumerate(names):
        assert m["roc_auc"][name] == pytest.approx(skm.roc_auc_score(y == c, p[:, c]), abs=1e-6)
        assert m["average_precision"][name] == pytest.approx(skm.average_precision_score(y == c, p[:, c]), abs=1e-6)
        lo, hi = m["roc_auc_ci"][name]
        assert 0 <= lo <= hi <= 1
    assert m["roc_auc_macro"] == pytest.approx(np.mean(list(m["roc_auc"].values())))
    assert m["roc_auc_macro_ci"][0] <= m["roc_auc_macro"] <= m["roc_auc_macro_ci"][1]

    op = m["operating_point"]
    assert op["rule"] == "youden" and op["mode"] == "one-vs-rest" and op["positive_class"] is None  # 4 classes
    assert op["n_val"] == len(val["y_true"]) > 0
    for c, name in enumerate(names):
        e = op["per_class"][name]
        assert e["chosen_on"] == "validation"
        # the threshold comes from the validation scores alone
        again = decisions.choose_threshold(val["y_true"] == c, val["probs"][:, c].astype(np.float64), "youden")
        assert e["threshold"] == pytest.approx(again["threshold"], rel=1e-6)
        assert {k: e["validation"][k] for k in ("tp", "fp", "tn", "fn")} == {
            k: again["validation"][k] for k in ("tp", "fp", "tn", "fn")
        }
        # and the test rates are those of the stored test predictions at that threshold
        called, truth = p[:, c] >= e["threshold"], y == c
        counts = {
            "tp": int(np.sum(truth & called)),
            "fp": int(np.sum(~truth & called)),
            "tn": int(np.sum(~truth & ~called)),
            "fn": int(np.sum(truth & ~called)),
        }
        assert e["test"]["counts"] == counts
        assert e["test"]["sensitivity"]["value"] == pytest.approx(counts["tp"] / (counts["tp"] + counts["fn"]))
        lo, hi = e["test"]["specificity"]["ci"]
        assert lo <= e["test"]["specificity"]["value"] <= hi
        assert sum(map(sum, e["test"]["confusion_matrix"])) == m["n_test"]

    html = (run_dir / "04_evaluate.html").read_text()
    start = html.index("Decisions: ROC and precision-recall curves")
    section = html[start : html.index("Test-time augmentation", start)]
    assert section.count("data:image/png;base64") >= 2  # the ROC and the precision-recall figures
    box = html[: html.index("04 · Evaluation")]
    assert "ROC AUC (macro average)" in box and "Operating points (one-vs-rest)" in box
