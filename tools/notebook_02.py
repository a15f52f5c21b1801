"""Source of notebooks/02_train.ipynb (run: python tools/notebook_02.py)."""
import sys, os
sys.path.insert(0, os.path.dirname(__file__))
from nbwrite import write

cells = [
("md", """
# 02 · Training

This notebook trains one registered architecture with a named recipe and reports what a
reader needs to judge the run: the model and its size, the learning-rate schedule, the
learning curves, the throughput and wall time, and the final validation and test accuracy.
Validation data comes out of the training split; the test split is evaluated once, at the
end, and is never used to choose anything.
"""),
("code", """
import json
import numpy as np
import pandas as pd
import matplotlib.pyplot as plt
from IPython.display import display, Markdown

from cifarkit import plots, reporting
from cifarkit.study import load_study_data
from cifarkit.recipes import resolve_recipe
from cifarkit.train import train, lr_schedule_values
from cifarkit.tune import merge_settings, tuned_settings
"""),
("params", """
COMMON
SEED: int = 0             # seed for splits, initialisation and augmentation
MODEL: str = "fastnet"    # a registered model name, see cifarkit.models.list_models()
RECIPE: str = "fast"      # a named recipe from cifarkit.recipes.RECIPES
EPOCHS: int = 0           # passes over the training set; 0 keeps the recipe's own
BATCH_SIZE: int = 0       # 0 keeps the recipe's own
LR: float = 0.0           # base learning rate; 0 keeps the recipe's own
AUGMENT: str = "recipe"   # recipe, none, flip, crop+flip, or crop+flip+cutout
CLASS_WEIGHT: str = "none"  # none, or balanced to weight each class by its rarity (imbalanced data)
PRETRAINED: str = ""      # path to a saved .keras model or .weights.h5 of the same architecture to fine-tune; empty trains from scratch
DEVICE: str = "auto"      # auto, cpu or gpu
DETERMINISTIC: bool = False  # bit-reproducible CPU run (slower)
OVERRIDES: dict = {}      # any other recipe setting, for example {"weight_decay": 5e-4}
TUNED_PARAMS: str = "auto"  # auto uses the best parameters of 03_tune in this run if present, none ignores them, or a path to a JSON file
"""),
("code", """
run_dir = reporting.resolve_run_dir(RUN_DIR)
ds = load_study_data(DATA, image_size=IMAGE_SIZE, subset=DATA_SUBSET, val_fraction=VAL_FRACTION,
                     seed=SEED, class_names=CLASS_NAMES)
# tuned settings first, then every explicit setting of this notebook on top of them
tuned = tuned_settings(TUNED_PARAMS, run_dir, model=MODEL, recipe=RECIPE)
settings = merge_settings(tuned["settings"], OVERRIDES)
settings.update(model=MODEL, seed=SEED, device=DEVICE, deterministic=DETERMINISTIC)
if CLASS_WEIGHT != "none":
    settings["class_weight"] = CLASS_WEIGHT
if PRETRAINED:
    settings["pretrained"] = PRETRAINED
if EPOCHS:
    settings["epochs"] = EPOCHS
if BATCH_SIZE:
    settings["batch_size"] = BATCH_SIZE
if LR:
    settings["lr"] = LR
augment_presets = {
    "none": dict(crop=0, flip=False, cutout=0),
    "flip": dict(crop=0, flip=True, cutout=0),
    "crop+flip": dict(crop=4, flip=True, cutout=0),
    "crop+flip+cutout": dict(crop=4, flip=True, cutout=8),
}
if AUGMENT != "recipe":
    if AUGMENT not in augment_presets:
        raise ValueError(f"Unknown AUGMENT {AUGMENT!r}. Use one of: recipe, {', '.join(augment_presets)}.")
    settings.update(augment_presets[AUGMENT])
config = resolve_recipe(RECIPE, **settings)
out_dir = run_dir / "models" / MODEL
display(Markdown(
    f"**Data:** `{ds.source}` ({ds.source_kind}); {len(ds.x_train)} training, {len(ds.x_val)} validation, "
    f"{len(ds.x_test)} test images of {ds.num_classes} classes at {ds.image_size[0]}x{ds.image_size[1]}  \\n"
    f"**Model:** `{config.model}`, **recipe:** `{RECIPE}`, **epochs:** {config.epochs}, "
    f"**batch:** {config.batch_size}, **seed:** {config.seed}  \\n"
    + (f"**Tuned settings** from `{tuned['source']}` (study `{tuned['study_name']}`, trial {tuned['trial_number']}, "
       f"validation accuracy {tuned['value']:.2%} after {tuned['tuned_for']['epochs']} epoch(s) of tuning): "
       f"{tuned['settings']}; explicit parameters of this notebook override them"
       if tuned["applied"] else f"**Tuned settings:** none ({tuned['note']})")
    + (f" ({tuned['note']})" if tuned["applied"] and tuned["note"] else "")
))
display(pd.Series({k: v for k, v in config.to_dict().items()}, name="value").to_frame())
"""),
("md", """
## Training

The loop checkpoints after every epoch into the run's model folder: re-running this
notebook (or `python -m cifarkit train ... --resume`) with the same settings continues from
the last finished epoch instead of starting again. Training accuracy is measured on
augmented batches while the weights change, so it is not comparable to the validation
accuracy.
"""),
("code", """
result = train(ds, config, out_dir, resume=True, progress=True)
model = result.model
history = pd.DataFrame(result.history)
metrics = result.metrics
pre = metrics.get("pretrained") or {}
display(Markdown(
    (f"**Fine-tuned** from `{pre['path']}` ({pre['layers_copied']} layers copied)" if pre.get("path")
     else "**Trained from scratch** (no pretrained weights given)")
    + (f"; class weights {', '.join(f'{n}: {w:.2f}' for n, w in zip(ds.class_names, metrics['class_weights']))}"
       if metrics.get("class_weights") else "; no class weighting")
))
"""),
("md", """
## The model

The layer-by-layer summary and the parameter count. Every model takes raw 0-255 RGB
images; its first layer normalizes them with the training split's per-channel mean and
standard deviation, so the saved `.keras` file is self-contained.
"""),
("code", """
model.summary(line_length=110, expand_nested=False)
print(f"parameters: {model.count_params():,}")
"""),
("md", """
## Learning-rate schedule

The learning rate at every optimizer step, as the recipe defines it for this number of
epochs and batch size.
"""),
("code", """
steps_per_epoch = int(np.ceil(len(ds.x_train) / config.batch_size))
plots.lr_schedule(lr_schedule_values(config, steps_per_epoch), steps_per_epoch)
plt.show()
"""),
("md", """
## Learning curves

Training (on augmented batches) and validation loss and accuracy after every epoch. A
validation loss that turns upward while the training loss keeps falling is overfitting;
curves still falling at the last epoch say that more epochs would help.
"""),
("code", """
plots.learning_curves(history)
plt.show()
display(history.round(4))
"""),
("md", """
## Throughput and wall time

Training images per second in each epoch (the first epoch includes warm-up), and the
time spent training.
"""),
("code", """
plots.throughput(history)
plt.show()
print(f"training wall time: {metrics['train_seconds']:.1f} s over {len(history)} epochs; "
      f"median {history['images_per_sec'].median():.0f} images/s on {metrics.get('device', '?')}")
"""),
("md", """
## Final accuracy

Validation accuracy is on the held-out part of the training data; test accuracy is on
the test split, evaluated once here. Both are for the number of epochs stated.
"""),
("code", """
display(Markdown(
    f"After **{len(history)} epochs** of `{config.model}` (recipe `{RECIPE}`): "
    f"validation accuracy **{metrics['val_acc']:.2%}**, test accuracy **{metrics['test_acc']:.2%}** "
    f"({len(ds.x_test)} test images)."
))
"""),
("md", """
## Recorded results

The trained model is saved as `model.keras` in the run's model folder, beside its
history and metrics; the key numbers also go to `metrics/02_train.json`, where the
evaluation notebooks find the model.
"""),
("code", """
path = reporting.record_metrics(run_dir, "02_train", {
    "model": config.model,
    "recipe": RECIPE,
    "config": config.to_dict(),
    "data": ds.to_dict(),
    "epochs_run": int(len(history)),
    "params": int(model.count_params()),
    "val_acc": metrics["val_acc"],
    "test_acc": metrics["test_acc"],
    "val_loss": metrics.get("val_loss"),
    "test_loss": metrics.get("test_loss"),
    "train_seconds": metrics["train_seconds"],
    "median_images_per_s": float(history["images_per_sec"].median()),
    "peak_rss_mib": metrics.get("peak_rss_mib"),
    "device": metrics.get("device"),
    "class_weights": metrics.get("class_weights"),
    "pretrained": metrics.get("pretrained"),
    "model_path": str(result.paths["model"]),
    "history": result.history,
    "tuned_params": tuned,
})
print(f"metrics written to {path}")
"""),
]

write(os.path.join(os.path.dirname(__file__), "..", "notebooks", "02_train.ipynb"), cells)
