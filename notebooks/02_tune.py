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
# # 02 · Hyperparameter tuning
#
# This notebook searches the training settings of one model with [Optuna](https://optuna.org):
# each trial trains the model for a few epochs with settings proposed by a TPE sampler and is
# scored by its **validation accuracy** after its last epoch. Validation images come out of the
# training split; the test split is withheld from every trial and never read here, so the test
# accuracy that the training notebook reports stays an unbiased estimate.
#
# Poor trials are stopped early (pruned) when their validation accuracy after an epoch falls
# behind the other trials at the same epoch. The study lives in a database (an SQLite file in
# the run folder unless `STORAGE` names another), so re-running this notebook resumes it, and
# several machines can add trials to one study with `python -m cifarkit tune --storage URL`.
# The best settings go to `tune/best_params.json`, which `03_train` applies (its `TUNED_PARAMS`).

# %%
import pandas as pd
from IPython.display import Markdown, display

from cifarkit import escape, run_folder, secrets
from cifarkit.analysis import plots, tuning  # plots: the study's figure style, tables with whole cells
from cifarkit.data import load_study_data
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
SEED: int = 0  # [0, 2147483647] seed for splits, every trial training and the sampler
MODEL: str = "fastnet"  # a registered model name, see cifarkit.models.list_models()
RECIPE: str = "fast"  # the recipe every trial starts from
SPACE: str = "default"  # search space name, see cifarkit.analysis.tuning.list_spaces()
N_TRIALS: int = 20  # [0, 100000] finished trials the study should hold; a resumed study runs only the missing ones
TIMEOUT: int = 0  # [0, ] stop starting new trials after this many seconds; 0 means no limit
STORAGE: str = ""  # Optuna storage URL (postgresql://user@host/db); empty: $CIFARKIT_STORAGE, else tune/optuna.db
STUDY_NAME: str = ""  # empty names the study after model, recipe, space and epochs
EPOCHS: int = 3  # [1, 10000] training epochs of every trial
PRUNER: str = "median"  # {median, halving, hyperband, none} how to stop poor trials early
BASELINE_FIRST: bool = True  # first trial uses the recipe own settings, as a baseline
DEVICE: str = "auto"  # {auto, cpu, gpu} where to train

# %%
run_dir = run_folder.resolve_run_dir(RUN_DIR)
run_folder.capture_warnings(run_dir, "02_tune")  # warnings go to the run's log, not the report
tune_dir = run_dir / run_folder.TUNE_DIR
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
base = tuning.check_arguments(
    model=MODEL,
    recipe=RECIPE,
    space=SPACE,
    epochs=EPOCHS,
    n_trials=N_TRIALS,
    count="total",
    pruner=PRUNER,
    seed=SEED,
    device=DEVICE,
)
n_train, n_val = len(ds.y_train), len(ds.y_val)
baseline = tuning.recipe_params(SPACE, base, n_train=n_train, image_size=IMAGE_SIZE) if BASELINE_FIRST else {}
display(
    Markdown(
        f"**Data:** {escape.code(ds.source)} ({ds.source_kind}); trials train on {n_train:,} images and are scored on "
        f"{n_val:,} validation images of {ds.num_classes} classes at {ds.image_size[0]}x{ds.image_size[1]}"
        + (f" (subset of {DATA_SUBSET} images per class and split)" if DATA_SUBSET else "")
        + "  \n"
        f"**Model:** {escape.code(base.model)}, **recipe:** {escape.code(RECIPE)}, **{plural(EPOCHS, 'epoch')} per trial**, "
        f"**search space:** {escape.code(SPACE)} ({tuning.get_space(SPACE).description}), **pruner:** {escape.code(PRUNER)}, "
        f"**trials:** {N_TRIALS}" + (f", **timeout:** {TIMEOUT} s" if TIMEOUT else "")
    )
)
display(
    escape.table(
        pd.DataFrame(tuning.describe_space(SPACE, base, n_train=n_train, image_size=IMAGE_SIZE)).set_index("parameter"),
        plots.short,
    )
)

# %% [markdown]
# ## The search
#
# The table above is the search space for this model: `lr` and `weight_decay` range around the
# recipe's own values on a log scale, and a model option the model does not accept is left out.
# With `BASELINE_FIRST` the first trial uses the recipe's own settings, so the study shows what
# tuning adds over them. One line per trial follows: its number, how it ended (complete, pruned
# after an epoch, or failed with the reason), the epochs it ran, its wall time and its settings.
# A study already in the database is resumed: only the trials still missing up to `N_TRIALS` run.

# %%
result = tuning.tune(
    ds,
    out_dir=tune_dir,
    model=base.model,
    recipe=RECIPE,
    space=SPACE,
    epochs=EPOCHS,
    n_trials=N_TRIALS,
    count="total",
    timeout=TIMEOUT or None,
    storage=secrets.reveal("STORAGE", STORAGE) or None,
    study_name=STUDY_NAME or None,
    pruner=PRUNER,
    seed=SEED,
    device=DEVICE,
    enqueue=[baseline] if baseline else None,
)
study = result.study
counts, budget = result.counts, result.budget

# %% [markdown]
# ## Trials
#
# Every trial of the study, including those from earlier runs or other workers: its final
# state, the validation accuracy after its last epoch (for a pruned trial, after the epoch at
# which it stopped), the epochs it ran and its settings. A failed trial keeps its reason.

