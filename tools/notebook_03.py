"""Source of notebooks/03_tune.ipynb (run: python tools/notebook_03.py)."""
import sys, os
sys.path.insert(0, os.path.dirname(__file__))
from nbwrite import write

cells = [
("md", """
# 03 · Hyperparameter tuning

This notebook searches the training settings of one model with [Optuna](https://optuna.org):
each trial trains the model for a few epochs with settings proposed by a TPE sampler and is
scored by its **validation accuracy** after its last epoch. Validation images come out of the
training split; the test split is withheld from every trial and never read here, so the test
accuracy that the training notebook reports stays an unbiased estimate.

Poor trials are stopped early (pruned) when their validation accuracy after an epoch falls
behind the other trials at the same epoch. The study lives in a database (an SQLite file in
the run folder unless `STORAGE` names another), so re-running this notebook resumes it, and
several machines can add trials to one study with `python -m cifarkit tune --storage URL`.
The best settings go to `tune/best_params.json`, which `02_train` applies (its `TUNED_PARAMS`).
"""),
("code", """
import pandas as pd
import matplotlib.pyplot as plt
from IPython.display import display, Markdown

from cifarkit import reporting
from cifarkit import tune as tuning
from cifarkit.study import load_study_data
"""),
("params", """
COMMON
SEED: int = 0             # seed for splits, every trial training and the sampler
MODEL: str = "fastnet"    # a registered model name, see cifarkit.models.list_models()
RECIPE: str = "fast"      # the recipe every trial starts from
SPACE: str = "default"    # search space name, see cifarkit.tune.list_spaces()
N_TRIALS: int = 20        # finished trials the study should hold; a resumed study runs only the missing ones
TIMEOUT: int = 0          # stop starting new trials after this many seconds; 0 means no limit
STORAGE: str = ""         # Optuna storage URL such as postgresql://user@host:5432/db; empty uses tune/optuna.db in the run
STUDY_NAME: str = ""      # empty names the study after model, recipe, space and epochs
EPOCHS: int = 3           # training epochs of every trial
PRUNER: str = "median"    # median, halving, hyperband or none
BASELINE_FIRST: bool = True  # first trial uses the recipe own settings, as a baseline
DEVICE: str = "auto"      # auto, cpu or gpu
"""),
("code", """
run_dir = reporting.resolve_run_dir(RUN_DIR)
tune_dir = run_dir / tuning.TUNE_DIR_NAME
ds = load_study_data(DATA, image_size=IMAGE_SIZE, subset=DATA_SUBSET, val_fraction=VAL_FRACTION,
                     seed=SEED, class_names=CLASS_NAMES)
base = tuning.check_arguments(model=MODEL, recipe=RECIPE, space=SPACE, epochs=EPOCHS, n_trials=N_TRIALS,
                              count="total", pruner=PRUNER, seed=SEED, device=DEVICE)
n_train, n_val = len(ds.y_train), len(ds.y_val)
baseline = tuning.recipe_params(SPACE, base, n_train=n_train, image_size=IMAGE_SIZE) if BASELINE_FIRST else {}
display(Markdown(
    f"**Data:** `{ds.source}` ({ds.source_kind}); trials train on {n_train} images and are scored on "
    f"{n_val} validation images of {ds.num_classes} classes at {ds.image_size[0]}x{ds.image_size[1]}"
    + (f" (subset of {DATA_SUBSET} images per class and split)" if DATA_SUBSET else "") + "  \\n"
    f"**Model:** `{base.model}`, **recipe:** `{RECIPE}`, **{EPOCHS} epoch(s) per trial**, "
    f"**search space:** `{SPACE}` ({tuning.get_space(SPACE).description}), **pruner:** `{PRUNER}`, "
    f"**trials:** {N_TRIALS}" + (f", **timeout:** {TIMEOUT} s" if TIMEOUT else "")
))
display(pd.DataFrame(tuning.describe_space(SPACE, base, n_train=n_train, image_size=IMAGE_SIZE)).set_index("parameter"))
"""),
("md", """
## The search

The table above is the search space for this model: `lr` and `weight_decay` range around the
recipe's own values on a log scale, and a model option the model does not accept is left out.
With `BASELINE_FIRST` the first trial uses the recipe's own settings, so the study shows what
tuning adds over them. One line per trial follows: its number, how it ended (complete, pruned
after an epoch, or failed with the reason), the epochs it ran, its wall time and its settings.
A study already in the database is resumed: only the trials still missing up to `N_TRIALS` run.
"""),
("code", """
result = tuning.tune(
    ds, out_dir=tune_dir, model=base.model, recipe=RECIPE, space=SPACE, epochs=EPOCHS,
    n_trials=N_TRIALS, count="total", timeout=TIMEOUT or None, storage=STORAGE or None,
    study_name=STUDY_NAME or None, pruner=PRUNER, seed=SEED, device=DEVICE,
    enqueue=[baseline] if baseline else None,
)
study = result.study
counts, budget = result.counts, result.budget
"""),
("md", """
## Trials

Every trial of the study, including those from earlier runs or other workers: its final
state, the validation accuracy after its last epoch (for a pruned trial, after the epoch at
which it stopped), the epochs it ran and its settings. A failed trial keeps its reason.
"""),
("code", """
table = tuning.trials_table(study)
display(table.round(4))
saved = "n/a" if budget["saved_fraction"] is None else f"{budget['saved_fraction']:.0%}"
display(Markdown(
    f"**{counts['total']} trials** in study `{result.study_name}` ({result.storage}): "
    f"{counts['complete']} complete, {counts['pruned']} pruned, {counts['failed']} failed"
    + (f", {counts['running']} still running elsewhere" if counts["running"] else "") + ". "
    f"This run added {result.new_trials} in {result.seconds:.0f} s.  \\n"
    f"**Epochs:** the trials ran {budget['epochs_run']} of the {budget['epochs_without_pruning']} epochs "
    f"they would have run without pruning ({EPOCHS} per trial): pruning saved {saved}."
))
"""),
("md", """
## Optimization history

Validation accuracy of every complete trial in the order the trials ran, with the best so
far as a line. A best-so-far line that still climbs at the right end says that more trials
would likely help; a flat one says the search has settled for this budget.
"""),
("code", """
fig, reason = tuning.plot_study(study, "history")
plt.show() if fig else print(f"Not drawn: {reason}.")
"""),
("md", """
## Validation accuracy per epoch

One line per trial: validation accuracy after each of its epochs. Lines that end before the
last epoch are pruned trials; they stopped because they were behind the other trials at the
same epoch.
"""),
("code", """
fig, reason = tuning.plot_study(study, "intermediate")
plt.show() if fig else print(f"Not drawn: {reason}.")
"""),
("md", """
## Parameter importances

How much of the variation in validation accuracy across complete trials each parameter
explains (Optuna's default importance evaluator). With few trials these numbers are rough;
they need at least two complete trials with different settings.
"""),
("code", """
fig, reason = tuning.plot_study(study, "importances")
plt.show() if fig else print(f"Not drawn: {reason}.")
importances = tuning.importances(study)
"""),
("md", """
## Parallel coordinates and slices

Each complete trial as a line across the parameters, coloured by its validation accuracy,
then validation accuracy against each parameter on its own. Good regions show up as bands
of bright lines, or as clusters of high points in a slice.
"""),
("code", """
fig, reason = tuning.plot_study(study, "parallel")
plt.show() if fig else print(f"Not drawn: {reason}.")
fig, reason = tuning.plot_study(study, "slice")
plt.show() if fig else print(f"Not drawn: {reason}.")
"""),
("md", """
## Best trial

The best complete trial and its settings, beside the recipe's own settings (the baseline
trial) when the study has it. Both accuracies are validation accuracies after the same
number of epochs on the same images; neither is a test accuracy.
"""),
("code", """
best = result.best
base_trial = tuning.matching_trial(study, baseline)  # the recipe's own settings, if that trial completed
if best is None:
    display(Markdown("No trial has completed yet, so there are no best parameters. Run more trials or check the failures above."))
else:
    display(Markdown(
        f"**Best trial {best['trial_number']}:** validation accuracy **{best['value']:.2%}** after "
        f"{EPOCHS} epoch(s) of `{best['model']}` on {n_train} training images, scored on {n_val} validation images"
        + (f"; the recipe's own settings (trial {base_trial.number}) reach **{base_trial.value:.2%}**" if base_trial else "")
        + (f" (the recipe's {', '.join(sorted(set(best['params']) - set(baseline)))} lie outside the searched range, "
           "so the sampler chose them in that trial)" if base_trial and set(best["params"]) - set(baseline) else "")
        + f".  \\nSaved to `{result.best_params_path}`, which `02_train` applies when its `TUNED_PARAMS` is `auto`."
    ))
    rows = [{"parameter": k, "best": v, "recipe": baseline.get(k, "")} for k, v in best["params"].items()]
    display(pd.DataFrame(rows).set_index("parameter"))
"""),
("md", """
## Recorded results

The key numbers go to `metrics/03_tune.json`: the study, where it is stored, the trial
counts, the epochs run against the epochs without pruning, and the best value and settings.
"""),
("code", """
path = reporting.record_metrics(run_dir, "03_tune", {
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
    "importances": importances,
    "skipped_params": result.skipped_params,
    "best_params_path": str(result.best_params_path) if result.best_params_path else None,
    "data": ds.to_dict(),
    "trials": table.to_dict(orient="records"),
})
print(f"metrics written to {path}")
"""),
]

write(os.path.join(os.path.dirname(__file__), "..", "notebooks", "03_tune.ipynb"), cells)
