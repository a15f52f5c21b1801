"""What a ``source`` argument names: a synthetic set, or a local path that must exist."""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path

from .errors import DataError

SYNTHETIC_DEFAULT_PER_CLASS = 200
SYNTHETIC_CLASSES = 4


def synthetic_spec(source) -> int | None:
    """Images per class of a ``"synthetic[:N]"`` source, or None for any other source."""
    spec = source.strip().lower() if isinstance(source, str) else None
    if spec is None or not re.fullmatch(r"synthetic(:\d+)?", spec):
        return None
    per_class = int(spec.split(":")[1]) if ":" in spec else SYNTHETIC_DEFAULT_PER_CLASS
    if per_class < 1:
        raise ValueError(f"'synthetic:N' needs N >= 1 images per class, got {source!r}.")
    return per_class


def local_path(source) -> Path:
    """The resolved path of a local source; FileNotFoundError (or DataError for a link loop) when it is not there."""
    if not isinstance(source, (str, os.PathLike)):
        raise ValueError(f"source must be None, 'cifar10', 'synthetic[:N]' or a path, got {type(source).__name__}.")
    path = Path(source).expanduser()
    try:
        exists = path.exists()
    except OSError as exc:  # e.g. a parent folder that may not be searched
        raise DataError(f"Cannot look at the data source {path}: {exc}. Check the permissions on its folders.") from exc
    except ValueError as exc:  # e.g. an embedded NUL character
        raise ValueError(f"The data source {str(source)!r} is not a valid path ({exc}).") from None
    if not exists:
        if path.is_symlink():
            try:
                os.path.realpath(path, strict=True)
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise DataError(
                        f"Data source {path} is a symbolic link loop ({path} -> {os.readlink(path)}); "
                        "point at the real folder or archive."
                    ) from None
        raise FileNotFoundError(
            f"Data source not found: {path}"
            + (f" (a symbolic link to {os.readlink(path)}, which does not exist)" if path.is_symlink() else "")
            + ". Pass an existing path to an image folder (directory, .tar.gz, .tgz, .tar or .zip), a CIFAR-10 "
            "python archive or its extracted cifar-10-batches-py folder; or 'cifar10' to use (and download) "
            "the official archive."
        )
    return path.resolve()


def guarded(path: Path, func, *args, **kwargs):
    """Run ``func``; an OSError the data caused (permissions, a file vanishing mid-read) becomes a DataError."""
    try:
        return func(*args, **kwargs)
    except OSError as exc:
        raise DataError(
            f"Cannot read {path}: {exc}. Check that it exists, is readable and does not change while it is loaded."
        ) from exc
