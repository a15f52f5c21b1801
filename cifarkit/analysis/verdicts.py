"""Sentences that judge a result, chosen by rules on the numbers of this run (never written by hand).

The notebooks' prose and the reports' key-results boxes use these, so a claim such as
"overfits", "at chance" or "a gain" appears only when the run's own numbers support it.
"""

from __future__ import annotations

import math

from cifarkit.wording import plural


def _finite(values) -> list[float]:
    return [float(v) for v in values if isinstance(v, (int, float)) and math.isfinite(v)]


def learning_curves(history) -> str:
    """What the validation curve says about the epoch budget: still improving, settled, or overfitting.

    Args:
        history: one record per epoch with ``val_acc`` and ``val_loss`` (a list of dicts or a DataFrame).
    """
    rows = history.to_dict("records") if hasattr(history, "to_dict") else list(history)
    acc = _finite(r.get("val_acc") for r in rows)
    loss = _finite(r.get("val_loss") for r in rows)
    if rows and not acc:
        return (
            "There is no validation split (VAL_FRACTION = 0), so no validation curve: "
            "the training curves alone cannot judge the epoch budget."
        )
    if len(acc) < 3:
        return f"With {plural(len(acc), 'epoch')} the curves are too short to judge the training budget."
    best = max(acc)
    if acc[-1] >= best and acc[-1] > acc[-3]:
        return (
            "Validation accuracy was still rising at the last epoch "
            f"({100 * acc[-3]:.2f}% two epochs before, {100 * acc[-1]:.2f}% at the end): more epochs would likely help."
        )
    if len(loss) >= 3 and loss[-1] > min(loss) * 1.05 and best - acc[-1] > 0.01:
        return (
            f"Validation loss rose from its lowest {min(loss):.3f} to {loss[-1]:.3f} and accuracy fell from "
            f"{100 * best:.2f}% to {100 * acc[-1]:.2f}%: the run overfits by its end."
        )
    return (
        f"Validation accuracy ends at {100 * acc[-1]:.2f}%, within {100 * (best - acc[-1]):.2f} points of its best: "
        "the curves have settled for this budget."
    )


def chance_level(accuracy: float, num_classes: int, n: int) -> bool:
    """True when ``accuracy`` on ``n`` images is within two binomial standard errors of guessing."""
    p = 1.0 / num_classes
    return accuracy <= p + 2 * math.sqrt(p * (1 - p) / max(n, 1))


def gain(difference: float, ci, what: str, *, of: str = "") -> str:
    """A sentence on a difference with its interval: beyond noise up or down, or within it."""
    lo, hi = ci
    amount = f"{100 * difference:+.2f} points (95% CI {100 * lo:+.2f} to {100 * hi:+.2f})"
    if lo > 0:
        return f"{what} improves {of}accuracy by {amount}: more than the noise of this test split."
    if hi < 0:
        return f"{what} lowers {of}accuracy by {amount}: more than the noise of this test split."
    return f"{what} changes {of}accuracy by {amount}, within the noise of this test split."
