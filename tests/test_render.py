"""Reports: offline HTML and PDF printed by real headless Chromium, checked with poppler and pypdf.

"Nothing is cut off" is checked on the PDF itself: pypdf follows every page's
content stream (``q``/``Q``/``cm`` and nested form XObjects) to the ``Do`` that
paints each image, maps the image's unit square through the current matrix and
requires the result to lie inside the page's printable area (A4 less the 12 mm
margins of the print CSS). A figure pushed past the right edge, or split over a
page break, would be painted (partly) outside that area, or painted twice. Words
are checked the same way with ``pdftotext -bbox``, and a line of numbered tokens
and a 40-column table must come out whole.

Without Chromium or poppler these tests skip with the reason, except on CI
(``CIFARKIT_REQUIRE_SERVICES=1``), where they fail.
"""

import base64
import io
import json
import re
import subprocess

import nbformat
import numpy as np
import pytest
from conftest import require_tool
from PIL import Image

from cifarkit.report import render, runner

MM = 72 / 25.4
MARGIN = 12 * MM  # @page margin in render.REPORT_CSS


def require(tool: str) -> str:
    """The path of ``tool`` (``chromium`` means :func:`render.find_chromium`); skip, or fail on CI, without it."""
    return require_tool(tool)


# ------------------------------------------------------------------ PDF inspection
def _mul(a, b):
    """PDF matrices [a b c d e f] (row vectors): the product a x b."""
    return (
        a[0] * b[0] + a[1] * b[2],
        a[0] * b[1] + a[1] * b[3],
        a[2] * b[0] + a[3] * b[2],
        a[2] * b[1] + a[3] * b[3],
        a[4] * b[0] + a[5] * b[2] + b[4],
        a[4] * b[1] + a[5] * b[3] + b[5],
    )


def image_placements(pdf_path):
    """Every image painted in the PDF: ``[(page_number, (x0, y0, x1, y1), (pixel_w, pixel_h), page_box)]``."""
    from pypdf import PdfReader
    from pypdf.generic import ContentStream

    reader = PdfReader(str(pdf_path))
    found = []

    def walk(stream, resources, ctm, page_no, box):
        resources = resources.get_object() if resources is not None else {}
        xobjects = resources.get("/XObject")
        xobjects = xobjects.get_object() if xobjects is not None else {}
        stack, m = [], ctm
        for operands, op in ContentStream(stream, reader).operations:
            if op == b"q":
                stack.append(m)
            elif op == b"Q":
                m = stack.pop()
            elif op == b"cm":
                m = _mul(tuple(float(v) for v in operands), m)
            elif op == b"Do":
                xo = xobjects[operands[0]].get_object()
                if xo.get("/Subtype") == "/Image":
                    corners = [(x * m[0] + y * m[2] + m[4], x * m[1] + y * m[3] + m[5]) for x in (0, 1) for y in (0, 1)]
                    xs, ys = [c[0] for c in corners], [c[1] for c in corners]
                    found.append(
                        (page_no, (min(xs), min(ys), max(xs), max(ys)), (int(xo["/Width"]), int(xo["/Height"])), box)
                    )
                elif xo.get("/Subtype") == "/Form":
                    fm = tuple(float(v) for v in xo.get("/Matrix", [1, 0, 0, 1, 0, 0]))
                    walk(xo, xo.get("/Resources", resources), _mul(fm, m), page_no, box)

    for i, page in enumerate(reader.pages, 1):
        box = tuple(float(v) for v in page.mediabox)
        contents = page.get_contents()
        if contents is not None:
            walk(contents, page.get("/Resources"), (1, 0, 0, 1, 0, 0), i, box)
    return found


