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
# # 04 · Evaluation
#
# This notebook evaluates the model that 03_train trained in this run (or the saved model
# given as `MODEL_PATH`) on the test split, which no earlier step used for any choice. It
# reports the accuracy with a bootstrap confidence interval and top-k accuracy; precision,
# recall and F1 per class; the confusion matrix and the pairs of classes the model mixes up;
# the mistakes themselves; how well the predicted probabilities are calibrated, before and
# after temperature scaling fitted on the validation split; ROC and precision-recall curves with
# their areas, and the sensitivity, specificity, PPV and NPV at an operating point chosen on the
# validation split; the effect of test-time augmentation; the accuracy under the 15 CIFAR-10-C
# corruptions; and Grad-CAM saliency maps.
# Every number shown is also written to `metrics/04_evaluate.json`.

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from cifarkit import escape, run_folder
from cifarkit.analysis import corruptions, decisions, evaluation, interactive, plots, saliency, stats, verdicts
from cifarkit.data import load_study_data
from cifarkit.training import predict_logits, predict_probs, softmax

# %% tags=["parameters"]
DATA: str = ""  # data source; empty for the official CIFAR-10 archive, or a folder, archive, synthetic:200
RUN_DIR: str = ""  # run directory set by run_all.py; empty means reports/interactive
DATA_SUBSET: int = 0  # [0, ] images per class per split to load; 0 loads all
IMAGE_SIZE: int = 32  # [8, 1024] images are resized (shorter side, then centre crop) to IMAGE_SIZE x IMAGE_SIZE
VAL_FRACTION: float = 0.1  # [0, 0.9] share of the training data held out for validation (stratified)
CLASS_NAMES: str = ""  # comma-separated display names for the classes; empty keeps the data names
GROUP_BY: str = ""  # regex whose capture group in each image's relative path names its group (patient, part); whole groups per split
LABELS: str = ""  # labels from 'filename:REGEX' or a CSV file (path,label[,group]); empty: class folders
SEED: int = 0  # [0, 2147483647] seed for splits, bootstrap, subsamples and corruption noise
MODEL_PATH: str = ""  # empty uses the model trained by 03_train in this run
TTA: bool = True  # also evaluate with horizontal-flip test-time augmentation
CORRUPTION_SAMPLES: int = 2000  # [0, ] test images used for the corruption study; 0 uses all
GALLERY_SIZE: int = 16  # [0, 256] misclassified images shown per gallery
SALIENCY_EXAMPLES: int = 4  # [0, 64] correct and as many incorrect images explained with Grad-CAM
N_BOOT: int = 2000  # [100, 1000000] bootstrap resamples for confidence intervals
OPERATING_POINT: str = "youden"  # threshold rule, applied on validation: youden, or sensitivity≥X, specificity≥X, ppv≥X or npv≥X (≥ also typed as >, then the equals sign)
POSITIVE_CLASS: str = ""  # class whose probability is thresholded; empty: the second class with two classes, each class against the rest with more
PREVALENCE: float = 0.0  # [0, 1] share of positives where the model will be used, for PPV and NPV by Bayes' rule; 0 uses the test split's

# %%
t_start = time.perf_counter()
rule = decisions.parse_rule(OPERATING_POINT)  # a mistyped rule or prevalence stops here, before any work
decisions.check_prevalence(PREVALENCE)
run_dir = run_folder.resolve_run_dir(RUN_DIR)
run_folder.capture_warnings(run_dir, "04_evaluate")  # warnings go to the run's log, not the report
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
model_path = run_folder.resolve_model_path(run_dir, MODEL_PATH)
model = run_folder.load_model(model_path, num_classes=ds.num_classes, input_shape=ds.input_shape)
trained = run_folder.training_info(model_path)
model_name = trained.get("model") or model.name
epochs_run = trained.get("epochs_run")
epochs_text = (
    f"{epochs_run} epoch{'s' if epochs_run != 1 else ''}" if epochs_run is not None else "an unknown number of epochs"
)
mismatch = evaluation.data_mismatch(trained.get("dataset", {}), ds.to_dict())
names = ds.class_names
decisions.positive_classes(names, POSITIVE_CLASS)  # an unknown POSITIVE_CLASS stops here, naming the classes
x_test, y_test = ds.x_test, ds.y_test
display(
    Markdown(
        f"**Model:** {escape.code(model_name)} from {escape.code(model_path)}, trained for **{epochs_text}**  \n"
        f"**Data:** {escape.code(ds.source)}; {len(ds.x_val):,} validation and **{len(x_test):,} test images** of "
        f"{ds.num_classes} classes ({escape.names(names)}) at {ds.image_size[0]}x{ds.image_size[1]}"
    )
)
if mismatch:
    display(
        Markdown(
            "**Warning:** the data settings differ from those the model was trained with, so test images "
            "may have been training images: " + escape.md("; ".join(mismatch))
        )
    )

