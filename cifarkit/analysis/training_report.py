"""What ``03_train`` tells its reader about a training run, as Markdown: the data, model and settings it trains
with, the settings that differ from :class:`~cifarkit.training.TrainConfig`'s defaults, how the model started
(fine-tuned, an ImageNet backbone, from scratch) and the result. Everything that comes from the data or the
parameters (a source path, a model or recipe name, a tuning note, class names) is escaped here."""

from __future__ import annotations

import pandas as pd

from cifarkit import escape
from cifarkit.analysis import plots
from cifarkit.wording import plural


def setup_markdown(ds, config, recipe: str, tuned: dict) -> str:
    """The run's data, model, recipe, epochs, batch, seed, the learning rate after batch scaling, and whether 02's
    tuned settings were applied (``tuned``: :func:`~cifarkit.analysis.tuning.tuned_settings`' record)."""
    if tuned["applied"]:
        tuning = (
            f"**Tuned settings applied** from study {escape.code(tuned['study_name'])}, trial {tuned['trial_number']}: "
            + escape.md(", ".join(f"{k} = {plots.short(v)}" for k, v in tuned["settings"].items()))
            + "; explicit parameters of this notebook override them"
            + (f" ({escape.md(tuned['note'])})" if tuned["note"] else "")
        )
    else:
        tuning = f"**Tuned settings:** {escape.md(tuned['note'])}"
    return (
        f"**Data:** {escape.code(ds.source)} ({ds.source_kind}); {len(ds.x_train):,} training, {len(ds.x_val):,} "
        f"validation, {len(ds.x_test):,} test images of {ds.num_classes} classes at "
        f"{ds.image_size[0]}x{ds.image_size[1]}  \n"
        f"**Model:** {escape.code(config.model)}, **recipe:** {escape.code(recipe)}, **epochs:** {config.epochs}, "
        f"**batch:** {config.batch_size}, **seed:** {config.seed}  \n"
        f"**Learning rate:** the recipe gives {config.lr:g} at a batch of {config.base_batch_size}; this run's batch "
        f"is {config.batch_size}, so with {config.lr_scaling} scaling the schedule peaks at **{config.peak_lr():.4g}**.  \n"
        + tuning
    )


def changed_settings(config) -> pd.DataFrame:
    """The settings of ``config`` that differ from ``TrainConfig``'s defaults (model and seed aside), one row
    each, values as :func:`~cifarkit.analysis.plots.short` writes them (not yet escaped: pass it to
    :func:`cifarkit.escape.table`)."""
    from cifarkit.training import TrainConfig

    defaults = TrainConfig(model=config.model).to_dict()
    changed = {k: v for k, v in config.to_dict().items() if v != defaults.get(k) and k not in ("model", "seed")}
    return pd.Series({k: plots.short(v) for k, v in changed.items()}, name="value", dtype=object).to_frame()


def start_markdown(metrics: dict, class_names) -> str:
    """How the model started (``train()``'s metrics: ``pretrained``, ``backbone``) and its class weights."""
    pre = metrics.get("pretrained") or {}
    bb = metrics.get("backbone") or {}
    if pre.get("path"):
        start = f"**Fine-tuned** from {escape.code(pre['path'])} ({pre['layers_copied']} layers copied)"
    elif bb:
        start = (
            f"**Backbone** {escape.code(bb['application'])} at {bb['input_size'][0]} px: "
            f"{escape.md(bb['note'])}; {escape.md(bb['phases'])}"
        )
    else:
        start = "**Trained from scratch** (no pretrained weights given)"
    if metrics.get("class_weights"):
        weights = ", ".join(f"{n}: {w:.2f}" for n, w in zip(class_names, metrics["class_weights"]))
        return start + "; class weights " + escape.md(weights)
    return start + "; no class weighting"


def result_markdown(config, recipe: str, metrics: dict, epochs_run: int, test_ci: dict, n_test: int) -> str:
    """The run's headline: epochs, validation accuracy (or that there was no validation split) and the test
    accuracy with its bootstrap interval (``test_ci``: :func:`~cifarkit.analysis.stats.accuracy_ci`)."""
    val = (
        f"validation accuracy **{metrics['val_acc']:.2%}**"
        if metrics.get("val_acc") is not None
        else "no validation split (VAL_FRACTION = 0)"
    )
    return (
        f"After **{plural(epochs_run, 'epoch')}** of {escape.code(config.model)} (recipe {escape.code(recipe)}): "
        f"{val}, test accuracy **{metrics['test_acc']:.2%}** "
        f"(95% CI {test_ci['ci_low']:.2%} to {test_ci['ci_high']:.2%}, {n_test} test images)."
    )
