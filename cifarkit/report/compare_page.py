"""The comparison report's page: HTML built from :func:`cifarkit.report.compare.compare_runs`, figures embedded.

One self-contained file: CSS inline, figures as ``data:`` URIs, no script, links to the
compared runs' pages only. Every text that comes from data or parameters (run ids,
class names, parameter values, paths) goes through :mod:`cifarkit.escape`. The print
rules (A4, 12 mm margins, figures and tables never split) make ``compare.pdf``.
"""

from __future__ import annotations

import base64
import io
import json
import os
from pathlib import Path
from urllib.parse import quote

from cifarkit import escape
from cifarkit.analysis.axes import whole_numbers
from cifarkit.files import read_json
from cifarkit.report.dashboard_page import GENERATOR_META, data_table, link, written_by_cifarkit
from cifarkit.report.render import format_seconds
from cifarkit.wording import agree

CSS = """
@page { size: A4; margin: 12mm; }
body { font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; font-size: 10pt; line-height: 1.4; color: #1b1b1b;
  max-width: 186mm; margin: 16px auto; padding: 0 12px; }
h1 { font-size: 17pt; margin: 0 0 4pt 0; }
h2 { font-size: 12.5pt; margin: 16pt 0 6pt 0; padding-bottom: 2pt; border-bottom: 1px solid #90a4ae;
  break-after: avoid; page-break-after: avoid; }
p { margin: 3pt 0 6pt 0; }
a { color: #0b4f8a; }
table { border-collapse: collapse; margin: 4pt 0 8pt 0; font-size: 8.5pt; break-inside: avoid;
  page-break-inside: avoid; }
th, td { border: 1px solid #cfd8dc; padding: 2pt 6pt; text-align: left; vertical-align: top; }
td { overflow-wrap: break-word; }
td.label { min-width: 42mm; }
th { background: #eceff1; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.val { font-family: "DejaVu Sans Mono", monospace; font-size: 8pt; max-width: 70mm; overflow-wrap: anywhere; }
th.num { vertical-align: bottom; }
tr.total td { font-weight: 600; background: #f5f5f5; }
figure { margin: 6pt 0 10pt 0; break-inside: avoid; page-break-inside: avoid; }
figure img { display: block; max-width: 100%; height: auto; }
figcaption { font-size: 8.5pt; color: #455a64; margin-top: 2pt; }
.muted { color: #607d8b; font-size: 8.5pt; }
.verdict { background: #f0f4f8; border-left: 4px solid #2f6f4f; padding: 6pt 10pt; margin: 8pt 0 10pt 0;
  break-inside: avoid; page-break-inside: avoid; }
.verdict .headline { font-size: 11.5pt; font-weight: 600; margin: 0 0 4pt 0; }
.verdict ul { margin: 2pt 0 0 0; padding-left: 14pt; }
.keep { break-inside: avoid; page-break-inside: avoid; }
.up { color: #1b5e20; } .down { color: #b71c1c; }
@media print { body { max-width: none; margin: 0; padding: 0; } }
"""

#: Where ``python -m cifarkit compare`` writes by default: ``<out>/compare-<idA>-vs-<idB>/index.html``.
COMPARE_GLOB = "compare-*/index.html"
MARKERS = ("o", "s", "^", "D", "v", "P")
METRIC_ROWS = (
    # key, label, kind (pct, f1, ece, seconds, int)
    ("test_acc", "Test accuracy [95% CI]", "pct"),
    ("val_acc", "Validation accuracy, last epoch", "pct"),
    ("macro_f1", "Macro F1, test", "f1"),
    ("balanced_acc", "Balanced accuracy, test", "pct"),
    ("ece", "ECE, test (lower is better)", "f1"),
    ("train_seconds", "Training time", "seconds"),
    ("epochs", "Epochs trained", "int"),
)


def esc(value) -> str:
    return "" if value is None else escape.html(value)


def pct(value) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def points(value) -> str:
    return "-" if value is None else f"{100 * value:+.2f} points"


def ci_points(ci) -> str:
    return "" if not ci else f"95% CI {100 * ci[0]:+.2f} to {100 * ci[1]:+.2f}"


def _value(kind: str, v) -> str:
    if v is None:
        return "-"
    if kind == "pct":
        return pct(v)
    if kind == "f1":
        return f"{v:.3f}"
    if kind == "seconds":
        return format_seconds(v)
    return str(v)


