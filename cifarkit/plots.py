"""Figures for the notebooks: each function draws one figure and returns it."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

sns.set_theme(style="whitegrid", context="notebook")


def class_counts_bar(counts: pd.DataFrame):
    """Grouped bars: images per class in each split (``explore.class_counts`` table)."""
    df = counts.drop(index="all", errors="ignore").drop(columns="total", errors="ignore")
    long = df.reset_index().melt(id_vars="class", var_name="split", value_name="images")
    fig, ax = plt.subplots(figsize=(max(6, 0.7 * len(df)), 3.8))
    sns.barplot(data=long, x="class", y="images", hue="split", ax=ax)
    ax.set_xlabel("")
    ax.set_title("Images per class and split")
    ax.tick_params(axis="x", rotation=45 if len(df) > 6 else 0)
    fig.tight_layout()
    return fig


def image_grid(x: np.ndarray, y: np.ndarray, class_names, per_class: int = 8, seed: int = 0, title=None):
    """``per_class`` random images of every class, one row per class."""
    rng = np.random.default_rng(seed)
    k = len(class_names)
    fig, axes = plt.subplots(k, per_class, figsize=(per_class * 0.9 + 1.2, k * 0.9 + 0.4), squeeze=False)
    for c in range(k):
        idx = np.flatnonzero(y == c)
        pick = rng.choice(idx, min(per_class, len(idx)), replace=False) if len(idx) else []
        for j in range(per_class):
            ax = axes[c, j]
            ax.axis("off")
            if j < len(pick):
                ax.imshow(x[pick[j]], interpolation="nearest")
        axes[c, 0].text(-0.1, 0.5, class_names[c], transform=axes[c, 0].transAxes, ha="right", va="center")
    fig.suptitle(title or "Random training images per class")
    fig.tight_layout()
    return fig


def pixel_histograms(hist: np.ndarray, title="Pixel intensities per channel (training split)"):
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for c, colour in enumerate(("tab:red", "tab:green", "tab:blue")):
        ax.plot(np.arange(256), hist[c] / hist[c].sum(), color=colour, label="RGB"[c])
    ax.set_xlabel("intensity (0-255)")
    ax.set_ylabel("fraction of pixels")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    return fig


def mean_images(means: np.ndarray, class_names):
    k = len(class_names)
    cols = min(k, 10)
    rows = int(np.ceil(k / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.2, rows * 1.4), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for c in range(k):
        ax = axes.ravel()[c]
        ax.imshow(means[c], interpolation="nearest")
        ax.set_title(class_names[c], fontsize=9)
    fig.suptitle("Mean training image per class")
    fig.tight_layout()
    return fig


def embedding_scatter(points: np.ndarray, labels: np.ndarray, class_names, title: str):
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    palette = sns.color_palette("tab10" if len(class_names) <= 10 else "husl", len(class_names))
    for c, name in enumerate(class_names):
        sel = labels == c
        ax.scatter(points[sel, 0], points[sel, 1], s=6, alpha=0.6, color=palette[c], label=name)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(markerscale=3, fontsize=8, loc="center left", bbox_to_anchor=(1, 0.5))
    fig.tight_layout()
    return fig


def learning_curves(history: pd.DataFrame):
    """Train vs validation loss and accuracy per epoch (training metrics are on augmented data)."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for ax, metric, label in ((axes[0], "loss", "loss"), (axes[1], "acc", "accuracy")):
        train_col = metric if metric in history else f"train_{metric}_aug"
        if train_col in history:
            ax.plot(history["epoch"], history[train_col], marker="o", label=f"train (augmented) {label}")
        if f"val_{metric}" in history:
            ax.plot(history["epoch"], history[f"val_{metric}"], marker="o", label=f"validation {label}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.legend()
    axes[0].set_title("Loss")
    axes[1].set_title("Accuracy")
    fig.tight_layout()
    return fig


def lr_schedule(values: np.ndarray, steps_per_epoch: int):
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.plot(np.arange(len(values)) / max(steps_per_epoch, 1), values)
    ax.set_xlabel("epoch")
    ax.set_ylabel("learning rate")
    ax.set_title("Learning-rate schedule")
    fig.tight_layout()
    return fig


def throughput(history: pd.DataFrame):
    fig, ax = plt.subplots(figsize=(7, 3))
    col = "images_per_sec" if "images_per_sec" in history else None
    if col:
        ax.bar(history["epoch"], history[col])
    ax.set_xlabel("epoch")
    ax.set_ylabel("training images / s")
    ax.set_title("Training throughput per epoch")
    fig.tight_layout()
    return fig