# %% [markdown]
# ## Test accuracy
#
# One forward pass over the test split. The 95% interval is a percentile bootstrap over
# test images: it shows how much the accuracy could move with another test sample of the
# same size, not how much it moves between training runs. Top-k accuracy counts a
# prediction as right when the true class is among the k most probable (k is capped at the
# number of classes, where it is trivially 100%).

# %%
logits_test = predict_logits(model, x_test)
probs_test = softmax(logits_test)
m = evaluation.classification_metrics(y_test, probs_test, names, n_boot=N_BOOT, seed=SEED)
lo, hi = m["accuracy_ci"]
display(
    Markdown(
        f"After **{epochs_text}** of {escape.code(model_name)}: test accuracy **{m['accuracy']:.2%}** "
        f"(95% CI {lo:.2%} to {hi:.2%}, {N_BOOT} bootstrap resamples) on **{m['n']} test images**; "
        f"balanced accuracy {m['balanced_accuracy']:.2%}, macro F1 {m['macro']['f1']:.3f}."
    )
)
display(escape.table(pd.DataFrame({f"top-{k}": [v] for k, v in m["top_k"].items()}, index=["test accuracy"]), "{:.2%}"))

# %% [markdown]
# ## Per-class precision, recall and F1
#
# Precision is the share of images predicted as a class that belong to it; recall, the
# share of a class's images that are found; F1 their harmonic mean; support, the number of
# test images of the class. The macro average weighs every class equally; the weighted
# average weighs classes by support (its recall equals the accuracy).

# %%
table = evaluation.per_class_table(m)
display(escape.table(table, {"precision": "{:.3f}", "recall": "{:.3f}", "f1": "{:.3f}", "support": "{:d}"}))
plots.per_class_bars(table, title=f"Per-class scores on {m['n']} test images ({model_name}, {epochs_text})")
plt.show()

# %% [markdown]
# ## Confusion matrix
#
# Rows are the true classes and columns the predictions. Each cell shows the share of the true
# class's test images predicted as the column's class (so the diagonal is each class's recall)
# and, below it, their count. The table lists the off-diagonal cells with the most images: the
# pairs of classes this model confuses most. In the HTML report the matrix is interactive: hover a
# cell for its count.

# %%
cm_title = f"Confusion matrix on {m['n']} test images ({model_name}, {epochs_text})"
interactive.show(
    interactive.confusion_figure(m["confusion_matrix"], names, cm_title),
    plots.confusion_heatmaps(m["confusion_matrix"], names, title=cm_title),
    height=max(420, 34 * len(names) + 160),
)
confused = pd.DataFrame(m["most_confused"], columns=["true", "predicted", "count", "share_of_true"])
display(
    escape.table(confused, {"share_of_true": "{:.1%}"})
    if len(confused)
    else Markdown("No test image is misclassified.")
)

# %% [markdown]
# ## Misclassified images
#
# A random sample of the misclassified test images, then the mistakes the model makes with
# the highest confidence (the probability it gives to the wrong class). Confident mistakes
# often show label noise, ambiguous images or a shortcut the model has learned.

# %%
n_wrong = int((probs_test.argmax(1) != y_test).sum())
sample_wrong = evaluation.misclassified(y_test, probs_test, GALLERY_SIZE, seed=SEED)
plots.prediction_gallery(
    x_test,
    y_test,
    probs_test,
    sample_wrong,
    names,
    title=f"Random misclassified test images ({len(sample_wrong)} of {n_wrong})",
)
plt.show()
confident_wrong = evaluation.misclassified(y_test, probs_test, GALLERY_SIZE, most_confident=True)
plots.prediction_gallery(x_test, y_test, probs_test, confident_wrong, names, title="The most confident mistakes")
plt.show()
confident_table = pd.DataFrame(
    {
        "test index": confident_wrong,
        "true": [names[y_test[i]] for i in confident_wrong],
        "predicted": [names[probs_test[i].argmax()] for i in confident_wrong],
        "confidence": [probs_test[i].max() for i in confident_wrong],
    }
)
display(escape.table(confident_table.head(10), {"confidence": "{:.1%}"}))

