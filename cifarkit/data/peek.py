"""``peek_class_names``: the class names a source would give, without decoding any image."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from . import cifar10, sources
from .errors import DataError
from .folder_source import DirSource
from .labels import parse_group_by, parse_labels, plan_source
from .loader import carve_pieces, check_official_size
from .options import Limits, check_args, resolve_limits
from .source_spec import SYNTHETIC_CLASSES, guarded, local_path, synthetic_spec
from .splits import check_class_sizes
from .synthetic import synthetic_class_names

_META_ONLY = re.compile(r"^batches\.meta$")


def peek_class_names(
    source=None, *, val_fraction=None, test_fraction=None, max_total_bytes=None, labels=None, group_by=None, seed=0
) -> list[str]:
    """The class names :func:`load_dataset` would give ``source``, found cheaply: no image is decoded.

    - ``None`` / ``"cifar10"``: CIFAR-10's ten names (nothing is downloaded).
    - ``"synthetic[:N]"``: the synthetic shapes' names.
    - an image folder or archive: the sorted class folder names, from the
      listing only (an archive is listed in one streaming pass); with ``labels``,
      the sorted distinct labels its file names or labels file give.
    - a CIFAR-10 python archive or extracted folder: the names in ``batches.meta``
      (the only batch file read; the others must be present).

    Args:
        source: as for :func:`load_dataset`.
        val_fraction, test_fraction: when either is given (the other then
            defaults to 0.1, as in ``load_dataset``), a folder, archive or
            synthetic source whose classes are too small for that split is
            refused here too (CIFAR-10 batches are not read, so not checked).
        max_total_bytes: the archive total cap, as for :func:`load_dataset`.
        labels, group_by: as for :func:`load_dataset`. Every image's label and
            group is worked out (a CSV line or path that fails is refused here,
            as a group that straddles given split folders); with fractions, the
            group split itself is made (with ``seed``), so too few groups are refused here too.

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
    naming = {"labels": parse_labels(labels), "group_by": parse_group_by(group_by)}
    per_class = synthetic_spec(source)
    named = naming["labels"] is not None or naming["group_by"] is not None
    if named and (per_class is not None or source is None or str(source).strip().lower() == "cifar10"):
        raise ValueError(
            f"labels= and group_by= (--labels, --labels-from, --group-by) apply to image folders and archives; "
            f"the source {source or 'cifar10'!r} has its own labels and no file paths."
        )
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
    return guarded(path, _peek_local, path, limits, fractions, naming, int(seed))


def _cifar_named(naming: dict, where) -> None:
    if naming["labels"] is not None or naming["group_by"] is not None:
        raise DataError(
            f"{where} holds CIFAR-10 python batches, which carry their own labels and no file paths; labels= and "
            "group_by= (--labels, --labels-from, --group-by) apply to image folders and archives."
        )


def _peek_local(path: Path, limits: Limits, fractions, naming: dict, seed: int) -> list[str]:
    if path.is_dir():
        batches = cifar10.find_batches_dir(path)
        if batches is not None:
            _cifar_named(naming, batches)
            cifar10.check_official_names({p.name for p in batches.iterdir() if p.is_file()}, str(batches))
            meta = cifar10.read_batches_dir(batches, path, limits, only=r"batches\.meta")
            return cifar10.parse_meta(meta["batches.meta"], f"{batches}/batches.meta")
        return _folder_names(DirSource(path, limits), path, fractions, naming, seed)
    if not path.is_file():
        raise DataError(f"{path} is neither a file nor a folder; point at an archive or an image folder.")
    check_official_size(path)
    reader = sources.open_source(path, limits, in_memory=False, official=_META_ONLY)
    try:
        reader.entries()
        if reader.official_names:
            where = f"{path}::{cifar10.CIFAR10_DIR_NAME}"
            _cifar_named(naming, where)
            cifar10.check_official_names(reader.official_names, where)
            return cifar10.parse_meta(reader.official_members()["batches.meta"], f"{where}/batches.meta")
        return _folder_names(reader, path, fractions, naming, seed)
    finally:
        reader.close()


def _folder_names(reader, path: Path, fractions, naming: dict, seed: int) -> list[str]:
    plan = plan_source(reader.entries(), str(path), reader.kind, **naming)
    if fractions is not None:  # the loader's own checks (and, for groups, the split itself)
        carve_pieces(plan, str(path), val_fraction=fractions[0], test_fraction=fractions[1], seed=seed)
    return plan.class_names
