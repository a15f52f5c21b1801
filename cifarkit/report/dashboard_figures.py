"""The figures of a run's executed notebooks, extracted for its dashboard and captioned with their headings.

``<run>/figures/NN_name_K.png`` holds the K-th PNG figure of ``NN_name.ipynb``; its caption is the
nearest Markdown heading above it in the notebook (the title the report gives it), never a file name.
"""

from __future__ import annotations

import base64
import html
import os
import re
from pathlib import Path

from cifarkit import files, run_folder
from cifarkit.analysis import interactive
from cifarkit.files import read_json


def _notebook_figures(nb) -> list[tuple[bytes, str]]:
    """The PNG figures of an executed notebook in order, each with the nearest Markdown heading above it."""
    found: list[tuple[bytes, str]] = []
    if not isinstance(nb, dict):
        return found
    heading = ""
    for cell in nb.get("cells", []):
        if not isinstance(cell, dict):
            continue
        if cell.get("cell_type") == "markdown":
            heading = _last_heading(cell.get("source")) or heading
            continue
        for output in cell.get("outputs", []) or []:
            bundle = (output.get("data") or {}) if isinstance(output, dict) else {}
            html_text = bundle.get("text/html") or ""
            data = bundle.get("image/png") or interactive.static_png(
                "".join(html_text) if isinstance(html_text, list) else html_text
            )
            if not data:
                continue
            try:
                png = base64.b64decode("".join(data) if isinstance(data, list) else data)
            except (ValueError, TypeError):
                continue
            found.append((png, heading))
    return found


_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
_MD_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")


def _last_heading(source) -> str:
    """The text of the last Markdown heading in a cell's source, without its Markdown markup ("" if none)."""
    text = "".join(source) if isinstance(source, list) else str(source or "")
    heading, fenced = "", False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        match = None if fenced else _HEADING.match(line)
        if match:
            heading = _plain(match.group(2))
    return heading


def _plain(markdown: str) -> str:
    """Inline Markdown as the text a reader sees: code spans literal, links as their text, no emphasis or tags."""
    out, pos = [], 0
    for code in _CODE_SPAN.finditer(markdown):
        out += [_plain_prose(markdown[pos : code.start()]), code.group(2).strip()]
        pos = code.end()
    out.append(_plain_prose(markdown[pos:]))
    return "".join(out).strip()


def _plain_prose(text: str) -> str:
    text = _MD_LINK.sub(r"\1", text)
    text = re.sub(r"(?<!\\)(\*\*|__|\*)", "", text)  # emphasis marks
    text = re.sub(r"\\([\\`*_{}\[\]()#+\-.!|~>])", r"\1", text)  # escaped punctuation
    text = re.sub(r"<[^>]*>", "", text)  # inline HTML
    return html.unescape(text)


def extract_figures(run_dir: str | os.PathLike, name: str) -> list[Path]:
    """Write the PNG figures embedded in ``<run_dir>/<name>.ipynb`` to ``<run_dir>/figures/<name>_K.png``.

    Returns the paths, in the notebook's order (K from 1); figures of an earlier
    extraction that the notebook no longer has are removed.
    """
    return [path for path, _ in extract_captioned_figures(run_dir, name)]


def extract_captioned_figures(run_dir: str | os.PathLike, name: str) -> list[tuple[Path, str]]:
    """Like :func:`extract_figures`, each figure with its caption: the nearest Markdown heading above it in the
    notebook (``"Heading (2 of 3)"`` when several figures share one), or the notebook's name when none."""
    run_dir = Path(run_dir)
    figures_dir = run_dir / run_folder.FIGURES_DIR
    figures = _notebook_figures(read_json(run_dir / f"{name}.ipynb"))
    out: list[tuple[Path, str]] = []
    for k, (png, heading) in enumerate(figures, start=1):
        path = figures_dir / f"{name}_{k}.png"
        if not (path.is_file() and path.read_bytes() == png):
            files.atomic_write_bytes(path, png)
        same = [i for i, (_, h) in enumerate(figures) if h == heading]
        caption = heading or name
        if len(same) > 1:
            caption += f" ({same.index(k - 1) + 1} of {len(same)})"
        out.append((path, caption))
    keep = {p for p, _ in out}
    for old in figures_dir.glob(f"{name}_*.png"):
        if old not in keep and old.stem[len(name) + 1 :].isdigit():
            old.unlink()
    return out