# %% [markdown]
# ## Calibration and temperature scaling
#
# A model is calibrated when, among the images it predicts with confidence p, a share p is
# right. The expected calibration error (ECE) averages the gap between accuracy and
# confidence over 15 equal-width confidence bins, weighted by the images in each bin.
# Temperature scaling divides the logits by one number T, fitted to minimise the negative
# log-likelihood on the **validation** split (never the test split); it leaves every
# prediction, and so the accuracy, unchanged. T above 1 means the model was overconfident.

# %%
ece_before = evaluation.expected_calibration_error(probs_test, y_test, n_bins=15)
nll_before = evaluation.nll(logits_test, y_test)
if len(ds.x_val):
    logits_val = predict_logits(model, ds.x_val)
    temperature = evaluation.fit_temperature(logits_val, ds.y_val)
else:
    temperature = None
    display(Markdown("There is no validation split (VAL_FRACTION is 0), so no temperature is fitted."))
T = temperature or 1.0
probs_cal = softmax(logits_test, T)
ece_after = evaluation.expected_calibration_error(probs_cal, y_test, n_bins=15)
nll_after = evaluation.nll(logits_test, y_test, T)
curves = {"before scaling (T = 1)": (evaluation.reliability_bins(probs_test, y_test, 15), ece_before)}
if temperature is not None:
    curves[f"after scaling (T = {T:.2f})"] = (evaluation.reliability_bins(probs_cal, y_test, 15), ece_after)
plots.reliability_diagrams(curves, title=f"Reliability on {m['n']} test images ({model_name}, {epochs_text})")
plt.show()
display(
    pd.DataFrame(
        {"ECE (15 bins)": [ece_before, ece_after], "NLL": [nll_before, nll_after]},
        index=["before", f"after (T = {T:.3f})"],
    ).round(4)
)
if temperature is not None:
    display(
        Markdown(
            f"The fitted temperature is **T = {T:.2f}**: before scaling the model was "
            f"{'over' if T > 1 else 'under'}confident on the validation split. On the {m['n']} test images the ECE goes "
            f"from {ece_before:.3f} to {ece_after:.3f} ({escape.md(model_name)}, {epochs_text})."
        )
    )

# %% [markdown]
# ## Decisions: ROC and precision-recall curves, and an operating point
#
# A decision flags an image when the probability of one class, the *positive* class, reaches a
# threshold. The ROC curve follows the sensitivity (share of positives flagged) against
# 1 - specificity (share of negatives flagged) as the threshold falls; its area (ROC AUC) is the
# chance that a random positive image scores above a random negative one (0.5 is guessing). The
# precision-recall curve follows the precision (PPV: share of flags that are right) against the
# recall (sensitivity); its average precision (AP) matters most when positives are rare. With more
# than two classes each class is scored against the rest (one-vs-rest) and the macro average is
# the mean over classes. The 95% intervals of AUC and AP are percentile bootstraps over test
# images (`N_BOOT` resamples, `SEED`), as for the accuracy. All curves use the model's own
# probabilities (temperature scaling would not move a two-class curve).
#
# The operating point is the threshold that the rule `OPERATING_POINT` picks on the **validation**
# split: `youden` maximizes sensitivity + specificity - 1; `sensitivity>=0.95` keeps the thresholds
# with at least that sensitivity and takes the most specific (likewise `specificity>=X` then the
# most sensitive, `ppv>=X` the most sensitive, `npv>=X` the most specific). The test split only
# scores it: sensitivity, specificity, PPV and NPV (at the test split's prevalence) and accuracy,
# each with a 95% Wilson score interval, and the 2x2 confusion matrix. With `PREVALENCE` above 0,
# PPV and NPV are also given at that prevalence by Bayes' rule, with a bootstrap interval. The
# positive class is `POSITIVE_CLASS`; when it is empty, the second class with two classes, and with
# more classes every class in turn against the rest, each with its own threshold.

