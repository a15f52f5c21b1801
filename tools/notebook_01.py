"""Source of notebooks/01_explore_data.ipynb (run: python tools/notebook_01.py)."""
import sys, os
sys.path.insert(0, os.path.dirname(__file__))
from nbwrite import write

cells = [
("md", """
# 01 · Data exploration

This notebook looks at the data before any model sees it: how many images each class and
split holds, what the images look like, their colour statistics, whether any image is
repeated within or across splits, and how separable the classes are in raw pixel space.
It runs unchanged on CIFAR-10 and on your own image folders; the numbers below come from
the data source named in the first output.
"""),
("code", """
import numpy as np
import pandas as pd
import matplotlib.pyplot as plt
from IPython.display import display, Markdown

from cifarkit import explore, plots, reporting
from cifarkit.study import load_study_data
"""),
("params", """
COMMON
SEED: int = 0             # seed for splits, samples and embeddings
GRID_PER_CLASS: int = 8   # sample images shown per class
PCA_SAMPLES: int = 5000   # images in the PCA plot
TSNE_SAMPLES: int = 2000  # images in the t-SNE plot (t-SNE is slow: keep this in the low thousands)
"""),
("code", """
run_dir = reporting.resolve_run_dir(RUN_DIR)
ds = load_study_data(DATA, image_size=IMAGE_SIZE, subset=DATA_SUBSET, val_fraction=VAL_FRACTION,
                     seed=SEED, class_names=CLASS_NAMES)
info = ds.to_dict()
display(Markdown(
    f"**Data:** `{ds.source}` ({ds.source_kind}), sha256 `{ds.source_sha256}`  \\n"
    f"**Classes ({ds.num_classes}):** {', '.join(ds.class_names)}  \\n"
    f"**Image size:** {ds.image_size[0]}x{ds.image_size[1]} RGB, uint8  \\n"
    f"**Splits:** {ds.split_origin}; loaded in {ds.load_seconds:.2f} s"
    + (" (from the decode cache)" if ds.from_cache else "")
    + (f"; subset of {DATA_SUBSET} images per class and split" if DATA_SUBSET else "")
))
"""),
("md", """
## Images per class and split

The table counts images per class in each split; the validation split is carved out of
the training data, stratified by class, so the class proportions match. A strongly
uneven bar chart means accuracy alone will flatter the model: look at per-class metrics
in the evaluation report.
"""),
("code", """
counts = explore.class_counts(ds)
display(counts)
plots.class_counts_bar(counts)
plt.show()
train_counts = counts.loc[ds.class_names, "train"]
imbalance = float(train_counts.max() / max(train_counts.min(), 1))
print(f"Largest/smallest class in the training split: {imbalance:.2f}x "
      f"({train_counts.idxmax()}: {train_counts.max()}, {train_counts.idxmin()}: {train_counts.min()})")
"""),
("md", """
## What the images look like

A random sample of training images, one row per class. At 32x32 pixels many objects are
recognisable mostly by shape and colour context, which is why augmentation (crops and
flips) helps so much later.
"""),
("code", """
plots.image_grid(ds.x_train, ds.y_train, ds.class_names, per_class=GRID_PER_CLASS, seed=SEED)
plt.show()
"""),
("md", """
## Colour statistics

Per-channel mean and standard deviation in 0-1 units. The model normalizes its input with
the **training** split's values (recorded below); the validation and test rows should be
close to them, otherwise the splits come from different distributions.
"""),
("code", """
stats = explore.channel_stats(ds)
display(stats.round(4))
mean, std = ds.channel_stats()
print("normalization used by training (train split only): mean", np.round(mean, 4), "std", np.round(std, 4))
"""),
("md", """
## Pixel intensity histograms

The distribution of 0-255 values per channel over (a sample of) the training images.
Spikes at 0 or 255 point to clipping or padded borders; a shifted channel points to a
colour cast in the collection.
"""),
("code", """
hist = explore.pixel_histograms(ds.x_train, seed=SEED)
plots.pixel_histograms(hist)
plt.show()
"""),
("md", """
## Source image sizes, modes and skipped files

For image folders the data layer decodes every file whatever its format or mode, converts
it to RGB and resizes it (shorter side to the target size, then a centre crop). This table
shows what the collection held before that, and lists the files it could not read.
For the official CIFAR-10 archive all images are 32x32 RGB.
"""),
("code", """
image_info = ds.image_info or {}
for key in ("sizes", "modes", "formats"):
    if image_info.get(key):
        table = pd.Series(image_info[key], name="images").sort_values(ascending=False)
        display(table.head(15).to_frame(key))
print(f"Skipped (unreadable) files: {len(ds.skipped)}")
if ds.skipped:
    with pd.option_context("display.max_colwidth", None):  # show whole paths, not "..."
        display(pd.DataFrame(ds.skipped, columns=["path", "reason"]))
"""),
("md", """
## Exact duplicates

Every decoded image is hashed. Duplicates inside the training split waste a little
capacity; duplicates **between** training and test inflate test accuracy, because the
model has seen those exact pixels. The counts are of images identical after decoding and
resizing.
"""),
("code", """
dups = explore.find_duplicates(ds)
dup_table = pd.DataFrame({"duplicates": {**{f"within {k}": v for k, v in dups["within"].items()},
                                         **{f"across {k}": v for k, v in dups["across"].items()}}})
display(dup_table)
"""),
("md", """
## Mean image per class

The average of all training images of each class. Classes whose mean image is a distinct
colour blob (sky-blue for airplanes and ships, green for frogs and deer on CIFAR-10) can
be partly told apart by colour alone; the rest need shape.
"""),
("code", """
means = explore.mean_images(ds)
plots.mean_images(means, ds.class_names)
plt.show()
"""),
("md", """
## How separable are the classes in pixel space?

Two 2-D embeddings of a stratified sample of training images, coloured by class: the first
two principal components, and t-SNE on the first 50 principal components. Heavily mixed
colours mean that raw pixels do not separate the classes, which is why a linear model on
pixels stays far below a CNN (see the baselines notebook).
"""),
("code", """
pca_pts, pca_y, pca_info = explore.embed_2d(ds.x_train, ds.y_train, method="pca", n=PCA_SAMPLES, seed=SEED)
plots.embedding_scatter(pca_pts, pca_y, ds.class_names,
                        f"PCA of raw pixels ({pca_info['n']} images; "
                        f"{sum(pca_info['explained_variance_ratio']):.1%} of variance)")
plt.show()
tsne_pts, tsne_y, tsne_info = explore.embed_2d(ds.x_train, ds.y_train, method="tsne", n=TSNE_SAMPLES, seed=SEED)
plots.embedding_scatter(tsne_pts, tsne_y, ds.class_names, f"t-SNE of raw pixels ({tsne_info['n']} images)")
plt.show()
"""),
("md", """
## Recorded results

The key numbers of this notebook go to `metrics/01_explore_data.json` in the run
directory, where the tests and the run summary read them.
"""),
("code", """
path = reporting.record_metrics(run_dir, "01_explore_data", {
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
    "pca_explained_variance": pca_info["explained_variance_ratio"],
    "embedding_samples": {"pca": pca_info["n"], "tsne": tsne_info["n"]},
    "figures": ["class_counts", "sample_grid", "pixel_histograms", "mean_images", "pca", "tsne"],
})
print(f"metrics written to {path}")
"""),
]

write(os.path.join(os.path.dirname(__file__), "..", "notebooks", "01_explore_data.ipynb"), cells)
