"""User text reaches reports escaped, and a report with active content that the renderer did not write is refused."""

import pandas as pd
import pytest

from cifarkit import escape
from cifarkit.report import safety
from cifarkit.report.key_results import key_results_html

PAYLOADS = [
    '"><img src=x onerror=alert(1)>',
    "<svg onload=alert(2)>",
    "<script>alert(3)</script>",
    "[click](javascript:alert(4))",
    "![x](javascript:alert(5))",
    "`</code><img src=x onerror=alert(6)>`",
    "<a href='javascript:alert(7)'>x</a>",
    "<iframe src=//example.org></iframe>",
]


def _tags(html: str) -> set[str]:
    from html.parser import HTMLParser

    class Tags(HTMLParser):
        found: set = set()

        def handle_starttag(self, tag, attrs):
            self.found.add(tag)

    parser = Tags()
    parser.found = set()
    parser.feed(html)
    return parser.found


def _rendered_markdown(text: str) -> str:
    """What nbconvert makes of a Markdown output: mistune, as the HTML exporter uses it."""
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    return markdown2html_mistune(text)


@pytest.mark.parametrize("payload", PAYLOADS)
def test_markdown_helpers_neutralize_each_payload(payload):
    for text in (escape.md(payload), escape.code(payload), f"**Classes:** {escape.names([payload, 'cat'])}"):
        html = _rendered_markdown(text)
        safety.check_html(html)  # no tag, handler or javascript: URL survives
        assert not _tags(html) & {"a", "img", "svg", "script", "iframe"}, html


@pytest.mark.parametrize("payload", PAYLOADS)
def test_tables_escape_cells_and_labels(payload):
    frame = pd.DataFrame({payload: [payload, "ok"], "acc": [0.5, 0.25]}, index=[payload, "b"])
    html = escape.table(frame, {"acc": "{:.1%}"}).to_html()
    safety.check_html(html)
    assert "50.0%" in html and not _tags(html) & {"a", "img", "svg", "script", "iframe"}


@pytest.mark.parametrize(
    "html, found",
    [
        ("<p>ok</p><img src=x onerror=alert(1)>", "event handler onerror="),
        ("<svg onload=alert(2)></svg>", "event handler onload="),
        ("<script>alert(3)</script>", "the renderer did not write"),
        ("<script src='https://cdn.example/x.js'></script>", "<script src="),
        ("<a href=' javascript:alert(4)'>x</a>", "javascript: URL"),
        ("<iframe src='x'></iframe>", "<iframe>"),
    ],
)
def test_check_html_refuses_active_content(html, found):
    with pytest.raises(safety.UnsafeReportError) as err:
        safety.check_html("<html><body>" + html + "</body></html>")
    assert found in str(err.value)


def test_check_html_allows_the_renderers_own_scripts_and_data_blocks():
    own = "(function () { document.title = 'x'; })();"
    page = f"<script>{own}</script><script type='application/json'>{{\"a\": 1}}</script>&lt;script&gt;"
    safety.check_html(page, allowed_scripts=[own])
    safety.check_html(page, allowed_scripts=[safety.script_digest(own)])
    with pytest.raises(safety.UnsafeReportError):
        safety.check_html(page)


def test_plain_keeps_matplotlib_from_reading_mathtext():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.set_title(escape.plain("$\\frac{1}{0$ costs"))  # unbalanced mathtext would raise when drawn
    fig.canvas.draw()
    plt.close(fig)


def test_key_results_box_escapes_names_from_the_run():
    metrics = {
        "model": "<svg onload=alert(1)>",
        "recipe": "fast",
        "test_acc": 0.9,
        "test_acc_ci": [0.89, 0.91],
        "val_acc": 0.9,
        "epochs_run": 3,
        "config": {"batch_size": 8},
        "train_seconds": 1.0,
        "median_images_per_s": 10.0,
        "history": [],
    }
    html = key_results_html("03_train", metrics)
    safety.check_html(html)
    assert "90.00%" in html and "(95% CI 89.00 to 91.00%)" in html and "&lt;svg" in html


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0.28, "0.3 s at"),
        (44.6, "45 s at"),
        (8305.0, "138.4 min at"),
        (18_720.0, "5.2 h at"),
        (4 * 86_400, "4.0 days at"),
    ],
)
def test_key_results_training_time_reads_as_a_duration(seconds, shown):
    """A smoke run's 0.28 s is not "0 s"; the replicate run's 8,305 s reads in minutes, a paper-length run in
    hours or days (the same format as the printed time estimates)."""
    metrics = {"model": "fastnet", "recipe": "fast", "train_seconds": seconds, "median_images_per_s": 1007.0}
    assert f"{shown} 1,007 images/s" in key_results_html("03_train", metrics)


