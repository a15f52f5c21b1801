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
# # 07 · Cross-validation
#
# With a few hundred or a few thousand images the test split is small, and one test accuracy is
# noisy. This notebook scores **every labelled image once**, by a model that did not train on it:
# the training, validation and test splits of the other notebooks are pooled and cut into `k` folds,
# stratified by class and, when the data has groups (`GROUP_BY` or a labels file with groups), with
# every group in one fold. Fold `i` trains the study's model and recipe on the other `k - 1` folds,
# less a validation carve (`VAL_FRACTION` of them, stratified, whole groups when grouped) that
# monitors the epochs and chooses the fold's operating point; its model then scores the held-out
# fold once. The held-out folds are used for nothing but scoring, and nothing is chosen on the
# out-of-fold predictions: they estimate how well the training procedure does on new images (new
# groups), they do not pick a model, and the model of 03 is not changed by them.
#
# `CV_FOLDS` = 0 applies the auto rule: cross-validation runs when the single test split is too
# small to measure an accuracy to within ±5 percentage points at 95% confidence (the worst case, 50%),
# which takes 381 test images (Wilson's interval); below that it runs with 5 folds (fewer when a
# class has too few groups). `CV_FOLDS` = 1 turns it off, `k` ≥ 2 asks for `k` folds.

# %%
import time

import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from cifarkit import escape, run_folder
from cifarkit.analysis import cross_validation as cv
from cifarkit.analysis import cv_baselines, decisions, plots
from cifarkit.analysis.baselines import parse_methods
from cifarkit.data import load_study_data
from cifarkit.training import notebook_config
from cifarkit.training.transfer import backbone_settings

# %% tags=["parameters"]
DATA: str = ""  # data source; empty for the official CIFAR-10 archive, or a folder, archive, synthetic:200
RUN_DIR: str = ""  # run directory set by run_all.py; empty means reports/interactive
DATA_SUBSET: int = 0  # [0, ] images per class per split to load; 0 loads all
IMAGE_SIZE: int = 32  # [8, 1024] images are resized (shorter side, then centre crop) to IMAGE_SIZE x IMAGE_SIZE
VAL_FRACTION: float = 0.1  # [0, 0.9] share of each fold's training images carved out for validation (stratified)
CLASS_NAMES: str = ""  # comma-separated display names for the classes; empty keeps the data names
GROUP_BY: str = ""  # regex whose capture group in each image's relative path names its group; whole groups per fold
LABELS: str = ""  # labels from 'filename:REGEX' or a CSV file (path,label[,group]); empty: class folders
SEED: int = 0  # [0, 2147483647] seed for the splits, the folds, initialisation, augmentation and the bootstrap
CV_FOLDS: int = 0  # [0, 100] 0: auto (on below 381 test images, 5 folds); 1: off; k ≥ 2: k folds
MODEL: str = "fastnet"  # a registered model name, see cifarkit.models.list_models()
RECIPE: str = "fast"  # a named recipe from cifarkit.training.RECIPES
EPOCHS: int = 0  # [0, 10000] passes over each fold's training images; 0 keeps the recipe's own
BATCH_SIZE: int = 0  # [0, 65536] 0 keeps the recipe's own
LR: float = 0.0  # [0, 1000] base learning rate; 0 keeps the recipe's own
AUGMENT: str = "recipe"  # {recipe, no-flip, none, flip, crop+flip, crop+flip+cutout} augmentation; recipe keeps its own; no-flip keeps its crop and cutout without mirror images
CLASS_WEIGHT: str = "none"  # {none, balanced} balanced weights each class by its rarity (imbalanced data)
PRETRAINED: str = ""  # a saved .keras model or .weights.h5 of the same architecture to fine-tune in every fold
BACKBONE: str = "none"  # an ImageNet backbone (cifarkit.models.list_backbones(): mobilenet_v2, efficientnet_b0, resnet50, ...) instead of MODEL, in every fold; use IMAGE_SIZE 96-224
BACKBONE_WEIGHTS: str = "imagenet"  # imagenet (Keras' download; without network the folds train from scratch and say so), a local .h5 / .weights.h5 file, or none
FREEZE_EPOCHS: int = 3  # [0, 10000] with backbone weights, the first epochs of each fold train only the new head
DEVICE: str = "auto"  # {auto, cpu, gpu} where to train
DETERMINISTIC: bool = False  # bit-reproducible CPU run (slower)
OVERRIDES: dict = {}  # any other recipe setting, for example {"weight_decay": 5e-4}
N_BOOT: int = 2000  # [100, 1000000] bootstrap resamples for the pooled confidence intervals
OPERATING_POINT: str = "youden"  # threshold rule, applied on each fold's validation carve: youden, or sensitivity≥X, specificity≥X, ppv≥X or npv≥X
POSITIVE_CLASS: str = ""  # class whose probability is thresholded; empty: the second class with two classes, each class against the rest with more
BASELINES: str = "logreg,knn,random_forest,hog_svm"  # non-CNN methods on the same folds (as 05's); empty: none
ALPHA: float = 0.05  # [0.000001, 0.5] significance level of the CNN-versus-baselines verdict (McNemar, Holm-adjusted)