def _delta(kind: str, v) -> str:
    if v is None:
        return "-"
    if kind == "pct":
        return points(v)
    if kind == "f1":
        return f"{v:+.3f}"
    if kind == "seconds":
        return f"{v:+.1f} s"
    return f"{v:+d}" if isinstance(v, int) else f"{v:+g}"


def _raw(value) -> str:
    """A parameter value as text: JSON for containers, ``-`` for absent."""
    if value is None:
        return "-"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _run_head(run: dict) -> str:
    return f'<th class="num">{esc(run["letter"])}<br><span class="muted">{esc(run["run_id"])}</span></th>'


# ------------------------------------------------------------------ figures
def _png(fig, alt: str) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    width, height = fig.get_size_inches()
    fig.savefig(buf, format="png", dpi=150)
    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    # width in CSS pixels (96 per inch): the figure prints at its own size, fonts at their point sizes
    return f'<img src="data:image/png;base64,{data}" width="{round(width * 96)}" alt="{esc(alt)}">'


def learning_curves_figure(result: dict) -> str:
    """Validation accuracy and loss per epoch, one line per run, labelled by run id."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import PercentFormatter

    from cifarkit.analysis.plots import PAGE_WIDTH

    fig, axes = plt.subplots(1, 2, figsize=(PAGE_WIDTH, 3.0))
    for i, run in enumerate(result["runs"]):
        rows = result["curves"].get(run["letter"]) or []
        label = escape.plain(f"{run['letter']}: {run['run_id']}")
        for ax, key in ((axes[0], "val_acc"), (axes[1], "val_loss")):
            pts = [(r["epoch"], r[key]) for r in rows if r[key] is not None]
            if pts:
                ax.plot(
                    [p[0] for p in pts],
                    [p[1] for p in pts],
                    marker=MARKERS[i % len(MARKERS)],
                    markersize=9 - 1.5 * min(i, 3),  # hollow, larger first: runs that coincide all stay visible
                    markerfacecolor="none",
                    markeredgewidth=1.5,
                    alpha=0.9,
                    label=label,
                )
    for ax, title, ylabel in (
        (axes[0], "Validation accuracy per epoch", "validation accuracy"),
        (axes[1], "Validation loss per epoch", "validation loss"),
    ):
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        whole_numbers(ax)
    axes[0].yaxis.set_major_formatter(PercentFormatter(xmax=1))
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(3, len(labels)), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.1 if handles else 0, 1, 1))
    return _png(fig, "Validation accuracy and loss per epoch of each run")


def per_class_figure(result: dict) -> str:
    """Horizontal bars from zero: each later run's F1 minus run A's, per class in the data's order."""
    import matplotlib.pyplot as plt
    import numpy as np

    from cifarkit.analysis.plots import PAGE_WIDTH

    rows = result["per_class_f1"]
    others = result["runs"][1:]
    k = len(rows)
    fig, ax = plt.subplots(figsize=(PAGE_WIDTH, min(9.0, 1.6 + 0.25 * k * len(others) + 0.3 * (len(others) > 1))))
    height = 0.8 / len(others)
    y = np.arange(k)
    for j, run in enumerate(others):
        deltas = [r["delta"][j] for r in rows]
        ax.barh(
            y - 0.4 + height * (j + 0.5),
            deltas,
            height=height,
            label=escape.plain(f"{run['letter']} ({run['run_id']}) minus A"),
        )
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(y)
    ax.set_yticklabels([escape.plain(r["class"]) for r in rows])
    ax.invert_yaxis()  # the data's first class on top
    span = max([abs(d) for r in rows for d in r["delta"]] + [0.01])
    ax.set_xlim(-1.15 * span, 1.15 * span)
    ax.set_xlabel(f"F1 of {'each run' if len(others) > 1 else 'run B'} minus F1 of run A (test split)")
    ax.set_title("Per-class F1 difference")
    if len(others) > 1:
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=min(3, len(others)), frameon=False)
    fig.tight_layout()
    return _png(fig, "Per-class F1 differences")


# ------------------------------------------------------------------ sections
def _runs_section(result: dict, out_dir: Path) -> str:
    rows = []
    for r in result["runs"]:
        page = Path(r["dir"]) / "index.html"
        where = esc(r["dir"])
        if page.is_file():
            where = f'<a href="{esc(quote(relative_link(page, out_dir)))}">{esc(r["dir"])}</a>'
        rows.append(
            f"<tr><td><b>{esc(r['letter'])}</b></td><td>{esc(r['run_id'])}</td><td>{esc(r['profile'])}</td>"
            f'<td>{esc(r["model"])}</td><td class="num">{esc(r["epochs"])}</td><td class="num">{esc(r["started_at"])}</td>'
            f"<td>{where}</td></tr>"
        )
    return (
        "<table><thead><tr><th>Run</th><th>Run id</th><th>Profile</th><th>Model (03)</th><th>Epochs</th>"
        "<th>Started</th><th>Folder</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
    )


