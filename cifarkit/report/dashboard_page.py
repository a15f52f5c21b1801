"""HTML building blocks of the dashboards: the stylesheet, escaping, links, tables and the page frame.

Pages are plain HTML with the CSS inline and relative links only: no script,
nothing fetched from the network, so a run folder opens anywhere.
"""

from __future__ import annotations

import html
from pathlib import Path
from urllib.parse import quote

#: Marks every page cifarkit writes; a page without it is someone else's and is never overwritten.
GENERATOR_META = '<meta name="generator" content="cifarkit">'
# Pages written before the mark existed start with one of these titles.
_LEGACY_TITLES = ("<title>cifarkit runs in ", "<title>cifarkit run ")

CSS = """
body { font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; font-size: 14px; color: #212121;
  margin: 20px auto; max-width: 1200px; padding: 0 16px; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 17px; margin-top: 28px; border-bottom: 1px solid #cfd8dc; }
h3 { font-size: 14px; margin: 16px 0 6px 0; }
table { border-collapse: collapse; margin: 6px 0 12px 0; }
th, td { border: 1px solid #e0e0e0; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #eceff1; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.kv th { background: #f5f5f5; font-weight: 600; white-space: nowrap; }
table.kv td { overflow-wrap: anywhere; max-width: 900px; }
tr.failed td, tr.interrupted td { background: #ffebee; color: #b71c1c; }
tr.skipped td { background: #f5f5f5; color: #757575; font-style: italic; }
tr.running td { background: #fffde7; }
.status-ok { color: #1b5e20; font-weight: 600; } .status-failed, .status-interrupted { color: #b71c1c; font-weight: 600; }
.status-running { color: #f57f17; font-weight: 600; } .status-skipped { color: #757575; font-weight: 600; }
.error { font-family: "DejaVu Sans Mono", monospace; font-size: 12px; white-space: pre-wrap; }
.muted { color: #757575; font-size: 12px; }
.thumbs { display: flex; flex-wrap: wrap; gap: 10px; margin: 6px 0 14px 0; }
.thumbs figure { margin: 0; border: 1px solid #e0e0e0; padding: 4px; background: #fff; }
.thumbs img { display: block; width: 220px; height: 150px; object-fit: contain; }
.thumbs figcaption { font-size: 11px; color: #757575; text-align: center; }
code { font-size: 12px; }
.key { background: #f0f4f8; border-left: 4px solid #2f6f4f; padding: 6px 14px; margin: 12px 0; }
.key table.kv { margin: 4px 0; } .key .big { font-size: 16px; font-weight: 600; }
td.results { font-size: 13px; min-width: 260px; } td.results div { margin: 1px 0; }
td.results .lbl { color: #546e7a; }
"""


def esc(value) -> str:
    """``value`` as HTML text (``None`` is empty)."""
    return html.escape("" if value is None else str(value))


def link(href: str, text: str) -> str:
    return f'<a href="{quote(href)}">{esc(text)}</a>'


def page(title: str, body: str) -> str:
    """A whole HTML document around ``body``, with the dashboards' stylesheet."""
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">\n{GENERATOR_META}\n'
        f"<title>{esc(title)}</title>\n"
        f"<style>{CSS}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


def kv_table(rows) -> str:
    """A two-column table of ``(name, html)`` rows; the names are escaped, the values are HTML already."""
    body = "".join(f"<tr><th>{esc(k)}</th><td>{v}</td></tr>" for k, v in rows)
    return f'<table class="kv">{body}</table>'


def data_table(head, rows: list[str]) -> str:
    """A table with the column names ``head`` over ``rows`` (each a ``<tr>...</tr>`` already)."""
    return (
        "<table><thead><tr>"
        + "".join(f"<th>{esc(h)}</th>" for h in head)
        + "</tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )


def value_html(value) -> str:
    """Any JSON value as readable HTML: dicts become nested tables."""
    if isinstance(value, dict):
        return kv_table((k, value_html(v)) for k, v in value.items()) if value else '<span class="muted">none</span>'
    if isinstance(value, list):
        if all(not isinstance(v, (dict, list)) for v in value):
            return esc(", ".join(map(str, value))) if value else '<span class="muted">none</span>'
        return "".join(f"<div>{value_html(v)}</div>" for v in value)
    if value is None:
        return '<span class="muted">-</span>'
    return esc(value)


def written_by_cifarkit(path: str | Path) -> bool:
    """True when ``path`` is a page cifarkit wrote (or does not exist yet): cifarkit may write it."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            head = f.read(4096)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return GENERATOR_META in head or any(t in head for t in _LEGACY_TITLES)