# %%
probs_val = softmax(logits_val) if len(ds.x_val) else None
roc = decisions.curve_summary(y_test, probs_test, names, n_boot=N_BOOT, seed=SEED)
op = decisions.operating_points(
    ds.y_val,
    probs_val,
    y_test,
    probs_test,
    names,
    rule,
    positive_class=POSITIVE_CLASS,
    prevalence=PREVALENCE,
    n_boot=N_BOOT,
    seed=SEED,
)
auc = roc["json"]
positive_idx = [names.index(c) for c in op["per_class"]]
shown = positive_idx if op["mode"] == "positive class" and len(names) == 2 else None
roc_points, pr_points = decisions.figure_points(op, names)
about = f"{m['n']} test images, {model_name}, {epochs_text}"
plots.roc_curves(
    roc["curves"],
    names,
    show=shown,
    macro=None if shown else roc["macro_curve"],
    points=roc_points,
    title=(f"ROC curve of {names[positive_idx[0]]}" if shown else "ROC curves, each class against the rest")
    + f" ({about})",
)
plt.show()
plots.pr_curves(
    roc["curves"],
    names,
    show=shown,
    points=pr_points,
    title=(f"Precision-recall curve of {names[positive_idx[0]]}" if shown else "Precision-recall curves, one-vs-rest")
    + f" ({about})",
)
plt.show()
display(escape.table(decisions.auc_table(auc), {"ROC AUC": "{:.3f}", "average precision": "{:.3f}"}))
if shown:
    pos_name = names[positive_idx[0]]
    auc_sentence = (
        f"ROC AUC of {escape.md(pos_name)} against {escape.md(names[1 - positive_idx[0]])}: "
        + decisions.value_ci(auc["roc_auc"][pos_name], auc["roc_auc_ci"][pos_name])
        + ", average precision "
        + decisions.value_ci(auc["average_precision"][pos_name], auc["average_precision_ci"][pos_name])
    )
else:
    auc_sentence = (
        f"Macro-average ROC AUC over {len(names)} classes, each against the rest: "
        + decisions.value_ci(auc["roc_auc_macro"], auc["roc_auc_macro_ci"])
        + ", macro average precision "
        + decisions.value_ci(auc["average_precision_macro"], auc["average_precision_macro_ci"])
    )
    if op["mode"] == "positive class":
        pos_name = op["positive_class"]
        auc_sentence += f"; {escape.md(pos_name)} against the rest: " + decisions.value_ci(
            auc["roc_auc"][pos_name], auc["roc_auc_ci"][pos_name]
        )
display(
    Markdown(
        auc_sentence + f", on {m['n']} test images ({N_BOOT} bootstrap resamples, "
        f"{auc['n_boot_valid']} of them with every class present)."
    )
)

# %%
display(
    Markdown(
        f"**Operating point:** {escape.md(op['rule_description'])} (`OPERATING_POINT` = {escape.code(op['rule'])}), "
        + (
            f"for the positive class **{escape.md(op['positive_class'])}**"
            if op["mode"] == "positive class"
            else f"for each of the {len(names)} classes against the rest"
        )
        + (
            f", chosen on {op['n_val']} validation images and scored on {m['n']} test images"
            if op["n_val"]
            else f", scored on {m['n']} test images with the default decision"
        )
        + ". Intervals: "
        + escape.md(op["interval_method"])
        + "."
        + "".join(f"  \n**Note:** {escape.md(note)}" for note in op["notes"])
    )
)
display(escape.table(decisions.operating_table(op)))
for name, entry in op["per_class"].items():
    if len(op["per_class"]) > 4:
        break  # one-vs-rest with many classes: the table above says it all
    negative = names[1 - names.index(name)] if len(names) == 2 else f"not {name}"
    display(Markdown(f"Test confusion matrix at {escape.md(entry['decision'])}:"))
    display(escape.table(decisions.confusion_2x2(entry, name, negative)))
    at = entry["test"].get("at_prevalence")
    if at:
        display(
            Markdown(
                f"At a prevalence of **{at['prevalence']:.2%}** of {escape.md(name)} (`PREVALENCE`; the test split "
                f"has {entry['test']['prevalence']:.2%}): PPV {decisions.value_ci(at['ppv'], at['ppv_ci'], percent=True)}, "
                f"NPV {decisions.value_ci(at['npv'], at['npv_ci'], percent=True)}, by Bayes' rule from the test "
                f"sensitivity and specificity ({escape.md(at['interval_method'])})."
            )
        )

# %% [markdown]
# ## Test-time augmentation
#
# With `TTA` on, each test image is also classified mirrored left to right, and the two
# softmax outputs are averaged. The gain is the change in test accuracy; the paired
# bootstrap interval and McNemar's test compare the two predictions on the same images.

