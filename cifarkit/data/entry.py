"""One file or directory inside a data source (a folder or an archive), and which names are never data."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from .decode import IMAGE_EXTENSIONS


@dataclass
class Entry:
    """One file or directory inside a source, by its path relative to the root."""

    parts: tuple[str, ...]
    is_dir: bool
    size: int = 0
    mtime_ns: int = 0
    ref: object = None
    is_image: bool = field(init=False)

    def __post_init__(self):
        # Computed once: listings of large archives hold tens of thousands of entries.
        self.is_image = not self.is_dir and os.path.splitext(self.parts[-1])[1].lower() in IMAGE_EXTENSIONS

    @property
    def name(self) -> str:
        return "/".join(self.parts)


def is_ignored(parts) -> bool:
    """Hidden files and directories (leading '.') and macOS ``__MACOSX`` folders are never data."""
    return any(p.startswith(".") or p == "__MACOSX" for p in parts)
