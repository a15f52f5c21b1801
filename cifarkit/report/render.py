"""Render executed notebooks as reports: self-contained HTML, and PDF printed from it by Chromium.

The HTML uses nbconvert's ``lab`` template with everything that would reach the
network at view time removed (require.js, MathJax and mermaid come from a CDN
in the stock template); figures are embedded as data URIs and the CSS is
inlined, so a report opens offline. Each report starts with the run's key facts
and ends with its provenance (both passed in by the runner, built with
:func:`report_facts` and :func:`report_provenance`).

The PDF is the same HTML printed by headless Chromium (Debian's ``chromium``
package, or ``$CIFARKIT_CHROMIUM``). Print CSS keeps figures whole and on one
page and wraps long code and text lines; a small inline script (:data:`PRINT_SCRIPT`,
no network) zooms tables wider than the page to fit when printing starts. Without Chromium, :func:`render_pdf` raises :class:`ChromiumNotFound`,
which the runner reports as a skipped PDF (the HTML is still written).
"""

from __future__ import annotations

import html
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from cifarkit import files

#: How cifarkit starts Chromium: headless, no sandbox (it runs as root in containers), and nothing that would
#: reach the network (update checks, sync, component downloads).
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--mute-audio",
)
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
INSTALL_HINT = (
    "Install Chromium to get PDF reports: `sudo apt-get install chromium` on Debian/Ubuntu "
    "(`chromium-browser` on older Ubuntu), or point $CIFARKIT_CHROMIUM at a Chrome/Chromium binary."
)

