"""Tests of ``cifarkit.analysis.verdicts.learning_curves``: each judgement on a hand-made history."""

from __future__ import annotations

from cifarkit.analysis.verdicts import learning_curves


def _history(acc, loss=None):
    loss = loss or [1.0] * len(acc)
    return [{"epoch": i + 1, "val_acc": a, "val_loss": v} for i, (a, v) in enumerate(zip(acc, loss, strict=True))]


def test_still_rising_settled_and_overfitting_are_told_apart():
    assert "still rising" in learning_curves(_history([0.5, 0.6, 0.7]))
    assert "50.00% two epochs before, 70.00% at the end" in learning_curves(_history([0.5, 0.6, 0.7]))
    settled = learning_curves(_history([0.5, 0.705, 0.70]))
    assert "ends at 70.00%, within 0.50 points of its best" in settled and "settled" in settled
    over = learning_curves(_history([0.6, 0.72, 0.70], [1.0, 0.80, 0.90]))
    assert "rose from its lowest 0.800 to 0.900" in over and "fell from 72.00% to 70.00%" in over


def test_short_runs_and_runs_without_validation_say_why_nothing_is_judged():
    assert (
        learning_curves(_history([0.5, 0.6])) == "With 2 epochs the curves are too short to judge the training budget."
    )
    assert learning_curves(_history([0.5])).startswith("With 1 epoch the curves")
    no_val = [{"epoch": e, "val_acc": None, "val_loss": None, "train_loss_aug": 2.0} for e in (1, 2, 3)]
    said = learning_curves(no_val)
    assert "no validation split (VAL_FRACTION = 0)" in said and "0 epoch" not in said
