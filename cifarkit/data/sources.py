"""Listing and reading files from a directory, a tar archive or a zip archive.

Members are never extracted to disk. A member with an absolute path or a
``..`` component, or a link pointing outside the archive, makes the whole
archive refused: such archives are built to attack extractors, and nothing
good comes from reading the rest of them. Likewise a symbolic link in a folder
that resolves outside the folder is refused (see :mod:`.folder_source`).

Memory stays bounded whatever an archive holds (see :mod:`.options`): members
are read one at a time in chunks; a member over the per-image cap (by its
header, or by what it really inflates to) is skipped with the reason; an
archive whose members add up to more than the total cap is refused before
they are read; a compressed tar is decompressed into memory only when it is
small, else streamed.
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
from pathlib import Path

from .entry import Entry, is_ignored
from .errors import DataError
from .options import BATCH_ENV, TOTAL_ENV, Limits, TooLarge, format_bytes, read_capped, too_large

OFFICIAL_MEMBER = re.compile(r"^(data_batch_\d+|test_batch|batches\.meta)$")
# Compressed tars up to this uncompressed size are decompressed into memory once (the official
# CIFAR-10 archive is 178 MiB uncompressed); larger ones are streamed.
TAR_MEMORY_BUDGET = 256 * 1024 * 1024
# A zip "symbolic link" member holds its target path; nothing longer is a path.
_MAX_LINK_TARGET = 4096

_COMPRESSOR_ERRORS: tuple = ()
try:  # optional compressors; their errors also mean a corrupt archive
    import lzma

    _COMPRESSOR_ERRORS += (lzma.LZMAError,)
except ImportError:  # pragma: no cover
    pass
_ARCHIVE_ERRORS = (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, OSError, ValueError, *_COMPRESSOR_ERRORS)
_ZIP_READ_ERRORS = (zipfile.BadZipFile, zlib.error, RuntimeError, NotImplementedError, OSError, EOFError, ValueError)
_ZIP_READ_ERRORS += _COMPRESSOR_ERRORS


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


def _over_total(path: Path, limits: Limits, detail: str) -> DataError:
    cap = limits.max_total_bytes
    return DataError(
        f"Archive {path} holds more than the total cap of {format_bytes(cap)} uncompressed ({detail}). "
        "Archives that inflate this far are usually decompression bombs. If this one is genuine, raise the cap "
        f"with max_total_bytes= or ${TOTAL_ENV} (e.g. {TOTAL_ENV}={max(16, 2 * cap >> 30)}GiB)."
    )


def batch_too_large(where: str, size: int, limits: Limits) -> DataError:
    return DataError(
        f"{where} is {format_bytes(size)}, more than a CIFAR-10 batch file can be (cap "
        f"{format_bytes(limits.max_batch_bytes)}; the official ones are ~30 MiB). The file is corrupt or not a "
        f"CIFAR-10 batch; if it is a genuine larger batch, raise the cap with ${BATCH_ENV}."
    )


class TarSource:
    """Members of a (possibly compressed) tar archive.

    A compressed tar whose uncompressed size fits ``TAR_MEMORY_BUDGET`` (and the
    total cap) is decompressed once into memory and members are sliced out of
    that buffer (decompressing a compressed stream again for each pass is what
    makes tar reading slow). Larger ones are streamed twice: once to list, once
    to read the chosen members in archive order, one member at a time.

    Args:
        path: the archive.
        limits: the size caps.
        in_memory: allow the in-memory path (a listing-only pass passes False).
        official: which official CIFAR-10 members to read while listing
            (their names are recorded in ``official_names`` either way).
    """

    kind = "tar"

    def __init__(self, path: Path, limits: Limits | None = None, *, in_memory: bool = True, official=OFFICIAL_MEMBER):
        self.path = path
        self.limits = limits or Limits()
        self.skipped: list[tuple[str, str]] = []
        self.official_names: set[str] = set()
        self._read_official_re = official
        self._buffer: bytes | None = None
        self._tar = None
        self._official: dict[str, bytes] = {}
        self._entries: list[Entry] | None = None
        try:
            if in_memory:
                self._buffer = _decompress_small(path, min(TAR_MEMORY_BUDGET, self.limits.max_total_bytes))
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
                end = ti.offset_data + ti.size
                if end > self.limits.max_total_bytes:
                    detail = f"member {ti.name!r} is {format_bytes(ti.size)}, reaching {format_bytes(end)} into it"
                    raise _over_total(self.path, self.limits, detail)
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
                    if OFFICIAL_MEMBER.match(parts[-1]):
                        self._note_official(parts[-1], ti)
        except DataError:
            raise
        except _ARCHIVE_ERRORS as exc:
            raise _corrupt(self.path, exc) from exc
        self._entries = entries
        return entries

    def _note_official(self, name: str, ti: tarfile.TarInfo) -> None:
        first = name not in self.official_names
        self.official_names.add(name)
        if first and self._read_official_re.match(name):
            if ti.size > self.limits.max_batch_bytes:
                raise batch_too_large(f"{self.path}::{ti.name}", ti.size, self.limits)
            self._official[name] = self._read_member(ti, self.limits.max_batch_bytes)

    def _read_member(self, ti: tarfile.TarInfo, cap: int) -> bytes:
        if self._buffer is not None and not ti.issparse():
            end = ti.offset_data + ti.size
            if end > len(self._buffer):
                raise EOFError(f"member {ti.name!r} ends after the end of the archive")
            return self._buffer[ti.offset_data : end]
        return read_capped(self._tar.extractfile(ti), cap, declared=ti.size)

    def official_members(self) -> dict[str, bytes]:
        self.entries()
        return self._official

    def display(self, entry: Entry) -> str:
        return f"{self.path}::{entry.ref.name}"

    def read(self, items):
        """Yield ``(index, display name, bytes or the exception met)`` for ``(index, entry)`` items."""
        if self._buffer is None:  # archive order, so a compressed stream is decompressed once more at most
            items = sorted(items, key=lambda item: item[1].ref.offset_data)
        cap = self.limits.max_image_bytes
        try:
            for index, entry in items:
                if entry.ref.size > cap:  # known from the header: skipped without reading a byte
                    yield index, self.display(entry), too_large(f"{format_bytes(entry.ref.size)} uncompressed", cap)
                    continue
                try:
                    data = self._read_member(entry.ref, cap)
                except TooLarge as exc:
                    data = exc
                yield index, self.display(entry), data
        except _ARCHIVE_ERRORS as exc:
            raise _corrupt(self.path, exc) from exc

    def close(self) -> None:
        if self._tar is not None:
            self._tar.close()
        # Drop every reference to the decompressed buffer so its memory is freed now.
        self._tar = None
        self._buffer = None
        self._official = {}


def _decompress_small(path: Path, budget: int) -> bytes | None:
    """The uncompressed bytes of a gzip/bz2/xz file if they fit the budget, else None (also for plain tars)."""
    with open(path, "rb") as f:
        magic = f.read(6)
        if magic[:2] == b"\x1f\x8b":
            # gzip's trailer gives the uncompressed size (mod 4 GiB): a big archive skips the attempt.
            # A trailer that lies costs at most the budget below.
            f.seek(-4, os.SEEK_END)
            if int.from_bytes(f.read(4), "little") > budget:
                return None
    if magic[:2] == b"\x1f\x8b":
        import gzip as module
    elif magic[:3] == b"BZh":
        import bz2 as module
    elif magic == b"\xfd7zXZ\x00":
        import lzma as module
    else:
        return None
    with module.open(path, "rb") as f:
        data = f.read(budget + 1)
    return data if len(data) <= budget else None


class ZipSource:
    """Members of a zip archive, read one at a time in chunks."""

    kind = "zip"

    def __init__(self, path: Path, limits: Limits | None = None):
        self.path = path
        self.limits = limits or Limits()
        self.skipped: list[tuple[str, str]] = []
        self.official_names: set[str] = set()
        try:
            self._zip = zipfile.ZipFile(path)
        except _ARCHIVE_ERRORS as exc:
            raise _corrupt(path, exc) from exc

    def entries(self) -> list[Entry]:
        infos = self._zip.infolist()
        total = sum(info.file_size for info in infos)  # as the central directory declares; reads never exceed it
        if total > self.limits.max_total_bytes:
            biggest = max(infos, key=lambda info: info.file_size)
            detail = f"its {len(infos)} members declare {format_bytes(total)}; the largest, {biggest.filename!r}, {format_bytes(biggest.file_size)}"
            raise _over_total(self.path, self.limits, detail)
        entries = []
        for info in infos:
            name = info.filename.replace("\\", "/")
            parts = _check_member_name(self.path, name)
            if stat.S_ISLNK(info.external_attr >> 16):
                _check_link(self.path, name, self._link_target(info, name), hard=False)
                continue
            if not parts or is_ignored(parts):
                continue
            if info.is_dir():
                entries.append(Entry(parts, True, ref=info))
            else:
                entries.append(Entry(parts, False, info.file_size, 0, ref=info))
        return entries

    def _link_target(self, info: zipfile.ZipInfo, name: str) -> str:
        try:
            with self._zip.open(info) as f:
                target = f.read(_MAX_LINK_TARGET + 1)
        except _ZIP_READ_ERRORS as exc:
            raise _corrupt(self.path, exc) from exc
        if len(target) > _MAX_LINK_TARGET:
            raise _refuse(self.path, name, f"is a symbolic link whose target is over {_MAX_LINK_TARGET} bytes long")
        return target.decode("utf-8", "replace")

    def official_members(self) -> dict[str, bytes]:
        return {}

    def display(self, entry: Entry) -> str:
        return f"{self.path}::{entry.ref.filename}"

    def read(self, items):
        """Yield ``(index, display name, bytes or the exception met)`` for ``(index, entry)`` items."""
        cap = self.limits.max_image_bytes
        for index, entry in items:
            info = entry.ref
            if info.file_size > cap:  # declared by the central directory: skipped without inflating a byte
                yield index, self.display(entry), too_large(f"{format_bytes(info.file_size)} uncompressed", cap)
                continue
            try:
                with self._zip.open(info) as f:  # inflates in chunks; stops at the declared size and the cap
                    data = read_capped(f, cap, declared=info.file_size)
            except _ZIP_READ_ERRORS as exc:
                data = exc
            yield index, self.display(entry), data

    def close(self) -> None:
        self._zip.close()


def open_source(path: Path, limits: Limits | None = None, **tar_options):
    """A reader for a folder, a tar (.tar, .tar.gz, .tgz, ...) or a zip file, detected by content."""
    if path.is_dir():
        from .folder_source import DirSource

        return DirSource(path, limits)
    if zipfile.is_zipfile(path):
        return ZipSource(path, limits)
    try:
        is_tar = tarfile.is_tarfile(path)
    except _ARCHIVE_ERRORS:
        is_tar = False
    if is_tar:
        return TarSource(path, limits, **tar_options)
    raise DataError(
        f"{path} is neither a folder nor a readable archive (expected a .tar, .tar.gz, .tgz or .zip "
        "file, or CIFAR-10's cifar-10-python.tar.gz). If it is one of those, it is truncated or corrupt: "
        "download or copy it again."
    )
