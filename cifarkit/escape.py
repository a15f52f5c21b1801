"""Putting text that comes from data or parameters into a report, safely.

Class names come from folder names, ``--class-names`` or a CIFAR ``batches.meta``;
paths, model names and parameters come from the command line. None of it is
trusted: every such value reaches a report through one of these helpers.

- :func:`md` for text inside Markdown (``IPython.display.Markdown``): HTML is
  escaped and Markdown punctuation is backslash-escaped, so a name can neither
  open a tag nor make a link or emphasis.
- :func:`code` for a value shown as inline code (a path, a model name): a Markdown code span.
- :func:`html` for text placed in HTML the code builds itself.
- :func:`table` for a pandas table rendered with a ``Styler``: cells and labels escaped.
- :func:`plain` for matplotlib text (titles, labels, captions): ``$`` would start mathtext.
"""

from __future__ import annotations

import html as _html
import re

# CommonMark lets any ASCII punctuation be backslash-escaped; these are the ones that mean something.
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>])")


def html(value) -> str:
    """``value`` as text for HTML content or a quoted attribute (``& < > " '`` escaped)."""
    return _html.escape(str(value), quote=True)


def md(value) -> str:
    """``value`` as literal text inside Markdown: no tag, link, image or emphasis can come out of it."""
    text = str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _MD_SPECIAL.sub(r"\\\1", text)
    return text.replace("\n", " ").replace("\r", " ")


def code(value) -> str:
    """``value`` as inline code inside Markdown: a code span, whose content Markdown shows as text (no tag,
    link or escape is read inside it); the fence is longer than any run of backticks in the value."""
    text = str(value).replace("\n", " ").replace("\r", " ")
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def names(values, sep: str = ", ") -> str:
    """A list of names (classes, models) for Markdown, each escaped."""
    return sep.join(md(v) for v in values)


def plain(value) -> str:
    """``value`` for matplotlib text: a ``$`` is shown as a dollar sign instead of starting mathtext.

    :mod:`cifarkit.analysis.plots` turns mathtext off for every figure (``text.parse_math``), which also covers
    text that does not pass through here (tick labels seaborn sets from class names); ``$`` is escaped only
    while mathtext is on."""
    import matplotlib

    text = str(value)
    return text.replace("$", r"\$") if matplotlib.rcParams.get("text.parse_math", True) else text


def table(frame, formats=None, *, precision: int | None = None):
    """A pandas ``Styler`` of ``frame`` whose cells, index and column labels are HTML-escaped.

    Args:
        frame: a DataFrame (or Series, shown as one column).
        formats: what ``Styler.format`` takes (a format string or a column -> format dict).
        precision: digits for floats without a format.
    """
    import pandas as pd

    if isinstance(frame, pd.Series):
        frame = frame.to_frame()
    styler = frame.style.format(escape="html", precision=precision, na_rep="")  # every cell
    if formats is not None:
        styler = styler.format(formats, escape="html", na_rep="")  # then the given formats on top
    for axis in (0, 1):
        styler = styler.format_index(escape="html", axis=axis)
    return styler
