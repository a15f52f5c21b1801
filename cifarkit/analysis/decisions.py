"""Decisions at a threshold: ROC and precision-recall curves, an operating point chosen on validation, its rates.

A clinician or a quality engineer does not act on an accuracy: they flag an image when
the probability of one class (the *positive* class: malignant, defective) reaches a
threshold, and want to know how many positives that finds (sensitivity), how many
negatives it clears (specificity) and how far a flag or a clearance can be trusted
(PPV, NPV). Notebook ``04_evaluate`` strings these functions together:

- :func:`curve_summary`: ROC and precision-recall curves per class (one-vs-rest), ROC AUC
  and average precision from scikit-learn, with percentile-bootstrap intervals over the
  test images (:func:`bootstrap_auc_ap`) and the macro averages.
- :func:`parse_rule` reads the user's rule (``"youden"``, ``"sensitivity>=0.95"``,
  ``"specificity>=0.9"``, ``"ppv>=0.8"``, ``"npv>=0.99"``); :func:`choose_threshold`
  applies it to **validation** scores only.
- :func:`operating_points` applies the chosen threshold to the test split and reports
  sensitivity, specificity, PPV, NPV and accuracy with Wilson score intervals
  (:func:`wilson_interval`), the 2x2 confusion matrix and, for a prevalence the user
  gives, PPV and NPV by Bayes' rule (:func:`predictive_values`) with a bootstrap interval.

Which class is positive (:func:`positive_classes`): the one named; with no name and two
classes the second class in the data's order; with no name and more classes every class
in turn against the rest, each with its own threshold. A sample is called positive when
its score is at least the threshold (``score >= threshold``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from cifarkit.analysis.stats import mean_of_present

#: The constraints a rule may put on the validation split (``"METRIC>=X"``).
CONSTRAINTS = ("sensitivity", "specificity", "ppv", "npv")

#: What :func:`parse_rule` accepts, in words (used in its error message).
RULE_HELP = (
    '"youden" (the threshold that maximizes sensitivity + specificity - 1), or "METRIC>=X" with METRIC one of '
    'sensitivity, specificity, ppv, npv and X a number in (0, 1], e.g. "sensitivity>=0.95"'
)

#: How the intervals of the rates at the operating point are computed (recorded beside them).
RATE_INTERVALS = "Wilson score interval"
BOOTSTRAP_INTERVALS = "percentile bootstrap over test images"

# the side a constraint leaves free, which the rule then makes as good as it can
_OTHER_SIDE = {"sensitivity": "specificity", "specificity": "sensitivity", "ppv": "sensitivity", "npv": "specificity"}
_WORDS = {"sensitivity": "sensitivity", "specificity": "specificity", "ppv": "PPV", "npv": "NPV"}
_RULE_RE = re.compile(r"^(sensitivity|specificity|ppv|npv)>=([0-9]*\.?[0-9]+(?:e-?[0-9]+)?)$")


# --------------------------------------------------------------------------- the rule


@dataclass(frozen=True)
class Rule:
    """An operating-point rule: ``kind`` is ``"youden"`` or one of :data:`CONSTRAINTS`, ``target`` its bound."""

    kind: str
    target: float | None = None

    @property
    def text(self) -> str:
        """The rule as the user writes it: ``"youden"``, ``"sensitivity>=0.95"``."""
        return "youden" if self.kind == "youden" else f"{self.kind}>={self.target:g}"

    @property
    def other_side(self) -> str | None:
        """The rate the rule maximizes under its constraint (``None`` for Youden's J)."""
        return _OTHER_SIDE.get(self.kind)

    def describe(self) -> str:
        """The rule in words, for a report."""
        if self.kind == "youden":
            return "the threshold that maximizes Youden's J = sensitivity + specificity - 1 on the validation split"
        return (
            f"the threshold with the highest {self.other_side} among those whose {_WORDS[self.kind]} on the "
            f"validation split is at least {self.target:g}"
        )


def parse_rule(text) -> Rule:
    """Read an operating-point rule (``OPERATING_POINT``): ``"youden"`` or ``"METRIC>=X"``.

    Case and spaces are ignored and ``≥`` reads as ``>=`` (``"Sensitivity ≥ 0.95"`` is ``sensitivity>=0.95``).

    Raises:
        ValueError: naming what was received and what is allowed.
    """
    cleaned = re.sub(r"\s+", "", text).lower().replace("≥", ">=") if isinstance(text, str) else None
    if cleaned == "youden":
        return Rule("youden")
    m = _RULE_RE.match(cleaned or "")
    if m:
        target = float(m.group(2))
        if 0 < target <= 1:
            return Rule(m.group(1), target)
        raise ValueError(
            f"OPERATING_POINT {text!r} asks for {m.group(1)} of at least {target:g}, but a rate lies between 0 and 1: "
            f"give X in (0, 1] (0.95 for 95%). Allowed: {RULE_HELP}."
        )
    raise ValueError(f"OPERATING_POINT must be {RULE_HELP}; received {text!r}.")


def check_prevalence(prevalence) -> float:
    """``PREVALENCE`` as a float in ``[0, 1)`` (0 means the test split's own); else a ``ValueError``."""
    if isinstance(prevalence, bool) or not isinstance(prevalence, (int, float)) or not math.isfinite(prevalence):
        raise ValueError(f"PREVALENCE must be a number in [0, 1); received {prevalence!r}.")
    if not 0 <= prevalence < 1:
        raise ValueError(
            f"PREVALENCE must be at least 0 and below 1 (0 uses the test split's prevalence; 0.02 means 2% of the "
            f"images where the model is used are positive); received {prevalence!r}."
        )
    return float(prevalence)


def positive_classes(class_names, positive_class: str = "") -> tuple[list[int], str]:
    """Which classes are thresholded as positive, and how.

    Returns:
        ``(indices, mode)``: the named class (``mode="positive class"``); with an empty name and two
        classes the second one in the data's order (``"positive class"``); with an empty name and more
        classes every class against the rest (``"one-vs-rest"``).

    Raises:
        ValueError: an unknown name (the message lists the classes), or fewer than two classes.
    """
    names = [str(c) for c in class_names]
    if len(names) < 2:
        raise ValueError(f"A decision needs at least two classes; the data has {len(names)}: {names}.")
    wanted = str(positive_class or "").strip()
    if not wanted:
        return ([1], "positive class") if len(names) == 2 else (list(range(len(names))), "one-vs-rest")
    if wanted in names:
        return [names.index(wanted)], "positive class"
    folded = [i for i, n in enumerate(names) if n.casefold() == wanted.casefold()]
    if len(folded) == 1:
        return folded, "positive class"
    raise ValueError(
        f"POSITIVE_CLASS must name one of the classes ({', '.join(repr(n) for n in names)}) or be empty; "
        f"received {positive_class!r}."
    )


# --------------------------------------------------------------------------- intervals


def wilson_interval(k: int, n: int, level: float = 0.95) -> tuple[float | None, float | None]:
    """Wilson score interval of the proportion ``k / n`` (Wilson 1927); ``(None, None)`` when ``n == 0``.

    It stays inside [0, 1] and keeps its coverage near the nominal level for small ``n`` and
    proportions near 0 or 1, where the normal (Wald) interval fails: 8 of 10 gives 0.4902 to 0.9433.
    """
    from scipy.stats import norm

    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level!r}.")
    if n < 0 or k < 0 or k > n:
        raise ValueError(f"Need 0 <= k <= n; got k={k}, n={n}.")
    if n == 0:
        return None, None
    z = float(norm.ppf(0.5 + level / 2))
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def predictive_values(sensitivity, specificity, prevalence):
    """PPV and NPV at a prevalence by Bayes' rule (arrays broadcast; NaN where undefined).

    ``PPV = sens p / (sens p + (1 - spec)(1 - p))`` and ``NPV = spec (1 - p) / (spec (1 - p) + (1 - sens) p)``.
    """
    se, sp, p = (np.asarray(v, dtype=np.float64) for v in (sensitivity, specificity, prevalence))
    with np.errstate(invalid="ignore", divide="ignore"):
        ppv = se * p / (se * p + (1 - sp) * (1 - p))
        npv = sp * (1 - p) / (sp * (1 - p) + (1 - se) * p)
    if ppv.ndim == 0:
        return float(ppv), float(npv)
    return ppv, npv


