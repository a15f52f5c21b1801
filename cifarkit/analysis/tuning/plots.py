"""Figures of a study for notebook 02_tune: Optuna's matplotlib plots and a slice grid, or why one cannot be drawn."""

from __future__ import annotations

import warnings

import numpy as np

from cifarkit.analysis.axes import whole_numbers

PLOTS = ("history", "intermediate", "importances", "parallel", "slice")


def plot_study(study, kind: str):
    """Draw one of Optuna's matplotlib plots of a study, or say why it cannot be drawn.

    Args:
        study: an ``optuna.Study``.
        kind: ``history`` (value per trial and best so far), ``intermediate``
            (validation accuracy per epoch of every trial, pruned ones included),
            ``importances`` (needs >= 2 complete trials), ``parallel``
            (parallel coordinates) or ``slice`` (value against each parameter).

    Returns:
        ``(figure, None)`` or ``(None, reason)``.
    """
    from optuna.trial import TrialState
    from optuna.visualization import matplotlib as ovm

    if kind not in PLOTS:
        raise ValueError(f"Unknown plot {kind!r}. Known plots: {', '.join(PLOTS)}.")
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if kind == "intermediate":
        if not any(t.intermediate_values for t in study.get_trials(deepcopy=False)):
            return None, "no trial has reported a validation accuracy yet"
    elif not complete:
        return None, "no trial has completed yet (pruned and failed trials have no final value)"
    if kind in ("importances", "parallel", "slice"):
        varying = [
            p for p in {k for t in complete for k in t.params} if len({repr(t.params.get(p)) for t in complete}) > 1
        ]
        if len(complete) < 2 or not varying:
            return (
                None,
                f"needs at least 2 complete trials with different parameters; this study has {len(complete)} complete",
            )
    if kind == "slice":
        return _slice_figure(study, complete), None
    if kind == "parallel":
        return _parallel_figure(complete), None
    funcs = {
        "history": ovm.plot_optimization_history,
        "intermediate": ovm.plot_intermediate_values,
        "importances": ovm.plot_param_importances,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ax = funcs[kind](study)
        except (ValueError, RuntimeError, ZeroDivisionError) as e:
            return None, f"{type(e).__name__}: {e}"
        fig = ax.figure
        if kind == "intermediate":
            if ax.get_legend() is not None:
                ax.get_legend().remove()  # one entry per trial is unreadable
            whole_numbers(ax)
            ax.set_xlabel("epoch")
            ax.set_ylabel("validation accuracy")
            ax.set_title("Validation accuracy after each epoch, one line per trial")
        if kind == "history":
            whole_numbers(ax)
            ax.set_xlabel("trial")
            ax.set_ylabel("validation accuracy")
        fig.tight_layout()
    return fig, None


def show(study, kind: str) -> None:
    """Display a plot of the study in a notebook: interactive in the HTML report with the static figure for
    print (:mod:`cifarkit.analysis.interactive`), or why it cannot be drawn."""
    import matplotlib.pyplot as plt
    from IPython.display import Markdown, display

    from cifarkit.analysis import interactive

    fig, reason = plot_study(study, kind)
    if fig is None:
        display(Markdown(f"Not drawn: {reason}."))
        return
    live = plot_study_interactive(study, kind)
    if live is None:
        plt.show()
    else:
        interactive.show(live, fig, height=420)


def plot_study_interactive(study, kind: str):
    """Optuna's own plotly version of a plot of :func:`plot_study` (for the HTML report), or None when
    :func:`plot_study` cannot draw it either."""
    from optuna.trial import TrialState
    from optuna.visualization import (
        plot_intermediate_values,
        plot_optimization_history,
        plot_parallel_coordinate,
        plot_param_importances,
        plot_slice,
    )

    funcs = {
        "history": plot_optimization_history,
        "intermediate": plot_intermediate_values,
        "importances": plot_param_importances,
        "parallel": plot_parallel_coordinate,
        "slice": plot_slice,
    }
    if kind not in funcs:
        raise ValueError(f"Unknown plot {kind!r}. Known plots: {', '.join(PLOTS)}.")
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) and kind != "intermediate":
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            fig = funcs[kind](study)
        except (ValueError, RuntimeError, ZeroDivisionError):
            return None
    if kind in ("history", "slice", "parallel"):
        fig.update_layout(yaxis_title="validation accuracy")
    return fig


