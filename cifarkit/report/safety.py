"""The last line of defence of a report: refuse HTML that could run script in a reader's browser.

Everything that comes from data or parameters is escaped on its way into a report
(:mod:`cifarkit.escape`). This check runs on the finished HTML before it is
written: any ``<script>`` that the renderer did not put there itself, any
event-handler attribute (``onload=``, ``onerror=``, ...), a ``javascript:`` URL,
or an embedding element (``iframe``, ``object``, ``embed``) makes the renderer
refuse to write the report, naming what it found.
"""

from __future__ import annotations

import hashlib
from html.parser import HTMLParser

#: Elements a report never contains.
FORBIDDEN_TAGS = ("iframe", "object", "embed", "frame", "frameset", "applet", "base")
#: ``<script type=...>`` values that browsers do not execute (data blocks).
DATA_SCRIPT_TYPES = ("application/json", "application/vnd.plotly.v1+json")


class UnsafeReportError(ValueError):
    """The rendered HTML holds active content that the renderer did not put there."""


def script_digest(text: str) -> str:
    """The sha256 of a script's text, as :func:`check_html` compares it."""
    return hashlib.sha256(text.strip().encode("utf-8")).hexdigest()


class _Scanner(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self.scripts: list[tuple[dict, list[str]]] = []
        self._script: tuple[dict, list[str]] | None = None

    def handle_starttag(self, tag, attrs):
        self._check_attrs(tag, attrs)
        if tag in FORBIDDEN_TAGS:
            self.found.append(f"a <{tag}> element")
        if tag == "script":
            self._script = (dict(attrs), [])

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag == "script":
            self.handle_endtag(tag)

    def _check_attrs(self, tag, attrs):
        for name, value in attrs:
            name = (name or "").lower()
            if name.startswith("on"):
                self.found.append(f"an event handler {name}= on <{tag}>")
            compact = "".join((value or "").split()).lower()
            if name in ("href", "src", "action", "formaction", "xlink:href", "data") and compact.startswith(
                ("javascript:", "vbscript:", "data:text/html")
            ):
                self.found.append(f"a {compact.split(':', 1)[0]}: URL in {name}= on <{tag}>")

    def handle_data(self, data):
        if self._script is not None:
            self._script[1].append(data)

    def handle_endtag(self, tag):
        if tag == "script" and self._script is not None:
            self.scripts.append(self._script)
            self._script = None


def check_html(text: str, allowed_scripts=()) -> None:
    """Raise :class:`UnsafeReportError` when ``text`` holds active content other than ``allowed_scripts``.

    Args:
        text: the whole HTML page.
        allowed_scripts: the texts (or :func:`script_digest` values) of the scripts the renderer itself adds.
    """
    allowed = {
        a if len(a) == 64 and all(c in "0123456789abcdef" for c in a) else script_digest(a) for a in allowed_scripts
    }
    scanner = _Scanner()
    scanner.feed(text)
    scanner.close()
    found = list(scanner.found)
    for attrs, parts in scanner.scripts:
        kind = (attrs.get("type") or "").strip().lower()
        if attrs.get("src"):
            found.append(f"a <script src={attrs['src'][:60]!r}>")
        elif kind in DATA_SCRIPT_TYPES:
            continue
        elif script_digest("".join(parts)) not in allowed:
            found.append(f"a <script> the renderer did not write ({''.join(parts).strip()[:60]!r})")
    if found:
        shown = "; ".join(dict.fromkeys(found))
        raise UnsafeReportError(
            f"Refusing to write a report that would run script in the reader's browser: it holds {shown}. "
            "Some text from the data or the parameters (a class name, a path) reached the report unescaped; "
            "rename it or report this as a bug of cifarkit."
        )
