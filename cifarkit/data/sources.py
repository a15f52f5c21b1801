"""Listing and reading files from a directory, a tar archive or a zip archive.

Archives are read in memory (members are never extracted to disk). A member
with an absolute path or a ``..`` component, or a link pointing outside the
archive, makes the whole archive refused: such archives are built to attack
extractors, and nothing good comes from reading the rest of them.
"""

from __future__ import annotations

import io
import os
import posixpath
import re
import stat
import tarfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from .decode import IMAGE_EXTENSIONS
from .errors import DataError

OFFICIAL_MEMBER = re.compile(r"^(data_batch_\d+|test_batch|batches\.meta)$")
# Compressed tars up to this uncompressed size are decompressed into memory once.
TAR_MEMORY_BUDGET = 512 * 1024 * 1024

_ARCHIVE_ERRORS = (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, OSError, ValueError)
try:  # optional compressors; their errors also mean a corrupt archive
    import lzma

    _ARCHIVE_ERRORS += (lzma.LZMAError,)
except ImportError:  # pragma: no cover
    pass


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


def _corrupt(path: Path, exc: BaseException) -> DataError:
    return DataError(
        f"Archive {path} is truncated or corrupt ({type(exc).__name__}: {exc}). "
        "Download or copy it again, or point at an extracted folder instead."
    )


def _refuse(path: Path, member: str, why: str) -> DataError:
    return DataError(
        f"refusing to read archive {path}: member {member!r} {why}. "
        "Such members are used to write files outside the target folder; "
        "re-create the archive with relative paths inside one folder."
    )


def _check_member_name(path: Path, name: str) -> tuple[str, ...]:
    if name.startswith("/") or name.startswith("\\") or re.match(r"^[A-Za-z]:", name):
        raise _refuse(path, name, "has an absolute path")
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    if ".." in parts:
        raise _refuse(path, name, "has a '..' path component")
    return parts


def _check_link(path: Path, name: str, target: str, hard: bool) -> None:
    if target.startswith("/") or re.match(r"^[A-Za-z]:", target):
        raise _refuse(path, name, f"is a link to the absolute path {target!r}")
    base = "" if hard else posixpath.dirname(name)
    resolved = posixpath.normpath(posixpath.join(base, target))
    if resolved == ".." or resolved.startswith("../"):
        raise _refuse(path, name, f"is a link pointing outside the archive ({target!r})")


class DirSource:
    """Files under a directory, read from disk."""

    kind = "dir"

    def __init__(self, path: Path):
        self.path = path

    def entries(self) -> list[Entry]:
        found: list[Entry] = []
        stack = [(self.path, ())]
        while stack:
            folder, prefix = stack.pop()
            try:
                with os.scandir(folder) as it:
                    children = list(it)
            except OSError as exc:
                raise DataError(f"Cannot list folder {folder}: {exc}. Check its permissions.") from exc
            for child in children:
                parts = prefix + (child.name,)
                if is_ignored(parts[-1:]):
                    continue
                if child.is_dir():
                    found.append(Entry(parts, True, ref=child.path))
                    stack.append((Path(child.path), parts))
                elif child.is_file():
                    st = child.stat()
                    found.append(Entry(parts, False, st.st_size, st.st_mtime_ns, ref=child.path))
        return found

    def official_members(self) -> dict[str, bytes]:
        return {}

    def display(self, entry: Entry) -> str:
        return str(entry.ref)

    def read(self, items):
        """Yield ``(index, display name, bytes or the exception met)`` for ``(index, entry)`` items."""
        for index, entry in items:
            try:
                yield index, str(entry.ref), Path(entry.ref).read_bytes()
            except OSError as exc:
                yield index, str(entry.ref), exc

    def close(self) -> None:
        pass