# Screen and print styles added after the lab template's own CSS.
REPORT_CSS = """
img { max-width: 100%; height: auto; }
.jp-OutputArea-output pre, .jp-InputArea-editor pre { white-space: pre-wrap; overflow-wrap: anywhere; }
.ck-facts, .ck-provenance { font-family: var(--jp-content-font-family, sans-serif); font-size: 13px;
  color: #212121; border: 1px solid #cfd8dc; border-radius: 4px; padding: 8px 14px; margin: 8px 0 18px 0; }
.ck-facts { background: #f5f9fc; }
.ck-key { font-family: var(--jp-content-font-family, sans-serif); font-size: 14px; color: #1b2a1b;
  border: 2px solid #81c784; border-radius: 4px; padding: 8px 14px; margin: 8px 0 12px 0; background: #f1f8e9; }
.ck-key h2 { font-size: 16px; margin: 4px 0 8px 0; }
.ck-key ul { margin: 6px 0 2px 18px; padding: 0; }
.ck-provenance { background: #fafafa; margin-top: 28px; }
.ck-facts h2, .ck-provenance h2 { font-size: 15px; margin: 4px 0 8px 0; }
.ck-provenance h3 { font-size: 13px; margin: 10px 0 4px 0; }
.ck-kv { border-collapse: collapse; width: 100%; table-layout: auto; }
.ck-kv th { text-align: left; font-weight: 600; padding: 2px 12px 2px 0; vertical-align: top; white-space: nowrap; width: 1%; }
.ck-kv td { padding: 2px 0; vertical-align: top; overflow-wrap: anywhere; }
.ck-kv code { font-size: 12px; }
.ck-status-failed { color: #b71c1c; font-weight: 600; }
/* code is folded: a reader sees results; the toggle (or --code for the PDF) shows it */
@media screen { body.ck-fold-code .jp-CodeCell .jp-Cell-inputWrapper { display: none; } }
.ck-code-toggle { position: fixed; top: 8px; right: 12px; z-index: 10; font: 12px sans-serif; padding: 3px 8px;
  border: 1px solid #90a4ae; border-radius: 4px; background: #eceff1; color: #263238; cursor: pointer; }
.ck-keep { break-inside: avoid; page-break-inside: avoid; }
/* interactive figures on screen, their static images in print */
@media screen { img.ck-static { display: none; } }
@media print { .ck-interactive { display: none !important; } img.ck-static { display: block; } }
.ck-status-ok { color: #1b5e20; font-weight: 600; }
@page { size: A4; margin: 12mm; }
@media print {
  body, main { margin: 0 !important; padding: 0 !important; }
  .ck-code-toggle { display: none !important; }
  body.ck-print-fold .jp-CodeCell .jp-Cell-inputWrapper { display: none !important; }
  .jp-Cell { padding: 2px 0 !important; }
  /* nothing may be clipped: scrolling boxes become plain boxes that grow */
  .jp-Cell, .jp-Cell-inputWrapper, .jp-Cell-outputWrapper, .jp-InputArea, .jp-InputArea-editor,
  .jp-OutputArea, .jp-OutputArea-child, .jp-OutputArea-output, .jp-RenderedHTMLCommon, pre {
    overflow: visible !important; max-height: none !important; }
  .jp-OutputArea-child { display: block !important; }
  /* prompts take a column of the page; the code and its outputs get the full width instead */
  .jp-InputPrompt, .jp-OutputPrompt, .jp-OutputArea-prompt { display: none !important; }
  .jp-InputArea-editor, .jp-OutputArea-output { display: block !important; width: auto !important; }
  pre, code, .jp-OutputArea-output pre, .jp-InputArea-editor pre, .cm-editor pre {
    white-space: pre-wrap !important; overflow-wrap: anywhere !important; word-break: break-word; }
  /* 7.5pt monospace fits about 115 characters across A4, so 110-column text (a Keras summary) keeps its lines */
  .jp-OutputArea-output pre { font-size: 7.5pt !important; line-height: 1.3 !important; }
  .jp-InputArea-editor pre, .jp-InputArea-editor .highlight pre { font-size: 8pt !important; line-height: 1.3 !important; }
  /* figures: never wider than the page, never taller than one page, never split */
  img, svg, canvas { max-width: 100% !important; max-height: 255mm !important; width: auto; height: auto !important;
    break-inside: avoid; page-break-inside: avoid; }
  .jp-RenderedImage, .jp-OutputArea-child, figure { break-inside: avoid; page-break-inside: avoid; }
  /* text output (a model's layer table, a training log) may continue on the next page, also under its heading
     (the heading keeps its first lines): kept whole, 03's model summary moved and left two pages half empty */
  .jp-OutputArea-child:has(pre):not(:has(img, svg, canvas, table)),
  .ck-keep:has(pre):not(:has(img, svg, canvas, table)) { break-inside: auto; page-break-inside: auto; }
  /* tables: cells keep their lines whole and PRINT_SCRIPT zooms a table that is wider than the page;
     a much wider one first wraps its cells between words (ck-words), or anywhere (ck-wrap) */
  table { table-layout: auto !important; font-size: 8pt !important; }
  th, td { white-space: nowrap; padding: 1px 4px !important; }
  table.ck-words th, table.ck-words td { white-space: normal; }
  table.ck-wrap th, table.ck-wrap td { overflow-wrap: anywhere; }
  /* key/value boxes (provenance, key results): values such as a long command wrap inside the box */
  table.ck-kv td, table.ck-kv td code { white-space: normal !important; overflow-wrap: anywhere !important; }
  h1, h2, h3, h4 { break-after: avoid; page-break-after: avoid; }
  .ck-facts, .ck-provenance, .ck-key { break-inside: avoid; font-size: 9pt; }
}
"""

# Fits wide tables to the printed page when printing starts (Chromium's print-to-pdf, or Ctrl+P in a
# browser): print CSS is applied by then, so widths are the page's. Inline, so still no network.
PRINT_SCRIPT = """
(function () {
  function fit() {
    document.querySelectorAll("table").forEach(function (t) {
      reset1(t);
      var avail = t.parentElement ? t.parentElement.clientWidth : 0;
      if (!avail || t.scrollWidth <= avail) return;
      // much too wide: let cells wrap between words first, then zoom; wrap inside words only below 1/4
      if (avail / t.scrollWidth < 0.6) t.classList.add("ck-words");
      if (avail / t.scrollWidth < 0.25) t.classList.add("ck-wrap");
      if (t.scrollWidth > avail) t.style.zoom = String(Math.floor(1000 * avail / t.scrollWidth) / 1000);
    });
  }
  function reset1(t) { t.style.zoom = ""; t.classList.remove("ck-words", "ck-wrap"); }
  function reset() { document.querySelectorAll("table").forEach(reset1); }
  var print = window.matchMedia ? window.matchMedia("print") : null;
  if (print && print.addEventListener) print.addEventListener("change", function (e) { e.matches ? fit() : reset(); });
  window.addEventListener("beforeprint", fit);
  window.addEventListener("afterprint", reset);
})();
"""

