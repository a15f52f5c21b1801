"""Figures for the notebooks: each function draws one figure and returns it.

Figures are sized for the printed report: at most :data:`PAGE_WIDTH` inches wide, so
they print at (about) their own size and no text is smaller than 7 pt. Text that
comes from the data (class and model names) goes through :func:`cifarkit.escape.plain`.
"""

from __future__ import annotations

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from cifarkit.analysis.axes import whole_numbers
from cifarkit.analysis.stats import p_value_text
from cifarkit.escape import plain

#: Widest figure, in inches: the text width of an A4 page with 12 mm margins is about 7.3 in.
PAGE_WIDTH = 7.0

sns.set_theme(style="whitegrid", context="paper")
mpl.rcParams.update(
    {
        "figure.dpi": 96,  # a figure prints at its own size (the report's CSS counts 96 px per inch)
        "font.size": 9,
        "axes.titlesize": 10,
        "axes.labelsize": 9,
        "xtick.labelsize": 8,
        "ytick.labelsize": 8,
        "legend.fontsize": 8,
        "figure.titlesize": 11,
        # no mathtext: titles, labels and ticks carry class names and paths from the data, where "$" is text
        "text.parse_math": False,
    }
)


# Tables show their cells whole (pandas would cut long ones with "..."), at most 60 rows.
pd.set_option("display.max_colwidth", None)
pd.set_option("display.max_rows", 60)


def short(value) -> str:
    """A setting as a reader wants it: floats with 4 significant digits, containers shortened the same way."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {short(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(short(v) for v in value) + "]"
    return str(value)


def readable(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` as a reader wants its cells: floats with 4 significant digits (a weight decay of 0.000189 stays
    0.000189, where ``round(4)`` shows 0.0002), missing values blank; other cells as they are."""

    def cell(value):
        if value is None or (isinstance(value, float) and value != value):
            return ""
        return short(value) if isinstance(value, float) else value

    return table.map(cell)