class TarSource:
    """Members of a (possibly compressed) tar archive, read in memory.

    A compressed tar whose uncompressed size fits ``TAR_MEMORY_BUDGET`` is
    decompressed once into memory and members are sliced out of that buffer
    (decompressing a compressed stream again for each pass is what makes tar
    reading slow). Larger ones are streamed twice: once to list, once to read
    the chosen members in archive order.
    """

    kind = "tar"

    def __init__(self, path: Path):
        self.path = path
        self._buffer: bytes | None = None
        self._official: dict[str, bytes] = {}
        self._entries: list[Entry] | None = None
        try:
            self._buffer = _decompress_small(path)
            if self._buffer is not None:
                self._tar = tarfile.open(fileobj=io.BytesIO(self._buffer), mode="r:")
            else:
                self._tar = tarfile.open(path, "r:*")
        except _ARCHIVE_ERRORS as exc:
            raise _corrupt(path, exc) from exc

    def entries(self) -> list[Entry]:
        if self._entries is not None:
            return self._entries
        entries: list[Entry] = []
        try:
            for ti in self._tar:
                parts = _check_member_name(self.path, ti.name)
                if ti.issym() or ti.islnk():
                    _check_link(self.path, ti.name, ti.linkname, hard=ti.islnk())
                    continue  # links inside the archive are not followed: they would count an image twice
                if not parts or is_ignored(parts):
                    continue
                if ti.isdir():
                    entries.append(Entry(parts, True, ref=ti))
                elif ti.isfile():
                    entries.append(Entry(parts, False, ti.size, int(ti.mtime) * 10**9, ref=ti))
                    if OFFICIAL_MEMBER.match(parts[-1]) and parts[-1] not in self._official:
                        self._official[parts[-1]] = self._read_member(ti)
        except DataError:
            raise
        except _ARCHIVE_ERRORS as exc:
            raise _corrupt(self.path, exc) from exc
        self._entries = entries
        return entries

    def _read_member(self, ti: tarfile.TarInfo) -> bytes:
        if self._buffer is not None and not ti.issparse():
            end = ti.offset_data + ti.size
            if end > len(self._buffer):
                raise EOFError(f"member {ti.name!r} ends after the end of the archive")
            return self._buffer[ti.offset_data : end]
        return self._tar.extractfile(ti).read()

    def official_members(self) -> dict[str, bytes]:
        self.entries()
        return self._official

    def display(self, entry: Entry) -> str:
        return f"{self.path}::{entry.ref.name}"

    def read(self, items):
        """Yield ``(index, display name, bytes)`` for ``(index, entry)`` items."""
        if self._buffer is None:  # archive order, so a compressed stream is decompressed once more at most
            items = sorted(items, key=lambda item: item[1].ref.offset_data)
        try:
            for index, entry in items:
                yield index, self.display(entry), self._read_member(entry.ref)
        except _ARCHIVE_ERRORS as exc:
            raise _corrupt(self.path, exc) from exc

    def close(self) -> None:
        if self._tar is not None:
            self._tar.close()
        # Drop every reference to the decompressed buffer so its memory is freed now.
        self._tar = None
        self._buffer = None
        self._official = {}


def _decompress_small(path: Path) -> bytes | None:
    """The uncompressed bytes of a gzip/bz2/xz file if they fit the budget, else None (also for plain tars)."""
    with open(path, "rb") as f:
        magic = f.read(6)
    if magic[:2] == b"\x1f\x8b":
        import gzip as module
    elif magic[:3] == b"BZh":
        import bz2 as module
    elif magic == b"\xfd7zXZ\x00":
        import lzma as module
    else:
        return None
    with module.open(path, "rb") as f:
        data = f.read(TAR_MEMORY_BUDGET + 1)
    return data if len(data) <= TAR_MEMORY_BUDGET else None


class ZipSource:
    """Members of a zip archive, read in memory."""

    kind = "zip"

    def __init__(self, path: Path):
        self.path = path
        try:
            self._zip = zipfile.ZipFile(path)
        except _ARCHIVE_ERRORS as exc:
            raise _corrupt(path, exc) from exc

    def entries(self) -> list[Entry]:
        entries = []
        for info in self._zip.infolist():
            name = info.filename.replace("\\", "/")
            parts = _check_member_name(self.path, name)
            if stat.S_ISLNK(info.external_attr >> 16):
                try:
                    target = self._zip.read(info).decode("utf-8", "replace")
                except _ARCHIVE_ERRORS as exc:
                    raise _corrupt(self.path, exc) from exc
                _check_link(self.path, name, target, hard=False)
                continue
            if not parts or is_ignored(parts):
                continue
            mtime = 0
            if info.is_dir():
                entries.append(Entry(parts, True, ref=info))
            else:
                entries.append(Entry(parts, False, info.file_size, mtime, ref=info))
        return entries

    def official_members(self) -> dict[str, bytes]:
        return {}

    def display(self, entry: Entry) -> str:
        return f"{self.path}::{entry.ref.filename}"

    def read(self, items):
        """Yield ``(index, display name, bytes or the exception met)`` for ``(index, entry)`` items."""
        for index, entry in items:
            try:
                yield index, self.display(entry), self._zip.read(entry.ref)
            except (zipfile.BadZipFile, zlib.error, RuntimeError, NotImplementedError, OSError, EOFError) as exc:
                yield index, self.display(entry), exc

    def close(self) -> None:
        self._zip.close()


def open_source(path: Path):
    """A reader for a folder, a tar (.tar, .tar.gz, .tgz, ...) or a zip file, detected by content."""
    if path.is_dir():
        return DirSource(path)
    if zipfile.is_zipfile(path):
        return ZipSource(path)
    try:
        is_tar = tarfile.is_tarfile(path)
    except _ARCHIVE_ERRORS:
        is_tar = False
    if is_tar:
        return TarSource(path)
    raise DataError(
        f"{path} is neither a folder nor a readable archive (expected a .tar, .tar.gz, .tgz or .zip "
        "file, or CIFAR-10's cifar-10-python.tar.gz). If it is one of those, it is truncated or corrupt: "
        "download or copy it again."
    )