# The "Show code" button of a report whose code is folded. Inline, no network.
TOGGLE_SCRIPT = """
(function () {
  var button = document.getElementById("ck-code-toggle");
  if (!button) return;
  button.addEventListener("click", function () {
    var folded = document.body.classList.toggle("ck-fold-code");
    button.textContent = folded ? "Show code" : "Hide code";
  });
})();
"""

# Draws the interactive figures of cifarkit.analysis.interactive from their JSON data blocks. Inline, no network.
PLOTLY_LOADER = """
(function () {
  function draw() {
    if (!window.Plotly) return;
    document.querySelectorAll("div.ck-plotly").forEach(function (div) {
      var data = document.getElementById(div.getAttribute("data-ck-figure"));
      if (!data || div.getAttribute("data-ck-drawn")) return;
      var spec = JSON.parse(data.textContent);
      Plotly.newPlot(div, spec.data || [], spec.layout || {}, {responsive: true, displaylogo: false});
      div.setAttribute("data-ck-drawn", "1");
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw); else draw();
})();
"""


def plotly_bundle() -> str:
    """The plotly.js that the installed plotly package ships (embedded whole, so a report works offline)."""
    import plotly

    return (Path(plotly.__file__).parent / "package_data" / "plotly.min.js").read_text(encoding="utf-8")