def plain_log_ticks(axis, subs=(1.0, 2.0, 5.0)) -> None:
    """Label a log-scaled ``axis`` (``ax.xaxis``, ``ax.yaxis``, a colorbar's) with plain numbers (0.001, 20, 500)
    at ``subs`` times each power of ten. Matplotlib's own log labels are mathtext, which this module turns off
    (``text.parse_math``) so that a "$" from the data shows as text: left alone they print as raw markup."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis.set_major_locator(LogLocator(subs=subs))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())  # 2x10^-1, 3x10^-1, ... labels collide


def _size(width: float, height: float) -> tuple[float, float]:
    """A figure size no wider than the page; a wider request is scaled down, aspect kept."""
    if width <= PAGE_WIDTH:
        return width, height
    return PAGE_WIDTH, height * PAGE_WIDTH / width


def class_counts_bar(counts: pd.DataFrame):
    """Grouped bars: images per class in each split (``explore.class_counts`` table)."""
    df = counts.drop(index="all", errors="ignore").drop(columns="total", errors="ignore")
    long = df.reset_index().melt(id_vars="class", var_name="split", value_name="images")
    long["class"] = long["class"].map(plain)
    fig, ax = plt.subplots(figsize=_size(max(6, 0.7 * len(df)), 3.8))
    sns.barplot(data=long, x="class", y="images", hue="split", ax=ax)
    ax.set_xlabel("")
    ax.set_title("Images per class and split")
    ax.tick_params(axis="x", rotation=45 if len(df) > 6 else 0)
    ax.legend(title="split", loc="upper left", bbox_to_anchor=(1.0, 1.0))  # beside the bars, never over them
    fig.tight_layout()
    return fig


def image_grid(x: np.ndarray, y: np.ndarray, class_names, per_class: int = 8, seed: int = 0, title=None):
    """``per_class`` random images of every class, one row per class."""
    rng = np.random.default_rng(seed)
    k = len(class_names)
    fig, axes = plt.subplots(k, per_class, figsize=_size(per_class * 0.9 + 1.2, k * 0.9 + 0.4), squeeze=False)
    for c in range(k):
        idx = np.flatnonzero(y == c)
        pick = rng.choice(idx, min(per_class, len(idx)), replace=False) if len(idx) else []
        for j in range(per_class):
            ax = axes[c, j]
            ax.axis("off")
            if j < len(pick):
                ax.imshow(x[pick[j]], interpolation="nearest")
        axes[c, 0].text(-0.1, 0.5, plain(class_names[c]), transform=axes[c, 0].transAxes, ha="right", va="center")
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
    """The mean image of every class, large enough to see its colours and layout: rows of five (of ten past ten
    classes), about 1.3 in (0.65 in past ten classes) per image on the page."""
    k = len(class_names)
    cols = min(k, 5 if k <= 10 else 10)
    rows = int(np.ceil(k / cols))
    cell = 1.3 if k <= 10 else PAGE_WIDTH / cols
    fig, axes = plt.subplots(rows, cols, figsize=_size(cols * cell, rows * (cell + 0.3) + 0.4), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for c in range(k):
        ax = axes.ravel()[c]
        ax.imshow(means[c], interpolation="nearest")
        ax.set_title(plain(class_names[c]), fontsize=8)
    fig.suptitle("Mean training image per class")
    fig.tight_layout()
    return fig


def embedding_scatter(points: np.ndarray, labels: np.ndarray, class_names, title: str):
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    palette = sns.color_palette("tab10" if len(class_names) <= 10 else "husl", len(class_names))
    for c, name in enumerate(class_names):
        sel = labels == c
        ax.scatter(points[sel, 0], points[sel, 1], s=6, alpha=0.6, color=palette[c], label=plain(name))
    ax.set_title(plain(title))
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(markerscale=3, fontsize=8, loc="center left", bbox_to_anchor=(1, 0.5))
    fig.tight_layout()
    return fig


def learning_curves(history: pd.DataFrame):
    """Train vs validation loss and accuracy per epoch (training metrics are on augmented data)."""
    fig, axes = plt.subplots(1, 2, figsize=(PAGE_WIDTH, 3.2))
    for ax, metric, label in ((axes[0], "loss", "loss"), (axes[1], "acc", "accuracy")):
        train_col = metric if metric in history else f"train_{metric}_aug"
        if train_col in history:
            ax.plot(history["epoch"], history[train_col], marker="o", label=f"train (augmented) {label}")
        if f"val_{metric}" in history:
            ax.plot(history["epoch"], history[f"val_{metric}"], marker="o", label=f"validation {label}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        whole_numbers(ax)
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
    whole_numbers(ax)
    ax.set_ylabel("training images / s")
    ax.set_title("Training throughput per epoch")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- 06: architectures and ensembles


def accuracy_vs_cost(table: pd.DataFrame, cost: str = "mflops", pareto=None, title=None):
    """Test accuracy (with CI bars) against a cost column; Pareto-optimal models drawn as filled stars."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    t = table.dropna(subset=[cost])
    pareto = np.zeros(len(t), dtype=bool) if pareto is None else np.asarray(pareto)[table[cost].notna().to_numpy()]
    yerr = np.vstack([t["test_acc"] - t["ci_low"], t["ci_high"] - t["test_acc"]]) * 100
    ax.errorbar(t[cost], t["test_acc"] * 100, yerr=yerr, fmt="none", ecolor="grey", capsize=3)
    ax.scatter(t[cost][~pareto], t["test_acc"][~pareto] * 100, s=60, label="dominated")
    ax.scatter(t[cost][pareto], t["test_acc"][pareto] * 100, s=160, marker="*", color="C3", label="Pareto-optimal")
    front = t[pareto].sort_values(cost)
    ax.plot(front[cost], front["test_acc"] * 100, color="C3", lw=1, ls="--")
    for (_, row), k in zip(t.iterrows(), _label_rows(np.log10(t[cost].to_numpy(float)), t["test_acc"].to_numpy())):
        ax.annotate(
            row["model"],
            (row[cost], row["test_acc"] * 100),
            textcoords="offset points",
            xytext=(5, 5 - 11 * k),
            fontsize=8,
        )
    ax.set_xscale("log")
    plain_log_ticks(ax.xaxis)
    ax.set_xlabel(
        {
            "mflops": "MFLOPs per image (log scale)",
            "params": "parameters (log scale)",
            "train_seconds": "training seconds (log scale)",
        }.get(cost, cost)
    )
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title or "Accuracy against cost")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def _label_rows(x: np.ndarray, y: np.ndarray, near: float = 0.15) -> list[int]:
    """For point labels written to the right of each point: how many lines down each one goes so that it does
    not print over the label of an earlier point close to it (within ``near`` of both axes' spans; the seeds of
    one architecture share a cost and differ a little in accuracy)."""
    span_x, span_y = float(np.ptp(x)) or 1.0, float(np.ptp(y)) or 1.0
    rows: list[int] = []
    for i in range(len(x)):
        close = {rows[j] for j in range(i) if abs(x[i] - x[j]) < near * span_x and abs(y[i] - y[j]) < near * span_y}
        rows.append(next(k for k in range(len(x) + 1) if k not in close))
    return rows


