"""``peek_class_names``: the class names a source would give, without decoding any image."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from . import cifar10, sources
from .errors import DataError
from .folder_source import DirSource
from .image_folder import plan_folder
from .loader import carved_fractions, check_official_size
from .options import Limits, check_args, resolve_limits
from .source_spec import SYNTHETIC_CLASSES, guarded, local_path, synthetic_spec
from .splits import check_class_sizes
from .synthetic import synthetic_class_names

_META_ONLY = re.compile(r"^batches\.meta$")


def peek_class_names(source=None, *, val_fraction=None, test_fraction=None, max_total_bytes=None) -> list[str]:
    """The class names :func:`load_dataset` would give ``source``, found cheaply: no image is decoded.

    - ``None`` / ``"cifar10"``: CIFAR-10's ten names (nothing is downloaded).
    - ``"synthetic[:N]"``: the synthetic shapes' names.
    - an image folder or archive: the sorted class folder names, from the
      listing only (an archive is listed in one streaming pass).
    - a CIFAR-10 python archive or extracted folder: the names in ``batches.meta``
      (the only batch file read; the others must be present).

    Args:
        source: as for :func:`load_dataset`.
        val_fraction, test_fraction: when either is given (the other then
            defaults to 0.1, as in ``load_dataset``), a folder, archive or
            synthetic source whose classes are too small for that split is
            refused here too (CIFAR-10 batches are not read, so not checked).
        max_total_bytes: the archive total cap, as for :func:`load_dataset`.

    Raises:
        The same errors as :func:`load_dataset` for a missing, unsafe,
        incomplete or wrongly laid out source.
    """
    fractions = None
    if val_fraction is not None or test_fraction is not None:
        val_fraction = 0.1 if val_fraction is None else val_fraction
        test_fraction = 0.1 if test_fraction is None else test_fraction
        check_args(val_fraction, test_fraction, None, 0)
        fractions = (float(val_fraction), float(test_fraction))
    limits = resolve_limits(None, max_total_bytes)
    per_class = synthetic_spec(source)
    if per_class is not None:
        names = synthetic_class_names(SYNTHETIC_CLASSES)
        if fractions is not None:
            labels = np.repeat(np.arange(SYNTHETIC_CLASSES), per_class)
            carve = dict(zip(("val_fraction", "test_fraction"), fractions))
            check_class_sizes(labels, carve, names, f"synthetic:{per_class} ({per_class} images per class)")
        return names
    if source is None or (isinstance(source, str) and source.strip().lower() == "cifar10"):
        return list(cifar10.CIFAR10_CLASSES)
    path = local_path(source)
    return guarded(path, _peek_local, path, limits, fractions)


def _peek_local(path: Path, limits: Limits, fractions) -> list[str]:
    if path.is_dir():
        batches = cifar10.find_batches_dir(path)
        if batches is not None:
            cifar10.check_official_names({p.name for p in batches.iterdir() if p.is_file()}, str(batches))
            meta = cifar10.read_batches_dir(batches, path, limits, only=r"batches\.meta")
            return cifar10.parse_meta(meta["batches.meta"], f"{batches}/batches.meta")
        return _folder_names(DirSource(path, limits), path, fractions)
    if not path.is_file():
        raise DataError(f"{path} is neither a file nor a folder; point at an archive or an image folder.")
    check_official_size(path)
    reader = sources.open_source(path, limits, in_memory=False, official=_META_ONLY)
    try:
        reader.entries()
        if reader.official_names:
            where = f"{path}::{cifar10.CIFAR10_DIR_NAME}"
            cifar10.check_official_names(reader.official_names, where)
            return cifar10.parse_meta(reader.official_members()["batches.meta"], f"{where}/batches.meta")
        return _folder_names(reader, path, fractions)
    finally:
        reader.close()


def _folder_names(reader, path: Path, fractions) -> list[str]:
    plan = plan_folder(reader.entries(), str(path))
    if fractions is not None:
        carve = carved_fractions(plan, *fractions)
        check_class_sizes(plan.splits["train"][1], carve, plan.class_names, str(path))
    return plan.class_names
