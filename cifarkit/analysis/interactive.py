"""Interactive figures for the HTML reports, with the static figure kept for print.

:func:`show` displays a plotly figure as a placeholder plus its data in a
``<script type="application/json">`` block (data, never code), and the matplotlib
version of the same figure as an image. The report renderer
(:mod:`cifarkit.report.render`) adds plotly.js (embedded, so the page works
offline) and one fixed loader script to pages that hold such a figure; the
screen then shows the interactive figure and the printed PDF the static one. In
a live notebook without the renderer, the static image shows.
"""

from __future__ import annotations

import base64
import io
import json
import re
import uuid

#: The class of a placeholder the renderer's loader fills with a plotly figure.
PLOTLY_CLASS = "ck-plotly"


def _json_for_script(data: dict) -> str:
    """JSON that is safe inside a ``<script>`` element: no ``</script>``, no comment opener, no line separators."""
    text = json.dumps(data, separators=(",", ":"))
    for raw, escaped in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(raw, escaped)
    return text


def _png_data_uri(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def figure_html(plotly_figure, static_figure=None, *, height: int = 480) -> str:
    """The HTML of an interactive figure and (for print and plain notebooks) its static image.

    Args:
        plotly_figure: a ``plotly.graph_objects.Figure`` (its text is data: the loader never evaluates it).
        static_figure: a matplotlib figure of the same content, or None.
        height: the interactive figure's height in pixels.
    """
    from cifarkit import escape

    key = uuid.uuid4().hex[:12]
    spec = json.loads(plotly_figure.to_json())
    spec.setdefault("layout", {}).update(height=height, autosize=True)
    parts = [
        f'<div class="ck-interactive"><div id="ck-plot-{key}" class="{PLOTLY_CLASS}" data-ck-figure="ck-json-{key}" '
        f'style="height:{int(height)}px"></div>',
        f'<script type="application/json" id="ck-json-{key}">{_json_for_script(spec)}</script></div>',
    ]
    if static_figure is not None:
        title = static_figure.axes[0].get_title() if static_figure.axes else ""
        parts.append(f'<img class="ck-static" alt="{escape.html(title)}" src="{_png_data_uri(static_figure)}">')
    return "".join(parts)


_STATIC = re.compile(r'<img class="ck-static"[^>]*?src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


def static_png(html_text: str) -> str | None:
    """The base64 PNG of the static figure inside an HTML output made by :func:`figure_html` (None if there is
    none): what a printed document, a thumbnail or the study book shows in place of the interactive figure."""
    if f'class="{PLOTLY_CLASS}"' not in html_text:
        return None
    match = _STATIC.search(html_text)
    return match.group(1) if match else None


def show(plotly_figure, static_figure=None, *, height: int = 480) -> None:
    """Display :func:`figure_html` in the notebook and close the static figure (so it is not shown twice)."""
    import matplotlib.pyplot as plt
    from IPython.display import HTML, display

    display(HTML(figure_html(plotly_figure, static_figure, height=height)))
    if static_figure is not None:
        plt.close(static_figure)


def embedding_figure(points, labels, class_names, title: str, hover=None):
    """A plotly scatter of 2-D embedding points, one trace per class; hover shows the class and the image index."""
    import numpy as np
    import plotly.graph_objects as go

    from cifarkit import escape

    fig = go.Figure()
    for c, name in enumerate(escape.html(n) for n in class_names):  # plotly reads tags in text: escaped
        sel = np.flatnonzero(np.asarray(labels) == c)
        text = [f"{name}<br>image {i}" for i in (hover[sel] if hover is not None else sel)]
        fig.add_trace(
            go.Scattergl(
                x=points[sel, 0],
                y=points[sel, 1],
                mode="markers",
                name=str(name),
                text=text,
                hoverinfo="text",
                marker={"size": 4, "opacity": 0.7},
            )
        )
    fig.update_layout(
        title=escape.html(title), xaxis={"visible": False}, yaxis={"visible": False}, legend={"itemsizing": "constant"}
    )
    return fig


def confusion_figure(cm, class_names, title: str):
    """A plotly heatmap of the confusion matrix normalized by true class; hover shows counts and shares."""
    import numpy as np
    import plotly.graph_objects as go

    cm = np.asarray(cm)
    totals = cm.sum(axis=1, keepdims=True)
    share = np.divide(cm, totals, out=np.zeros(cm.shape, dtype=float), where=totals > 0)
    from cifarkit import escape

    names = [escape.html(c) for c in class_names]  # plotly reads tags in text: escaped
    text = [
        [
            f"true {names[i]}, predicted {names[j]}: {cm[i, j]} images ({share[i, j]:.1%} of the class)"
            for j in range(len(names))
        ]
        for i in range(len(names))
    ]
    fig = go.Figure(
        go.Heatmap(
            z=share,
            x=names,
            y=names,
            text=text,
            hoverinfo="text",
            colorscale="Blues",
            zmin=0,
            zmax=1,
            colorbar={"title": "share of true class"},
        )
    )
    fig.update_layout(
        title=escape.html(title), xaxis={"title": "predicted"}, yaxis={"title": "true", "autorange": "reversed"}
    )
    return fig