def pvalue_heatmap(p: pd.DataFrame, title="McNemar p-values between models"):
    """Heatmap of pairwise p-values (log colour scale)."""
    import seaborn as sns
    from matplotlib.colors import LogNorm

    fig, ax = plt.subplots(figsize=_size(1.2 * len(p) + 3, 0.9 * len(p) + 2))
    p = p.rename(index=plain, columns=plain)
    sns.heatmap(
        p.clip(lower=1e-300),
        annot=p.map(p_value_text),
        fmt="",
        norm=LogNorm(vmin=1e-6, vmax=1),
        cmap="viridis_r",
        cbar_kws={"label": "p-value"},
        ax=ax,
    )
    plain_log_ticks(ax.collections[0].colorbar.ax.yaxis, subs=(1.0,))
    plt.setp(ax.get_xticklabels(), rotation=30, ha="right", rotation_mode="anchor")  # long model names
    ax.set_title(title)
    fig.tight_layout()
    return fig


def ensemble_gains(best_member: str, best_acc: float, methods: dict, chosen: str | None = None, title=None):
    """Each ensemble method's gain over the best member in points, with its paired 95% bootstrap interval.

    The gains are a point or two on a 90% accuracy, invisible in bars drawn from zero; drawn as
    differences against a zero line (the best member), their intervals show at a glance whether a vote
    helps beyond the noise of the test set. ``chosen`` (the method picked on validation) is drawn in
    another colour and named in its label.
    """
    names = list(methods)
    gains = np.array([methods[k]["gain"] for k in names]) * 100
    lo = np.array([methods[k]["gain_ci"][0] for k in names]) * 100
    hi = np.array([methods[k]["gain_ci"][1] for k in names]) * 100
    fig, ax = plt.subplots(figsize=(PAGE_WIDTH, 0.55 * len(names) + 2.1))
    y = np.arange(len(names))[::-1]
    colours = ["C3" if k == chosen else "C0" for k in names]
    ax.errorbar(gains, y, xerr=np.array([gains - lo, hi - gains]), fmt="none", ecolor="grey", capsize=4)
    ax.scatter(gains, y, s=60, color=colours, zorder=3)
    for yi, g, k in zip(y, gains, names):
        ax.annotate(
            f"{g:+.2f} points ({methods[k]['test_acc']:.2%})",
            (g, yi),
            textcoords="offset points",
            xytext=(0, 8),
            ha="center",
            fontsize=8,
        )
    ax.axvline(0, color="grey", lw=1, ls="--")
    left, right = min(0.0, lo.min()), max(0.0, hi.max())
    pad = 0.15 * max(right - left, 0.5)
    ax.set_xlim(left - pad, right + pad)
    ax.set_ylim(-0.6, len(names) - 0.3)
    ax.set_yticks(y, [f"{k} vote" + ("\n(chosen on validation)" if k == chosen else "") for k in names])
    ax.set_xlabel("test accuracy gain (points); whiskers: 95% paired bootstrap interval")
    ax.set_title(
        title or f"Ensembles against the best single model\n({plain(best_member)}: {best_acc:.2%} test accuracy)"
    )
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- 04: evaluation


