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
# # 06 · Architectures and ensembles
#
# Which architecture buys the most accuracy for its cost, and do several models together beat
# the best one alone? This notebook trains the architectures this profile lists (or reloads them
# when this run already trained them), puts them beside the model from `03_train`, and compares
# test accuracy with a 95% bootstrap confidence interval against parameters, FLOPs, training time
# and inference speed. It places the measured errors beside the published ones, then combines the
# models by soft, hard and weighted voting. Every choice (the best single model, the vote weights,
# the best ensemble method) is made on the validation split; the test split is only scored.

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from cifarkit import escape, run_folder
from cifarkit.analysis import compare_architectures as architectures
from cifarkit.analysis import plots
from cifarkit.data import load_study_data, require_validation

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
ARCHITECTURES: str = "simple_cnn:default:10,resnet20:default:10"  # model:recipe:epochs[:seed], comma-separated
N_BOOT: int = 2000  # [100, 1000000] bootstrap resamples for confidence intervals

# %%
run_dir = run_folder.resolve_run_dir(RUN_DIR)
run_folder.capture_warnings(run_dir, "06_architectures_and_ensembles")  # warnings go to the run's log, not the report
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
require_validation(ds, "calibrate, weight and choose the ensembles")
# a seed of 03's model that repeats one it was trained with would train the same model again: moved, and said
specs, moved = architectures.separate_seeds(architectures.parse_architectures(ARCHITECTURES), run_dir)
display(
    Markdown(
        f"**Data:** {escape.code(ds.source)}: {len(ds.x_train):,} training, {len(ds.x_val):,} validation and "
        f"{len(ds.x_test):,} test images of {ds.num_classes} classes ({escape.names(ds.class_names)}) at "
        f"{ds.image_size[0]}x{ds.image_size[1]}.  \n"
        f"**Architectures this notebook trains:** {escape.names(s.label for s in specs) or 'none'}; they are "
        "compared with the model from `03_train`."
        + ("  \n**Seeds moved:** " + "; ".join(escape.md(text) for text in moved) + "." if moved else "")
    )
)

# %% [markdown]
# ## Training the architectures
#
# The model from `03_train` is reloaded from this run's folder. Each listed architecture trains
# with its recipe for the stated epochs, checkpointing every epoch into
# `models/06_<model>_<recipe>_<epochs>ep/`; re-running the notebook reloads a finished model
# instead of training it again. An entry that names `03_train`'s model again with a seed of its
# own (the same model and recipe for as many epochs) is a seed of the headline: it trains with the
# settings 03 recorded (02's tuned settings and 03's overrides included), only the seed changed.

# %%
members = [architectures.member_from_training_notebook(ds, run_dir)]
for spec in specs:
    members.append(architectures.train_member(ds, spec, run_dir, seed=SEED, progress=False))
members = architectures.unique_names(members)
display(
    escape.table(
        pd.DataFrame(
            [
                {
                    "model": m.name,
                    "from": m.origin,
                    "epochs": m.epochs,
                    "seed": "-" if m.seed is None else m.seed,
                    "validation accuracy": f"{m.val_acc(ds.y_val):.2%}",
                    "training seconds": "-" if m.train_seconds is None else f"{m.train_seconds:.0f}",
                }
                for m in members
            ]
        ).set_index("model")
    )
)

# %% [markdown]
# ## Seed variation
#
# When the profile trains the training notebook's model again with other seeds, the spread of
# their test accuracies says how much the headline moves from one training run to the next: the
# bootstrap interval of a single run covers only the sampling of test images.

# %%
seeds = architectures.seed_variation(members, ds.y_test)
display(
    Markdown(
        f"{escape.md(seeds['model'])} over {seeds['n']} seeds ({', '.join(map(str, seeds['seeds']))}): test accuracy "
        f"**{seeds['mean']:.2%} ± {100 * seeds['sd']:.2f} points** (mean ± standard deviation; single runs: "
        + ", ".join(f"{a:.2%}" for a in seeds["test_accs"])
        + ")."
        if seeds
        else escape.md(architectures.no_seed_variation_reason(members))
    )
)

# %% [markdown]
# ## Accuracy against cost
#
# Test accuracy with its 95% bootstrap interval, model size, forward-pass FLOPs per image,
# training wall time and inference throughput (images per second on this machine, batch 512).
# Models trained for different numbers of epochs are not a fair race of architectures: the
# epochs column says what each one got, the table under *Training the architectures* where each
# one comes from.

# %%
table = architectures.comparison_table(members, ds.y_val, ds.y_test, n_boot=N_BOOT, seed=SEED)
pareto = architectures.pareto_mask(table["mflops"].fillna(np.inf), table["test_acc"])
table["pareto_optimal"] = pareto
display(
    escape.table(
        table.drop(columns=["origin"]).set_index("model"),  # where each model comes from: the table above
        {
            "val_acc": "{:.2%}",
            "test_acc": "{:.2%}",
            "ci_low": "{:.2%}",
            "ci_high": "{:.2%}",
            "params": "{:,}",
            "mflops": "{:.1f}",
            "train_seconds": "{:.0f}",
            "inference_img_per_s": "{:.0f}",
        },
    )
)

