"""Ensembles of trained classifiers: calibrated members, soft, hard and weighted voting.

Every function takes per-model class probabilities as an array of shape
``(n_models, n_examples, n_classes)``. Temperatures and the weights of the weighted
vote are fitted on the validation split only; the test split is only scored.
"""

from __future__ import annotations

import numpy as np

METHODS = ("soft", "hard", "weighted")
#: A weighted vote with one member at this weight or more is that member, not an ensemble (the reports say so).
DEGENERATE_WEIGHT = 0.95


def _check_probs(probs) -> np.ndarray:
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 3:
        raise ValueError(f"probs must have shape (n_models, n_examples, n_classes); got shape {p.shape}.")
    if p.shape[0] < 1:
        raise ValueError("An ensemble needs at least one model.")
    return p


def soft_vote(probs) -> np.ndarray:
    """Average of the members' probabilities; returns ``(n_examples, n_classes)``."""
    return _check_probs(probs).mean(axis=0)


def hard_vote(probs) -> np.ndarray:
    """Majority of the members' predicted classes; ties go to the tied class with the highest mean probability.

    Returns:
        Predicted labels, shape ``(n_examples,)``.
    """
    p = _check_probs(probs)
    n_models, n, k = p.shape
    votes = np.zeros((n, k))
    preds = p.argmax(axis=2)
    for m in range(n_models):
        votes[np.arange(n), preds[m]] += 1
    # the mean probability (< 1) breaks ties between classes with equal vote counts only
    return (votes + p.mean(axis=0) / 2).argmax(axis=1)


def weighted_vote(probs, weights) -> np.ndarray:
    """Weighted average of the members' probabilities (weights are normalized to sum to 1)."""
    p = _check_probs(probs)
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    if len(w) != p.shape[0]:
        raise ValueError(f"Got {len(w)} weights for {p.shape[0]} models.")
    if np.any(w < 0) or w.sum() <= 0:
        raise ValueError(f"Weights must be non-negative with a positive sum; got {w.tolist()}.")
    return np.tensordot(w / w.sum(), p, axes=1)


def fit_weights(val_probs, y_val, *, max_iter: int = 500) -> np.ndarray:
    """Weights on the simplex that minimize the validation negative log-likelihood of :func:`weighted_vote`.

    Args:
        val_probs: members' probabilities on the validation split, ``(n_models, n_val, n_classes)``.
        y_val: validation labels.

    Returns:
        Non-negative weights summing to 1, one per model.
    """
    from scipy.optimize import minimize
    from scipy.special import softmax

    p = _check_probs(val_probs)
    y = np.asarray(y_val, dtype=np.int64)
    if len(y) != p.shape[1]:
        raise ValueError(f"y_val has {len(y)} labels but the probabilities cover {p.shape[1]} examples.")
    if p.shape[0] == 1:
        return np.ones(1)
    picked = p[:, np.arange(len(y)), y]  # (n_models, n_val): each member's probability of the true class

    def nll(z):
        w = softmax(z)
        return -np.mean(np.log(np.clip(w @ picked, 1e-12, None)))

    def grad(z):
        w = softmax(z)
        mix = np.clip(w @ picked, 1e-12, None)
        g_w = -(picked / mix).mean(axis=1)
        return w * (g_w - np.dot(w, g_w))  # chain rule through the softmax

    res = minimize(nll, np.zeros(p.shape[0]), jac=grad, method="L-BFGS-B", options={"maxiter": max_iter})
    return softmax(res.x)


def calibrate(val_probs, test_probs, y_val) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """Temperature-scale each member (Guo et al. 2017) on the validation split before voting.

    A member's log-probabilities serve as its logits (softmax is unchanged by a shift); one
    temperature per member minimizes its validation NLL. Members of different confidence then
    vote on a common scale; no prediction of a single member changes.

    Returns:
        ``(calibrated validation probs, calibrated test probs, temperatures)``.
    """
    from cifarkit.analysis.evaluation import fit_temperature
    from cifarkit.training.inference import softmax

    val, test = _check_probs(val_probs), _check_probs(test_probs)
    temps, val_out, test_out = [], [], []
    for v, t in zip(val, test):
        lv, lt = np.log(np.clip(v, 1e-12, None)), np.log(np.clip(t, 1e-12, None))
        temp = fit_temperature(lv, y_val) if len(y_val) else 1.0
        temps.append(float(temp))
        val_out.append(softmax(lv, temp))
        test_out.append(softmax(lt, temp))
    return np.stack(val_out), np.stack(test_out), temps


def select_members(val_accs, *, margin: float = 0.03) -> list[int]:
    """Indices of the members whose validation accuracy is within ``margin`` of the best: an ensemble of
    members of similar strength (a much weaker member pulls a vote down). Chosen on validation only."""
    accs = np.asarray(val_accs, dtype=float)
    return [int(i) for i in np.flatnonzero(accs >= accs.max() - margin)]


def ensemble_predictions(test_probs, *, method: str, weights=None) -> np.ndarray:
    """Predicted labels of one ensemble ``method`` ("soft", "hard" or "weighted")."""
    if method == "soft":
        return soft_vote(test_probs).argmax(axis=1)
    if method == "hard":
        return hard_vote(test_probs)
    if method == "weighted":
        if weights is None:
            raise ValueError("The weighted vote needs weights; fit them on validation with fit_weights().")
        return weighted_vote(test_probs, weights).argmax(axis=1)
    raise ValueError(f"Unknown ensemble method {method!r}. Known methods: {', '.join(METHODS)}.")