# %%
if TTA:
    probs_tta = predict_probs(model, x_test, tta=True, base_probs=probs_test)
    pred_plain, pred_tta = probs_test.argmax(1), probs_tta.argmax(1)
    tta_acc = float(np.mean(pred_tta == y_test))
    tta_gain = tta_acc - m["accuracy"]
    tta_diff = stats.paired_difference_ci(y_test, pred_tta, pred_plain, n_boot=N_BOOT, seed=SEED)
    tta_test = stats.mcnemar(y_test, pred_tta, pred_plain)
    display(
        Markdown(
            f"Flip TTA: test accuracy **{tta_acc:.2%}** against {m['accuracy']:.2%} without "
            f"(McNemar {stats.format_p(tta_test['p_value'])}, {tta_test['b']} images fixed, {tta_test['c']} broken, "
            f"on {m['n']} test images after {epochs_text}). "
            + verdicts.gain(tta_gain, (tta_diff["ci_low"], tta_diff["ci_high"]), "Flip TTA")
        )
    )
else:
    tta_acc = tta_gain = tta_diff = tta_test = None
    display(Markdown("Test-time augmentation is off (TTA = False)."))

# %% [markdown]
# ## Robustness to corruptions: the CIFAR-10-C protocol
#
# The model's accuracy on test images under the 15 corruptions of CIFAR-10-C (Hendrycks &
# Dietterich 2019) at their 5 severities: noise (Gaussian, shot, impulse), blur (defocus, glass,
# motion, zoom), weather (snow, frost, fog) and digital (brightness, contrast, elastic, pixelate,
# JPEG). The corruptions follow the paper's published definitions and CIFAR-10 parameters
# (`cifarkit.analysis.corruptions`), generated here from this run's test images with seeded
# noise, so the headline, the mean accuracy over all 75 cells, is comparable with published
# CIFAR-10-C results (which use the paper's released files, with other random draws). The first
# two figures show one test image under every corruption and severity (noise and blur, then
# weather and digital).

# %%
example = x_test[:1]
for groups in (("noise", "blur"), ("weather", "digital")):
    plots.corruption_examples(
        example[0],
        {
            name: [corruptions.corrupt_c(example, name, s, seed=SEED)[0] for s in corruptions.SEVERITIES]
            for group in groups
            for name in corruptions.GROUPS[group]
        },
        title=f"One test image under each corruption: {' and '.join(groups)}",
    )
    plt.show()
robust = corruptions.cifar10c_table(
    lambda images: predict_logits(model, images).argmax(1), x_test, y_test, samples=CORRUPTION_SAMPLES, seed=SEED
)
clean_acc, n_robust, mean_corrupted = robust.attrs["clean_acc"], robust.attrs["n"], robust.attrs["mean"]
by_severity = robust.attrs["mean_by_severity"]
subset_note = (
    "all test images"
    if n_robust == len(x_test)
    else f"a random subsample of {n_robust} of the {len(x_test)} test images (CORRUPTION_SAMPLES)"
)
display(
    Markdown(
        f"Evaluated on {subset_note}; clean accuracy on the same images: **{clean_acc:.2%}** "
        f"({escape.md(model_name)}, {epochs_text})."
    )
)
display(
    escape.table(
        robust.assign(group=[corruptions.group_of(n) for n in robust.index]).set_index("group", append=True),
        {s: "{:.1%}" for s in robust.columns},
    )
)
plots.robustness_curves(
    robust,
    clean_acc,
    title=f"CIFAR-10-C accuracy by severity ({n_robust} test images)",
    references={v["label"]: v["mean_corruption_acc"] / 100 for v in corruptions.REFERENCE_POINTS.values()},
)
plt.show()
at_chance = corruptions.cells_at_chance(robust, ds.num_classes)
display(Markdown(corruptions.cifar10c_summary(robust, ds.num_classes)))

# %% [markdown]
# ## Saliency
#
# Grad-CAM weighs the feature maps of the last convolutional layer by the gradient of the
# predicted class's logit and keeps the positive part: warm regions are those that raised
# that logit. The top row shows correctly classified test images, then the most confident
# mistakes, each explained for the class the model predicted. Where Grad-CAM cannot run,
# occlusion sensitivity is used instead and the figure title says so.