# --------------------------------------------------------------------------- curves and areas


def _binary(y_true, scores) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true).reshape(-1).astype(bool)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(y) != len(s):
        raise ValueError(f"Need one score per label; received {len(s)} scores for {len(y)} labels.")
    if not np.isfinite(s).all():
        raise ValueError("Scores must be finite numbers; received NaN or infinity.")
    return y, s


def _check_probs(y_true, probs, class_names=None):
    y = np.asarray(y_true).reshape(-1).astype(np.int64)
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or len(p) != len(y) or len(y) == 0:
        raise ValueError(
            f"probs must be (N, num_classes) with one row per label, N > 0; received probs of shape {p.shape} "
            f"for {len(y)} labels."
        )
    if y.min() < 0 or y.max() >= p.shape[1]:
        raise ValueError(f"Labels must lie in 0..{p.shape[1] - 1}; got {y.min()}..{y.max()}.")
    if class_names is not None and len(class_names) != p.shape[1]:
        raise ValueError(f"Got {len(class_names)} class names for {p.shape[1]} probability columns.")
    return y, p


def binary_curves(y_true, scores) -> dict:
    """ROC and precision-recall curves of one binary problem (``y_true`` truthy = positive) from scikit-learn.

    Returns:
        ``{"fpr", "tpr", "roc_thresholds", "precision", "recall", "pr_thresholds", "auc",
        "average_precision", "n_pos", "n_neg"}``; ``auc`` is ``None`` without positives or negatives
        (and the curves empty), ``average_precision`` ``None`` without positives.
    """
    from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

    y, s = _binary(y_true, scores)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    empty = np.zeros(0)
    out = {"n_pos": n_pos, "n_neg": n_neg, "fpr": empty, "tpr": empty, "roc_thresholds": empty, "auc": None}
    out.update({"precision": empty, "recall": empty, "pr_thresholds": empty, "average_precision": None})
    if n_pos and n_neg:
        fpr, tpr, thr = roc_curve(y, s, drop_intermediate=False)
        out.update(fpr=fpr, tpr=tpr, roc_thresholds=thr, auc=float(roc_auc_score(y, s)))
    if n_pos:
        prec, rec, pthr = precision_recall_curve(y, s)
        out.update(
            precision=prec, recall=rec, pr_thresholds=pthr, average_precision=float(average_precision_score(y, s))
        )
    return out