# %%
t_start = time.perf_counter()
rule = decisions.parse_rule(OPERATING_POINT)  # a mistyped rule stops here, before any work
baseline_methods = parse_methods(BASELINES) if BASELINES.strip() else []  # so does an unknown baseline name
run_dir = run_folder.resolve_run_dir(RUN_DIR)
run_folder.capture_warnings(run_dir, "07_cross_validation")  # warnings go to the run's log, not the report
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
names = ds.class_names
positive_idx, mode = decisions.positive_classes(names, POSITIVE_CLASS)  # an unknown class stops here
positive = positive_idx[0] if mode == "positive class" else None
model_name, backbone_options = backbone_settings(MODEL, BACKBONE, BACKBONE_WEIGHTS, FREEZE_EPOCHS)
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
    overrides={**OVERRIDES, **backbone_options},
)
pooled = cv.pool(ds)
decision = cv.decide(CV_FOLDS, n_test=len(ds.y_test), n_images=pooled.n)
if decision.run:
    fold_of = cv.plan_folds(decision, pooled, names, VAL_FRACTION, SEED)  # too few groups: refused or fewer folds
    grouped = pooled.groups is not None
    display(
        Markdown(
            f"**Cross-validation: {decision.k} folds** ({escape.md(decision.reason)}"
            + "".join(f"; {escape.md(note)}" for note in decision.notes)
            + ").  \n"
            f"**Data:** {escape.code(ds.source)}; {pooled.n:,} labelled images of {ds.num_classes} classes "
            f"({escape.names(names)}) at {ds.image_size[0]}x{ds.image_size[1]}, pooled from the {len(ds.y_train):,} "
            f"training, {len(ds.y_val):,} validation and {len(ds.y_test):,} test images; folds stratified by class"
            + (
                f" with whole groups ({len(set(pooled.groups)):,} groups, by {escape.code(ds.group_by)})"
                if grouped
                else " (the data has no groups: images are folded one by one)"
            )
            + f", seed {SEED}.  \n"
            f"**Each fold trains** {escape.code(config.model)} with recipe {escape.code(RECIPE)} for {config.epochs} "
            f"epochs at batch {config.batch_size} (peak learning rate {config.peak_lr():.4g})"
            + (", class weights balanced" if config.class_weight == "balanced" else "")
            + f", augmentation crop {config.crop}, flip {config.flip}, cutout {config.cutout}."
        )
    )
else:
    fold_of = None
    display(
        Markdown(f"**Cross-validation did not run:** {escape.md(decision.reason)}. Nothing below applies to this run.")
    )

# %% [markdown]
# ## Folds
#
# How many images of each class (and how many groups) each fold holds out. Stratification keeps the
# class proportions of every fold close to the data's; with whole groups per fold the counts follow
# the group sizes.

# %%
if decision.run:
    display(escape.table(cv.composition_table(pooled, fold_of, names)))

# %% [markdown]
# ## Training the folds
#
# One training run per fold, each in its own folder under the run's `models/`: re-running this
# notebook in the same run continues from the last finished epoch of each fold. Every line gives
# the fold's training, validation and held-out images and the held-out accuracy of its model.