def assert_images_inside(pdf_path, expected_count=None):
    placements = image_placements(pdf_path)
    assert placements, f"no image is painted in {pdf_path}"
    if expected_count is not None:  # one paint per figure: a figure split over two pages would be painted twice
        assert len(placements) == expected_count, (len(placements), expected_count)
    for page_no, (x0, y0, x1, y1), (w, h), (bx0, by0, bx1, by1) in placements:
        where = f"image {w}x{h} px on page {page_no} at ({x0:.1f}, {y0:.1f}, {x1:.1f}, {y1:.1f}) pt"
        assert bx0 + MARGIN - 1 <= x0 and x1 <= bx1 - MARGIN + 1, f"{where} leaves the printable width"
        assert by0 + MARGIN - 1 <= y0 and y1 <= by1 - MARGIN + 1, f"{where} leaves the printable height"
        assert x1 - x0 > 20 and y1 - y0 > 5, f"{where} is painted too small to see"
        # not squeezed: the printed shape has the picture's aspect ratio
        assert abs((x1 - x0) / (y1 - y0) - w / h) <= 0.03 * (w / h), f"{where} is distorted"
    return placements


def pdf_pages(pdf_path) -> int:
    out = subprocess.run([require("pdfinfo"), str(pdf_path)], capture_output=True, text=True, check=True).stdout
    return int(re.search(r"^Pages:\s+(\d+)", out, re.M).group(1))


def pdfimages_rows(pdf_path):
    out = subprocess.run(
        [require("pdfimages"), "-list", str(pdf_path)], capture_output=True, text=True, check=True
    ).stdout
    rows = [ln.split() for ln in out.splitlines()[2:] if ln.strip()]
    return [r for r in rows if r[2] == "image"]  # soft masks (alpha) are listed as "smask"


def pdf_words(pdf_path):
    """``[(page, word, xMin, yMin, xMax, yMax, page_w, page_h)]`` from ``pdftotext -bbox``."""
    out = subprocess.run(
        [require("pdftotext"), "-bbox", str(pdf_path), "-"], capture_output=True, text=True, check=True
    ).stdout
    words = []
    for n, (pw, ph, body) in enumerate(
        re.findall(r'<page width="([\d.]+)" height="([\d.]+)">(.*?)</page>', out, re.S), 1
    ):
        for x0, y0, x1, y1, w in re.findall(
            r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">(.*?)</word>', body
        ):
            words.append((n, w, float(x0), float(y0), float(x1), float(y1), float(pw), float(ph)))
    return words


def pdf_text(pdf_path, first=None, last=None) -> str:
    cmd = [require("pdftotext")] + (["-f", str(first)] if first else []) + (["-l", str(last)] if last else [])
    return subprocess.run(cmd + [str(pdf_path), "-"], capture_output=True, text=True, check=True).stdout


# ------------------------------------------------------------------ a notebook with hard content
def _png(width, height, color) -> str:
    img = Image.new("RGB", (width, height), color)
    arr = np.asarray(img).copy()
    arr[:6, :] = arr[-6:, :] = arr[:, :6] = arr[:, -6:] = (0, 0, 0)  # a frame: cut edges show on the page image
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


TOKENS = " ".join(f"tok{i:04d}" for i in range(1, 151))
COLUMNS = [f"col_{i:02d}" for i in range(40)]


@pytest.fixture(scope="module")
def hard_notebook(tmp_path_factory):
    """An executed-looking notebook whose outputs would overflow a naive print: a 2400 px wide and a
    2400 px tall figure, a 1,300-character line, a 40-column table, an error, and TeX."""
    import pandas as pd

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    table = pd.DataFrame(np.arange(3 * 40).reshape(3, 40), columns=COLUMNS).to_html()
    code = lambda src, outputs, n: nbformat.v4.new_code_cell(src, outputs=outputs, execution_count=n)
    out = nbformat.v4.new_output
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Render check\nInline TeX stays readable as text: $a^2 + b^2$."),
        code("print(TOKENS)  # CODE_MARKER " + "x" * 200, [out("stream", name="stdout", text=TOKENS + "\n")], 1),
        code(
            "show_wide()",
            [out("display_data", data={"image/png": _png(2400, 300, (200, 40, 40)), "text/plain": "<wide figure>"})],
            2,
        ),
        code(
            "show_tall()",
            [out("display_data", data={"image/png": _png(300, 2400, (40, 120, 200)), "text/plain": "<tall figure>"})],
            3,
        ),
        code("table", [out("execute_result", data={"text/html": table, "text/plain": "table"}, execution_count=4)], 4),
        code(
            "1 / 0",
            [
                out(
                    "error",
                    ename="ZeroDivisionError",
                    evalue="division by zero",
                    traceback=["ZeroDivisionError: division by zero"],
                )
            ],
            5,
        ),
    ]
    path = tmp_path_factory.mktemp("hard") / "09_hard.ipynb"
    nbformat.write(nb, str(path))
    return path