def per_class_bars(table: pd.DataFrame, title="Per-class precision, recall and F1 (test split)"):
    """Grouped bars of precision, recall and F1 per class (``evaluate.per_class_table``; average rows dropped)."""
    df = table.drop(index=[i for i in table.index if str(i).endswith(" avg")])
    long = (
        df[["precision", "recall", "f1"]]
        .reset_index()
        .melt(id_vars=df.index.name or "index", var_name="metric", value_name="score")
    )
    key = df.index.name or "index"
    long[key] = long[key].map(plain)
    fig, ax = plt.subplots(figsize=_size(max(6, 0.8 * len(df) + 2), 3.8))
    sns.barplot(data=long, x=key, y="score", hue="metric", ax=ax)
    ax.set_xlabel("")
    ax.set_ylim(0, 1.05)
    ax.set_title(title)
    ax.tick_params(axis="x", rotation=45 if len(df) > 6 else 0)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig


def confusion_heatmaps(cm, class_names, title="Confusion matrix (test split)"):
    """One heatmap, rows normalized to the true class (recall on the diagonal), each cell annotated with its
    share and, below it, its count of images."""
    cm = np.asarray(cm)
    totals = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, totals, out=np.zeros(cm.shape, dtype=float), where=totals > 0)
    k = len(class_names)
    labels = [plain(c) for c in class_names]
    side = min(PAGE_WIDTH - 1.2, max(3.5, 0.6 * k + 1.5))
    fig, ax = plt.subplots(figsize=(side + 1.2, side))
    annot = np.array([[f"{norm[i, j]:.2f}\n{cm[i, j]}" for j in range(k)] for i in range(k)]) if k <= 20 else False
    sns.heatmap(
        norm,
        annot=annot,
        fmt="",
        cmap="Blues",
        vmin=0,
        vmax=1,
        xticklabels=labels,
        yticklabels=labels,
        annot_kws={"fontsize": 7},
        cbar_kws={"label": "share of the true class"},
        ax=ax,
    )
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title + ": share of each true class (count below)")
    fig.tight_layout()
    return fig


