"""Checks of ``load_dataset``'s arguments, and the size caps that keep any source's memory bounded.

Caps (each from its argument, else its environment variable, else the default):

- ``max_image_bytes`` / ``$CIFARKIT_MAX_IMAGE_BYTES`` (default 64 MiB): one
  image file larger than this (by its size on disk or its archive header, or
  by what it really inflates to) is skipped with the reason, like any
  unreadable file. 64 MiB holds a 100-megapixel JPEG or a 20-megapixel
  uncompressed 8-bit TIFF; Pillow refuses to decode more than ~89 megapixels anyway.
- ``max_total_bytes`` / ``$CIFARKIT_MAX_TOTAL_BYTES`` (default 8 GiB): an
  archive whose members add up to more than this, uncompressed, is refused
  before they are read. It bounds the time a decompression bomb can cost; a
  genuine larger collection raises the cap.
- ``$CIFARKIT_MAX_BATCH_BYTES`` (default 256 MiB): one CIFAR-10 python batch
  file (the official ones are ~30 MiB); a larger one is refused.

Values are byte counts, optionally with a unit: ``134217728``, ``128MiB``,
``128M``, ``16GiB``, ``16G`` (units are binary: K = 1024).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import numpy as np

MIB = 1 << 20
GIB = 1 << 30
DEFAULT_MAX_IMAGE_BYTES = 64 * MIB
DEFAULT_MAX_TOTAL_BYTES = 8 * GIB
DEFAULT_MAX_BATCH_BYTES = 256 * MIB
IMAGE_ENV = "CIFARKIT_MAX_IMAGE_BYTES"
TOTAL_ENV = "CIFARKIT_MAX_TOTAL_BYTES"
BATCH_ENV = "CIFARKIT_MAX_BATCH_BYTES"
CHUNK = 1 * MIB
_UNITS = {"": 1, "k": 1 << 10, "m": MIB, "g": GIB, "t": 1 << 40}


def format_bytes(n: int) -> str:
    """``1073741824`` -> ``"1.0 GiB"``."""
    for unit, size in (("TiB", 1 << 40), ("GiB", GIB), ("MiB", MIB), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes"


def parse_bytes(value, name: str) -> int:
    """A positive byte count from an int or a string like ``"128MiB"``; ValueError naming ``name`` otherwise."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        n = int(value)
    elif isinstance(value, str) and (m := re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*", value.lower())):
        n = int(float(m.group(1)) * _UNITS[m.group(2)])
    else:
        n = 0
    if n < 1:
        raise ValueError(
            f"{name} must be a positive number of bytes, like 134217728, '128MiB' or '16GiB'; got {value!r}."
        )
    return n


@dataclass(frozen=True)
class Limits:
    """Size caps in bytes: one image file, all members of an archive together, one CIFAR-10 batch file."""

    max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES
    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES
    max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES


def resolve_limits(max_image_bytes=None, max_total_bytes=None) -> Limits:
    """The caps from the arguments, else the environment variables, else the defaults."""
    values = []
    for given, env, default, arg in (
        (max_image_bytes, IMAGE_ENV, DEFAULT_MAX_IMAGE_BYTES, "max_image_bytes"),
        (max_total_bytes, TOTAL_ENV, DEFAULT_MAX_TOTAL_BYTES, "max_total_bytes"),
        (None, BATCH_ENV, DEFAULT_MAX_BATCH_BYTES, None),
    ):
        if given is not None:
            values.append(parse_bytes(given, arg))
        elif os.environ.get(env, "").strip():
            values.append(parse_bytes(os.environ[env], f"${env}"))
        else:
            values.append(default)
    return Limits(*values)


class TooLarge(OSError):
    """A file or archive member over the per-image cap; reported as the reason the file was skipped."""


def too_large(what: str, cap: int) -> TooLarge:
    """``what`` describes the size found, e.g. ``"1.0 GiB uncompressed"``."""
    return TooLarge(
        f"{what}, over the per-image cap of {format_bytes(cap)}; if it is a genuine image, "
        f"raise the cap with max_image_bytes= or ${IMAGE_ENV} (e.g. {IMAGE_ENV}=256MiB)"
    )


def read_capped(f, cap: int, *, declared: int | None = None) -> bytes:
    """Read a file object in chunks; TooLarge as soon as it yields more than ``cap`` bytes.

    ``declared`` (an archive header's size) bounds the read too: data past it
    means the header lied, which is reported the same way.
    """
    limit = cap if declared is None else min(cap, declared)
    chunks, total = [], 0
    while chunk := f.read(min(CHUNK, limit + 1 - total)):
        chunks.append(chunk)
        total += len(chunk)
        if total > limit:
            if declared is not None and total > declared:
                raise TooLarge(
                    f"inflates past the {format_bytes(declared)} its header declares; the archive is corrupt or forged"
                )
            raise too_large(f"more than {format_bytes(cap)} once read", cap)
    return b"".join(chunks)


# ---------------------------------------------------------------------------- other arguments


def image_size(value) -> tuple[int, int]:
    """``None`` (32x32), an int or ``(height, width)`` -> ``(height, width)``; ValueError otherwise."""
    if value is None:
        return (32, 32)
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        size = (int(value), int(value))
    elif (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value)
    ):
        size = (int(value[0]), int(value[1]))
    else:
        raise ValueError(f"image_size must be None, an int or (height, width), got {value!r}.")
    if min(size) < 1 or max(size) > 4096:
        raise ValueError(f"image_size must be between 1 and 4096 pixels per side, got {size}.")
    return size


def check_args(val_fraction, test_fraction, subset, seed) -> None:
    """ValueError naming the first invalid split argument."""
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
            raise ValueError(f"{name} must be a number in [0, 1), got {value!r}.")
    if val_fraction + test_fraction >= 1.0:
        raise ValueError(
            f"val_fraction + test_fraction must be below 1 so that training data remains, "
            f"got {val_fraction} + {test_fraction}."
        )
    if subset is not None and (isinstance(subset, bool) or not isinstance(subset, (int, np.integer)) or subset < 1):
        raise ValueError(f"subset must be None or a positive int (images per class per split), got {subset!r}.")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}.")
