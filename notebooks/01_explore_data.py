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
# # 01 · Data exploration
#
# This notebook looks at the data before any model sees it: how many images each class and
# split holds, what the images look like, their colour statistics, whether any image (or group
# of images, such as one patient's scans) is repeated within or across splits, and how
# separable the classes are in raw pixel space.
# It runs unchanged on CIFAR-10 and on your own image folders; the numbers below come from
# the data source named in the first output.

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from cifarkit import escape, run_folder
from cifarkit.analysis import explore, interactive, plots
from cifarkit.data import load_study_data, split_record

# %% tags=["parameters"]
DATA: str = ""  # data source; empty for the official CIFAR-10 archive, or a folder, archive, synthetic:200
RUN_DIR: str = ""  # run directory set by run_all.py; empty means reports/interactive
DATA_SUBSET: int = 0  # [0, ] images per class per split to load; 0 loads all
IMAGE_SIZE: int = 32  # [8, 1024] images are resized (shorter side, then centre crop) to IMAGE_SIZE x IMAGE_SIZE
VAL_FRACTION: float = 0.1  # [0, 0.9] share of the training data held out for validation (stratified)
CLASS_NAMES: str = ""  # comma-separated display names for the classes; empty keeps the data names
GROUP_BY: str = ""  # regex whose capture group in each image's relative path names its group (patient, part); whole groups per split
LABELS: str = ""  # labels from 'filename:REGEX' or a CSV file (path,label[,group]); empty: class folders
SEED: int = 0  # [0, 2147483647] seed for splits, samples and embeddings
GRID_PER_CLASS: int = 8  # [1, 64] sample images shown per class
PCA_SAMPLES: int = 5000  # [0, ] images in the PCA plot (0 skips it)
TSNE_SAMPLES: int = (
    2000  # [0, 50000] images in the t-SNE plot (t-SNE is slow: keep this in the low thousands; 0 skips it)
)

# %%
run_dir = run_folder.resolve_run_dir(RUN_DIR)
run_folder.capture_warnings(run_dir, "01_explore_data")  # warnings go to the run's log, not the report
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
info = ds.to_dict()
display(
    Markdown(
        f"**Data:** {escape.code(ds.source)} ({ds.source_kind}), sha256 {escape.code(ds.source_sha256)}  \n"
        f"**Classes ({ds.num_classes}):** {escape.names(ds.class_names)}"
        + (f" (labels from the {escape.md(ds.labels_from)})" if ds.labels_from else "")
        + "  \n"
        f"**Image size:** {ds.image_size[0]}x{ds.image_size[1]} RGB, uint8  \n"
        f"**Splits:** {escape.md(split_record.sentence(ds.split_origin))}.  \n"
        f"**Load time:** {ds.load_seconds:.2f} s" + (" (from the decode cache)" if ds.from_cache else "")
    )
)

# %% [markdown]
# ## Images per class and split
#
# The table counts images per class in each split; the validation split is carved out of
# the training data, stratified by class (by whole groups for grouped data, so the proportions
# match only as well as the group sizes allow). A strongly
# uneven bar chart means accuracy alone will flatter the model: look at per-class metrics
# in the evaluation report.

# %%
counts = explore.class_counts(ds)
display(counts)
plots.class_counts_bar(counts)
plt.show()
train_counts = counts.loc[ds.class_names, "train"]
imbalance = float(train_counts.max() / max(train_counts.min(), 1))
print(
    f"Largest/smallest class in the training split: {imbalance:.2f}x "
    + (
        f"(every class: {train_counts.max()})"
        if train_counts.max() == train_counts.min()
        else f"({train_counts.idxmax()}: {train_counts.max()}, {train_counts.idxmin()}: {train_counts.min()})"
    )
)

# %% [markdown]
# ## Groups: does any patient, part or session straddle the splits?
#
# Several images of one patient (or crops of one part, frames of one session) resemble each other
# more than images of different ones. If such a group has images in training and in test, the test
# accuracy measures how well the model remembers the group, not how it does on a new one. With
# `--group-by REGEX` (or a labels file with a group column) whole groups go to one split; the check
# below is computed from the loaded splits themselves.

# %%
group_rows = explore.group_table(ds)
straddling = explore.straddling_groups(ds)
if ds.groups is None:
    group_verdict = "no groups given: every image is split on its own"
    display(
        Markdown(
            "**No groups were given**, so every image is assigned to a split on its own. If several images "
            "come from one patient, part or session, give `--group-by REGEX` (a capture group in the path "
            "names the group) or a labels file with a group column; otherwise test accuracy may be optimistic."
        )
    )
