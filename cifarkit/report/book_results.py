"""The study book's Results: each executed notebook's own prose and outputs, without code, numbered.

The executed notebooks (``<run>/NN_name.ipynb``) are read, never modified. Of each
notebook the book keeps its Markdown cells (a ``##`` heading becomes a numbered
subsection, the prose stays) and its outputs: figures as embedded PNG, HTML tables,
Markdown, and plain text that is short. It leaves out all code, the parameters cell
papermill injected, error tracebacks and everything written to stderr (warnings,
progress bars). Figures and tables are numbered through the whole book, each with a
caption taken from the nearest heading before it.

:class:`Outline` (the numbered headings the table of contents lists) and
:class:`Numbering` (the figures and tables) are shared by every part of the book.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from cifarkit import escape
from cifarkit.analysis import interactive

#: Plain-text outputs longer than this are left out of the book (the notebook's own report has them).
MAX_TEXT_LINES = 25
MAX_TEXT_CHARS = 3000
#: Lines that never reach the book: progress bars, tracebacks and warnings.
_NOISE = re.compile(r"it/s|s/it|Traceback|Warning|\r")
_OBJECT_REPR = re.compile(r"^<[\w.]+ (object|at 0x)|^<Figure size")
_SKIP_TAGS = {"parameters", "injected-parameters"}


def slug(text: str) -> str:
    plain = re.sub(r"<[^>]+>", "", str(text)).lower()
    return re.sub(r"[^a-z0-9]+", "-", plain).strip("-")[:60] or "section"


def strip_tags(html_text: str) -> str:
    return re.sub(r"<[^>]+>", "", html_text)


class Outline:
    """The book's numbered headings (h2 = ``3``, h3 = ``3.1``, h4 = ``3.1.2``), for the table of contents."""

    def __init__(self):
        self.entries: list[tuple[int, str, str, str]] = []  # (depth 0-2, number, title HTML, anchor)
        self._counters = [0, 0, 0]
        self._anchors: set[str] = set()

    def anchor(self, wanted: str) -> str:
        base, n = slug(wanted), 1
        anchor = base
        while anchor in self._anchors:
            n += 1
            anchor = f"{base}-{n}"
        self._anchors.add(anchor)
        return anchor

    def heading(self, level: int, title_html: str, *, anchor: str | None = None, numbered: bool = True) -> str:
        """An ``<hN>`` with an id, recorded for the TOC; ``title_html`` is trusted (escaped by the caller)."""
        depth = level - 2
        anchor = self.anchor(anchor or title_html)
        number = ""
        if numbered:
            self._counters[depth] += 1
            self._counters[depth + 1 :] = [0] * (2 - depth)
            number = ".".join(str(c) for c in self._counters[: depth + 1])
        self.entries.append((depth, number, title_html, anchor))
        num = f'<span class="num">{number}</span> ' if number else ""
        return f'<h{level} id="{anchor}">{num}{title_html}</h{level}>'


@dataclass
class Numbering:
    """Figures and tables, numbered in the order they appear: ``[(number, anchor, caption HTML), ...]``."""

    figures: list[tuple[int, str, str]] = field(default_factory=list)
    tables: list[tuple[int, str, str]] = field(default_factory=list)

    def add(self, kind: str, caption_html: str) -> tuple[int, str]:
        items = self.figures if kind == "figure" else self.tables
        n = len(items) + 1
        anchor = f"{'fig' if kind == 'figure' else 'tab'}-{n}"
        items.append((n, anchor, caption_html))
        return n, anchor


def markdown_html(text: str) -> str:
    """Markdown to HTML (raw HTML kept: the notebooks escape every value from data with ``cifarkit.escape``)."""
    import mistune

    return mistune.create_markdown(escape=False, plugins=["table", "strikethrough"])(text)


def inline_markdown(text: str) -> str:
    html_text = markdown_html(text).strip()
    return re.sub(r"^<p>(.*)</p>$", r"\1", html_text, flags=re.S)


# ------------------------------------------------------------------ reading a notebook
@dataclass
class Block:
    """One piece of a notebook's results: ``kind`` is heading, prose, figure, table, html or text."""

    kind: str
    html: str
    heading: str = ""  # the nearest heading before it (plain text), for captions
    level: int = 0  # headings: 1 for ``#``, 2 for ``##``...


def _markdown_blocks(source: str, heading: str) -> tuple[list[Block], str]:
    blocks, chunk, fenced = [], [], False

    def flush():
        text = "\n".join(chunk).strip()
        if text:
            blocks.append(Block("prose", markdown_html(text), heading))
        chunk.clear()

    for line in source.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        match = None if fenced else re.match(r"^(#{1,6})\s+(.*?)\s*#*\s*$", line)
        if match:
            flush()
            title = inline_markdown(match.group(2))
            heading = strip_tags(title)
            blocks.append(Block("heading", title, heading, len(match.group(1))))
        else:
            chunk.append(line)
    flush()
    return blocks, heading


def _clean_text(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip() and not _NOISE.search(ln)]
    text = "\n".join(lines)
    if not text or len(lines) > MAX_TEXT_LINES or len(text) > MAX_TEXT_CHARS:
        return ""
    return text


def _joined(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value or "")


