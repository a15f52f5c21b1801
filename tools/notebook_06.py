"""Source of notebooks/06_architectures_and_ensembles.ipynb (run: python tools/notebook_06.py)."""
import sys, os
sys.path.insert(0, os.path.dirname(__file__))
from nbwrite import write

cells = [
("md", """
# 06 · Architectures and ensembles

Which architecture buys the most accuracy for its cost, and do several models together beat
the best one alone? This notebook trains the architectures this profile lists (or reloads them
when this run already trained them), puts them beside the model from `02_train`, and compares
test accuracy with a 95% bootstrap confidence interval against parameters, FLOPs, training time
and inference speed. It places the measured errors beside the published ones, then combines the
models by soft, hard and weighted voting. Every choice (the best single model, the vote weights,
the best ensemble method) is made on the validation split; the test split is only scored.
"""),
("code", """
import numpy as np
import pandas as pd
import matplotlib.pyplot as plt
from IPython.display import display, Markdown

from cifarkit import architectures, plots, reporting, stats
from cifarkit.study import load_study_data
"""),
("params", """
COMMON
SEED: int = 0             # seed for splits, initialisation and augmentation
ARCHITECTURES: str = "simple_cnn:default:10,resnet20:default:10"  # model:recipe:epochs, comma-separated
N_BOOT: int = 2000        # bootstrap resamples for confidence intervals
"""),
("code", """
run_dir = reporting.resolve_run_dir(RUN_DIR)
ds = load_study_data(DATA, image_size=IMAGE_SIZE, subset=DATA_SUBSET, val_fraction=VAL_FRACTION,
                     seed=SEED, class_names=CLASS_NAMES)
specs = architectures.parse_architectures(ARCHITECTURES)
display(Markdown(
    f"**Data:** `{ds.source}`: {len(ds.x_train)} training, {len(ds.x_val)} validation and {len(ds.x_test)} test "
    f"images of {ds.num_classes} classes ({', '.join(ds.class_names)}) at {ds.image_size[0]}x{ds.image_size[1]}.  \\n"
    f"**Architectures to train here:** {', '.join(s.label for s in specs) or 'none'}, plus the model from `02_train`."
))
"""),
("md", """
## Training the architectures

The model from `02_train` is reloaded from this run's folder. Each listed architecture trains
with its recipe for the stated epochs, checkpointing every epoch into
`models/06_<model>_<recipe>_<epochs>ep/`; re-running the notebook reloads a finished model
instead of training it again.
"""),
("code", """
members = [architectures.member_from_02(ds, run_dir)]
for spec in specs:
    print(f"training {spec.label} ...", flush=True)
    members.append(architectures.train_member(ds, spec, run_dir, seed=SEED, progress=False))
    m = members[-1]
    print(f"  {m.name}: validation {m.val_acc(ds.y_val):.2%} after {m.epochs} epochs, {m.train_seconds or 0:.0f} s")
members = architectures.unique_names(members)
"""),
("md", """
## Accuracy against cost

Test accuracy with its 95% bootstrap interval, model size, forward-pass FLOPs per image,
training wall time and inference throughput (images per second on this machine, batch 512).
Models trained for different numbers of epochs are not a fair race of architectures: the
epochs column says what each one got.
"""),
("code", """
table = architectures.comparison_table(members, ds.y_val, ds.y_test, n_boot=N_BOOT, seed=SEED)
pareto = architectures.pareto_mask(table["mflops"].fillna(np.inf), table["test_acc"])
table["pareto_optimal"] = pareto
display(table.style.format({"val_acc": "{:.2%}", "test_acc": "{:.2%}", "ci_low": "{:.2%}", "ci_high": "{:.2%}",
                            "params": "{:,}", "mflops": "{:.1f}", "train_seconds": "{:.0f}",
                            "inference_img_per_s": "{:.0f}"}, na_rep="-"))
"""),
("md", """
The Pareto plot marks the models that no other model beats on both cost and accuracy: those
are the only reasonable choices at their cost.
"""),
("code", """
plots.accuracy_vs_cost(table, "mflops", pareto, title=f"Test accuracy against FLOPs ({len(ds.x_test)} test images)")
plt.show()
plots.accuracy_vs_cost(table, "train_seconds", architectures.pareto_mask(table["train_seconds"].fillna(np.inf), table["test_acc"]),
                       title="Test accuracy against training time on this machine")
plt.show()
"""),
("md", """
## Are the differences real?

McNemar's test compares two models on the same test images, counting the images only one
of them gets right. A small p-value says the accuracy difference is not a fluke of this
test set.
"""),
("code", """
pvals = architectures.pairwise_mcnemar(members, ds.y_test)
plots.pvalue_heatmap(pvals)
plt.show()
"""),
("md", """
## Replication against the papers

Published CIFAR-10 test errors (standard augmentation) beside this run's, with the epochs the
papers trained and the epochs run here. A model trained for a fraction of the paper's epochs
is not expected to reach the paper's error; the table says so instead of hiding it.
"""),
("code", """
replication = architectures.replication_table(members, ds.y_val, ds.y_test)
display(replication)
if ds.num_classes != 10 or "cifar" not in ds.source_kind.lower():
    display(Markdown("*The published numbers are for CIFAR-10; this run's data is `" + ds.source + "`, so the columns do not compare.*"))
"""),
("md", """
## Ensembles

Three ways to combine the models: a **soft vote** averages their class probabilities, a **hard
vote** takes the majority class, and a **weighted vote** averages the probabilities with
weights that minimize the validation loss. The gain is measured against the single model with
the best validation accuracy, with a paired bootstrap interval on the same test images.
"""),
("code", """
ens = architectures.evaluate_ensembles(members, ds.y_val, ds.y_test, n_boot=N_BOOT, seed=SEED)
rows = [{"method": k, "val_acc": v["val_acc"], "test_acc": v["test_acc"], "ci_low": v["test_acc_ci"][0],
         "ci_high": v["test_acc_ci"][1], "gain_vs_best": v["gain"], "gain_ci_low": v["gain_ci"][0],
         "gain_ci_high": v["gain_ci"][1], "mcnemar_p": v["mcnemar_vs_best"]["p_value"],
         "weights": ", ".join(f"{w:.2f}" for w in v["weights"]) if v["weights"] else ""}
        for k, v in ens["methods"].items()]
display(pd.DataFrame(rows).style.format({c: "{:.2%}" for c in ["val_acc", "test_acc", "ci_low", "ci_high"]}
                                         | {c: "{:+.2%}" for c in ["gain_vs_best", "gain_ci_low", "gain_ci_high"]}
                                         | {"mcnemar_p": "{:.2g}"}))
plots.ensemble_bars(ens["best_member"], ens["best_member_test_acc"], ens["methods"])
plt.show()
best = ens["methods"][ens["best_method"]]
display(Markdown(
    f"The best single model on validation is **{ens['best_member']}** ({ens['best_member_test_acc']:.2%} test). "
    f"The ensemble method chosen on validation, the **{ens['best_method']} vote**, scores **{best['test_acc']:.2%}**: "
    f"a gain of **{best['gain']:+.2%}** (95% CI {best['gain_ci'][0]:+.2%} to {best['gain_ci'][1]:+.2%}; "
    f"McNemar {stats.format_p(best['mcnemar_vs_best']['p_value'])})."
))
"""),
("md", """
## Recorded results

Every number above goes to `metrics/06_architectures_and_ensembles.json`.
"""),
("code", """
path = reporting.record_metrics(run_dir, "06_architectures_and_ensembles", {
    "data": ds.to_dict(),
    "models": [{"name": m.name, "arch": m.arch, "model_path": m.model_path, "origin": m.origin, "epochs": m.epochs,
                "recipe": m.recipe} for m in members],
    "comparison": table.to_dict(orient="records"),
    "mcnemar_pvalues": pvals.to_dict(),
    "replication": replication.to_dict(orient="records"),
    "ensembles": ens,
    "ensemble_gain": ens["ensemble_gain"],
    "ensemble_gain_ci": ens["ensemble_gain_ci"],
    "best_single": {"name": ens["best_member"], "test_acc": ens["best_member_test_acc"]},
    "n_test": int(len(ds.y_test)),
})
print(f"metrics written to {path}")
"""),
]

write(os.path.join(os.path.dirname(__file__), "..", "notebooks", "06_architectures_and_ensembles.ipynb"), cells)
