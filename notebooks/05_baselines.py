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
# # 05 · Do CNNs really win? Non-CNN baselines
#
# This notebook trains classic classifiers on the **same splits** as the CNN of this run and
# puts them side by side: logistic regression on pixels, k-nearest neighbours on PCA
# features, a random forest on pixels, and a linear SVM on HOG and colour-histogram
# features. Every hyperparameter of a baseline (the regularization strength, k) is chosen
# on the validation split or fixed in advance; the test split is used once, for the final
# scores. Each test accuracy comes with a 95% bootstrap confidence interval, and McNemar's
# test says whether the CNN's lead over each baseline is more than chance.

# %%
import time

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display

from cifarkit import escape, run_folder
from cifarkit.analysis import baselines, plots
from cifarkit.data import load_study_data, require_validation
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
SEED: int = 0  # [0, 2147483647] seed for the splits, the subsamples and the methods
METHODS: str = "logreg,knn,random_forest,hog_svm"  # baseline methods, comma-separated, see cifarkit.analysis.baselines.list_methods()
MAX_TRAIN: int = 0  # [0, ] cap on training images for every method, a stratified subsample; 0 uses all
MAX_TRAIN_PER_METHOD: dict = {}  # caps per method name that override MAX_TRAIN, for example {random_forest: 20000}
METHOD_OPTIONS: dict = {}  # builder options per method name, for example {random_forest: {n_estimators: 50}}
N_BOOT: int = 2000  # [100, 1000000] bootstrap resamples for the confidence intervals

# %%
run_dir = run_folder.resolve_run_dir(RUN_DIR)
run_folder.capture_warnings(run_dir, "05_baselines")  # warnings go to the run's log, not the report
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
require_validation(ds, "choose the best CNN to compare the baselines with")
methods = baselines.parse_methods(METHODS)
max_train = {**{name: MAX_TRAIN for name in methods}, **MAX_TRAIN_PER_METHOD}
run_folder.resolve_model_path(run_dir)  # a clear error when the training notebook recorded no model
cnns = run_folder.find_run_models(run_dir)
baselines.check_same_data(cnns[0]["recorded"].get("data", {}), ds)
cnn_text = ", ".join(f"{escape.code(c['name'])} ({c['source']}, {plural(c['epochs_run'], 'epoch')})" for c in cnns)
display(
    Markdown(
        f"**Data:** {escape.code(ds.source)} ({ds.source_kind}); {len(ds.x_train):,} training, {len(ds.x_val):,} "
        f"validation, {len(ds.x_test):,} test images of {ds.num_classes} classes ({escape.names(ds.class_names)}) "
        f"at {ds.image_size[0]}x{ds.image_size[1]}, split with seed {SEED}  \n"
        f"**Baselines:** {', '.join(methods)}  \n"
        f"**CNN(s) of this run:** {cnn_text}"
    )
)

# %% [markdown]
# ## Training the baselines
#
# Each method trains on the training split (or a stratified subsample of it, where the
# profile caps the training images of a slow method; the table states how many were used),
# chooses its hyperparameters by validation accuracy, then predicts the test split once.
# Training time includes feature extraction and the validation-based choice; prediction
# time is feature extraction and prediction for the test split.

# %%
t_start = time.perf_counter()
results = baselines.run_baselines(
    ds, methods, max_train=max_train, seed=SEED, options=METHOD_OPTIONS, n_boot=N_BOOT, progress=None
)
baseline_seconds = time.perf_counter() - t_start
display(
    escape.table(
        pd.DataFrame(
            [
                {
                    "method": r["name"],
                    "chosen on validation or fixed": r["selected"],
                    "validation accuracy per candidate": {k: round(v, 4) for k, v in r["val_scores"].items()}
                    or "fixed a priori",
                }
                for r in results
            ]
        ),
        plots.short,
    )
)

# %% [markdown]
# ## The CNN(s) of this run
#
# The model that `03_train` saved scores the same validation and test images (when this notebook
# runs again after 06, the models 06 trained join it). The best CNN is the one with the highest
# **validation** accuracy; it is the reference for McNemar's test below.

# %%
cnn_results = baselines.evaluate_cnns(cnns, ds, n_boot=N_BOOT, seed=SEED, progress=None)
best_cnn = baselines.best_by_validation(cnn_results)
tests = baselines.compare_with_cnn(results, best_cnn, ds.y_test)
total_seconds = time.perf_counter() - t_start

# %% [markdown]
# ## CNN versus baselines
#
# Test accuracy with its 95% bootstrap interval for every model. McNemar's test pairs the
# predictions of the best CNN and of each baseline on the same test images: **b** counts the
# images only the CNN gets right, **c** those only the baseline gets right; a small p says
# the difference between b and c is unlikely under equal accuracy.

# %%
frame = baselines.comparison_frame(results, cnn_results, tests, best_cnn=best_cnn["name"])
display(baselines.format_comparison(frame, train_available=len(ds.x_train)))

# %%
plots.accuracy_comparison(
    frame, num_classes=ds.num_classes, title=f"Test accuracy on {len(ds.x_test):,} images with 95% bootstrap CI"
)
plt.show()

# %% [markdown]
# ## Conclusion
#
# The verdict below is computed from the numbers above: the best CNN (chosen by validation
# accuracy, trained for the stated number of epochs) against the strongest baseline, and
# whether it beats every baseline with McNemar's test at p < 0.001.

# %%
beats_all = baselines.cnn_beats_all(results, best_cnn, tests, alpha=0.001)
display(
    Markdown(baselines.conclusion(results, best_cnn, tests, num_classes=ds.num_classes, test_images=len(ds.x_test)))
)

# %% [markdown]
# Everything in the table is recorded in `metrics/05_baselines.json` (without the prediction
# arrays), with McNemar's test of each baseline against the best CNN.

# %%
best_baseline = max(results, key=lambda r: r["test_acc"])
path = run_folder.record_metrics(
    run_dir,
    "05_baselines",
    {
        "data": ds.to_dict(),
        "methods": methods,
        "max_train": max_train,
        "method_options": METHOD_OPTIONS,
        "baselines": [baselines.public_result(r) for r in results],
        "best_baseline": {
            "name": best_baseline["name"],
            "title": best_baseline["title"],
            "test_acc": best_baseline["test_acc"],
        },
        "cnn": {
            "name": best_cnn["name"],
            "source": best_cnn["source"],
            "epochs": best_cnn["epochs_run"],
            "test_acc": best_cnn["test_acc"],
            "test_acc_ci": best_cnn["test_acc_ci"],
            "val_acc": best_cnn["val_acc"],
        },
        "cnns": [
            {
                k: c[k]
                for k in (
                    "name",
                    "source",
                    "epochs_run",
                    "model_path",
                    "val_acc",
                    "test_acc",
                    "test_acc_ci",
                    "predict_seconds",
                )
            }
            for c in cnn_results
        ],
        "mcnemar": tests,
        "mcnemar_reference": f"best CNN by validation accuracy ({best_cnn['name']}); b = CNN right and baseline wrong",
        "all_cnn_beat_baselines_p001": bool(beats_all),
        "baseline_seconds": baseline_seconds,
        "total_seconds": total_seconds,
    },
)