def _verdict_section(result: dict) -> str:
    n = result["test_images"]["n"]
    first = result["runs"][0]["letter"]
    heads = []
    for p in (p for p in result["pairs"] if p["a"] == first):
        cls = "up" if p["ci"][0] > 0 else ("down" if p["ci"][1] < 0 else "")
        heads.append(
            f"Test accuracy {esc(p['b'])} &minus; {esc(p['a'])}: "
            f'<span class="{cls}">{esc(points(p["difference"]))}</span> ({esc(ci_points(p["ci"]))}, paired '
            f"bootstrap); McNemar {esc(p['mcnemar']['p_text'])}."
        )
    head = "<br>".join(heads) + f'<br><span class="muted">On the same {n:,} test images.</span>'
    items = "".join(f"<li>{esc(s)}</li>" for s in result["verdict"])
    return f'<section class="verdict" id="verdict"><p class="headline">{head}</p><ul>{items}</ul></section>'


def _diff_section(result: dict) -> str:
    runs = result["runs"]
    diff = result["diff"]
    rows = []
    for g in diff["groups"]:
        for r in g["rows"]:
            cells = "".join(f'<td class="val">{esc(_raw(v))}</td>' for v in r["values"])
            rows.append(f"<tr><td>{esc(g['group'])}</td><td>{esc(r['name'])}</td>{cells}</tr>")
    heads = "".join(_run_head(r) for r in runs)
    table = (
        f"<table><thead><tr><th>Group</th><th>What</th>{heads}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        if rows
        else "<p>The manifests record no difference.</p>"
    )
    same_line = f"<p><b>The same in every run:</b> {esc('; '.join(diff['same']))}.</p>" if diff["same"] else ""
    return table + same_line


def _metrics_section(result: dict) -> str:
    runs, metrics, pairs = result["runs"], result["metrics"], result["pairs"]
    vs_a = [p for p in pairs if p["a"] == runs[0]["letter"]]
    heads = "".join(_run_head(r) for r in runs) + "".join(
        f'<th class="num">{esc(p["b"])} &minus; {esc(p["a"])}</th>' for p in vs_a
    )
    rows = []
    for key, label, kind in METRIC_ROWS:
        values = [m.get(key) for m in metrics]
        cells = []
        for m, v in zip(metrics, values):
            text = _value(kind, v)
            if key == "test_acc" and m.get("test_acc_ci"):
                lo, hi = m["test_acc_ci"]
                text += f'<br><span class="muted">[{100 * lo:.2f}, {100 * hi:.2f}]%</span>'
            cells.append(f'<td class="num">{text}</td>')
        for j, p in enumerate(vs_a, start=1):
            if key == "test_acc":
                text = f'{esc(points(p["difference"]))}<br><span class="muted">{esc(ci_points(p["ci"]))}</span>'
            else:
                both = values[0] is not None and values[j] is not None
                text = esc(_delta(kind, values[j] - values[0]) if both else "-")
            cells.append(f'<td class="num">{text}</td>')
        rows.append(f'<tr><td class="label">{esc(label)}</td>{"".join(cells)}</tr>')
    b = result["bootstrap"]
    note = (
        f"The difference in test accuracy is computed image by image on the same {result['test_images']['n']:,} test "
        f"images, with a paired bootstrap ({b['n_boot']:,} resamples from {b['n_boot_from']}, seed {b['seed']}); "
        "the other differences are plain differences of what each run recorded, without an interval. Test accuracy, "
        "its CI (the run's own bootstrap), macro F1, balanced accuracy and ECE (before temperature scaling) come from "
        "04_evaluate; validation accuracy, training time and epochs from 03_train."
        + (f" Note: {b['note']}." if b.get("note") else "")
    )
    return (
        f'<div class="keep"><table><thead><tr><th>Metric</th>{heads}</tr></thead><tbody>{"".join(rows)}</tbody>'
        f'</table><p class="muted">{esc(note)}</p></div>'
    )


