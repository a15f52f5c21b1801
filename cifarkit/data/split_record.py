"""The data's split record (``Dataset.split_origin``): how the loaders write it and how reports read it aloud.

The record is terse and stable (``"given train/test; val from train; at most 20 per class per split"``), so that
manifests stay comparable across versions; :func:`sentence` turns it into the words a reader meets in the study book
and in 01_explore_data. Both sides live here, so a new form is written and read in one place.
"""

from __future__ import annotations

import re

from cifarkit.wording import agree, series

SPLIT_WORDS = {"train": "training", "val": "validation", "test": "test"}

UNSPLIT = "stratified split of unsplit folder"
GROUP_UNSPLIT = "stratified group split of unsplit folder"
SYNTHETIC = "stratified split of a synthetic pool"

_ALL_THREE = "the training, validation and test splits are drawn from"


def given(splits: set[str]) -> str:
    """The record for a source that gives ``splits`` (a set of ``train``/``val``/``test``); the rest come from train."""
    if splits == {"train", "val", "test"}:
        return "given train/val/test"
    if splits == {"train", "test"}:
        return "given train/test; val from train"
    if splits == {"train", "val"}:
        return "given train/val; test from train"
    return "given train only; val and test from train"


def whole_groups(count: int, source: str) -> str:
    return f"; whole groups per split ({count} groups, from the {source})"


def labels_from(source: str) -> str:
    return f"; labels from the {source}"


def fold(number: int, k: int) -> str:
    """The record of cross-validation's fold ``number`` (counted from 1) of ``k``; it reads as it stands."""
    return f"cross-validation fold {number} of {k}"


def subset_note(subset) -> str:
    return f"; at most {subset} per class per split" if subset is not None else ""


def _names(text: str) -> str:
    return series(SPLIT_WORDS.get(n, n) for n in re.split(r"/| and ", text))


def _part(part: str) -> str:
    if part == UNSPLIT:
        return f"the folder has no split folders: {_ALL_THREE} its images, stratified by class"
    if part == GROUP_UNSPLIT:
        return f"the folder has no split folders: {_ALL_THREE} its images group by group, stratified by class"
    if part == SYNTHETIC:
        return f"{_ALL_THREE} one pool of synthetic images, stratified by class"
    if m := re.fullmatch(r"given ([a-z/]+)( only)?", part):
        count = m.group(1).count("/") + 1
        return f"the source gives the {_names(m.group(1))} {agree(count, 'split', 'splits')}"
    if m := re.fullmatch(r"([a-z]+(?: and [a-z]+)?) from train", part):
        count = 2 if " and " in m.group(1) else 1
        return f"the {_names(m.group(1))} {agree(count, 'split is', 'splits are')} carved from the training images"
    if m := re.fullmatch(r"at most (\d+) per class per split", part):
        return f"at most {m.group(1)} images per class in each split"
    if m := re.fullmatch(r"whole groups per split \((.*)\)", part):
        return f"each group's images lie in one split only ({m.group(1)})"
    return part  # labels_from() and fold() read as they stand


def sentence(origin: str) -> str:
    """The record as a sentence for readers (not escaped, no final full stop); a form it does not know is kept, its
    first letter capitalized."""
    text = "; ".join(_part(part) for part in (origin or "").split("; ") if part) or "not recorded"
    return text[0].upper() + text[1:]


def carves_validation(origin: str) -> bool:
    """Whether the validation split was carved from the training images (False where the source gave it)."""
    return "given" not in (origin or "") or bool(re.search(r"\bval\b[a-z ]* from train", origin))