def bootstrap_auc_ap(y_true, probs, *, n_boot: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """ROC AUC and average precision of every class (one-vs-rest) on ``n_boot`` bootstrap resamples of the examples.

    Each resample draws N examples with replacement (the same draws for every class, so a macro
    average of a row is the macro average of that resample). A resample is scored as scikit-learn would
    score it (ties count half in the AUC; AP is the step-wise area of the PR curve), computed from
    how often each example was drawn, so all resamples cost a few array passes.

    Returns:
        ``(auc, ap)``, each ``(n_boot, K)``; NaN where a resample has no positive (or, for the AUC,
        no negative) of the class.
    """
    y, p = _check_probs(y_true, probs)
    if n_boot < 10:
        raise ValueError(f"n_boot must be at least 10, got {n_boot!r}.")
    n, k = p.shape
    rng = np.random.default_rng(seed)
    auc = np.full((n_boot, k), np.nan)
    ap = np.full((n_boot, k), np.nan)
    prepared = []
    for c in range(k):
        order = np.argsort(p[:, c], kind="stable")
        s = p[order, c]
        starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
        prepared.append((order, starts, (y[order] == c).astype(np.float64)))
    chunk = max(1, 2_000_000 // n)
    for start in range(0, n_boot, chunk):
        stop = min(n_boot, start + chunk)
        b = stop - start
        idx = rng.integers(0, n, size=(b, n))
        weights = np.bincount((idx + n * np.arange(b)[:, None]).ravel(), minlength=b * n).reshape(b, n).astype(float)
        for c, (order, starts, pos) in enumerate(prepared):
            w = weights[:, order]
            pw = np.add.reduceat(w * pos, starts, axis=1)  # drawn positives per distinct score, ascending
            nw = np.add.reduceat(w * (1 - pos), starts, axis=1)
            tot_p, tot_n = pw.sum(1), nw.sum(1)
            below = np.cumsum(nw, axis=1) - nw  # negatives scored strictly lower
            with np.errstate(invalid="ignore", divide="ignore"):
                auc[start:stop, c] = np.where(
                    (tot_p > 0) & (tot_n > 0), (pw * (below + 0.5 * nw)).sum(1) / (tot_p * tot_n), np.nan
                )
                tp = np.cumsum(pw[:, ::-1], axis=1)  # descending thresholds
                fp = np.cumsum(nw[:, ::-1], axis=1)
                called = tp + fp
                precision = np.divide(tp, called, out=np.zeros_like(tp), where=called > 0)
                ap[start:stop, c] = np.where(tot_p > 0, (pw[:, ::-1] * precision).sum(1) / tot_p, np.nan)
    return auc, ap


def _percentile_ci(values, level: float) -> list[float] | None:
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return None
    alpha = (1 - level) / 2
    return [float(np.quantile(v, alpha)), float(np.quantile(v, 1 - alpha))]


def macro_roc_curve(curves: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """The macro-average ROC curve: each class's TPR interpolated on the union of their FPRs, averaged."""
    usable = [c for c in curves if c["auc"] is not None]
    if not usable:
        return np.zeros(0), np.zeros(0)
    grid = np.unique(np.concatenate([c["fpr"] for c in usable]))
    tpr = np.mean([np.interp(grid, c["fpr"], c["tpr"]) for c in usable], axis=0)
    return grid, tpr


def curve_summary(y_true, probs, class_names, *, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> dict:
    """ROC AUC and average precision of every class against the rest, and their macro averages, with intervals.

    The point values are scikit-learn's ``roc_auc_score`` and ``average_precision_score`` on the
    class's probability; the intervals are percentile bootstraps over the examples
    (:func:`bootstrap_auc_ap`; resamples without a positive or negative of the class are left out and
    counted). With two classes both rows are given; their AUCs are equal.

    Returns:
        ``{"curves": [binary_curves per class], "macro_curve": (fpr, tpr), "json": {...}}`` where
        ``json`` is what the notebook records: ``roc_auc``, ``roc_auc_ci``, ``average_precision``,
        ``average_precision_ci`` (dicts by class name; ``None`` where undefined), ``roc_auc_macro``,
        ``roc_auc_macro_ci``, ``average_precision_macro``, ``average_precision_macro_ci``, ``n_pos``
        (by class), ``ci_level``, ``n_boot``, ``n_boot_valid`` (resamples in the macro intervals) and
        ``interval_method``.
    """
    y, p = _check_probs(y_true, probs, class_names)
    names = [str(c) for c in class_names]
    curves = [binary_curves(y == c, p[:, c]) for c in range(len(names))]
    auc_b, ap_b = bootstrap_auc_ap(y, p, n_boot=n_boot, seed=seed)
    auc_ok = [i for i, c in enumerate(curves) if c["auc"] is not None]
    ap_ok = [i for i, c in enumerate(curves) if c["average_precision"] is not None]
    macro_auc_b = auc_b[:, auc_ok].mean(1) if auc_ok else np.full(n_boot, np.nan)  # NaN if a class drops out
    macro_ap_b = ap_b[:, ap_ok].mean(1) if ap_ok else np.full(n_boot, np.nan)
    record = {
        "roc_auc": {n: curves[i]["auc"] for i, n in enumerate(names)},
        "roc_auc_ci": {n: _percentile_ci(auc_b[:, i], level) if i in auc_ok else None for i, n in enumerate(names)},
        "average_precision": {n: curves[i]["average_precision"] for i, n in enumerate(names)},
        "average_precision_ci": {
            n: _percentile_ci(ap_b[:, i], level) if i in ap_ok else None for i, n in enumerate(names)
        },
        "roc_auc_macro": float(np.mean([curves[i]["auc"] for i in auc_ok])) if auc_ok else None,
        "roc_auc_macro_ci": _percentile_ci(macro_auc_b, level),
        "average_precision_macro": float(np.mean([curves[i]["average_precision"] for i in ap_ok])) if ap_ok else None,
        "average_precision_macro_ci": _percentile_ci(macro_ap_b, level),
        "n_pos": {n: curves[i]["n_pos"] for i, n in enumerate(names)},
        "ci_level": level,
        "n_boot": int(n_boot),
        "n_boot_valid": int(np.isfinite(macro_auc_b).sum()),
        "interval_method": BOOTSTRAP_INTERVALS,
    }
    return {"curves": curves, "macro_curve": macro_roc_curve(curves), "json": record}


def auc_table(record: dict):
    """One row per class (and the macro average): ROC AUC and AP with their intervals, and the test positives."""
    import pandas as pd

    def ci(v):
        return f"{v[0]:.3f} to {v[1]:.3f}" if v else "-"

    rows = {
        name: {
            "ROC AUC": record["roc_auc"][name],
            "AUC 95% CI": ci(record["roc_auc_ci"][name]),
            "average precision": record["average_precision"][name],
            "AP 95% CI": ci(record["average_precision_ci"][name]),
            "test positives": record["n_pos"][name],
        }
        for name in record["roc_auc"]
    }
    rows["macro average"] = {
        "ROC AUC": record["roc_auc_macro"],
        "AUC 95% CI": ci(record["roc_auc_macro_ci"]),
        "average precision": record["average_precision_macro"],
        "AP 95% CI": ci(record["average_precision_macro_ci"]),
        "test positives": sum(record["n_pos"].values()),
    }
    frame = pd.DataFrame(rows).T
    frame.index.name = "class (against the rest)"
    return frame


# --------------------------------------------------------------------------- the operating point


def counts_at(y_true, scores, thresholds) -> dict:
    """Confusion counts when ``score >= threshold`` is called positive, for each threshold.

    Returns:
        ``{"tp", "fp", "tn", "fn"}``, int arrays shaped like ``thresholds``.
    """
    y, s = _binary(y_true, scores)
    t = np.asarray(thresholds, dtype=np.float64)
    pos, neg = np.sort(s[y]), np.sort(s[~y])
    tp = len(pos) - np.searchsorted(pos, t, side="left")
    fp = len(neg) - np.searchsorted(neg, t, side="left")
    return {"tp": tp, "fp": fp, "tn": len(neg) - fp, "fn": len(pos) - tp}


def rates(tp, fp, tn, fn) -> dict:
    """Sensitivity, specificity, PPV, NPV, accuracy and Youden's J from counts (arrays or ints; NaN where 0/0)."""
    tp, fp, tn, fn = (np.asarray(v, dtype=np.float64) for v in (tp, fp, tn, fn))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = {
            "sensitivity": tp / (tp + fn),
            "specificity": tn / (tn + fp),
            "ppv": tp / (tp + fp),
            "npv": tn / (tn + fn),
            "accuracy": (tp + tn) / (tp + fp + tn + fn),
        }
    out["youden_j"] = out["sensitivity"] + out["specificity"] - 1
    if out["ppv"].ndim == 0:
        return {k: float(v) for k, v in out.items()}
    return out


def candidate_thresholds(scores) -> np.ndarray:
    """Every distinct score, highest first, after one just above the highest (which calls nothing positive)."""
    s = np.unique(np.asarray(scores, dtype=np.float64))[::-1]
    return np.r_[np.nextafter(s[0], np.inf), s] if len(s) else s


def _finite_or_none(v):
    v = float(v)
    return v if math.isfinite(v) else None


def choose_threshold(y_true, scores, rule: Rule | str) -> dict:
    """The threshold a rule picks on (validation) scores; a sample is positive when ``score >= threshold``.

    Candidates are the distinct scores and one just above the highest. ``youden`` maximizes
    sensitivity + specificity - 1. A constraint ``METRIC>=X`` keeps the candidates that meet it and
    among them maximizes the other side (specificity for a sensitivity or NPV bound, sensitivity for a
    specificity or PPV bound), then the constrained metric. Remaining ties go to the higher threshold.
    When no candidate meets the constraint (a PPV or NPV out of reach), the one closest to it is
    taken and ``constraint_met`` is False.

    Returns:
        ``{"threshold", "constraint_met", "validation": {"n", "n_pos", "tp", "fp", "tn", "fn",
        "sensitivity", "specificity", "ppv", "npv", "accuracy", "youden_j"}}`` (undefined rates ``None``).

    Raises:
        ValueError: the scores lack a positive or a negative example (no rate can be traded off).
    """
    rule = parse_rule(rule) if isinstance(rule, str) else rule
    y, s = _binary(y_true, scores)
    if not y.any() or y.all():
        raise ValueError(
            f"Choosing a threshold needs positive and negative examples; the scores have {int(y.sum())} positive "
            f"and {int((~y).sum())} negative."
        )
    thr = candidate_thresholds(s)
    c = counts_at(y, s, thr)
    r = rates(c["tp"], c["fp"], c["tn"], c["fn"])
    order = np.arange(len(thr))  # thresholds descending: a lower index is a higher threshold

    def best(ids, *keys):
        return max(ids, key=lambda i: tuple(np.nan_to_num(k[i], nan=-np.inf) for k in keys) + (-order[i],))

    met = True
    if rule.kind == "youden":
        i = best(order, r["youden_j"])
    else:
        own, other = r[rule.kind], r[rule.other_side]
        ok = np.flatnonzero(np.nan_to_num(own, nan=-1.0) >= rule.target - 1e-12)
        if len(ok):
            i = best(ok, other, own)
        else:
            met = False
            i = best(order, own, other)
    validation = {"n": int(len(y)), "n_pos": int(y.sum())}
    validation.update({k: int(c[k][i]) for k in ("tp", "fp", "tn", "fn")})
    validation.update({k: _finite_or_none(v[i]) for k, v in r.items()})
    return {"threshold": float(thr[i]), "constraint_met": met, "validation": validation}


def rates_with_intervals(tp: int, fp: int, tn: int, fn: int, level: float = 0.95) -> dict:
    """Each rate at an operating point with its Wilson score interval (:func:`wilson_interval`).

    Returns:
        ``{metric: {"value", "ci", "k", "n"}}`` for sensitivity, specificity, ppv, npv and accuracy
        (``value`` and ``ci`` ``None`` when the denominator is 0), plus ``counts``, the 2x2
        ``confusion_matrix`` ``[[tn, fp], [fn, tp]]`` (rows: true negative, true positive; columns:
        predicted negative, predicted positive), ``n`` and ``prevalence`` (share of positives).
    """
    tp, fp, tn, fn = (int(v) for v in (tp, fp, tn, fn))
    parts = {
        "sensitivity": (tp, tp + fn),
        "specificity": (tn, tn + fp),
        "ppv": (tp, tp + fp),
        "npv": (tn, tn + fn),
        "accuracy": (tp + tn, tp + fp + tn + fn),
    }
    out = {}
    for name, (k, n) in parts.items():
        lo, hi = wilson_interval(k, n, level)
        out[name] = {"value": k / n if n else None, "ci": [lo, hi] if n else None, "k": k, "n": n}
    total = tp + fp + tn + fn
    out["counts"] = {"tp": tp, "fp": fp, "tn": tn, "fn": fn}
    out["confusion_matrix"] = [[tn, fp], [fn, tp]]
    out["n"] = total
    out["prevalence"] = (tp + fn) / total if total else None
    return out


def predictive_values_bootstrap(
    y_true, called, prevalence: float, *, n_boot: int = 2000, level: float = 0.95, seed: int = 0
) -> dict:
    """PPV and NPV at ``prevalence`` (Bayes' rule on the test sensitivity and specificity), with percentile
    bootstrap intervals over the examples (resamples without a positive or a negative are left out).

    Args:
        y_true: truthy for the positive examples.
        called: truthy for the examples called positive.
    """
    y, c = (np.asarray(v).reshape(-1).astype(bool) for v in (y_true, called))
    if len(y) != len(c) or len(y) == 0:
        raise ValueError(f"Need one call per label, N > 0; received {len(c)} calls for {len(y)} labels.")
    prevalence = check_prevalence(prevalence)
    cnt = rates(np.sum(y & c), np.sum(~y & c), np.sum(~y & ~c), np.sum(y & ~c))
    ppv, npv = predictive_values(cnt["sensitivity"], cnt["specificity"], prevalence)
    n = len(y)
    rng = np.random.default_rng(seed)
    se_b, sp_b = np.empty(n_boot), np.empty(n_boot)
    chunk = max(1, 2_000_000 // n)
    tp_v, tn_v = (y & c).astype(float), (~y & ~c).astype(float)
    for start in range(0, n_boot, chunk):
        stop = min(n_boot, start + chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        with np.errstate(invalid="ignore", divide="ignore"):
            se_b[start:stop] = tp_v[idx].sum(1) / y[idx].sum(1)
            sp_b[start:stop] = tn_v[idx].sum(1) / (~y[idx]).sum(1)
    ppv_b, npv_b = predictive_values(se_b, sp_b, prevalence)
    return {
        "prevalence": prevalence,
        "ppv": _finite_or_none(ppv),
        "ppv_ci": _percentile_ci(ppv_b, level),
        "npv": _finite_or_none(npv),
        "npv_ci": _percentile_ci(npv_b, level),
        "interval_method": BOOTSTRAP_INTERVALS,
    }


def operating_points(
    y_val,
    probs_val,
    y_test,
    probs_test,
    class_names,
    rule: Rule | str,
    *,
    positive_class: str = "",
    prevalence: float = 0.0,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> dict:
    """Choose the operating point on validation by ``rule`` and score it on test.

    The positive class comes from :func:`positive_classes`. For each positive class ``c`` the score is
    the probability of ``c``; the threshold is :func:`choose_threshold` on the validation scores.
    Without a validation split (``probs_val`` None or empty), or when it lacks a positive or negative
    example of ``c``, the default decision is used and said so: ``score >= 0.5`` with two classes (the
    argmax), ``c`` being the most probable class with more.

    Returns:
        A JSON-ready dict: ``rule``, ``rule_description``, ``mode`` (``"positive class"`` or
        ``"one-vs-rest"``), ``positive_class`` (the name, ``None`` one-vs-rest), ``interval_method``,
        ``prevalence_given`` (``None`` for the test split's), ``ci_level``, ``notes`` and ``per_class``:
        ``{name: {"threshold", "decision", "chosen_on" ("validation" | "default"), "constraint_met",
        "validation" (as in :func:`choose_threshold`, ``None`` by default), "test"
        (:func:`rates_with_intervals`, with ``at_prevalence`` from :func:`predictive_values_bootstrap`
        when a prevalence is given)}}``. With one positive class its entry is also copied to the top
        level (``threshold``, ``decision``, ``chosen_on``, ``constraint_met``, ``validation``, ``test``);
        one-vs-rest adds ``macro`` (the mean test rates over the classes).
    """
    rule = parse_rule(rule) if isinstance(rule, str) else rule
    names = [str(c) for c in class_names]
    y_t, p_t = _check_probs(y_test, probs_test, names)
    have_val = probs_val is not None and len(probs_val) > 0
    if have_val:
        y_v, p_v = _check_probs(y_val, probs_val, names)
    prevalence = check_prevalence(prevalence)
    indices, mode = positive_classes(names, positive_class)
    notes = []
    if not have_val:
        notes.append(
            "There is no validation split (VAL_FRACTION is 0), so no threshold is chosen: the default decision "
            + ("(probability of the positive class at least 0.5, the argmax) " if len(names) == 2 else "(the argmax) ")
            + "is scored instead of the rule."
        )
    per_class = {}
    for c in indices:
        name = names[c]
        entry = {"threshold": None, "chosen_on": "default", "constraint_met": None, "validation": None}
        if have_val and 0 < int(np.sum(y_v == c)) < len(y_v):
            chosen = choose_threshold(y_v == c, p_v[:, c], rule)
            entry.update(chosen, chosen_on="validation")
            if not chosen["constraint_met"]:
                notes.append(
                    f"No threshold meets {rule.text} on the validation split for {name}: the one closest to it is used."
                )
        elif have_val:
            lacking = f"no image of {name}" if not np.any(y_v == c) else f"only images of {name}"
            notes.append(f"The validation split has {lacking}, so the default decision is used for {name}.")
        if entry["chosen_on"] == "default" and len(names) == 2:
            entry["threshold"] = 0.5
        thr = entry["threshold"]
        called = p_t[:, c] >= thr if thr is not None else p_t.argmax(1) == c
        entry["decision"] = (
            f"probability of {name} >= {thr:.4g}" if thr is not None else f"{name} is the most probable class"
        )
        truth = y_t == c
        test = rates_with_intervals(
            np.sum(truth & called), np.sum(~truth & called), np.sum(~truth & ~called), np.sum(truth & ~called), level
        )
        if prevalence > 0:
            test["at_prevalence"] = predictive_values_bootstrap(
                truth, called, prevalence, n_boot=n_boot, level=level, seed=seed
            )
        entry["test"] = test
        per_class[name] = entry
    out = {
        "rule": rule.text,
        "rule_description": rule.describe(),
        "mode": mode,
        "positive_class": names[indices[0]] if mode == "positive class" else None,
        "interval_method": f"{RATE_INTERVALS} ({level:.0%}) for the test rates; {BOOTSTRAP_INTERVALS} for PPV and "
        "NPV at a given prevalence",
        "prevalence_given": prevalence or None,
        "ci_level": level,
        "n_val": int(len(y_v)) if have_val else 0,
        "notes": notes,
        "per_class": per_class,
    }
    if mode == "positive class":
        out.update({k: v for k, v in per_class[names[indices[0]]].items()})
    else:
        out["macro"] = {
            k: mean_of_present([e["test"][k]["value"] for e in per_class.values()])
            for k in ("sensitivity", "specificity", "ppv", "npv", "accuracy")
        }
    return out


#: The rates of an operating-point table and their row labels.
RATE_LABELS = {
    "sensitivity": "sensitivity",
    "specificity": "specificity",
    "ppv": "PPV",
    "npv": "NPV",
    "accuracy": "accuracy",
}


def pct_or_dash(v) -> str:
    return f"{v:.1%}" if v is not None else "-"


def ci_text(r) -> str:
    return f"{r['ci'][0]:.1%} to {r['ci'][1]:.1%}" if r and r.get("ci") else "-"


def operating_table(op: dict):
    """The operating point as a table of text (escape it with ``escape.table``).

    One positive class: one row per rate (sensitivity, specificity, PPV, NPV, accuracy, then PPV and NPV
    at the given prevalence), with the validation value that chose the threshold, the test value, its
    interval and its count. One-vs-rest: one row per class with the threshold, the test rates with their
    intervals and the validation sensitivity and specificity.
    """
    import pandas as pd

    pct, ci, labels = pct_or_dash, ci_text, dict(RATE_LABELS)
    if len(op["per_class"]) == 1:
        (e,) = op["per_class"].values()
        t, v = e["test"], e.get("validation") or {}
        rows = {
            label: {
                "validation": pct(v.get(key)),
                "test": pct(t[key]["value"]),
                "test 95% CI": ci(t[key]),
                "test count": f"{t[key]['k']}/{t[key]['n']}",
            }
            for key, label in labels.items()
        }
        at = t.get("at_prevalence")
        if at:
            for key in ("ppv", "npv"):
                rows[f"{labels[key]} at prevalence {at['prevalence']:.2%}"] = {
                    "validation": "-",
                    "test": pct(at[key]),
                    "test 95% CI": ci({"ci": at[f"{key}_ci"]}) + " (bootstrap)",
                    "test count": "-",
                }
        frame = pd.DataFrame(rows).T
        frame.index.name = "rate"
        return frame
    rows = {}
    for name, e in op["per_class"].items():
        t, v = e["test"], e.get("validation") or {}
        rows[name] = {"threshold": f"{e['threshold']:.4g}" if e["threshold"] is not None else "argmax"}
        for key in ("sensitivity", "specificity", "ppv", "npv"):
            rows[name][f"test {labels[key]}"] = value_ci(t[key]["value"], t[key]["ci"], percent=True).replace(
                "95% CI ", ""
            )
        rows[name]["validation sens. / spec."] = f"{pct(v.get('sensitivity'))} / {pct(v.get('specificity'))}"
        at = t.get("at_prevalence")
        if at:
            rows[name][f"PPV / NPV at {at['prevalence']:.2%}"] = f"{pct(at['ppv'])} / {pct(at['npv'])}"
    frame = pd.DataFrame(rows).T
    frame.index.name = "class against the rest"
    return frame


def confusion_2x2(entry: dict, positive: str, negative: str):
    """The 2x2 test confusion matrix of one operating point as a table (rows true, columns called)."""
    import pandas as pd

    (tn, fp), (fn, tp) = entry["test"]["confusion_matrix"]
    return pd.DataFrame(
        [[tp, fn], [fp, tn]],
        index=pd.Index([f"true {positive}", f"true {negative}"], name="test images"),
        columns=[f"called {positive}", f"called {negative}"],
    )


def figure_points(op: dict, class_names) -> tuple[dict, dict]:
    """Where the operating points of :func:`operating_points` lie, for ``plots.roc_curves`` and ``plots.pr_curves``.

    Returns:
        ``(roc, pr)``: ``{class index: {"test": (1 - specificity, sensitivity), "validation": ... | None,
        "label"}}`` and ``{class index: {"test": (sensitivity, PPV), "label"}}``; only the first point
        is labelled when there are several (one per class).
    """
    names = [str(c) for c in class_names]
    roc, pr = {}, {}
    for n, (name, e) in enumerate(op["per_class"].items()):
        i = names.index(name)
        t, v = e["test"], e.get("validation")
        thr = f"threshold {e['threshold']:.3g}" if e["threshold"] is not None else "argmax"
        if len(op["per_class"]) > 1:
            label = f"operating points ({op['rule']}, one per class), test" if n == 0 else ""
        else:
            label = f"operating point ({op['rule'] if e['chosen_on'] == 'validation' else 'default'}, {thr}), test"
        se, sp, ppv = (t[k]["value"] for k in ("sensitivity", "specificity", "ppv"))
        if se is None or sp is None:
            continue
        val = None
        if v and v.get("sensitivity") is not None and v.get("specificity") is not None:
            val = (1 - v["specificity"], v["sensitivity"])
        roc[i] = {"test": (1 - sp, se), "validation": val, "label": label}
        pr[i] = {"test": (se, ppv), "label": label}
    return roc, pr


def value_ci(value, ci, *, percent: bool = False) -> str:
    """``"0.953 (95% CI 0.912 to 0.981)"`` (or with ``percent`` ``"92.0% (95% CI 80.1% to 97.2%)"``);
    ``"-"`` for a missing value, and no interval where there is none."""
    if value is None or not math.isfinite(value):
        return "-"
    f = (lambda v: f"{v:.1%}") if percent else (lambda v: f"{v:.3f}")
    if not ci or any(v is None or not math.isfinite(v) for v in ci):
        return f(value)
    return f"{f(value)} (95% CI {f(ci[0])} to {f(ci[1])})"