# nbconvert's lab template without the CDN scripts, plus our CSS and the facts/provenance blocks.
_TEMPLATE_NAME = "cifarkit_report.html.j2"
_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_css -%}<style type="text/css">{{ resources.cifarkit.css }}</style>{%- endblock html_head_css -%}
{%- block body_header -%}
<body class="jp-Notebook {{ resources.cifarkit.body_class }}" data-jp-theme-light="true" data-jp-theme-name="JupyterLab Light">
<main>
{{ resources.cifarkit.header }}
{%- endblock body_header -%}
{%- block any_cell scoped -%}
{%- if cell.metadata.get("ck_keep_start") -%}<div class="ck-keep">{%- endif -%}
{{ super() }}
{%- if cell.metadata.get("ck_keep_end") -%}</div>{%- endif -%}
{%- endblock any_cell -%}
{% block body_footer %}
{{ resources.cifarkit.footer }}
{%- for script in resources.cifarkit.scripts %}
<script>{{ script }}</script>
{%- endfor %}
{{ super() }}
{% endblock body_footer %}
"""


class ChromiumNotFound(FileNotFoundError):
    """No Chromium/Chrome binary to print PDFs with."""


# ------------------------------------------------------------------ facts and provenance
def format_seconds(seconds) -> str:
    """``12.3 s``, ``4 min 05 s``, ``2 h 10 min``; ``-`` for ``None``."""
    if seconds is None:
        return "-"
    seconds = float(seconds)
    if seconds < 90:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(int(round(seconds)), 60)
    if minutes < 90:
        return f"{minutes} min {sec:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def report_facts(manifest: dict, name: str, entry: dict, metrics: dict | None = None) -> list[tuple[str, str]]:
    """The key facts shown at the top of a notebook's report.

    Args:
        manifest: the run's manifest (``profile``, ``data``, ``seed``, ...).
        name: the notebook name, e.g. ``"03_train"``.
        entry: the manifest's entry for this notebook (``parameters``, ``started_at``,
            ``execute_seconds``, ``status``, ``error``).
        metrics: what the notebook recorded, if anything (its ``model`` is used when
            the notebook has no ``MODEL`` parameter).

    Returns:
        ``[(label, text), ...]`` in display order.
    """
    params = entry.get("parameters") or {}
    metrics = metrics or {}
    data = manifest.get("data") or {}
    data_text = str(data.get("source") or "-")
    if data.get("sha256"):
        data_text += f" (sha256 {data['sha256'][:12]}...)"
    if params.get("DATA_SUBSET"):
        data_text += f"; subset of {params['DATA_SUBSET']} images per class per split"
    model = params.get("MODEL") or metrics.get("model")
    trained_here = [
        m.get("name") for m in metrics.get("models") or [] if isinstance(m, dict) and m.get("origin") != "03_train"
    ]
    if trained_here:
        model = (
            f"trains {', '.join(map(str, trained_here))}; compares them with {manifest.get('model') or 'the run model'}"
        )
    elif not model and manifest.get("model"):
        model = f"{manifest['model']} (the run's model; this notebook trains none)"
    seed = params.get("SEED", manifest.get("seed"))
    facts = [
        ("Run", str(manifest.get("run_id", "-"))),
        (
            "Profile",
            f"{manifest.get('profile', '-')}"
            + (f" - {manifest['profile_description']}" if manifest.get("profile_description") else ""),
        ),
        ("Data", data_text),
        ("Model", str(model or "-")),
        ("Seed", str(seed if seed is not None else "-")),
        ("Executed", str(entry.get("started_at") or "-")),
        ("Duration", format_seconds(entry.get("execute_seconds")) + " to execute this notebook"),
    ]
    if params.get("IMAGE_SIZE") not in (None, 32):
        facts.append(("Image size", f"{params['IMAGE_SIZE']} px"))
    if params.get("CLASS_NAMES"):
        facts.append(("Class names", str(params["CLASS_NAMES"])))
    status = entry.get("status")
    if status and status != "ok":
        facts.append(("Status", f"{status}: {entry.get('error') or ''}".strip()))
    return facts


def report_provenance(manifest: dict, entry: dict) -> dict[str, list[tuple[str, str]]]:
    """What produced a report, from the manifest: ``{section title: [(label, text), ...]}``.

    A notebook run by a later session of a resumed run (``entry["resumed"] = k``)
    shows that session's versions, hardware and git commit.
    """
    sessions = manifest.get("resumed_at") or []
    k = entry.get("resumed")
    if isinstance(k, int) and 0 < k <= len(sessions):
        manifest = {
            **manifest,
            **{key: sessions[k - 1][key] for key in ("versions", "hardware", "git") if sessions[k - 1].get(key)},
        }
    git = manifest.get("git") or {}
    data = manifest.get("data") or {}
    commit = git.get("commit") or "unknown (not a git checkout)"
    if git.get("dirty"):
        commit += " (with uncommitted changes)"
    run = [
        ("Command", manifest.get("command") or "-"),
        ("Git commit", commit),
        ("Keras backend", manifest.get("keras_backend") or "-"),
        ("Started", manifest.get("started_at") or "-"),
    ]
    for resumed in manifest.get("resumed_at") or []:
        run.append(("Resumed", f"{resumed.get('at', '-')}: {resumed.get('command', '')}".strip()))
    data_rows = [("Source", str(data.get("source") or "-"))]
    if data.get("path"):
        data_rows.append(("Path", str(data["path"])))
    data_rows.append(("sha256", str(data.get("sha256") or "- (not a single file)")))
    if data.get("size_bytes"):
        data_rows.append(("Size", f"{data['size_bytes']:,} bytes"))
    params = entry.get("parameters") or {}
    return {
        "Run": run,
        "Parameters of this notebook": [(k, repr(v)) for k, v in params.items()],
        "Data": data_rows,
        "Versions": [(k, str(v)) for k, v in (manifest.get("versions") or {}).items()],
        "Hardware": [
            (k, ", ".join(v) if isinstance(v, list) else str(v)) for k, v in (manifest.get("hardware") or {}).items()
        ],
    }


def _kv_table(rows) -> str:
    body = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows)
    return f'<table class="ck-kv">{body}</table>'


def facts_html(facts: list[tuple[str, str]], title: str = "About this report") -> str:
    return f'<section class="ck-facts" id="ck-facts"><h2>{html.escape(title)}</h2>{_kv_table(facts)}</section>'


def provenance_html(sections: dict) -> str:
    parts = [f"<h3>{html.escape(title)}</h3>{_kv_table(rows)}" for title, rows in sections.items() if rows]
    return '<section class="ck-provenance" id="ck-provenance"><h2>Provenance</h2>' + "".join(parts) + "</section>"


# ------------------------------------------------------------------ HTML
def _has_interactive(nb) -> bool:
    """Whether a cell's HTML output holds an interactive figure (:mod:`cifarkit.analysis.interactive`)."""
    from cifarkit.analysis.interactive import PLOTLY_CLASS

    marker = f'class="{PLOTLY_CLASS}"'
    for cell in nb.cells:
        for output in cell.get("outputs") or []:
            html_text = (output.get("data") or {}).get("text/html")
            if html_text and marker in ("".join(html_text) if isinstance(html_text, list) else html_text):
                return True
    return False


