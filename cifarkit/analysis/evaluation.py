"""Evaluate a trained model on the test split: accuracy with intervals, per-class metrics, confusion and calibration.

The functions are pure: they take arrays of labels, probabilities and logits
and return numbers, arrays or tables; notebook ``04_evaluate`` strings them
together with :mod:`cifarkit.analysis.corruptions`, :mod:`cifarkit.analysis.saliency`
and the figures of :mod:`cifarkit.analysis.plots`. Labels are integer class
indices, ``probs`` are ``(N, K)`` softmax rows and ``logits`` raw model outputs.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from cifarkit.analysis import stats

#: Top-k accuracies reported (each capped at the number of classes).
TOP_K = (1, 3, 5)


def data_mismatch(trained_on: dict, evaluating: dict) -> list[str]:
    """Data settings that differ between the model's training data and the data evaluated now.

    A different seed, subset or validation share can put training images into
    this test split; a reader should know. Both arguments are
    ``Dataset.to_dict()`` records.

    Returns:
        Descriptions like ``"seed: 0 (training) vs 1 (now)"``; empty when they agree.
    """
    out = []
    for key in ("source", "image_size", "seed", "subset", "val_fraction", "test_fraction"):
        if key in trained_on and key in evaluating and trained_on[key] != evaluating[key]:
            out.append(f"{key}: {trained_on[key]!r} (training) vs {evaluating[key]!r} (now)")
    return out


# --------------------------------------------------------------------------- classification metrics


def _check_probs(y_true, probs):
    y = np.asarray(y_true).reshape(-1).astype(np.int64)
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or len(p) != len(y):
        raise ValueError(
            f"probs must be (N, num_classes) with one row per label; received probs of shape {p.shape} "
            f"for {len(y)} labels."
        )
    if len(y) == 0:
        raise ValueError("Need at least one example to evaluate; received empty arrays.")
    if y.min() < 0 or y.max() >= p.shape[1]:
        raise ValueError(
            f"Labels must lie in 0..{p.shape[1] - 1} (one column of probs per class); got {y.min()}..{y.max()}."
        )
    return y, p


def top_k_accuracy(y_true, probs, ks=TOP_K) -> dict:
    """Share of examples whose true class is among the ``k`` most probable, for each ``k``.

    Each ``k`` is capped at the number of classes (so with 4 classes ``k=5``
    becomes ``k=4``, which is always 1.0); duplicates after capping are dropped.

    Returns:
        ``{k: accuracy}`` with int keys in increasing order.
    """
    y, p = _check_probs(y_true, probs)
    num_classes = p.shape[1]
    out = {}
    # rank of the true class = number of classes with a strictly higher probability (ties favour the truth)
    true_p = p[np.arange(len(y)), y]
    rank = (p > true_p[:, None]).sum(axis=1)
    for k in sorted({min(int(k), num_classes) for k in ks}):
        out[k] = float(np.mean(rank < k))
    return out


def confusion_matrix(y_true, y_pred, num_classes: int) -> np.ndarray:
    """Counts ``cm[i, j]`` of examples of true class ``i`` predicted as ``j`` (``int64``, K x K)."""
    y_true = np.asarray(y_true).reshape(-1).astype(np.int64)
    y_pred = np.asarray(y_pred).reshape(-1).astype(np.int64)
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    return cm


def normalize_rows(cm) -> np.ndarray:
    """Row-normalized confusion matrix (each true class sums to 1; an empty row stays 0)."""
    cm = np.asarray(cm, dtype=np.float64)
    totals = cm.sum(axis=1, keepdims=True)
    return np.divide(cm, totals, out=np.zeros_like(cm), where=totals > 0)


def most_confused(cm, class_names, top: int = 10) -> list[dict]:
    """The off-diagonal cells of a confusion matrix with the most examples.

    Returns:
        Up to ``top`` dicts ``{"true", "predicted", "count", "share_of_true"}``,
        largest count first; ``share_of_true`` is the count over the true class's
        support. Cells with no example are left out.
    """
    cm = np.asarray(cm)
    rates = normalize_rows(cm)
    cells = [(int(cm[i, j]), i, j) for i in range(len(cm)) for j in range(len(cm)) if i != j and cm[i, j] > 0]
    cells.sort(key=lambda t: (-t[0], t[1], t[2]))
    return [
        {"true": class_names[i], "predicted": class_names[j], "count": n, "share_of_true": float(rates[i, j])}
        for n, i, j in cells[:top]
    ]


def classification_metrics(
    y_true, probs, class_names, *, n_boot: int = 2000, level: float = 0.95, seed: int = 0, top_confused: int = 10
) -> dict:
    """Accuracy with a bootstrap CI, top-k, per-class precision/recall/F1 and the confusion matrix.

    Per-class and averaged scores come from scikit-learn's
    ``precision_recall_fscore_support`` (classes without predictions score 0).

    Args:
        y_true: true labels ``(N,)``.
        probs: predicted probabilities ``(N, K)``; the prediction is the argmax.
        class_names: the K display names.
        n_boot, level, seed: of the percentile bootstrap (:func:`cifarkit.analysis.stats.accuracy_ci`).
        top_confused: how many most-confused pairs to list.

    Returns:
        A JSON-ready dict with ``n``, ``accuracy``, ``accuracy_ci`` ``[lo, hi]``, ``ci_level``,
        ``top_k`` ``{k: acc}``, ``balanced_accuracy``, ``nll``, ``macro`` and ``weighted``
        ``{precision, recall, f1}``, ``per_class`` ``{name: {precision, recall, f1, support}}``,
        ``confusion_matrix`` (list of rows) and ``most_confused``.
    """
    from sklearn.metrics import balanced_accuracy_score, precision_recall_fscore_support

    y, p = _check_probs(y_true, probs)
    names = [str(c) for c in class_names]
    if len(names) != p.shape[1]:
        raise ValueError(f"Got {len(names)} class names for {p.shape[1]} probability columns; give one name per class.")
    pred = p.argmax(axis=1)
    labels = np.arange(len(names))
    acc = stats.accuracy_ci(y, pred, n_boot=n_boot, level=level, seed=seed)
    prec, rec, f1, support = precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
    averages = {}
    for avg in ("macro", "weighted"):
        ap, ar, af, _ = precision_recall_fscore_support(y, pred, labels=labels, average=avg, zero_division=0)
        averages[avg] = {"precision": float(ap), "recall": float(ar), "f1": float(af)}
    cm = confusion_matrix(y, pred, len(names))
    true_p = np.clip(p[np.arange(len(y)), y], 1e-12, 1.0)
    return {
        "n": int(len(y)),
        "accuracy": acc["accuracy"],
        "accuracy_ci": [acc["ci_low"], acc["ci_high"]],
        "ci_level": level,
        "top_k": top_k_accuracy(y, p),
        "balanced_accuracy": float(balanced_accuracy_score(y, pred)),
        "nll": float(-np.mean(np.log(true_p))),
        "macro": averages["macro"],
        "weighted": averages["weighted"],
        "per_class": {
            name: {"precision": float(prec[i]), "recall": float(rec[i]), "f1": float(f1[i]), "support": int(support[i])}
            for i, name in enumerate(names)
        },
        "confusion_matrix": cm.tolist(),
        "most_confused": most_confused(cm, names, top_confused),
    }


def per_class_table(metrics: dict) -> pd.DataFrame:
    """Per-class precision, recall, F1 and support, with macro and weighted averages as the last rows."""
    df = pd.DataFrame(metrics["per_class"]).T[["precision", "recall", "f1", "support"]]
    df.index.name = "class"
    total = int(df["support"].sum())
    for avg in ("macro", "weighted"):
        df.loc[f"{avg} avg"] = [metrics[avg]["precision"], metrics[avg]["recall"], metrics[avg]["f1"], total]
    df["support"] = df["support"].astype(int)
    return df


def misclassified(y_true, probs, n: int = 16, *, most_confident: bool = False, seed: int = 0) -> np.ndarray:
    """Indices of wrongly classified examples.

    Args:
        y_true: true labels.
        probs: predicted probabilities.
        n: at most this many indices.
        most_confident: the ``n`` mistakes with the highest predicted probability
            (largest first); otherwise a random sample (seeded), in index order.
        seed: seed of the random sample.

    Returns:
        int64 indices into ``y_true``.
    """
    y, p = _check_probs(y_true, probs)
    wrong = np.flatnonzero(p.argmax(axis=1) != y)
    if most_confident:
        conf = p[wrong].max(axis=1)
        return wrong[np.argsort(-conf, kind="stable")][:n]
    if len(wrong) <= n:
        return wrong
    return np.sort(np.random.default_rng(seed).choice(wrong, size=n, replace=False))


def correctly_classified(y_true, probs, n: int = 4, *, seed: int = 0) -> np.ndarray:
    """A seeded random sample of at most ``n`` correctly classified indices, in index order."""
    y, p = _check_probs(y_true, probs)
    right = np.flatnonzero(p.argmax(axis=1) == y)
    if len(right) <= n:
        return right
    return np.sort(np.random.default_rng(seed).choice(right, size=n, replace=False))


# --------------------------------------------------------------------------- calibration


def reliability_bins(probs, y_true, n_bins: int = 15) -> dict:
    """Confidence histogram for a reliability diagram.

    The confidence of an example is its largest predicted probability; bin ``b``
    holds confidences in ``(b/n_bins, (b+1)/n_bins]`` (the first bin also takes 0).

    Returns:
        ``{"edges", "count", "accuracy", "confidence"}``: ``n_bins + 1`` edges and, per bin,
        the number of examples, their accuracy and mean confidence (NaN for an empty bin).
    """
    y, p = _check_probs(y_true, probs)
    if not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}.")
    conf = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.clip(np.ceil(conf * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    count = np.bincount(idx, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.bincount(idx, weights=correct, minlength=n_bins) / count
        confidence = np.bincount(idx, weights=conf, minlength=n_bins) / count
    return {"edges": edges, "count": count, "accuracy": accuracy, "confidence": confidence}


def expected_calibration_error(probs, y_true, n_bins: int = 15) -> float:
    """Expected calibration error (Guo et al. 2017): ``sum_b |B_b|/N * |acc(B_b) - conf(B_b)|``.

    Bins are ``n_bins`` equal-width confidence intervals on ``[0, 1]`` (see
    :func:`reliability_bins`); the confidence is the top-class probability.

    Returns:
        ECE in ``[0, 1]``.
    """
    b = reliability_bins(probs, y_true, n_bins)
    n = b["count"].sum()
    filled = b["count"] > 0
    gaps = np.abs(b["accuracy"][filled] - b["confidence"][filled])
    return float(np.sum(b["count"][filled] / n * gaps))


def nll(logits, y_true, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of the true labels under ``softmax(logits / temperature)``."""
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    y = np.asarray(y_true).reshape(-1).astype(np.int64)
    m = z.max(axis=1, keepdims=True)
    log_norm = (m + np.log(np.exp(z - m).sum(axis=1, keepdims=True)))[:, 0]
    return float(np.mean(log_norm - z[np.arange(len(y)), y]))