def _mcnemar_section(result: dict) -> str:
    rows = []
    for p in result["pairs"]:
        mc = p["mcnemar"]
        rows.append(
            f"<tr><td>{esc(p['a'])} vs {esc(p['b'])}</td>"
            f'<td class="num">{p["both_right"]}</td><td class="num">{mc["b"]}</td><td class="num">{mc["c"]}</td>'
            f'<td class="num">{p["both_wrong"]}</td><td class="num">{_statistic(mc)}</td>'
            f'<td>{esc(mc["method"])}</td><td class="num">{esc(mc["p_text"])}</td>'
            f'<td class="num">{esc(points(p["difference"]))}<br><span class="muted">{esc(ci_points(p["ci"]))}'
            "</span></td></tr>"
        )
    head = (
        "<tr><th>Pair X vs Y</th><th>both right</th><th>b: X right, Y wrong</th><th>c: X wrong, Y right</th>"
        "<th>both wrong</th><th>statistic</th><th>test</th><th>p</th><th>Y &minus; X test accuracy</th></tr>"
    )
    return (
        f"<table><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>"
        '<p class="muted">McNemar\'s test uses only the images on which the two runs disagree (b and c): exact '
        "binomial test when b + c &lt; 25, else chi-squared with continuity correction.</p>"
    )


def _statistic(mc: dict) -> str:
    """The exact test's statistic is a count (the smaller of b and c); chi-squared's a real number."""
    return f"{int(mc['statistic'])}" if mc["method"] == "exact" else f"{mc['statistic']:.3f}"


def _per_class_section(result: dict) -> str:
    runs = result["runs"]
    rows = result["per_class_f1"]
    others = runs[1:]
    heads = "".join(_run_head(r) for r in runs) + "".join(
        f'<th class="num">{esc(r["letter"])} &minus; A</th>' for r in others
    )
    body = []
    for r in rows:
        cells = "".join(f'<td class="num">{_value("f1", v)}</td>' for v in r["f1"])
        cells += "".join(f'<td class="num">{_delta("f1", d)}</td>' for d in r["delta"])
        body.append(f"<tr><td>{esc(r['class'])}</td>{cells}</tr>")
    k = len(rows)
    means = [sum(r["f1"][i] for r in rows) / k for i in range(len(runs))]
    sums = result["per_class_delta_sums"]
    total = "".join(f'<td class="num">{v:.3f}</td>' for v in means) + "".join(
        f'<td class="num">{s / k:+.3f}</td>' for s in sums
    )
    body.append(f'<tr class="total"><td>mean (macro F1)</td>{total}</tr>')
    sum_cells = '<td class="num"></td>' * len(runs) + "".join(f'<td class="num">{s:+.3f}</td>' for s in sums)
    body.append(f'<tr class="total"><td>sum of the deltas</td>{sum_cells}</tr>')
    return (
        f"<table><thead><tr><th>Class</th>{heads}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        f"<figure>{per_class_figure(result)}<figcaption>Per-class F1 on the test split, later run minus run A, "
        "classes in the data's order; bars start at zero.</figcaption></figure>"
    )


def _curves_section(result: dict) -> str:
    missing = [r["letter"] for r in result["runs"] if not result["curves"].get(r["letter"])]
    note = (
        f'<p class="muted">No 03_train history recorded for {agree(len(missing), "run", "runs")} {esc(", ".join(missing))}.</p>'
        if missing
        else ""
    )
    return (
        f"<figure>{learning_curves_figure(result)}<figcaption>Validation accuracy and loss after each epoch of "
        f"03_train, one line per run (labelled by run id).{esc(_coinciding(result))}</figcaption></figure>" + note
    )


def _coinciding(result: dict) -> str:
    """A note on the epochs where runs' curves lie on each other (e.g. the same seed's first epochs), or ""."""
    runs = result["runs"]
    notes = []
    for a in range(len(runs)):
        for b in range(a + 1, len(runs)):
            ca, cb = (result["curves"].get(runs[i]["letter"]) or [] for i in (a, b))
            same = [
                x["epoch"]
                for x, y in zip(ca, cb)
                if x["epoch"] == y["epoch"] and (x["val_acc"], x["val_loss"]) == (y["val_acc"], y["val_loss"])
            ]
            if same:
                when = f"epoch {same[0]}" if len(same) == 1 else f"epochs {same[0]}-{same[-1]}"
                notes.append(f"{runs[a]['letter']} and {runs[b]['letter']} coincide at {when}")
    return f" The curves of {'; '.join(notes)}: their markers lie on each other." if notes else ""


def _section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{anchor}"><h2>{esc(title)}</h2>{body}</section>'


