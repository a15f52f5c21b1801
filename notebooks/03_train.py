# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 03 · Training
#
# This notebook trains one registered architecture with a named recipe and reports what a
# reader needs to judge the run: the model and its size, the learning-rate schedule, the
# learning curves, the throughput and wall time, and the final validation and test accuracy.
# Validation data comes out of the training split; the test split is evaluated once, at the
# end, and is never used to choose anything.

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from cifarkit import escape, run_folder
from cifarkit.analysis import plots, stats, training_report, verdicts
from cifarkit.analysis.tuning import merge_settings, tuned_settings
from cifarkit.data import load_study_data
from cifarkit.training import lr_schedule_values, notebook_config, predict_logits, train
from cifarkit.training.transfer import backbone_settings
from cifarkit.wording import plural

# %% tags=["parameters"]
DATA: str = ""  # data source; empty for the official CIFAR-10 archive, or a folder, archive, synthetic:200
RUN_DIR: str = ""  # run directory set by run_all.py; empty means reports/interactive
DATA_SUBSET: int = 0  # [0, ] images per class per split to load; 0 loads all
IMAGE_SIZE: int = 32  # [8, 1024] images are resized (shorter side, then centre crop) to IMAGE_SIZE x IMAGE_SIZE
VAL_FRACTION: float = 0.1  # [0, 0.9] share of the training data held out for validation (stratified)
CLASS_NAMES: str = ""  # comma-separated display names for the classes; empty keeps the data names
GROUP_BY: str = ""  # regex whose capture group in each image's relative path names its group (patient, part); whole groups per split
LABELS: str = ""  # labels from 'filename:REGEX' or a CSV file (path,label[,group]); empty: class folders
SEED: int = 0  # [0, 2147483647] seed for splits, initialisation and augmentation
MODEL: str = "fastnet"  # a registered model name, see cifarkit.models.list_models()
RECIPE: str = "fast"  # a named recipe from cifarkit.training.RECIPES
EPOCHS: int = 0  # [0, 10000] passes over the training set; 0 keeps the recipe's own
BATCH_SIZE: int = 0  # [0, 65536] 0 keeps the recipe's own
LR: float = 0.0  # [0, 1000] base learning rate; 0 keeps the recipe's own
AUGMENT: str = "recipe"  # {recipe, no-flip, none, flip, crop+flip, crop+flip+cutout} augmentation; recipe keeps its own; no-flip keeps its crop and cutout without mirror images
CLASS_WEIGHT: str = "none"  # {none, balanced} balanced weights each class by its rarity (imbalanced data)
PRETRAINED: str = ""  # a saved .keras model or .weights.h5 of the same architecture to fine-tune; empty: from scratch
BACKBONE: str = "none"  # an ImageNet backbone (cifarkit.models.list_backbones(): mobilenet_v2, efficientnet_b0, resnet50, ...) instead of MODEL; use IMAGE_SIZE 96-224
BACKBONE_WEIGHTS: str = "imagenet"  # imagenet (Keras' download; without network the run trains from scratch and says so), a local .h5 / .weights.h5 file, or none
FREEZE_EPOCHS: int = 3  # [0, 10000] with backbone weights, the first epochs train only the new head; later ones fine-tune everything at 0.1 x the rate
DEVICE: str = "auto"  # {auto, cpu, gpu} where to train
DETERMINISTIC: bool = False  # bit-reproducible CPU run (slower)
OVERRIDES: dict = {}  # any other recipe setting, for example {"weight_decay": 5e-4}
TUNED_PARAMS: str = "auto"  # auto: 02_tune's best settings when they beat the recipe beyond noise; none; or a JSON path
N_BOOT: int = 2000  # [100, 1000000] bootstrap resamples for the test accuracy's confidence interval

# %%
run_dir = run_folder.resolve_run_dir(RUN_DIR)
run_folder.capture_warnings(run_dir, "03_train")  # warnings go to the run's log, not the report
ds = load_study_data(
    DATA,
    image_size=IMAGE_SIZE,
    subset=DATA_SUBSET,
    val_fraction=VAL_FRACTION,
    seed=SEED,
    class_names=CLASS_NAMES,
    group_by=GROUP_BY,
    labels=LABELS,
)
# tuned settings first, then OVERRIDES and a backbone's settings, then every explicit parameter of this notebook
model_name, backbone_options = backbone_settings(MODEL, BACKBONE, BACKBONE_WEIGHTS, FREEZE_EPOCHS)
tuned = tuned_settings(TUNED_PARAMS, run_dir, model=model_name, recipe=RECIPE)
config = notebook_config(
    model_name,
    RECIPE,
    seed=SEED,
    epochs=EPOCHS,
    batch_size=BATCH_SIZE,
    lr=LR,
    augment=AUGMENT,
    class_weight=CLASS_WEIGHT,
    pretrained=PRETRAINED,
    device=DEVICE,
    deterministic=DETERMINISTIC,
    overrides={**merge_settings(tuned["settings"], OVERRIDES), **backbone_options},
)
out_dir = run_folder.model_dir(run_dir, config.model)
display(Markdown(training_report.setup_markdown(ds, config, RECIPE, tuned)))
display(
    Markdown(
        "The settings that differ from the defaults of `cifarkit.training.TrainConfig` (the whole configuration "
        "is recorded in the run's metrics):"
    )
)
display(escape.table(training_report.changed_settings(config)))