else:
    display(Markdown(f"**Groups from the {escape.md(ds.group_by)}.** Images and groups per split:"))
    display(group_rows)
    display(Markdown("Groups holding each class, per split (a group counts once for every class it has images of):"))
    display(explore.groups_per_class(ds))
    if straddling:
        group_verdict = f"{len(straddling)} group(s) appear in more than one split"
        shown = pd.DataFrame(
            [{"group": g["group"], **{s: g["splits"].get(s, 0) for s in ("train", "val", "test")}} for g in straddling]
        )
        display(Markdown(f"**{group_verdict}** (images per split):"))
        display(shown.head(30))
    else:
        group_verdict = "no group appears in more than one split"
display(Markdown(f"**Check, computed from the loaded splits: {group_verdict}.**"))

# %% [markdown]
# ## What the images look like
#
# A random sample of training images, one row per class. At 32x32 pixels many objects are
# recognisable mostly by shape and colour context, which is why augmentation (crops and
# flips) helps so much later.

# %%
plots.image_grid(ds.x_train, ds.y_train, ds.class_names, per_class=GRID_PER_CLASS, seed=SEED)
plt.show()

# %% [markdown]
# ## Colour statistics
#
# Per-channel mean and standard deviation in 0-1 units. The model normalizes its input with
# the **training** split's values (recorded below); the validation and test rows should be
# close to them, otherwise the splits come from different distributions.

# %%
stats = explore.channel_stats(ds)
display(stats.round(4))
mean, std = ds.channel_stats()
print("normalization used by training (train split only): mean", np.round(mean, 4), "std", np.round(std, 4))

# %% [markdown]
# ## Pixel intensity histograms
#
# The distribution of 0-255 values per channel over (a sample of) the training images.
# Spikes at 0 or 255 point to clipping or padded borders; a shifted channel points to a
# colour cast in the collection.

# %%
hist = explore.pixel_histograms(ds.x_train, seed=SEED)
plots.pixel_histograms(hist)
plt.show()

# %% [markdown]
# ## Source image sizes, modes and skipped files
#
# For image folders the data layer decodes every file whatever its format or mode, converts
# it to RGB and resizes it (shorter side to the target size, then a centre crop). This table
# shows what the collection held before that, and lists the files it could not read.
# For the official CIFAR-10 archive all images are 32x32 RGB.

# %%
image_info = ds.image_info or {}
for key in ("sizes", "modes", "formats"):
    if image_info.get(key):
        table = pd.Series(image_info[key], name="images").sort_values(ascending=False)
        display(table.head(15).to_frame(key))
print(f"Skipped (unreadable) files: {len(ds.skipped)}")
if ds.skipped:
    with pd.option_context("display.max_colwidth", None):  # show whole paths, not "..."
        display(escape.table(pd.DataFrame(ds.skipped, columns=["path", "reason"])))

# %% [markdown]
# ## Exact duplicates
#
# Every decoded image is hashed. Duplicates inside the training split waste a little
# capacity; duplicates **between** training and test inflate test accuracy, because the
# model has seen those exact pixels. The counts are of images identical after decoding and
# resizing.

# %%
dups = explore.find_duplicates(ds)
dup_table = pd.DataFrame(
    {
        "duplicates": {
            **{f"within {k}": v for k, v in dups["within"].items()},
            **{f"across {k}": v for k, v in dups["across"].items()},
        }
    }
)
display(dup_table)

# %% [markdown]
# ## Near duplicates across splits
#
# Exact duplicates miss the same picture re-saved, resized, slightly cropped or with a little noise.
# Every image gets a 64-bit perceptual hash (the signs of its lowest 8x8 DCT frequencies against
# their median, computed on the grey image at 32x32), and pairs from different splits whose hashes
# differ in at most `explore.NEAR_DUPLICATE_BITS` (6) bits are listed. Six bits is where, on CIFAR-10,
# noisy and JPEG-recompressed copies still match (99.9% within 6 bits) while unrelated pictures almost
# never do (19 of 36 million pairs, most of them real near duplicates); see `cifarkit/analysis/explore.py`.
# The pairs below are the closest ones; judge them by eye: a near duplicate in the test split is a
# test image the model has nearly seen.

# %%
near = explore.near_duplicates(ds)
near_table = pd.DataFrame({"pairs": near["pairs"], "images of the second split": near["images"]})
near_table.index.name = "splits"
display(near_table)
if any(near["featureless"].values()):
    print(f"Featureless images (no structure to hash), left out: {near['featureless']}")
