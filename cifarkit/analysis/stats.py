"""Statistics a reviewer asks for: confidence intervals and paired tests.

All functions take plain numpy arrays of integer labels (or 0/1 correctness)
and are deterministic for a given ``seed``.
"""

from __future__ import annotations

import math

import numpy as np


def _labels(*arrays):
    out = [np.asarray(a).reshape(-1) for a in arrays]
    n = len(out[0])
    for a in out[1:]:
        if len(a) != n:
            raise ValueError(f"Arrays must have the same length; got {[len(a) for a in out]}.")
    if n == 0:
        raise ValueError("Need at least one example; got empty arrays.")
    return out


def bootstrap_ci(correct, *, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean of ``correct`` (0/1 per example).

    Args:
        correct: per-example values (usually 1 for a correct prediction, 0 otherwise).
        n_boot: bootstrap resamples.
        level: coverage of the interval, e.g. 0.95.
        seed: seed of the resampling.

    Returns:
        ``(low, high)``.
    """
    (c,) = _labels(correct)
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level!r}.")
    if n_boot < 10:
        raise ValueError(f"n_boot must be at least 10, got {n_boot!r}.")
    c = c.astype(np.float64)
    rng = np.random.default_rng(seed)
    n = len(c)
    means = np.empty(n_boot)
    # resample in chunks so that 10k examples x 2000 resamples stays small in memory
    chunk = max(1, 2_000_000 // n)
    for start in range(0, n_boot, chunk):
        stop = min(n_boot, start + chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = c[idx].mean(axis=1)
    alpha = (1 - level) / 2
    return float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))


def accuracy_ci(y_true, y_pred, *, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> dict:
    """Accuracy with a percentile bootstrap confidence interval.

    Returns:
        ``{"accuracy": a, "ci_low": lo, "ci_high": hi, "n": n, "level": level}``.
    """
    y_true, y_pred = _labels(y_true, y_pred)
    correct = (y_true == y_pred).astype(np.float64)
    lo, hi = bootstrap_ci(correct, n_boot=n_boot, level=level, seed=seed)
    return {"accuracy": float(correct.mean()), "ci_low": lo, "ci_high": hi, "n": int(len(correct)), "level": level}


def paired_difference_ci(y_true, pred_a, pred_b, *, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> dict:
    """Accuracy of ``pred_a`` minus accuracy of ``pred_b`` on the same examples, with a paired bootstrap CI.

    Returns:
        ``{"difference": d, "ci_low": lo, "ci_high": hi, "n": n, "level": level}``.
    """
    y_true, pred_a, pred_b = _labels(y_true, pred_a, pred_b)
    diff = (pred_a == y_true).astype(np.float64) - (pred_b == y_true).astype(np.float64)
    lo, hi = bootstrap_ci(diff, n_boot=n_boot, level=level, seed=seed)
    return {"difference": float(diff.mean()), "ci_low": lo, "ci_high": hi, "n": int(len(diff)), "level": level}


def mcnemar(y_true, pred_a, pred_b, *, exact: bool | None = None) -> dict:
    """McNemar's test of two classifiers on the same examples.

    ``b`` counts examples A gets right and B wrong, ``c`` the reverse. With
    ``exact=None`` the exact two-sided binomial test is used when ``b + c < 25``
    and the chi-squared statistic with continuity correction otherwise
    (Edwards 1948), as in most textbooks.

    Returns:
        ``{"b": b, "c": c, "statistic": s, "p_value": p, "method": "exact" | "chi2"}``.
    """
    y_true, pred_a, pred_b = _labels(y_true, pred_a, pred_b)
    a_ok = pred_a == y_true
    b_ok = pred_b == y_true
    b = int(np.sum(a_ok & ~b_ok))
    c = int(np.sum(~a_ok & b_ok))
    return mcnemar_from_counts(b, c, exact=exact)


def mcnemar_from_counts(b: int, c: int, *, exact: bool | None = None) -> dict:
    """McNemar's test from the two discordant counts (see :func:`mcnemar`)."""
    if b < 0 or c < 0:
        raise ValueError(f"Discordant counts must be non-negative; got b={b}, c={c}.")
    n = b + c
    if exact is None:
        exact = n < 25
    if n == 0:
        return {"b": b, "c": c, "statistic": 0.0, "p_value": 1.0, "method": "exact" if exact else "chi2"}
    if exact:
        from scipy.stats import binomtest

        p = binomtest(min(b, c), n, 0.5).pvalue
        return {"b": b, "c": c, "statistic": float(min(b, c)), "p_value": float(min(1.0, p)), "method": "exact"}
    from scipy.stats import chi2

    stat = (abs(b - c) - 1) ** 2 / n
    return {"b": b, "c": c, "statistic": float(stat), "p_value": float(chi2.sf(stat, 1)), "method": "chi2"}


def mean_of_present(values) -> float | None:
    """The mean of the values that are not ``None`` (``None`` when there are none): a macro average over
    classes or a mean over seeds where some entries could not be computed."""
    present = [float(v) for v in values if v is not None]
    return float(np.mean(present)) if present else None


def p_value_text(p: float) -> str:
    """``0.0000123`` -> ``"< 0.001"``; ``0.0312`` -> ``"0.031"``: a p-value for a table cell."""
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "n/a"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def format_p(p: float) -> str:
    """``0.0000123`` -> ``"p < 0.001"``; ``0.0312`` -> ``"p = 0.031"``."""
    text = p_value_text(p)
    return f"p {text}" if text.startswith("<") else f"p = {text}"