# %%
folds = []
if decision.run:
    folds = cv.run_folds(ds, pooled, fold_of, config, run_folder.model_dir(run_dir, "07_cv"), VAL_FRACTION, SEED)
    for f in folds:
        f.update(cv.score_fold(pooled.y[f["held_out"]], f["probs"], positive))
        print(
            f"fold {f['fold']}/{decision.k}: {f['n_train']} training, {f['n_val']} validation, {f['n']} held-out "
            f"images; held-out accuracy {f['accuracy']:.1%}; {f['epochs_run']} epochs in {f['train_seconds']:.0f} s"
        )

# %% [markdown]
# ## Per-fold results
#
# Each fold's accuracy, balanced accuracy (the mean recall over the classes, which an imbalanced
# data set needs) and ROC AUC on its held-out images, and their mean ± standard deviation over the
# folds. The spread between folds mixes the sampling of the held-out images with the variation
# between training runs on different images.

# %%
if decision.run:
    per_fold = cv.fold_table(folds, names, positive)
    formats = {"accuracy": "{:.1%}", "balanced accuracy": "{:.1%}", "train s": "{:.0f}"}
    display(escape.table(per_fold, formats | {c: "{:.3f}" for c in per_fold if c.startswith("ROC AUC")}))
    fold_summary = {key: cv.spread(f[key] for f in folds) for key in ("accuracy", "balanced_accuracy", "roc_auc")}
    display(Markdown(cv.fold_sentence(fold_summary, decision.k, config.model, config.epochs)))

# %% [markdown]
# ## Pooled out-of-fold results
#
# Every image's prediction by the fold model that did not train on it, pooled: accuracy, balanced
# accuracy and ROC AUC (the positive class's with two classes, else the macro average of each class
# against the rest) with 95% percentile-bootstrap intervals over the images (`N_BOOT`, `SEED`). The
# pooled ROC curve ranks the scores of all fold models together; when they are calibrated
# differently it can lie below the mean of the per-fold AUCs, so both are given. The last table sets
# these numbers beside the single split's test results of this run (04, or 03), measured on a tenth
# of the images.

# %%
if decision.run:
    probs_oof, oof_fold = cv.out_of_fold(folds, pooled.n, ds.num_classes)
    pooled_record, roc = cv.pooled_metrics(pooled.y, probs_oof, names, positive=positive, n_boot=N_BOOT, seed=SEED)
    for key in ("accuracy", "balanced_accuracy", "roc_auc"):
        fold_summary[key]["pooled"], fold_summary[key]["pooled_ci"] = pooled_record[key], pooled_record[f"{key}_ci"]
    cv.fold_figure(
        folds,
        pooled_record,
        ds.num_classes,
        f"{decision.k}-fold cross-validation of {config.model} ({config.epochs} epochs), {pooled.n:,} images",
    )
    plt.show()
    display(Markdown(cv.pooled_sentence(pooled_record, decision.k)))
    op = cv.operating_points_cv(
        pooled.y,
        probs_oof,
        oof_fold,
        [(f["y_val"], f["probs_val"]) for f in folds],
        names,
        rule,
        positive_class=POSITIVE_CLASS,
    )
    shown = [positive] if positive is not None and ds.num_classes == 2 else None
    figure = plots.roc_curves(
        roc["curves"],
        names,
        show=shown,
        macro=None if shown else roc["macro_curve"],
        title=(f"Pooled out-of-fold ROC curve of {names[positive]}" if shown else "Pooled out-of-fold ROC curves")
        + f" ({pooled.n:,} images, {decision.k} folds)",
    )
    cv.mark_operating_points(figure, op, names)
    plt.show()
    auc_table = decisions.auc_table(pooled_record["auc"]).rename(columns={"test positives": "positives"})
    display(escape.table(auc_table, {"ROC AUC": "{:.3f}", "average precision": "{:.3f}"}))
    single = cv.single_split(run_dir)
    display(cv.comparison_table(pooled_record, fold_summary, single, decision.k))
    display(Markdown(cv.comparison_sentence(pooled_record, single)))

# %% [markdown]
# ## The CNN against the non-CNN baselines, on every image
#
# Each method of `BASELINES` (as in 05: logistic regression on pixels, k-nearest neighbours, a random
# forest, HOG features with an SVM) is trained on every fold's training images, with its settings chosen
# on the fold's validation carve, and predicts the fold's held-out images, the same ones the CNN's fold
# model predicts. McNemar's test then pairs the two out-of-fold predictions of every image: **b** counts
# the images only the CNN gets right, **c** those only the baseline gets right. The p-values are adjusted
# with Holm's method for the number of baselines, and the verdict uses `ALPHA`. This test sees every
# labelled image, where 05's sees the test split only.