#: A heading cell with more prose than this (characters; about a third of an A4 page) is not tied to the output
#: after it: its own prose keeps the heading company (h1-h4 break-after: avoid), and tying a long introduction to
#: a table moved 02's title, introduction and search-space table whole to page 2, leaving page 1 two-thirds empty.
KEEP_PROSE_CHARS = 800


def _keep_headings_with_content(nb) -> None:
    """Mark each Markdown cell that holds a heading, and the next cell that shows something, as one block
    that printing keeps on one page (``ck_keep_start``/``ck_keep_end`` in the cells' metadata); a heading
    followed by more than :data:`KEEP_PROSE_CHARS` of prose in its own cell is left to flow, and so is the
    notebook's title (a level-1 heading), which opens the report under its boxes: tied to the first output, 03's
    title, introduction, setup and settings table went whole to page 2 and left page 1 two-thirds empty."""
    cells = nb.cells
    for i, cell in enumerate(cells):
        lines = cell.source.splitlines() if cell.cell_type == "markdown" else []
        if not any(ln.lstrip().startswith("#") for ln in lines):
            continue
        if any(ln.lstrip().startswith("# ") for ln in lines):  # the title
            continue
        if len("\n".join(ln for ln in lines if not ln.lstrip().startswith("#")).strip()) > KEEP_PROSE_CHARS:
            continue
        end = next(
            (j for j in range(i + 1, len(cells)) if cells[j].cell_type == "markdown" or cells[j].get("outputs")), None
        )
        if end is None or cells[end].cell_type == "markdown" or cells[end].metadata.get("ck_keep_start"):
            continue
        cell.metadata["ck_keep_start"] = True
        cells[end].metadata["ck_keep_end"] = True


def render_html(
    notebook_path: str | os.PathLike,
    html_path: str | os.PathLike,
    *,
    no_code: bool = False,
    print_code: bool = False,
    title: str | None = None,
    header_html: str = "",
    footer_html: str = "",
) -> Path:
    """Render an executed notebook to one self-contained HTML file (written atomically).

    Code cells are folded: the page shows their outputs, and a "Show code" button shows the
    code. Printing (the PDF) leaves the code out unless ``print_code``. A heading is kept on
    one page with the output that follows it. The finished page is checked by
    :func:`cifarkit.report.safety.check_html` before it is written.

    Args:
        notebook_path: the executed ``.ipynb``; it is read, never modified.
        html_path: where to write the HTML.
        no_code: leave code cells and prompts out entirely, keep their outputs.
        print_code: keep the code in the printed PDF (e.g. a coursework appendix).
        title: the page title (default: the notebook's file name).
        header_html: trusted HTML placed first in the page (see :func:`facts_html`).
        footer_html: trusted HTML placed last in the page (see :func:`provenance_html`).

    Returns:
        ``html_path``.

    Raises:
        UnsafeReportError: the page would hold script the renderer did not put there.
    """
    import nbformat
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    from cifarkit.report import safety

    notebook_path = Path(notebook_path)
    nb = nbformat.read(str(notebook_path), as_version=4)
    _keep_headings_with_content(nb)
    exporter = HTMLExporter(
        extra_loaders=[DictLoader({_TEMPLATE_NAME: _TEMPLATE})],
        template_file=_TEMPLATE_NAME,
        exclude_input=no_code,
        exclude_input_prompt=no_code,
        exclude_output_prompt=no_code,
        embed_images=True,
    )
    scripts = [PRINT_SCRIPT] + ([] if no_code else [TOGGLE_SCRIPT])
    if _has_interactive(nb):
        scripts += [plotly_bundle(), PLOTLY_LOADER]
    toggle = "" if no_code else '<button id="ck-code-toggle" class="ck-code-toggle" type="button">Show code</button>'
    body_class = "" if no_code else "ck-fold-code" + ("" if print_code else " ck-print-fold")
    resources = {
        "metadata": {"name": title or notebook_path.stem},
        "cifarkit": {
            "css": REPORT_CSS,
            "scripts": scripts,
            "header": toggle + header_html,
            "footer": footer_html,
            "body_class": body_class,
        },
    }
    body, _ = exporter.from_notebook_node(nb, resources=resources)
    safety.check_html(body, allowed_scripts=scripts)
    return files.atomic_write_text(html_path, body)


