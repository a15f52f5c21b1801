"""Listing and reading files under a directory, with a policy for symbolic links.

Symbolic links inside a data folder are followed while they stay inside it
(the folder's real path). One that resolves outside makes the whole folder
refused with a DataError naming the link and its target: a data folder that
reaches elsewhere on the machine is either a mistake or a way to make the tool
read files it was not pointed at. A link that leads nowhere (a loop, or a
missing target) and a folder link that leads back to a folder containing it
(which would make the walk endless) are skipped with the reason.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from .entry import Entry, is_ignored
from .errors import DataError
from .options import Limits, format_bytes, read_capped, too_large


def _inside(real: str, root_real: str) -> bool:
    return real == root_real or real.startswith(root_real.rstrip(os.sep) + os.sep)


def _readlink(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return "?"


def follow_link(path: str, root_real: str) -> str:
    """The real path a symbolic link leads to, when it stays inside ``root_real``.

    Raises:
        DataError: the link resolves outside ``root_real``.
        OSError: the link leads nowhere (``errno.ELOOP`` for a loop, else a missing target).
    """
    real = os.path.realpath(path, strict=True)
    if not _inside(real, root_real):
        raise DataError(
            f"refusing to follow the symbolic link {path} -> {_readlink(path)}: it resolves to {real}, outside "
            f"the data folder {root_real}. Links in a data folder must stay inside it; copy the files into the "
            "folder, or point the data source at the folder that really holds them."
        )
    return real


def link_problem(path: str, exc: OSError) -> str:
    """Why a link that leads nowhere is skipped."""
    what = "symbolic link loop" if exc.errno == errno.ELOOP else "broken symbolic link (its target does not exist)"
    return f"{what}: {path} -> {_readlink(path)}; not followed"


def _dir_id(path) -> tuple[int, int]:
    st = os.stat(path)
    return (st.st_dev, st.st_ino)


def _list_dir(folder: str) -> list[os.DirEntry]:
    try:
        with os.scandir(folder) as it:
            return list(it)
    except OSError as exc:
        raise DataError(f"Cannot list folder {folder}: {exc}. Check its permissions.") from exc


class DirSource:
    """Files under a directory, read from disk one at a time (each at most the per-image cap)."""

    kind = "dir"

    def __init__(self, path: Path, limits: Limits | None = None):
        self.path = path
        self.limits = limits or Limits()
        self.skipped: list[tuple[str, str]] = []
        self.official_names: set[str] = set()
        self._entries: list[Entry] | None = None

    def entries(self) -> list[Entry]:
        """Files and folders below the root; links that lead nowhere are listed in ``skipped`` instead."""
        if self._entries is not None:
            return self._entries
        root_real = os.path.realpath(self.path)
        found: list[Entry] = []
        self.skipped = []
        stack = [(str(self.path), (), frozenset({_dir_id(self.path)}))]
        while stack:
            folder, prefix, ancestors = stack.pop()
            for child in _list_dir(folder):
                parts = prefix + (child.name,)
                if is_ignored(parts[-1:]):
                    continue
                try:
                    if child.is_symlink():
                        follow_link(child.path, root_real)
                    if child.is_dir():
                        ident = _dir_id(child.path)
                        if ident in ancestors:
                            self.skipped.append((child.path, self._loop_reason(child.path)))
                            continue
                        found.append(Entry(parts, True, ref=child.path))
                        stack.append((child.path, parts, ancestors | {ident}))
                    elif child.is_file():
                        st = child.stat()
                        found.append(Entry(parts, False, st.st_size, st.st_mtime_ns, ref=child.path))
                except DataError:
                    raise
                except OSError as exc:
                    reason = link_problem(child.path, exc) if child.is_symlink() else f"cannot read it: {exc}"
                    self.skipped.append((child.path, reason))
        self._entries = found
        return found

    @staticmethod
    def _loop_reason(path: str) -> str:
        return (
            f"symbolic link loop: {path} -> {_readlink(path)} leads back to {os.path.realpath(path)}, "
            "a folder that contains it; not followed"
        )

    def official_members(self) -> dict[str, bytes]:
        return {}

    def display(self, entry: Entry) -> str:
        return str(entry.ref)

    def read(self, items):
        """Yield ``(index, display name, bytes or the exception met)`` for ``(index, entry)`` items."""
        cap = self.limits.max_image_bytes
        for index, entry in items:
            if entry.size > cap:
                yield index, str(entry.ref), too_large(f"{format_bytes(entry.size)} on disk", cap)
                continue
            try:
                with open(entry.ref, "rb") as f:
                    data = read_capped(f, cap)
            except OSError as exc:
                data = exc
            yield index, str(entry.ref), data

    def close(self) -> None:
        pass