MANIFEST = {
    "run_id": "20260101-000000-smoke",
    "profile": "smoke",
    "profile_description": "tiny",
    "seed": 0,
    "data": {"source": "synthetic:40", "sha256": None},
    "command": "run_all.py --profile smoke",
    "git": {"commit": "0123abc", "dirty": False},
    "versions": {"python": "3.11", "keras": "3.15"},
    "hardware": {"cpu_count": 2},
    "keras_backend": "torch",
    "started_at": "2026-01-01T00:00:00+0000",
}
ENTRY = {
    "parameters": {"MODEL": "resnet20", "SEED": 7, "DATA_SUBSET": 20},
    "started_at": "2026-01-01T00:00:05+0000",
    "execute_seconds": 12.5,
    "status": "ok",
}


def _render(nb_path, tmp_path, no_code=False):
    header = render.facts_html(render.report_facts(MANIFEST, "09_hard", ENTRY))
    footer = render.provenance_html(render.report_provenance(MANIFEST, ENTRY))
    return render.render_html(
        nb_path,
        tmp_path / ("nocode.html" if no_code else "report.html"),
        no_code=no_code,
        header_html=header,
        footer_html=footer,
    )


def test_html_is_self_contained_and_carries_facts_and_provenance(hard_notebook, tmp_path):
    text = _render(hard_notebook, tmp_path).read_text()
    # nothing is fetched when the page is viewed: no external script, stylesheet, image, font or import
    assert not re.search(r"<script[^>]*\ssrc=", text), "a script is loaded from elsewhere"
    assert not re.search(r"<link[^>]*href=", text), "a stylesheet is loaded from elsewhere"
    assert not re.search(r"<img[^>]*src=\"(?!data:)", text)
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", text) and "@import" not in text
    assert "cdnjs" not in text and "mathjax" not in text.lower()
    assert text.count('src="data:image/png;base64,') == 2
    # key facts first, provenance last, with the run's values
    facts, first_cell, provenance = (
        text.index('id="ck-facts"'),
        text.index("Render check"),
        text.index('id="ck-provenance"'),
    )
    assert facts < first_cell < text.index("ZeroDivisionError") < provenance
    for value in ("20260101-000000-smoke", "synthetic:40", "resnet20", "12.5 s", "0123abc", "3.15"):
        assert value in text
    assert re.search(r"<th>Seed</th><td>7</td>", text)
    assert "CODE_MARKER" in text and "$a^2 + b^2$" in text


def test_no_code_hides_code_keeps_outputs(hard_notebook, tmp_path):
    text = _render(hard_notebook, tmp_path, no_code=True).read_text()
    assert "CODE_MARKER" not in text and "show_wide()" not in text
    assert "tok0150" in text and text.count('src="data:image/png;base64,') == 2 and 'id="ck-facts"' in text


def test_pdf_keeps_every_figure_line_and_column_on_the_page(hard_notebook, tmp_path):
    require("chromium")
    html = _render(hard_notebook, tmp_path)
    pdf = render.render_pdf(html, tmp_path / "report.pdf")
    assert pdf.read_bytes()[:5] == b"%PDF-" and not list(tmp_path.glob(".report.pdf.*"))  # no temp file left
    assert pdf_pages(pdf) >= 2
    assert len(pdfimages_rows(pdf)) == 2
    placements = assert_images_inside(pdf, expected_count=2)
    (_, wide, _, box), (_, tall, _, _) = sorted(placements, key=lambda p: p[2][1])  # by pixel height
    printable_w, printable_h = box[2] - 2 * MARGIN, box[3] - 2 * MARGIN
    assert wide[2] - wide[0] > 0.9 * printable_w  # shrunk to the page width, not left at 2400 px
    assert tall[3] - tall[1] <= printable_h + 1  # shrunk to one page height
    words = pdf_words(pdf)
    assert words
    for page, word, x0, y0, x1, y1, pw, ph in words:
        assert 0 <= x0 and x1 <= pw - MARGIN + 1 and 0 <= y0 and y1 <= ph, f"{word!r} on page {page} is cut off"
    text = " ".join(w[1] for w in words)
    assert all(f"tok{i:04d}" in text for i in range(1, 151)), "the long output line lost tokens"
    assert all(c in text for c in COLUMNS), "the wide table lost columns"
    assert "ZeroDivisionError" in text and "Provenance" in text and "About" in text


