"""The learning-rate schedule of a run: one value per optimizer step."""

from __future__ import annotations

import numpy as np

from cifarkit.training.config import TrainConfig


def lr_schedule_values(config: TrainConfig, steps_per_epoch: int) -> np.ndarray:
    """Learning rate of every training step (``epochs * steps_per_epoch`` values).

    The peak is ``config.peak_lr()``. A linear warmup over ``warmup_epochs``
    rises from ``warmup_start_factor`` of the peak to the peak at its last
    step; then ``step`` multiplies by ``gamma`` from each milestone (a fraction
    of all steps) on, ``cosine`` follows a half cosine to
    ``final_lr_factor`` of the peak, ``onecycle`` falls linearly to it, and
    ``constant`` stays at the peak. Warmup is cut to the length of training.
    """
    if steps_per_epoch < 1:
        raise ValueError(f"steps_per_epoch must be >= 1, got {steps_per_epoch}.")
    total = config.epochs * steps_per_epoch
    peak = config.peak_lr()
    steps = np.arange(total, dtype=np.float64)
    warm = min(int(round(config.warmup_epochs * steps_per_epoch)), total)
    factor = np.ones(total, dtype=np.float64)
    rest = total - warm
    t = (steps[warm:] - warm) / max(rest, 1)  # 0 at the first step after warmup, < 1 at the last
    final = config.final_lr_factor
    if config.schedule == "step":
        for m in config.milestones:
            factor[steps >= round(m * total)] *= config.gamma
    elif config.schedule == "cosine":
        factor[warm:] = final + (1.0 - final) * 0.5 * (1.0 + np.cos(np.pi * t))
    elif config.schedule == "onecycle":
        factor[warm:] = 1.0 - (1.0 - final) * t
    if warm:
        start = config.warmup_start_factor
        ramp = start + (1.0 - start) * (steps[:warm] + 1) / warm
        factor[:warm] = np.minimum(factor[:warm], ramp) if config.schedule == "step" else ramp
    return peak * factor
