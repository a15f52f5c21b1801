"""03_train's texts (cifarkit.analysis.training_report) on hand-made runs: what they say, and that nothing from
the data or the parameters reaches the Markdown unescaped."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from cifarkit.analysis import training_report
from cifarkit.training import notebook_config, resolve_recipe

HOSTILE = "<img src=x onerror=alert(1)> *b* [l](http://x)"


def _ds(source=HOSTILE):
    return SimpleNamespace(
        source=source,
        source_kind="folder",
        x_train=np.zeros((90, 8, 8, 3)),
        x_val=np.zeros((10, 8, 8, 3)),
        x_test=np.zeros((20, 8, 8, 3)),
        num_classes=2,
        image_size=(8, 8),
    )


def _tuned(applied: bool, note: str = "") -> dict:
    settings = {"lr": 0.1234567, "model_options": {"width_multiplier": 0.75}} if applied else {}
    return {"applied": applied, "settings": settings, "study_name": "s`1", "trial_number": 4, "note": note}


def test_the_setup_states_data_model_and_the_batch_scaled_rate_and_escapes_what_it_quotes():
    config = resolve_recipe("fast", model="fastnet", epochs=3, batch_size=64, seed=7)
    text = training_report.setup_markdown(_ds(), config, "fast", _tuned(True, note=HOSTILE))
    assert "90 training, 10 validation, 20 test images of 2 classes at 8x8" in text
    assert "**epochs:** 3, **batch:** 64, **seed:** 7" in text
    # the recipe's rate at its base batch, and the peak this batch gives under the recipe's scaling
    assert f"the recipe gives {config.lr:g} at a batch of {config.base_batch_size}" in text
    assert f"peaks at **{config.peak_lr():.4g}**" in text and config.batch_size != config.base_batch_size
    assert "**Tuned settings applied** from study ``s`1``, trial 4: lr = 0\\.1235, model\\_options = " in text
    # the note as literal text (no tag, link or emphasis comes out); the source inside a code span, shown as text
    assert "override them (&lt;img src=x onerror=alert\\(1\\)&gt; \\*b\\* \\[l\\]\\(http://x\\))" in text
    assert text.count("<img") == 1 and f"**Data:** `{HOSTILE}` (folder)" in text
    assert training_report.setup_markdown(_ds("d"), config, "fast", _tuned(False, "no tuning record")).endswith(
        "**Tuned settings:** no tuning record"
    )


def test_the_changed_settings_are_those_off_the_defaults_without_model_and_seed():
    config = resolve_recipe("default", model="simple_cnn", epochs=3, seed=5)
    table = training_report.changed_settings(config)
    assert "epochs" in table.index and table.loc["epochs", "value"] == "3"
    assert "model" not in table.index and "seed" not in table.index
    # the same config as a notebook builds it from its parameters: explicit epochs over OVERRIDES' epochs
    same = notebook_config("simple_cnn", "default", seed=5, epochs=3, overrides={"epochs": 9})
    assert same.to_dict() == config.to_dict()


def test_how_the_model_started_and_its_class_weights():
    assert training_report.start_markdown({}, ["a", "b"]) == (
        "**Trained from scratch** (no pretrained weights given); no class weighting"
    )
    fine = training_report.start_markdown(
        {"pretrained": {"path": "m`.keras", "layers_copied": 5}, "class_weights": [0.5, 1.5]}, ["cat", "*dog*"]
    )
    assert fine == "**Fine-tuned** from ``m`.keras`` (5 layers copied); class weights cat: 0\\.50, \\*dog\\*: 1\\.50"
    bb = training_report.start_markdown(
        {"backbone": {"application": "mobilenet_v2", "input_size": [96, 96], "note": "<b>", "phases": "2 phases"}},
        ["a", "b"],
    )
    assert bb.startswith("**Backbone** `mobilenet_v2` at 96 px: &lt;b&gt;; 2 phases")


def test_the_result_states_epochs_validation_and_test_with_its_interval():
    config = resolve_recipe("fast", model="fastnet", epochs=3)
    ci = {"ci_low": 0.8012, "ci_high": 0.8456}
    text = training_report.result_markdown(config, "fast", {"val_acc": 0.8, "test_acc": 0.8235}, 3, ci, 2000)
    assert text == (
        "After **3 epochs** of `fastnet` (recipe `fast`): validation accuracy **80.00%**, test accuracy "
        "**82.35%** (95% CI 80.12% to 84.56%, 2000 test images)."
    )
    none = training_report.result_markdown(config, "fast", {"val_acc": None, "test_acc": 0.5}, 3, ci, 20)
    assert "no validation split (VAL_FRACTION = 0)" in none
    assert training_report.result_markdown(config, "fast", {"val_acc": None, "test_acc": 0.5}, 1, ci, 20).startswith(
        "After **1 epoch** of `fastnet`"
    )