def test_pdf_without_chromium_says_how_to_install(hard_notebook, tmp_path, monkeypatch):
    monkeypatch.setenv("CIFARKIT_CHROMIUM", str(tmp_path / "no-such-browser"))
    assert render.find_chromium() is None
    html = _render(hard_notebook, tmp_path)
    with pytest.raises(render.ChromiumNotFound, match=r"apt-get install chromium"):
        render.render_pdf(html, tmp_path / "x.pdf")
    assert not (tmp_path / "x.pdf").exists()


# ------------------------------------------------------------------ a real run
@pytest.fixture(scope="module")
def explore_run(tmp_path_factory):
    require("chromium")
    out = tmp_path_factory.mktemp("runs")
    return runner.run_study("smoke", data="synthetic:40", out=out, only=["01"], log=lambda *a: None)


@pytest.mark.notebook
def test_run_writes_a_pdf_per_notebook_with_every_figure_whole(explore_run, tmp_path):
    assert explore_run.ok, explore_run.notebooks[0].error
    run_dir = explore_run.run_dir
    manifest = json.loads((run_dir / "manifest.json").read_text())
    entry = manifest["notebooks"]["01_explore_data"]
    assert entry["outputs"]["pdf"] == "01_explore_data.pdf" and entry["pdf_skipped"] is None
    assert entry["render_seconds"]["html"] > 0 and entry["render_seconds"]["pdf"] > 0
    assert manifest["renderers"]["pdf"].startswith(("Chromium", "Google Chrome"))
    assert manifest["totals"]["render_percent_of_execute"] > 0
    pdf = run_dir / "01_explore_data.pdf"
    nb = json.loads((run_dir / "01_explore_data.ipynb").read_text())
    figures = sum(
        "image/png" in o.get("data", {}) or 'class="ck-static"' in "".join(o.get("data", {}).get("text/html", ""))
        for c in nb["cells"]
        for o in c.get("outputs", [])
    )  # an interactive figure prints its static image
    assert figures >= 6
    assert pdf_pages(pdf) >= 2
    assert len(pdfimages_rows(pdf)) == figures  # every figure is in the PDF, once
    assert_images_inside(pdf, expected_count=figures)
    first, last = pdf_text(pdf, 1, 1), pdf_text(pdf, pdf_pages(pdf), pdf_pages(pdf))
    assert "About this report" in first and manifest["run_id"] in first and "synthetic:40" in first
    assert "Provenance" in last and manifest["git"]["commit"][:12] in last.replace("\n", "")


@pytest.mark.notebook
def test_code_is_left_out_of_the_pdf_unless_asked_for(explore_run, tmp_path):
    run_dir = explore_run.run_dir
    nb = run_dir / "01_explore_data.ipynb"
    html = render.render_html(nb, tmp_path / "nc.html", no_code=True)
    pdf = render.render_pdf(html, tmp_path / "nc.pdf")
    coded = render.render_pdf(render.render_html(nb, tmp_path / "c.html", print_code=True), tmp_path / "c.pdf")
    default, with_code, without = pdf_text(run_dir / "01_explore_data.pdf"), pdf_text(coded), pdf_text(pdf)
    assert "resolve_run_dir" in with_code and "resolve_run_dir" not in without
    assert "resolve_run_dir" not in default  # the run's own PDF: code folded away
    assert "resolve_run_dir" in (run_dir / "01_explore_data.html").read_text()  # the HTML keeps it behind a toggle
    assert "Exact duplicates" in without  # the prose and outputs stay
    assert pdf_pages(pdf) <= pdf_pages(coded)
    assert (
        len(pdfimages_rows(pdf)) == len(pdfimages_rows(coded)) == len(pdfimages_rows(run_dir / "01_explore_data.pdf"))
    )