def fit_temperature(logits_val, y_val, bounds=(0.05, 20.0)) -> float:
    """Temperature scaling (Guo et al. 2017): the ``T`` that minimizes validation NLL of ``softmax(logits / T)``.

    The search runs over ``log T`` with a bounded scalar minimizer, so ``T`` stays positive.

    Args:
        logits_val: validation logits ``(N, K)``, never test logits.
        y_val: validation labels.
        bounds: smallest and largest ``T`` considered.

    Returns:
        The fitted temperature (> 1 means the model was overconfident).
    """
    from scipy.optimize import minimize_scalar

    z = np.asarray(logits_val, dtype=np.float64)
    y = np.asarray(y_val).reshape(-1)
    if z.ndim != 2 or len(z) != len(y) or len(y) == 0:
        raise ValueError(
            f"fit_temperature needs validation logits (N, num_classes) and N labels, N > 0; received logits of "
            f"shape {z.shape} and {len(y)} labels. With VAL_FRACTION = 0 there is no validation split to fit on."
        )
    lo, hi = (math.log(b) for b in bounds)
    res = minimize_scalar(
        lambda log_t: nll(z, y, math.exp(log_t)), bounds=(lo, hi), method="bounded", options={"xatol": 1e-5}
    )
    return float(math.exp(res.x))