@pytest.mark.parametrize("payload", PAYLOADS)
def test_key_results_box_escapes_the_group_regex_and_reports_groups(payload):
    metrics = {
        "counts": {"train": {"a": 4}, "val": {"a": 1}, "test": {"a": 1}},
        "total_images": 6,
        "num_classes": 1,
        "groups": {"grouped": True, "source": f"regex '{payload}'", "per_split": {"train": 3, "val": 1, "test": 1}},
        "near_duplicates": {"max_distance": 6, "pairs": {"train-test": 2}, "images": {"train-test": 2, "val-test": 1}},
    }
    html = key_results_html("01_explore_data", metrics)
    safety.check_html(html)
    assert _tags(html) <= {"section", "h2", "table", "tr", "th", "td", "ul", "li"}
    assert "5 groups by regex " in html
    assert ": 3 training, 1 validation, 1 test</td>" in html
    assert "No group has images in more than one split." in html
    assert "Up to 3 test images have a near duplicate" in html


def test_figures_show_a_dollar_in_a_class_name_as_text_even_where_no_helper_escaped_it():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cifarkit.analysis import plots  # noqa: F401  (its import sets the figures' style: no mathtext)

    fig, ax = plt.subplots()
    ax.set_xticks([0, 1], ["$\\frac{1}{0$", "ok"])  # a class name from a folder, as seaborn sets tick labels
    ax.set_title(escape.plain("costs $5 and $6"))
    fig.canvas.draw()  # mathtext would raise on the unbalanced label
    assert ax.get_title() == "costs $5 and $6"  # shown as written, not escaped twice
    plt.close(fig)


def test_the_p_value_heatmap_writes_p_values_as_the_tables_do():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cifarkit.analysis import plots, stats

    names = ["fastnet", "resnet20"]
    p = pd.DataFrame([[1.0, 2e-9], [2e-9, 1.0]], index=names, columns=names)
    p.loc["fastnet", "fastnet"] = 0.0312
    fig = plots.pvalue_heatmap(p)
    shown = sorted(t.get_text() for ax in fig.axes for t in ax.texts)
    assert shown == sorted([stats.p_value_text(0.0312), "< 0.001", "< 0.001", "1.000"])
    colourbar = _tick_labels(fig)[1]
    assert {"1", "0.1", "0.01", "0.001"} <= set(colourbar)  # plain numbers, not mathtext markup
    assert all(t.get_rotation() == 30 for t in fig.axes[0].get_xticklabels())  # long model names do not collide
    plt.close(fig)


def _tick_labels(fig) -> list[list[str]]:
    """Every axis' drawn tick labels, per axes (a colorbar is an axes of its own)."""
    fig.canvas.draw()
    return [[t.get_text() for t in ax.get_xticklabels() + ax.get_yticklabels() if t.get_text()] for ax in fig.axes]


def test_log_scaled_axes_are_labelled_with_numbers_not_raw_mathtext():
    """The module turns mathtext off (a "$" in a class name is text), so matplotlib's own log labels would print
    as "$\\mathdefault{10^{2}}$": every log axis the figures draw is labelled with plain numbers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cifarkit.analysis import plots

    table = pd.DataFrame(
        {
            "model": ["fastnet/fast/4ep", "fastnet/fast/4ep/seed1", "resnet20/default/3ep"],
            "test_acc": [0.646, 0.641, 0.474],
            "ci_low": [0.633, 0.628, 0.460],
            "ci_high": [0.659, 0.654, 0.488],
            "mflops": [236.0, 236.0, 41.0],
            "train_seconds": [30.5, 31.2, 19.9],
        }
    )
    for cost in ("mflops", "train_seconds"):
        fig = plots.accuracy_vs_cost(table, cost, [True, False, True])
        labels = [label for axis in _tick_labels(fig) for label in axis]
        assert labels and not any("$" in label or "mathdefault" in label for label in labels), labels
        assert any(label in ("20", "50", "100", "200") for label in labels), labels
        # two seeds of one architecture lie close (same FLOPs, near-equal time): their labels stack instead of
        # printing over each other; the lone model's stays beside its point
        offsets = {a.get_text(): a.xyann for a in fig.axes[0].texts}
        assert offsets["fastnet/fast/4ep"] == offsets["resnet20/default/3ep"] == (5, 5)
        assert offsets["fastnet/fast/4ep/seed1"] == (5, -6)
        plt.close(fig)