# %% [markdown]
# The Pareto plot marks the models that no other model beats on both cost and accuracy: those
# are the only reasonable choices at their cost.

# %%
plots.accuracy_vs_cost(table, "mflops", pareto, title=f"Test accuracy against FLOPs ({len(ds.x_test)} test images)")
plt.show()
plots.accuracy_vs_cost(
    table,
    "train_seconds",
    architectures.pareto_mask(table["train_seconds"].fillna(np.inf), table["test_acc"]),
    title="Test accuracy against training time on this machine",
)
plt.show()

# %% [markdown]
# ## Are the differences real?
#
# McNemar's test compares two models on the same test images, counting the images only one
# of them gets right. A small p-value says the accuracy difference is not a fluke of this
# test set.

# %%
pvals = architectures.pairwise_mcnemar(members, ds.y_test)
plots.pvalue_heatmap(pvals)
plt.show()

# %% [markdown]
# ## Published results beside this run's
#
# Published CIFAR-10 test errors of the architectures trained here. A row is a
# **replication** only when the model trained with the paper's recipe, for the paper's
# epochs, on all of CIFAR-10; otherwise the published number is there for reference, and the
# list under the table says what differs (the budget of this profile, the recipe, the data) and
# where the published number comes from.

# %%
full_data, data_note = architectures.full_cifar10(ds)
replication = architectures.replication_table(members, ds.y_val, ds.y_test, full_data=full_data)
if len(replication):
    display(
        escape.table(
            replication.drop(columns=["comparison", "reasons", "source"])
            .rename(
                columns={
                    "epochs_run": "epochs here",
                    "measured_error_pct": "test error here (%)",
                    "published_error_pct": "published error (%)",
                    "published_epochs": "published epochs",
                }
            )
            .set_index("model"),
            {"test error here (%)": "{:.2f}", "published error (%)": "{:.2f}"},
        )
    )
    display(
        Markdown(
            "\n".join(
                f"- **{escape.md(r.model)}**: {escape.md(r.comparison)}. Published: {escape.md(r.source)}."
                for r in replication.itertuples()
            )
        )
    )
    n_rep, n_rows = int((replication["comparison"] == "replication").sum()), len(replication)
    if n_rep == n_rows:
        verdict = f"{'The row is a replication' if n_rows == 1 else f'All {n_rows} rows are replications'}."
    elif n_rep == 0:
        verdict = "The published numbers are given for reference only: none of these models had the paper's "
        verdict += "recipe, epochs and data here."
    else:
        verdict = (
            f"{n_rep} of the {n_rows} rows are replications; the others give the published numbers for reference only."
        )
    display(Markdown(escape.md(data_note[0].upper() + data_note[1:]) + ". " + verdict))
else:
    display(Markdown("None of the architectures of this run has a published CIFAR-10 result in the model registry."))

# %% [markdown]
# ## Ensembles
#
# Three ways to combine the models: a **soft vote** averages their class probabilities, a **hard
# vote** takes the majority class, and a **weighted vote** averages the probabilities with
# weights that minimize the validation loss. Everything is chosen on the validation split: the
# members (those within 3 points of the best validation accuracy: a much weaker model pulls a vote
# down), one temperature per member so that their probabilities are calibrated before they vote
# (Guo et al. 2017), the weights, and the method reported. The gain is measured against the member
# with the best validation accuracy, with a paired bootstrap interval on the same test images.

# %%
ens = architectures.evaluate_ensembles(members, ds.y_val, ds.y_test, n_boot=N_BOOT, seed=SEED)
display(escape.table(architectures.ensemble_table(ens)))
plots.ensemble_gains(ens["best_member"], ens["best_member_test_acc"], ens["methods"], chosen=ens["best_method"])
plt.show()
display(Markdown(architectures.ensemble_summary(ens)))

# %% [markdown]
# Every number above is recorded in `metrics/06_architectures_and_ensembles.json`.

# %%
path = run_folder.record_metrics(
    run_dir,
    "06_architectures_and_ensembles",
    {
        "data": ds.to_dict(),
        "models": [
            {
                "name": m.name,
                "arch": m.arch,
                "model_path": m.model_path,
                "origin": m.origin,
                "epochs": m.epochs,
                "recipe": m.recipe,
                "seed": m.seed,
            }
            for m in members
        ],
        "comparison": table.to_dict(orient="records"),
        "mcnemar_pvalues": pvals.to_dict(),
        "replication": replication.to_dict(orient="records"),
        "full_cifar10": full_data,
        "ensembles": ens,
        "ensemble_gain": ens["ensemble_gain"],
        "ensemble_gain_ci": ens["ensemble_gain_ci"],
        "best_single": {"name": ens["best_member"], "test_acc": ens["best_member_test_acc"]},
        "seeds": seeds,
        "n_test": int(len(ds.y_test)),
    },
)