# ------------------------------------------------------------------ PDF
def find_chromium() -> str | None:
    """The Chromium binary to print with: ``$CIFARKIT_CHROMIUM``, else the first of
    chromium, chromium-browser, google-chrome(-stable), chrome on ``PATH``; ``None`` if none."""
    env = os.environ.get("CIFARKIT_CHROMIUM")
    if env:
        return env if (os.path.isfile(env) and os.access(env, os.X_OK)) else shutil.which(env)
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def chromium_version(chromium: str | None = None) -> str | None:
    """``"Chromium 156.0.8078.108 ..."`` or ``None`` when there is no Chromium."""
    chromium = chromium or find_chromium()
    if not chromium:
        return None
    try:
        out = subprocess.run([chromium, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = [ln for ln in out.stdout.splitlines() if ln.strip()]
    return lines[-1].strip() if lines else None


def render_pdf(
    html_path: str | os.PathLike, pdf_path: str | os.PathLike, *, chromium: str | None = None, timeout: float = 300
) -> Path:
    """Print an HTML report to PDF with headless Chromium (A4, no header/footer; written atomically).

    Args:
        html_path: a self-contained HTML file (:func:`render_html`).
        pdf_path: where to write the PDF.
        chromium: the browser binary (default: :func:`find_chromium`).
        timeout: seconds before the print is abandoned.

    Returns:
        ``pdf_path``.

    Raises:
        ChromiumNotFound: no Chromium is installed (the message says how to install it).
        RuntimeError: Chromium ran but wrote no PDF (the message carries its last output lines).
    """
    chromium = chromium or find_chromium()
    if not chromium:
        raise ChromiumNotFound(f"No Chromium found on PATH (looked for {', '.join(CHROMIUM_NAMES)}). {INSTALL_HINT}")
    html_path = Path(html_path).resolve()
    if not html_path.is_file():
        raise FileNotFoundError(f"Cannot print {html_path} to PDF: the file does not exist. Render the HTML first.")
    pdf_path = Path(pdf_path)
    pdf_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=pdf_path.parent, prefix=f".{pdf_path.name}.", suffix=".tmp")
    os.close(fd)
    os.unlink(tmp)  # Chromium creates the file itself
    try:
        with tempfile.TemporaryDirectory(prefix="cifarkit-chromium-") as profile:
            cmd = [
                chromium,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                "--no-pdf-header-footer",
                f"--print-to-pdf={tmp}",
                html_path.as_uri(),
            ]
            env = dict(os.environ, HOME=profile)  # keep Chromium's caches out of the user's home
            try:
                out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
            except subprocess.TimeoutExpired as exc:
                raise RuntimeError(f"Chromium did not finish printing {html_path.name} within {timeout:g} s.") from exc
        with open(tmp, "rb") if os.path.exists(tmp) else open(os.devnull, "rb") as f:
            ok = f.read(5) == b"%PDF-"
        if out.returncode != 0 or not ok:
            tail = "\n".join((out.stderr or "").strip().splitlines()[-5:])
            raise RuntimeError(
                f"Chromium ({chromium}) failed to print {html_path.name} to PDF "
                f"(exit code {out.returncode}). Its last messages:\n{tail}"
            )
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        os.replace(tmp, pdf_path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return pdf_path