# %%
right = evaluation.correctly_classified(y_test, probs_test, SALIENCY_EXAMPLES, seed=SEED)
wrong = evaluation.misclassified(y_test, probs_test, SALIENCY_EXAMPLES, most_confident=True)
explain = np.concatenate([right, wrong]).astype(int)
maps, saliency_method = saliency.saliency(model, x_test[explain])
captions = [
    f"{'right' if probs_test[i].argmax() == y_test[i] else 'wrong'}: {names[probs_test[i].argmax()]}"
    f"\ntrue {names[y_test[i]]}"
    for i in explain
]
plots.saliency_grid(
    x_test[explain],
    maps,
    captions,
    saliency_method,
    title=f"{saliency_method}: {len(right)} correct and {len(wrong)} incorrect test images",
)
plt.show()

# %% [markdown]
# Every number above is recorded in `metrics/04_evaluate.json` in the run folder, the test
# predictions in `predictions/04_evaluate_test.npz` (what `python -m cifarkit compare` reads) and
# the validation predictions the operating point was chosen on in `predictions/04_evaluate_val.npz`. The
# other models of this run are compared in the architectures report (06), which runs after this one.

# %%
run_folder.save_predictions(run_dir, "04_evaluate", x=x_test, y_true=y_test, probs=probs_test, class_names=names)
if probs_val is not None:  # what the operating point was chosen on
    run_folder.save_predictions(
        run_dir, "04_evaluate", x=ds.x_val, y_true=ds.y_val, probs=probs_val, class_names=names, split="val"
    )
eval_seconds = time.perf_counter() - t_start
path = run_folder.record_metrics(
    run_dir,
    "04_evaluate",
    {
        "model": model_name,
        "model_path": str(model_path),
        "epochs_run": epochs_run,
        "data": ds.to_dict(),
        "data_mismatch": mismatch,
        "n_test": m["n"],
        "test_acc": m["accuracy"],
        "test_acc_ci": m["accuracy_ci"],
        "ci_level": m["ci_level"],
        "n_boot": N_BOOT,
        "top_k": {str(k): v for k, v in m["top_k"].items()},
        "balanced_acc": m["balanced_accuracy"],
        "macro_f1": m["macro"]["f1"],
        "weighted_f1": m["weighted"]["f1"],
        "macro": m["macro"],
        "weighted": m["weighted"],
        "per_class": m["per_class"],
        "confusion_matrix": m["confusion_matrix"],
        "most_confused": m["most_confused"],
        "n_misclassified": n_wrong,
        "most_confident_mistakes": confident_table.to_dict(orient="records"),
        "ece_bins": 15,
        "ece_before": ece_before,
        "ece_after": ece_after,
        "nll_before": nll_before,
        "nll_after": nll_after,
        "temperature": temperature,
        "tta": bool(TTA),
        "tta_acc": tta_acc,
        "tta_gain": tta_gain,
        "tta_gain_ci": [tta_diff["ci_low"], tta_diff["ci_high"]] if tta_diff else None,
        "tta_mcnemar_p": tta_test["p_value"] if tta_test else None,
        "robustness": {name: {str(s): float(a) for s, a in row.items()} for name, row in robust.iterrows()},
        "robustness_protocol": "CIFAR-10-C (Hendrycks & Dietterich 2019): 15 corruptions x 5 severities",
        "robustness_clean_acc": clean_acc,
        "robustness_n": n_robust,
        "robustness_mean_acc": mean_corrupted,
        "robustness_by_severity": {str(s): float(a) for s, a in by_severity.items()},
        "robustness_by_group": {g: float(a) for g, a in robust.attrs["by_group"].items()},
        "robustness_reference_points": corruptions.REFERENCE_POINTS,
        "corruption_parameters": corruptions.PARAMETERS,
        "roc_auc": auc["roc_auc"],
        "roc_auc_ci": auc["roc_auc_ci"],
        "roc_auc_macro": auc["roc_auc_macro"],
        "roc_auc_macro_ci": auc["roc_auc_macro_ci"],
        "average_precision": auc["average_precision"],
        "average_precision_ci": auc["average_precision_ci"],
        "average_precision_macro": auc["average_precision_macro"],
        "average_precision_macro_ci": auc["average_precision_macro_ci"],
        "roc_n_pos": auc["n_pos"],
        "roc_n_boot_valid": auc["n_boot_valid"],
        "roc_interval_method": auc["interval_method"],
        "operating_point": op,
        "saliency_method": saliency_method,
        "saliency_indices": explain,
        "corruptions_at_chance": at_chance,
        "eval_seconds": eval_seconds,
    },
)