def prediction_gallery(x, y_true, probs, indices, class_names, title="Misclassified test images", cols: int = 8):
    """Images with their true label, predicted label and the predicted class's probability."""
    indices = np.asarray(indices)
    n = len(indices)
    cols = max(1, min(cols, n)) if n else 1
    rows = max(1, int(np.ceil(n / cols)))
    fig, axes = plt.subplots(rows, cols, figsize=(PAGE_WIDTH, rows * 1.55 + 0.4), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, i in zip(axes.ravel(), indices):
        pred = int(np.argmax(probs[i]))
        ax.imshow(x[i], interpolation="nearest")
        colour = "tab:green" if pred == int(y_true[i]) else "tab:red"
        ax.set_title(
            f"true: {plain(class_names[int(y_true[i])])}\npred: {plain(class_names[pred])}\n{probs[i][pred]:.0%}",
            fontsize=7,
            color=colour,
        )
    if n == 0:
        axes[0, 0].text(0.5, 0.5, "no images to show", ha="center", va="center")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def reliability_diagrams(curves: dict, title="Reliability diagram (test split)"):
    """One reliability diagram per entry of ``curves``: ``{label: (bins, ece)}`` with ``evaluate.reliability_bins`` bins.

    Bars are the accuracy per confidence bin, the diagonal is perfect calibration,
    and a histogram below shows how many images fall in each bin.
    """
    n = len(curves)
    fig, axes = plt.subplots(2, n, figsize=_size(4.2 * n, 5.4), squeeze=False, gridspec_kw={"height_ratios": [3, 1]})
    for j, (label, (bins, ece)) in enumerate(curves.items()):
        edges = np.asarray(bins["edges"])
        width = np.diff(edges)
        acc = np.nan_to_num(np.asarray(bins["accuracy"], dtype=float))
        conf = np.asarray(bins["confidence"], dtype=float)
        ax = axes[0, j]
        ax.bar(edges[:-1], acc, width=width, align="edge", edgecolor="black", linewidth=0.5, label="accuracy")
        gap_top = np.where(np.isnan(conf), acc, conf)
        ax.bar(
            edges[:-1],
            gap_top - acc,
            bottom=acc,
            width=width,
            align="edge",
            fill=False,
            hatch="///",
            edgecolor="tab:red",
            linewidth=0.5,
            label="gap to mean confidence",
        )
        ax.plot([0, 1], [0, 1], ls="--", color="grey", label="perfect calibration")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_ylabel("accuracy")
        ax.set_title(f"{label}\nECE = {ece:.3f}")
        ax.legend(loc="upper left", fontsize=7)
        axes[1, j].bar(edges[:-1], bins["count"], width=width, align="edge", color="grey")
        axes[1, j].set_xlim(0, 1)
        axes[1, j].set_xlabel("confidence (top-class probability)")
        axes[1, j].set_ylabel("images")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def corruption_examples(image: np.ndarray, corrupted: dict, title="One test image under each corruption"):
    """The clean image and its corrupted versions: ``corrupted`` maps name -> list of images by severity."""
    kinds = list(corrupted)
    sev = max(len(v) for v in corrupted.values())
    fig, axes = plt.subplots(
        len(kinds), sev + 1, figsize=_size((sev + 1) * 0.62 + 1.6, len(kinds) * 0.62 + 0.6), squeeze=False
    )
    for r, kind in enumerate(kinds):
        axes[r, 0].imshow(image, interpolation="nearest")
        axes[r, 0].set_ylabel(plain(kind.replace("_", " ")), rotation=0, ha="right", va="center", fontsize=8)
        for c, img in enumerate(corrupted[kind], start=1):
            axes[r, c].imshow(img, interpolation="nearest")
        for ax in axes[r]:
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_title("clean", fontsize=8)
    for c in range(1, sev + 1):
        axes[0, c].set_title(f"severity {c}", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout(h_pad=0.2, w_pad=0.2)
    return fig


def robustness_curves(table: pd.DataFrame, clean_acc: float, title="Accuracy under corruptions", references=None):
    """Mean accuracy against severity for each corruption group and over all corruptions (clean at severity 0),
    with published mean accuracies as dashed reference lines (``{label: accuracy}``)."""
    from cifarkit.analysis.corruptions import GROUPS

    fig, ax = plt.subplots(figsize=(PAGE_WIDTH, 3.8))
    sev = [0] + [int(s) for s in table.columns]
    for group, names in GROUPS.items():
        rows = table.loc[[n for n in names if n in table.index]]
        if len(rows):
            ax.plot(sev, [clean_acc * 100] + list(rows.mean().to_numpy() * 100), marker="o", label=f"{group} (mean)")
    ax.plot(
        sev,
        [clean_acc * 100] + list(table.mean().to_numpy() * 100),
        marker="s",
        color="black",
        lw=2,
        label="all 15 (mean)",
    )
    for i, (label, acc) in enumerate((references or {}).items()):
        ax.axhline(acc * 100, ls="--", lw=1, color=f"C{5 + i}", label=f"published: {plain(label)} ({acc:.1%})")
    ax.set_xticks(sev)
    ax.set_ylim(0, 101)
    ax.set_xlabel("severity (0 = clean)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig


def saliency_grid(x, maps, captions, method: str, title=None):
    """Each image above its saliency map overlaid in a heat colour map; ``method`` names how the maps were made."""
    n = len(maps)
    fig, axes = plt.subplots(2, max(n, 1), figsize=_size(max(n, 1) * 1.9, 4.3), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for j in range(n):
        axes[0, j].imshow(x[j], interpolation="nearest")
        axes[0, j].set_title(plain(captions[j]), fontsize=7)
        axes[1, j].imshow(x[j], interpolation="nearest")
        axes[1, j].imshow(maps[j], cmap="jet", alpha=0.5, vmin=0, vmax=1, interpolation="bilinear")
    if n == 0:
        axes[0, 0].text(0.5, 0.5, "no images to show", ha="center", va="center")
    fig.suptitle(title or f"Saliency: {method}")
    fig.tight_layout()
    return fig


def accuracy_comparison(
    frame: pd.DataFrame, num_classes: int | None = None, title: str = "Test accuracy with 95% bootstrap CI"
):
    """Horizontal bars of test accuracy with CI error bars; CNNs highlighted, the best CNN darkest.

    ``frame`` has columns ``method``, ``kind`` ("CNN" or "baseline"), ``test_acc``,
    ``ci_low``, ``ci_high`` and optionally ``best_cnn`` (as made by
    ``cifarkit.analysis.baselines.comparison_frame``). A dashed line marks chance when
    ``num_classes`` is given.
    """
    df = frame.sort_values("test_acc").reset_index(drop=True)
    best = df["best_cnn"] if "best_cnn" in df else pd.Series(False, index=df.index)
    colours = ["tab:red" if b else ("salmon" if k == "CNN" else "tab:gray") for k, b in zip(df["kind"], best)]
    fig, ax = plt.subplots(figsize=(PAGE_WIDTH, 0.5 * len(df) + 1.5))
    err = np.vstack([df["test_acc"] - df["ci_low"], df["ci_high"] - df["test_acc"]]).clip(min=0)
    ax.barh(np.arange(len(df)), df["test_acc"], xerr=err, color=colours, capsize=3, ecolor="black")
    ax.set_yticks(np.arange(len(df)))
    ax.set_yticklabels([plain(f"{m} (CNN)" if k == "CNN" else m) for m, k in zip(df["method"], df["kind"])])
    for i, (a, hi) in enumerate(zip(df["test_acc"], df["ci_high"])):
        ax.text(hi + 0.01, i, f"{a:.1%}", va="center", fontsize=9)
    if num_classes:
        ax.axvline(1 / num_classes, color="black", linestyle="--", linewidth=1, label=f"chance ({1 / num_classes:.0%})")
        ax.legend(loc="best")
    ax.set_xlim(0, float(df["ci_high"].max()) + 0.12)
    ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:.0%}" if v <= 1 else ""))
    ax.set_xlabel("test accuracy")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def _curve_colours(n: int):
    return sns.color_palette("tab10" if n <= 10 else "husl", n)


def _curve_axes(title: str):
    fig, ax = plt.subplots(figsize=(PAGE_WIDTH, 3.9))
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.02)
    ax.set_aspect("equal")
    ax.set_title(plain(title))
    return fig, ax


def roc_curves(curves, class_names, *, show=None, macro=None, points=None, title="ROC curves (test split)"):
    """ROC curves (sensitivity against 1 - specificity), one per class against the rest, and the operating points.

    Args:
        curves: one ``decisions.binary_curves`` dict per class (``decisions.curve_summary()["curves"]``).
        class_names: the display names.
        show: indices of the classes to draw (default: every class with an AUC).
        macro: ``(fpr, tpr)`` of the macro-average curve, drawn black, or None.
        points: ``{class index: {"test": (fpr, tpr), "validation": (fpr, tpr) | None, "label": text}}``:
            the chosen operating point on the test curve (filled) and where it was on validation (hollow).
    """
    show = [i for i in (range(len(curves)) if show is None else show) if curves[i]["auc"] is not None]
    colours = _curve_colours(len(class_names))
    fig, ax = _curve_axes(title)
    ax.plot([0, 1], [0, 1], ls=":", color="grey", lw=1, label="chance (AUC 0.5)")
    many = _class_curves(ax, curves, show, colours, class_names, ("fpr", "tpr"), "auc", "AUC")
    if macro is not None and len(macro[0]):
        mean_auc = np.mean([curves[i]["auc"] for i in range(len(curves)) if curves[i]["auc"] is not None])
        ax.plot(macro[0], macro[1], color="black", lw=2, label=f"macro average (mean AUC {mean_auc:.3f})")
    for i, p in (points or {}).items():
        colour = colours[i] if not many else "black"
        ax.plot(*p["test"], marker="o", ms=7, color=colour, mec="black", ls="none", label=plain(p.get("label", "")))
        if p.get("validation") is not None:
            ax.plot(*p["validation"], marker="o", ms=7, mfc="none", mec=colour, mew=1.5, ls="none")
    if points:
        ax.plot([], [], marker="o", ms=7, mfc="none", mec="grey", ls="none", label="the same threshold on validation")
    ax.set_xlabel("1 - specificity (false-positive rate)")
    ax.set_ylabel("sensitivity (true-positive rate)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8)
    fig.tight_layout()
    return fig


def _class_curves(ax, curves, show, colours, class_names, xy, score, score_name, **style) -> bool:
    """One curve per class in ``show`` (``xy``: the keys of x and y), labelled with its ``score``; with more
    than 10 classes thin, translucent and unlabelled. Returns whether there were that many."""
    many = len(show) > 10
    for i in show:
        c = curves[i]
        ax.plot(
            c[xy[0]],
            c[xy[1]],
            lw=1 if many else 1.6,
            color=colours[i],
            alpha=0.6 if many else 1.0,
            label=None if many else f"{plain(class_names[i])} ({score_name} {c[score]:.3f})",
            **style,
        )
    return many


def pr_curves(curves, class_names, *, show=None, points=None, title="Precision-recall curves (test split)"):
    """Precision (PPV) against recall (sensitivity), one curve per class against the rest, with the average
    precision in the legend; a single class also gets its prevalence (a random score's precision) as a
    dashed line. ``points``: ``{class index: {"test": (recall, precision), "label": text}}``."""
    show = [i for i in (range(len(curves)) if show is None else show) if curves[i]["average_precision"] is not None]
    colours = _curve_colours(len(class_names))
    fig, ax = _curve_axes(title)
    many = _class_curves(
        ax,
        curves,
        show,
        colours,
        class_names,
        ("recall", "precision"),
        "average_precision",
        "AP",
        drawstyle="steps-post",
    )
    if len(show) == 1:
        c = curves[show[0]]
        base = c["n_pos"] / (c["n_pos"] + c["n_neg"])
        ax.axhline(base, ls=":", color="grey", lw=1, label=f"prevalence ({base:.1%}): a random score")
    for i, p in (points or {}).items():
        if p.get("test") is not None and all(v is not None for v in p["test"]):
            colour = colours[i] if not many else "black"
            ax.plot(*p["test"], marker="o", ms=7, color=colour, mec="black", ls="none", label=plain(p.get("label", "")))
    ax.set_xlabel("recall (sensitivity)")
    ax.set_ylabel("precision (PPV)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8)
    fig.tight_layout()
    return fig
