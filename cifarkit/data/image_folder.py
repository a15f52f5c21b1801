"""Working out classes and splits from an image folder's paths (no decoding here).

Accepted layouts, below an optional single wrapper folder:

- ``root/<split>/<class>/**/<image>`` with split folders ``train`` and
  optionally ``val`` (or ``valid``, ``validation``) and ``test``, matched
  case-insensitively;
- ``root/<class>/**/<image>`` with no split folders.

Class names are the sorted names of the class folders (of ``train`` in the
split layout). Images in nested folders below a class folder belong to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .decode import IMAGE_EXTENSIONS
from .entry import Entry
from .errors import DataError

SPLIT_ALIASES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}


@dataclass
class FolderPlan:
    """Classes and labelled images per given split, in sorted path order.

    ``groups`` (split -> group id of each image, aligned with ``splits``) and ``paths``
    (split -> relative path of each image) are set when images are grouped
    (see :mod:`.labels`); ``label_source`` and ``group_source`` say where labels
    and groups came from, in words.
    """

    class_names: list[str]
    splits: dict[str, tuple[list[Entry], np.ndarray]]
    class_dirs: dict[tuple[str, int], str]
    loose: list[tuple[Entry, str]] = field(default_factory=list)
    layout: str = "unsplit"
    groups: dict[str, np.ndarray] | None = None
    paths: dict[str, list[str]] | None = None
    label_source: str = "class folders"
    group_source: str = ""


def _strip_wrapper(entries: list[Entry]) -> list[Entry]:
    relevant = [e for e in entries if e.is_dir or e.is_image]
    tops = {e.parts[0] for e in relevant}
    if len(tops) != 1:
        return entries
    (top,) = tops
    images = [e for e in relevant if e.is_image]
    if top.lower() in SPLIT_ALIASES or not images or any(len(e.parts) < 3 for e in images):
        return entries
    return [
        Entry(e.parts[1:], e.is_dir, e.size, e.mtime_ns, e.ref)
        for e in entries
        if e.parts[0] == top and len(e.parts) > 1
    ]


def _split_folders(entries: list[Entry], where: str) -> dict[str, list[str]]:
    """Canonical split name -> the folder names that hold it (``{}`` for an unsplit folder)."""
    tops: dict[str, list[str]] = {}
    for e in entries:
        if (e.is_dir or len(e.parts) > 1) and e.parts[0].lower() in SPLIT_ALIASES:
            canonical = SPLIT_ALIASES[e.parts[0].lower()]
            names = tops.setdefault(canonical, [])
            if e.parts[0] not in names:
                names.append(e.parts[0])
    for canonical, names in tops.items():
        if len(names) > 1:
            raise DataError(
                f"{where} has several folders for the {canonical!r} split ({', '.join(sorted(names))}); "
                "keep one of them."
            )
    if tops and "train" not in tops:
        raise DataError(
            f"{where} has split folders ({', '.join(n for v in tops.values() for n in v)}) but no 'train' "
            "folder. Add one, or put the class folders directly in the root for a seeded random split."
        )
    return tops


def _collect(entries: list[Entry], tops: dict[str, list[str]]):
    """Images and class folders per split (``"all"`` when unsplit), and the images that belong to no class."""
    split_of_top = {names[0]: canonical for canonical, names in tops.items()}
    depth = 1 if tops else 0  # index of the class component in an entry's parts
    images: dict[str, dict[str, list[Entry]]] = {}
    dirs: dict[str, set[str]] = {}
    loose: list[tuple[Entry, str]] = []
    for e in entries:
        if tops:
            split = split_of_top.get(e.parts[0])
            if split is None:
                if e.is_image:
                    loose.append((e, "outside the train/val/test folders; ignored"))
                continue
        else:
            split = "all"
        if len(e.parts) <= depth + 1 and not e.is_dir:
            if e.is_image:
                loose.append((e, "not inside a class folder; ignored"))
            continue
        if len(e.parts) <= depth:
            continue
        cls = e.parts[depth]
        dirs.setdefault(split, set()).add(cls)
        if e.is_image:
            images.setdefault(split, {}).setdefault(cls, []).append(e)
    return images, dirs, loose


def _check_classes(images, dirs, class_names, prefix, base) -> None:
    for split, names in dirs.items():
        for cls in sorted(names):
            if not images.get(split, {}).get(cls):
                raise DataError(
                    f"Class folder {prefix(split)}/{cls} contains no image files. Add images "
                    f"({', '.join(sorted(IMAGE_EXTENSIONS))}) or remove the folder."
                )
            if cls not in class_names:
                raise DataError(
                    f"Class {cls!r} appears in {prefix(split)} but not in {prefix(base)}; "
                    "every class needs training images."
                )
    if len(class_names) < 2:
        found = f"only the class {class_names[0]!r}" if class_names else "no class folders"
        raise DataError(
            f"Found {found} in {prefix(base)}; at least 2 classes are needed for classification. "
            "Put each class's images in its own folder."
        )


def plan_folder(entries: list[Entry], where: str) -> FolderPlan:
    """Classes, given splits and labels of an image folder's entries.

    Args:
        entries: files and folders relative to the root (hidden ones already dropped).
        where: how to name the root in error messages.
    """
    if not any(e.is_image for e in entries):
        raise DataError(
            f"No image files found in {where}. Expected class folders of images "
            f"({', '.join(sorted(IMAGE_EXTENSIONS))}), e.g. {where}/train/<class>/<image> "
            f"or {where}/<class>/<image>; hidden files and __MACOSX are ignored."
        )
    entries = _strip_wrapper(entries)
    tops = _split_folders(entries, where)
    images, dirs, loose = _collect(entries, tops)
    base = "train" if tops else "all"
    prefix = (lambda split: f"{where}/{tops[split][0]}") if tops else (lambda split: where)
    class_names = sorted(dirs.get(base, set()))
    _check_classes(images, dirs, class_names, prefix, base)
    label_of = {c: i for i, c in enumerate(class_names)}
    splits = {}
    class_dirs = {}
    for split, per_class in images.items():
        key = "train" if split == "all" else split
        ordered = []
        labels = []
        for cls in class_names:
            members = sorted(per_class.get(cls, []), key=lambda e: e.parts)
            ordered += members
            labels += [label_of[cls]] * len(members)
            class_dirs[(key, label_of[cls])] = f"{prefix(split)}/{cls}"
        splits[key] = (ordered, np.asarray(labels, dtype=np.int64))
    return FolderPlan(class_names, splits, class_dirs, loose, "split" if tops else "unsplit")