def test_a_tall_text_output_under_a_heading_starts_on_the_page_it_follows(tmp_path):
    """A model's layer table (80 lines of text) under its heading, after half a page of prose: it continues on
    the next page instead of moving there whole and leaving the rest of the first page empty, and the
    heading stays with its first lines (figures stay whole: the tests above)."""
    require("chromium")
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    prose = "\n\n".join(f"Paragraph {i}: " + "words of prose " * 30 for i in range(4))
    layers = "".join(f"layer{i:03d} (Conv2D)   (None, 32, 32, 64)   {i * 1000:>9,}\n" for i in range(80))
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Long text\n" + prose),
        nbformat.v4.new_markdown_cell("## The model\nThe layer-by-layer summary."),
        nbformat.v4.new_code_cell(
            "model.summary()", outputs=[nbformat.v4.new_output("stream", name="stdout", text=layers)], execution_count=1
        ),
    ]
    path = tmp_path / "10_long.ipynb"
    nbformat.write(nb, str(path))
    pdf = render.render_pdf(render.render_html(path, tmp_path / "long.html"), tmp_path / "long.pdf")
    first = pdf_text(pdf, 1, 1)
    assert "Paragraph 3" in first and "The model" in first and "layer000" in first  # heading and table start here
    assert "layer079" in pdf_text(pdf, 2, pdf_pages(pdf))  # and the table goes on


def test_a_heading_with_a_long_introduction_stays_on_the_page_it_follows(tmp_path):
    """A title with a long introduction in its own cell, then a table, below a box that fills half a page: the
    title and its introduction stay on page 1 and the table follows where it fits (tying the introduction to
    the table moved all three to page 2 and left page 1 half empty, as 02's report did)."""
    require("chromium")
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    filler = "\n\n".join(f"Box line {i}: " + "words of prose " * 30 for i in range(4))
    intro = "\n\n".join(f"Intro {i}: " + "words of prose " * 25 for i in range(3))
    assert len(intro) > render.KEEP_PROSE_CHARS
    rows = "".join(f"<tr><td>row{i:02d}</td><td>{i}</td></tr>" for i in range(45))
    table = f"<table><tr><th>parameter</th><th>value</th></tr>{rows}</table>"
    nb.cells = [
        nbformat.v4.new_markdown_cell(filler),
        nbformat.v4.new_markdown_cell("# The title\n" + intro),
        nbformat.v4.new_code_cell(
            "show()",
            outputs=[nbformat.v4.new_output("display_data", data={"text/html": table})],
            execution_count=1,
        ),
    ]
    path = tmp_path / "11_intro.ipynb"
    nbformat.write(nb, str(path))
    pdf = render.render_pdf(render.render_html(path, tmp_path / "intro.html"), tmp_path / "intro.pdf")
    first = pdf_text(pdf, 1, 1)
    assert "Box line 3" in first and "The title" in first and "Intro 2" in first  # before: from page 2 on
    assert "row44" in pdf_text(pdf, 1, pdf_pages(pdf))
    # a heading with a short caption is still kept with what it introduces
    short = nbformat.v4.new_notebook()
    short.cells = [nbformat.v4.new_markdown_cell("## A figure\nOne line."), nb.cells[2]]
    render._keep_headings_with_content(short)
    assert short.cells[0].metadata.get("ck_keep_start") and short.cells[1].metadata.get("ck_keep_end")
    # the notebook's title with a short introduction flows too: tied to 03's setup output, the two went whole to
    # page 2 under the report's boxes
    title = nbformat.v4.new_notebook()
    setup = nbformat.v4.new_code_cell("show()", outputs=nb.cells[2].outputs, execution_count=1)
    title.cells = [nbformat.v4.new_markdown_cell("# 03 · Training\n\nOne short paragraph."), setup]
    render._keep_headings_with_content(title)
    assert not title.cells[0].metadata.get("ck_keep_start") and not title.cells[1].metadata.get("ck_keep_end")