NEAR_SHOWN = 12
pairs = near["examples"][:NEAR_SHOWN]
if pairs:
    per_row = 3
    rows = (len(pairs) + per_row - 1) // per_row
    fig, axes = plt.subplots(rows, 2 * per_row, figsize=(2.0 * 2 * per_row, 2.7 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for k, pair in enumerate(pairs):
        for side, (split, index) in enumerate(((pair["a"], pair["i"]), (pair["b"], pair["j"]))):
            x, y = ds.split(split)
            ax = axes[k // per_row, 2 * (k % per_row) + side]
            ax.imshow(x[index])
            title = f"{split} #{index}\n{escape.plain(ds.class_names[y[index]])}"
            ax.set_title(title + (f" ({pair['distance']} bits)" if side else ""), fontsize=8)
    fig.suptitle(f"Closest near-duplicate pairs across splits ({len(pairs)} of {sum(near['pairs'].values())})")
    fig.tight_layout()
    plt.show()
print(
    f"Near-duplicate pairs across splits (at most {near['max_distance']} of 64 bits apart): "
    + ", ".join(f"{k}: {v}" for k, v in near["pairs"].items())
)

# %% [markdown]
# ## Mean image per class
#
# The average of all training images of each class. Classes whose mean image is a distinct
# colour blob (sky-blue for airplanes and ships, green for frogs and deer on CIFAR-10) can
# be partly told apart by colour alone; the rest need shape.

# %%
means = explore.mean_images(ds)
plots.mean_images(means, ds.class_names)
plt.show()

# %% [markdown]
# ## How separable are the classes in pixel space?
#
# Two 2-D embeddings of a stratified sample of training images, coloured by class: the first
# two principal components, and t-SNE on the first 50 principal components (in the HTML report
# the t-SNE is interactive: hover a point for its class and image). Heavily mixed
# colours mean that raw pixels do not separate the classes, which is why a linear model on
# pixels stays far below a CNN (see the baselines notebook).

# %%
pca_pts, pca_y, pca_info = explore.embed_2d(ds.x_train, ds.y_train, method="pca", n=PCA_SAMPLES, seed=SEED)
if pca_info["n"]:
    plots.embedding_scatter(
        pca_pts,
        pca_y,
        ds.class_names,
        f"PCA of raw pixels ({pca_info['n']} images; {sum(pca_info['explained_variance_ratio']):.1%} of variance)",
    )
    plt.show()
else:
    print("No PCA plot: PCA_SAMPLES is 0 in this run.")
tsne_pts, tsne_y, tsne_info = explore.embed_2d(ds.x_train, ds.y_train, method="tsne", n=TSNE_SAMPLES, seed=SEED)
if tsne_info["n"]:
    tsne_title = f"t-SNE of raw pixels ({tsne_info['n']} images)"
    interactive.show(
        interactive.embedding_figure(tsne_pts, tsne_y, ds.class_names, tsne_title),
        plots.embedding_scatter(tsne_pts, tsne_y, ds.class_names, tsne_title),
    )
else:
    print("No t-SNE plot: TSNE_SAMPLES is 0 in this run.")

# %% [markdown]
# The key numbers of this notebook are recorded in `metrics/01_explore_data.json` in the run
# folder, where the key-results box above, the dashboard and the tests read them.

# %%
run_folder_path = run_folder.record_metrics(
    run_dir,
    "01_explore_data",
    {
        "data": info,
        "num_classes": ds.num_classes,
        "class_names": ds.class_names,
        "counts": {split: {c: int(counts.loc[c, split]) for c in ds.class_names} for split in ("train", "val", "test")},
        "total_images": int(counts.loc["all", "total"]),
        "channel_mean": [float(v) for v in mean],
        "channel_std": [float(v) for v in std],
        "class_imbalance_ratio": imbalance,
        "skipped_files": len(ds.skipped),
        "duplicates": {"within": dups["within"], "across": dups["across"]},
        "groups": {
            "grouped": ds.groups is not None,
            "source": ds.group_by,
            "per_split": ds.group_counts(),
            "straddling": len(straddling),
            "straddling_groups": [g["group"] for g in straddling[:50]],
            "no_group_straddles": ds.groups is not None and not straddling,
            "check": group_verdict,
        },
        "near_duplicates": {
            "hash": near["hash"],
            "max_distance": near["max_distance"],
            "pairs": near["pairs"],
            "images": near["images"],
            "featureless": near["featureless"],
            "shown": len(pairs),
        },
        "pca_explained_variance": pca_info["explained_variance_ratio"],
        "embedding_samples": {"pca": pca_info["n"], "tsne": tsne_info["n"]},
        "figures": ["class_counts", "sample_grid", "pixel_histograms"]
        + (["near_duplicates"] if pairs else [])
        + ["mean_images"]
        + (["pca"] if pca_info["n"] else [])
        + (["tsne"] if tsne_info["n"] else []),
    },
)