# %% [markdown]
# ## Training
#
# The loop checkpoints after every epoch into the run's model folder: re-running this
# notebook (or `python -m cifarkit train ... --resume`) with the same settings continues from
# the last finished epoch instead of starting again. Training accuracy is measured on
# augmented batches while the weights change, so it is not comparable to the validation
# accuracy.

# %%
result = train(ds, config, out_dir, resume=True, progress=True)
model = result.model
history = pd.DataFrame(result.history)
metrics = result.metrics
display(Markdown(training_report.start_markdown(metrics, ds.class_names)))

# %% [markdown]
# ## The model
#
# The layer-by-layer summary and the parameter count. Every model takes raw 0-255 RGB
# images; its first layer normalizes them with the training split's per-channel mean and
# standard deviation, so the saved `.keras` file is self-contained.

# %%
model.summary(line_length=110, expand_nested=False)
print(f"parameters: {model.count_params():,}")

# %% [markdown]
# ## Learning-rate schedule
#
# The learning rate at every optimizer step, as the recipe defines it for this number of
# epochs and batch size: its peak is the batch-scaled rate stated above.

# %%
steps_per_epoch = int(np.ceil(len(ds.x_train) / config.batch_size))
plots.lr_schedule(lr_schedule_values(config, steps_per_epoch), steps_per_epoch)
plt.show()

# %% [markdown]
# ## Learning curves
#
# Training (on augmented batches) and validation loss and accuracy after every epoch. A
# validation loss that turns upward while the training loss keeps falling is overfitting;
# curves still falling at the last epoch say that more epochs would help.

# %%
plots.learning_curves(history)
plt.show()
display(Markdown(verdicts.learning_curves(history)))
columns = [c for c in ("epoch", "train_loss_aug", "train_acc_aug", "val_loss", "val_acc", "lr", "epoch_seconds")]
display(history[[c for c in columns if c in history]].round(4).set_index("epoch"))

# %% [markdown]
# ## Throughput and wall time
#
# Training images per second in each epoch (the first epoch includes warm-up), and the
# time spent training.

# %%
plots.throughput(history)
plt.show()
print(
    f"training wall time: {metrics['train_seconds']:.1f} s over {plural(len(history), 'epoch')}; "
    f"median {history['images_per_sec'].median():.0f} images/s on {metrics.get('device', '?')}"
)

# %% [markdown]
# ## Final accuracy
#
# Validation accuracy is on the held-out part of the training data; test accuracy is on
# the test split, evaluated once here, with a 95% percentile-bootstrap interval over the test
# images (the same interval, from the same predictions, as in the evaluation and
# architectures reports). Both are for the number of epochs stated.

# %%
test_pred = predict_logits(model, ds.x_test).argmax(1)
test_ci = stats.accuracy_ci(ds.y_test, test_pred, n_boot=N_BOOT, seed=SEED)
display(Markdown(training_report.result_markdown(config, RECIPE, metrics, len(history), test_ci, len(ds.x_test))))

# %% [markdown]
# The trained model is saved as `model.keras` in the run's model folder, beside its history
# and metrics; the key numbers are recorded in `metrics/03_train.json`, where the later
# notebooks find the model.

# %%
path = run_folder.record_metrics(
    run_dir,
    "03_train",
    {
        "model": config.model,
        "recipe": RECIPE,
        "config": config.to_dict(),
        "data": ds.to_dict(),
        "epochs_run": int(len(history)),
        "params": int(model.count_params()),
        "val_acc": metrics["val_acc"],
        "test_acc": metrics["test_acc"],
        "test_acc_ci": [test_ci["ci_low"], test_ci["ci_high"]],
        "n_boot": N_BOOT,
        "val_loss": metrics.get("val_loss"),
        "test_loss": metrics.get("test_loss"),
        "train_seconds": metrics["train_seconds"],
        "median_images_per_s": float(history["images_per_sec"].median()),
        "peak_rss_mib": metrics.get("peak_rss_mib"),
        "device": metrics.get("device"),
        "class_weights": metrics.get("class_weights"),
        "pretrained": metrics.get("pretrained"),
        "backbone": metrics.get("backbone"),
        "model_path": str(result.paths["model"]),
        "history": result.history,
        "tuned_params": tuned,
    },
)
