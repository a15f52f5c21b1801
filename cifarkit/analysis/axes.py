"""Axis habits shared by the report's figures."""

from __future__ import annotations


def whole_numbers(ax, axis: str = "x") -> None:
    """Ticks at whole numbers only, for counts such as epochs and trials.

    matplotlib falls back to fractional ticks (0.96, 0.98, 1.00, ...) when the view holds fewer than two whole
    numbers, as it does for one epoch or one bar; then the view is widened to the unit around the middle value, so
    the single tick reads "1".
    """
    from matplotlib.ticker import MaxNLocator

    target, get_lim, set_lim = (
        (ax.xaxis, ax.get_xlim, ax.set_xlim) if axis == "x" else (ax.yaxis, ax.get_ylim, ax.set_ylim)
    )
    target.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    lo, hi = get_lim()
    if hi - lo < 1:
        middle = round((lo + hi) / 2)
        set_lim(middle - 0.5, middle + 0.5)