# %%
comparison = None
if decision.run and baseline_methods:
    fold_baselines = cv_baselines.run_fold_baselines(ds, pooled, fold_of, baseline_methods, VAL_FRACTION, SEED)
    comparison = cv_baselines.compare(
        pooled.y, probs_oof.argmax(axis=1), fold_baselines, alpha=ALPHA, n_boot=N_BOOT, seed=SEED
    )
    display(escape.table(cv_baselines.table(comparison, config.model)))
    display(Markdown(cv_baselines.sentence(comparison, config.model)))
elif decision.run:
    display(Markdown("No baseline was cross-validated (`BASELINES` is empty)."))

# %% [markdown]
# ## Operating point
#
# The threshold rule `OPERATING_POINT` (as in 04) is applied in every fold to that fold's
# validation carve, never to its held-out images; each held-out image is then called positive when
# its score reaches its own fold's threshold. The calls of all folds are pooled and sensitivity,
# specificity, PPV, NPV (at the data's prevalence) and accuracy are given with 95% Wilson score
# intervals, beside their mean ± sd over the folds. With more than two classes and no
# `POSITIVE_CLASS`, every class is taken against the rest with its own thresholds.

# %%
if decision.run:
    display(
        Markdown(
            f"**Operating point:** {escape.md(op['rule_description'])} (`OPERATING_POINT` = {escape.code(op['rule'])}), "
            + (
                f"for the positive class **{escape.md(op['positive_class'])}**"
                if op["mode"] == "positive class"
                else f"for each of the {len(names)} classes against the rest"
            )
            + f"; thresholds per fold: {escape.md(cv.thresholds_text(op))}. Intervals: {escape.md(op['interval_method'])}."
            + "".join(f"  \n**Note:** {escape.md(note)}" for note in op["notes"][:6])
            + (f"  \n**Note:** and {len(op['notes']) - 6} more notes like these." if len(op["notes"]) > 6 else "")
        )
    )
    display(escape.table(cv.operating_table(op)))
    for name, entry in op["per_class"].items():
        if len(op["per_class"]) > 4:
            break
        negative = names[1 - names.index(name)] if len(names) == 2 else f"not {name}"
        display(Markdown(f"Pooled out-of-fold confusion matrix at each fold's threshold for {escape.md(name)}:"))
        matrix = decisions.confusion_2x2({"test": entry["pooled"]}, name, negative)
        matrix.index.name = "out-of-fold images"
        display(escape.table(matrix))

# %% [markdown]
# Everything above is recorded in `metrics/07_cross_validation.json`; the out-of-fold predictions
# are in `predictions/07_cross_validation_oof.npz` (in the pooled order: training, validation, then
# test images) and each image's fold, split of origin and group, with each baseline's out-of-fold
# prediction, in `predictions/07_cross_validation_folds.npz`.

# %%
record = {"cross_validation": decision.to_dict(), "data": ds.to_dict(), "n_boot": N_BOOT}
if decision.run:
    run_folder.save_predictions(
        run_dir, "07_cross_validation", x=pooled.x, y_true=pooled.y, probs=probs_oof, class_names=names, split="oof"
    )
    cv.save_folds(
        run_dir, pooled, oof_fold, folds, {b["name"]: b["pred"] for b in fold_baselines} if comparison else None
    )
    record.update(
        {
            "model": config.model,
            "recipe": RECIPE,
            "config": config.to_dict(),
            "k": decision.k,
            "grouped": pooled.groups is not None,
            "n_images": pooled.n,
            "folds": [cv.fold_record(f) for f in folds],
            "fold_summary": fold_summary,
            "pooled": pooled_record,
            "operating_point": op,
            "single_split": single,
            "baselines": comparison,
            "train_seconds": sum(f["train_seconds"] for f in folds),
        }
    )
record["cv_seconds"] = time.perf_counter() - t_start
path = run_folder.record_metrics(run_dir, "07_cross_validation", record)