def _axis_values(complete, name):
    """A parameter's values scaled to 0..1 (log scale for a log distribution, choice index for a choice),
    and the labels of its two ends."""
    from optuna.distributions import CategoricalDistribution

    dist = next(t.distributions[name] for t in complete if name in t.distributions)
    raw = [t.params.get(name) for t in complete]
    if isinstance(dist, CategoricalDistribution):
        labels = [str(c) for c in dist.choices]
        pos = np.array([labels.index(str(v)) if v is not None else np.nan for v in raw], dtype=float)
        top = max(len(labels) - 1, 1)
        return pos / top, labels[0], labels[-1]
    lo, hi = float(dist.low), float(dist.high)
    vals = np.array([v if v is not None else np.nan for v in raw], dtype=float)
    if getattr(dist, "log", False):
        vals, lo_t, hi_t = np.log(vals), np.log(lo), np.log(hi)
    else:
        lo_t, hi_t = lo, hi
    return (vals - lo_t) / ((hi_t - lo_t) or 1.0), f"{lo:.3g}", f"{hi:.3g}"


def _parallel_figure(complete):
    """Each complete trial as a line across its parameters (each scaled to its searched range), coloured by
    validation accuracy; the range ends are written under each axis, so no label overlaps another."""
    import matplotlib.pyplot as plt

    from cifarkit.analysis.plots import PAGE_WIDTH

    names = sorted({k for t in complete for k in t.params})
    values = np.array([t.value for t in complete])
    columns = [_axis_values(complete, n) for n in names]
    fig, ax = plt.subplots(figsize=(PAGE_WIDTH, 4.2), layout="constrained")
    cmap = plt.get_cmap("viridis")
    span = (values.max() - values.min()) or 1.0
    for i in np.argsort(values):  # best trials drawn last, on top
        ys = [col[0][i] for col in columns]
        ax.plot(range(len(names)), ys, color=cmap((values[i] - values.min()) / span), lw=1.2, alpha=0.85)
    for j, (_, lo, hi) in enumerate(columns):
        ax.axvline(j, color="grey", lw=0.8)
        ax.text(j, -0.06, lo, ha="center", va="top", fontsize=7)
        ax.text(j, 1.04, hi, ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(len(names)), names, rotation=20, ha="right", fontsize=8)
    ax.tick_params(axis="x", pad=14)
    ax.set_yticks([])
    ax.set_ylim(-0.1, 1.1)
    ax.set_xlim(-0.3, len(names) - 0.7)
    sm = plt.cm.ScalarMappable(cmap=cmap, norm=plt.Normalize(values.min(), values.max()))
    fig.colorbar(sm, ax=ax, label="validation accuracy", shrink=0.8)
    ax.set_title(f"{len(complete)} complete trials across the searched ranges (bottom: low end, top: high end)")
    return fig


def _slice_figure(study, complete, ncols: int = 3):
    """Validation accuracy against each parameter (a grid of scatter plots, colour = trial number)."""
    import matplotlib.pyplot as plt
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    from cifarkit.analysis.plots import PAGE_WIDTH, plain_log_ticks

    names = sorted({k for t in complete for k in t.params})
    nrows = -(-len(names) // ncols)
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(
        nrows,
        min(ncols, len(names)),
        figsize=(PAGE_WIDTH, 2.3 * nrows + 0.6),
        squeeze=False,
        sharey=True,
        layout="constrained",
    )
    numbers = np.array([t.number for t in complete])
    values = np.array([t.value for t in complete])
    for ax, name in zip(axes.flat, names):
        dist = next(t.distributions[name] for t in complete if name in t.distributions)
        xs = [t.params.get(name) for t in complete]
        keep = np.array([x is not None for x in xs])
        if isinstance(dist, CategoricalDistribution):
            labels = [str(c) for c in dist.choices]
            x = np.array([labels.index(str(v)) if v is not None else -1 for v in xs], dtype=float)
            ax.set_xticks(range(len(labels)), labels)
            ax.set_xlim(-0.5, len(labels) - 0.5)
        else:
            x = np.array([v if v is not None else np.nan for v in xs], dtype=float)
            if isinstance(dist, (FloatDistribution, IntDistribution)) and dist.log:
                ax.set_xscale("log")
                plain_log_ticks(ax.xaxis)
        sc = ax.scatter(
            x[keep],
            values[keep],
            c=numbers[keep],
            cmap="viridis",
            s=28,
            edgecolor="k",
            linewidth=0.3,
            vmin=numbers.min(),
            vmax=max(numbers.max(), numbers.min() + 1),
        )
        ax.set_xlabel(name)
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(names) :]:
        ax.set_visible(False)
    for row in axes:
        row[0].set_ylabel("validation accuracy")
    fig.colorbar(sc, ax=axes.ravel().tolist(), label="trial number", shrink=0.8, ticks=MaxNLocator(integer=True))
    fig.suptitle(f"Validation accuracy of {len(complete)} complete trials against each parameter")
    return fig