def _output_block(out: dict, heading: str) -> Block | None:
    data = out.get("data") or {}
    if data.get("image/png"):
        return Block("figure", f"data:image/png;base64,{_joined(data['image/png']).strip()}", heading)
    if data.get("image/jpeg"):
        return Block("figure", f"data:image/jpeg;base64,{_joined(data['image/jpeg']).strip()}", heading)
    static = interactive.static_png(_joined(data.get("text/html")))
    if static:  # an interactive figure: the book, like print, shows its static image
        return Block("figure", f"data:image/png;base64,{static}", heading)
    if _joined(data.get("text/html")).strip():
        body = _joined(data["text/html"])
        return Block("table" if "<table" in body else "html", body, heading)
    if _joined(data.get("text/markdown")).strip():
        body = markdown_html(_joined(data["text/markdown"]))
        return Block("table" if "<table" in body else "prose", body, heading)
    text = _clean_text(_joined(data.get("text/plain")))
    if text and not _OBJECT_REPR.match(text):
        return Block("text", escape.html(text), heading)
    return None


def _code_blocks(cell: dict, heading: str) -> list[Block]:
    if _SKIP_TAGS & set((cell.get("metadata") or {}).get("tags") or []):
        return []
    blocks, stream = [], []

    def flush():
        text = _clean_text("".join(stream))
        if text:
            blocks.append(Block("text", escape.html(text), heading))
        stream.clear()

    for out in cell.get("outputs") or []:
        kind = out.get("output_type")
        if kind == "stream":
            if out.get("name") == "stdout":
                stream.append(_joined(out.get("text")))
            continue
        flush()
        if kind in ("display_data", "execute_result"):
            block = _output_block(out, heading)
            if block:
                blocks.append(block)
    flush()
    return blocks


def notebook_blocks(path) -> list[Block]:
    """The results of an executed notebook, in order, without code, injected parameters, errors or stderr."""
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    blocks, heading = [], ""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            new, heading = _markdown_blocks(cell.source, heading)
            blocks.extend(new)
        elif cell.cell_type == "code":
            blocks.extend(_code_blocks(cell, heading))
    return blocks


# ------------------------------------------------------------------ rendering
def _captions(blocks: list[Block], title: str) -> dict[int, str]:
    """Caption text per figure/table block: its heading and notebook, "(2 of 3)" when a heading has several."""
    groups: dict[tuple[str, str], list[int]] = {}
    section = ""
    for i, b in enumerate(blocks):
        if b.kind == "heading":
            section = "" if b.level == 1 else b.heading
        if b.kind in ("figure", "table"):
            groups.setdefault((b.kind, section or "Overview"), []).append(i)
    out = {}
    for (_, section), members in groups.items():
        for k, i in enumerate(members, 1):
            part = f", {k} of {len(members)}" if len(members) > 1 else ""
            out[i] = f"{escape.html(section)} ({escape.html(title)}{part})"
    return out


def _width_class(table_html: str) -> str:
    """``wide``/``wider`` for tables with many columns: the print CSS sets them smaller (no script zooms them)."""
    rows = re.findall(r"<tr\b(.*?)</tr>", table_html, flags=re.S)
    columns = max((len(re.findall(r"<t[hd]\b", r)) for r in rows), default=0)
    return "wider" if columns >= 13 else "wide" if columns >= 9 else ""


def _render_block(b: Block, caption: str | None, numbering: Numbering) -> str:
    if b.kind == "figure":
        n, anchor = numbering.add("figure", caption)
        return (
            f'<figure class="fig" id="{anchor}"><img src="{b.html}" alt="Figure {n}">'
            f"<figcaption><b>Figure {n}.</b> {caption}</figcaption></figure>"
        )
    if b.kind == "table":
        n, anchor = numbering.add("table", caption)
        return (
            f'<figure class="tbl {_width_class(b.html)}" id="{anchor}"><figcaption><b>Table {n}.</b> {caption}'
            f'</figcaption><div class="out">{b.html}</div></figure>'
        )
    if b.kind == "text":
        return f'<pre class="out-text">{b.html}</pre>'
    if b.kind == "html":
        return f'<div class="out">{b.html}</div>'
    return f'<div class="prose">{b.html}</div>'


def render_blocks(blocks: list[Block], title: str, outline: Outline, numbering: Numbering) -> str:
    """The blocks as HTML: ``##`` headings become numbered h4 (``###`` and below: h5, not numbered).

    A heading is kept on one page with the prose and the first figure or table after it.
    """
    captions = _captions(blocks, title)
    parts: list[str] = []
    keep: list[str] | None = None
    for i, b in enumerate(blocks):
        if b.kind == "heading":
            if keep is not None:
                parts.append(_keep(keep))
            if b.level == 1:  # the notebook's title: the book's own section heading stands for it
                keep = None
                continue
            if b.level == 2:
                keep = [outline.heading(4, b.html, anchor=f"{title[:2]}-{b.heading}")]
            else:
                keep = [f"<h5>{b.html}</h5>"]
            continue
        html_block = _render_block(b, captions.get(i), numbering)
        if keep is None:
            parts.append(html_block)
            continue
        keep.append(html_block)
        if b.kind != "prose":
            parts.append(_keep(keep))
            keep = None
    if keep is not None:
        parts.append(_keep(keep))
    return "\n".join(parts)


def _keep(parts: list[str]) -> str:
    return '<div class="keep">' + "\n".join(parts) + "</div>"