def build_page(result: dict, out_dir: Path) -> str:
    """The whole HTML page of a comparison."""
    runs = result["runs"]
    ids = " vs ".join(r["run_id"] for r in runs)
    title = f"Comparison of runs {ids}"
    n = result["test_images"]["n"]
    fp = result["test_images"]["fingerprint"]
    body = [
        f"<h1>{esc(title)}</h1>",
        f'<p class="muted">Written {esc(result["written_at"])} by <code>python -m cifarkit compare</code>. '
        f"{'Both' if len(runs) == 2 else f'All {len(runs)}'} runs were evaluated on the same {n:,} test images (fingerprint {esc(fp[:16])}&hellip;), "
        "so every difference below is paired, image by image.</p>",
        _runs_section(result, out_dir),
        _section("verdict-section", "Verdict", _verdict_section(result)),
        _section("diff", "1. What differs between the runs", _diff_section(result)),
        _section("metrics", "2. Headline metrics", _metrics_section(result)),
        _section("mcnemar", "3. McNemar's test on the same test images", _mcnemar_section(result)),
        _section("per-class", "4. Per-class F1", _per_class_section(result)),
        _section("curves", "5. Learning curves", _curves_section(result)),
    ]
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">\n{GENERATOR_META}\n'
        f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


# ------------------------------------------------------------------ the runs index
def find_comparisons(out_dir: str | os.PathLike) -> list[Path]:
    """The comparison reports in ``out_dir`` (``compare-*/index.html``, written by ``python -m cifarkit compare``)."""
    out_dir = Path(out_dir)
    return sorted(p for p in out_dir.glob(COMPARE_GLOB) if p.is_file() and written_by_cifarkit(p))


def comparisons_section(out_dir: Path) -> str:
    """The runs index's section: the comparison reports found in ``out_dir`` with their headline difference,
    and how to make one."""
    rows = []
    for path in find_comparisons(out_dir):
        result = read_json(path.parent / "compare.json")
        result = result if isinstance(result, dict) else {}
        runs = [r for r in result.get("runs") or [] if isinstance(r, dict)]
        pair = next((p for p in result.get("pairs") or [] if isinstance(p, dict)), {})
        ids = " vs ".join(f"{r.get('letter', '?')}: {r.get('run_id', '?')}" for r in runs)
        diff, ci = pair.get("difference"), pair.get("ci")
        diff_text = ""
        if isinstance(diff, (int, float)):
            diff_text = f"{pair.get('b', 'B')} − {pair.get('a', 'A')}: {100 * diff:+.2f} pp"
            if isinstance(ci, list) and len(ci) == 2 and all(isinstance(v, (int, float)) for v in ci):
                diff_text += f" [{100 * ci[0]:+.2f}, {100 * ci[1]:+.2f}]"
        p_text = (pair.get("mcnemar") or {}).get("p_text", "") if isinstance(pair.get("mcnemar"), dict) else ""
        pdf = path.parent / "compare.pdf"
        links = link(f"{path.parent.name}/index.html", path.parent.name)
        if pdf.is_file():
            links += " &middot; " + link(f"{path.parent.name}/compare.pdf", "PDF")
        rows.append(
            f'<tr><td>{links}</td><td>{esc(ids)}</td><td class="num">{esc(diff_text)}</td>'
            f'<td class="num">{esc(p_text)}</td><td>{esc(result.get("written_at", ""))}</td></tr>'
        )
    table = (
        data_table(
            ("Comparison", "Runs", "Test accuracy difference [paired 95% CI]", "McNemar", "Written"),
            rows,
        )
        if rows
        else '<p class="muted">No comparison reports in this folder yet.</p>'
    )
    return (
        "<h2>Comparisons of runs</h2>"
        + table
        + "<p>To compare runs evaluated on the same test images (parameter diff, paired-bootstrap difference, "
        "McNemar's test, per-class F1, learning curves): <code>python -m cifarkit compare RUN_A RUN_B</code>, "
        f"e.g. <code>python -m cifarkit compare {esc(out_dir.name)}/RUN_A {esc(out_dir.name)}/RUN_B</code>; "
        "the report is written to <code>compare-RUN_A-vs-RUN_B/</code> in this folder.</p>"
    )


def relative_link(target: Path, start: Path) -> str:
    """``target`` relative to ``start`` (a link that survives moving both together), else absolute."""
    try:
        return os.path.relpath(target, start)
    except ValueError:  # another drive (Windows)
        return str(target)