# %%
table = tuning.trials_table(study)
display(plots.readable(table.set_index("trial")))
display(
    Markdown(
        f"**{plural(counts['total'], 'trial')}** in study {escape.code(result.study_name)} ({escape.code(result.storage)}): "
        f"{counts['complete']} complete, {counts['pruned']} pruned, {counts['failed']} failed"
        + (f", {counts['running']} still running elsewhere" if counts["running"] else "")
        + ". "
        f"This run added {result.new_trials} in {result.seconds:.0f} s.  \n"
        f"**Epochs:** {EPOCHS} per trial planned; {tuning.budget_summary(budget)}."
    )
)

# %% [markdown]
# ## Optimization history
#
# Validation accuracy of every complete trial in the order the trials ran, with the best so
# far as a line. A best-so-far line that still climbs at the right end says that more trials
# would likely help; a flat one says the search has settled for this budget.

# %%
tuning.show(study, "history")

# %% [markdown]
# ## Validation accuracy per epoch
#
# One line per trial: validation accuracy after each of its epochs. Lines that end before the
# last epoch are pruned trials; they stopped because they were behind the other trials at the
# same epoch.

# %%
tuning.show(study, "intermediate")

# %% [markdown]
# ## Parameter importances
#
# How much of the variation in validation accuracy across complete trials each parameter
# explains (Optuna's default importance evaluator). With few trials these numbers are rough;
# they need at least two complete trials with different settings.

# %%
tuning.show(study, "importances")
importances = tuning.importances(study)

# %% [markdown]
# ## Parallel coordinates and slices
#
# Each complete trial as a line across the parameters, coloured by its validation accuracy,
# then validation accuracy against each parameter on its own. Good regions show up as bands
# of bright lines, or as clusters of high points in a slice.

# %%
tuning.show(study, "parallel")
tuning.show(study, "slice")

# %% [markdown]
# ## Best trial, and whether it beats the recipe beyond noise
#
# The best complete trial and its settings, beside the recipe's own settings (the baseline
# trial). Both accuracies are validation accuracies after the same number of epochs on the
# same images; neither is a test accuracy. A best trial chosen among many is lucky as well as
# good, so its margin over the recipe is judged against the validation noise: a paired
# bootstrap over the validation images gives the margin's 95% interval, and `03_train` applies
# the tuned settings only when that interval lies above zero.

# %%
best = result.best
base_trial = tuning.matching_trial(study, baseline)  # the recipe's own settings, if that trial completed
signal = tuning.tuning_signal(
    best["value"] if best else None,
    base_trial.value if base_trial else None,
    n_val,
    y_val=ds.y_val,
    best_pred=tuning.trial_val_predictions(tune_dir, result.study_name, best["trial_number"]) if best else None,
    baseline_pred=tuning.trial_val_predictions(tune_dir, result.study_name, base_trial.number) if base_trial else None,
    seed=SEED,
)
if best is None:
    display(
        Markdown(
            "No trial has completed yet, so there are no best parameters. Run more trials or check the failures above."
        )
    )
else:
    tuning.record_signal(result.best_params_path, signal)
    display(
        Markdown(
            f"**Best trial {best['trial_number']}:** validation accuracy **{best['value']:.2%}** after "
            f"{plural(EPOCHS, 'epoch')} of {escape.code(best['model'])} on {n_train} training images, scored on {n_val} "
            "validation images"
            + (
                f"; the recipe's own settings (trial {base_trial.number}) reach **{base_trial.value:.2%}**"
                if base_trial
                else ""
            )
            + ".  \n"
            + escape.md(tuning.describe_signal(signal)[0].upper() + tuning.describe_signal(signal)[1:])
            + (
                ": `03_train` applies the tuned settings."
                if signal["reliable"]
                else ": `03_train` keeps the recipe's settings."
            )
        )
    )
    rows = [{"parameter": k, "best": v, "recipe": baseline.get(k, "")} for k, v in best["params"].items()]
    display(escape.table(pd.DataFrame(rows).set_index("parameter"), plots.short))

# %% [markdown]
# The key numbers are recorded in `metrics/02_tune.json`: the study, where it is stored, the
# trial counts, the epochs run against the epochs without pruning, the best value and settings,
# and the margin over the recipe with its interval.

# %%
path = run_folder.record_metrics(
    run_dir,
    "02_tune",
    {
        "study_name": result.study_name,
        "storage": result.storage,
        "model": base.model,
        "recipe": RECIPE,
        "space": SPACE,
        "pruner": PRUNER,
        "epochs_per_trial": EPOCHS,
        "n_trials_requested": N_TRIALS,
        "timeout_s": TIMEOUT or None,
        "new_trials": result.new_trials,
        "tune_seconds": result.seconds,
        "counts": counts,
        "epochs_run": budget["epochs_run"],
        "epochs_without_pruning": budget["epochs_without_pruning"],
        "pruning_saved_fraction": budget["saved_fraction"],
        "best_value": best["value"] if best else None,
        "best_trial": best["trial_number"] if best else None,
        "best_params": best["params"] if best else None,
        "best_settings": best["settings"] if best else None,
        "baseline_value": base_trial.value if base_trial else None,
        "baseline_params": baseline or None,
        "tuning_signal": signal,
        "importances": importances,
        "skipped_params": result.skipped_params,
        "best_params_path": str(result.best_params_path) if result.best_params_path else None,
        "data": ds.to_dict(),
        "trials": table.to_dict(orient="records"),
    },
)
