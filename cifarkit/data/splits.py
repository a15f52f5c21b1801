"""Seeded, stratified splitting and per-class subsetting of label arrays.

Everything here works on labels (and indices) only, so that a loader can decide
which images it keeps before it decodes any of them.
"""

from __future__ import annotations

import math

import numpy as np

from .errors import DataError

# Separate random streams, so that changing the subset size never changes the
# validation split, and the three splits are subsampled independently.
_STREAM_SPLIT = 1
_STREAM_SUBSET = {"train": 2, "val": 3, "test": 4}
_STREAM_SHUFFLE = {"train": 5, "val": 6, "test": 7}


def _count(n: int, fraction: float) -> int:
    """Round half up (not to even), so a 10% split of 5 images takes 1, not 0."""
    return int(np.floor(n * fraction + 0.5))


def stratified_split(labels: np.ndarray, fractions: list[float], seed: int) -> list[np.ndarray]:
    """Split indices class by class.

    Args:
        labels: int array of shape ``(N,)``.
        fractions: fraction of each class to move into each carved-out part.
        seed: seed of the random permutation (one per class, in class order).

    Returns:
        ``[rest, part_1, ..., part_k]``: sorted index arrays, disjoint, covering
        ``range(N)``. ``rest`` keeps every image not carved out.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng([seed, _STREAM_SPLIT])
    parts: list[list[np.ndarray]] = [[] for _ in range(len(fractions) + 1)]
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        idx = idx[rng.permutation(len(idx))]
        start = 0
        for k, fraction in enumerate(fractions):
            n = _count(len(idx), fraction)
            n = min(n, len(idx) - start)
            parts[k + 1].append(idx[start : start + n])
            start += n
        parts[0].append(idx[start:])
    return [np.sort(np.concatenate(p)) if p else np.zeros(0, dtype=np.int64) for p in parts]


def carve_counts(n: int, fractions: list[float]) -> list[int]:
    """How many of a class's ``n`` images :func:`stratified_split` puts in each carved part, then in the rest."""
    counts, start = [], 0
    for fraction in fractions:
        k = min(_count(n, fraction), n - start)
        counts.append(k)
        start += k
    return counts + [n - start]


def class_size_ok(n: int, fractions: list[float]) -> bool:
    """Whether a class of ``n`` images gets at least one image in the rest and in every part asked for (> 0)."""
    *carved, rest = carve_counts(n, fractions)
    return rest >= 1 and all(k >= 1 for k, f in zip(carved, fractions) if f > 0)


def min_class_size(fractions: list[float]) -> int:
    """The fewest images a class needs for :func:`class_size_ok` (fractions must add up to less than 1)."""
    n = max([1] + [int(0.5 / f) - 1 for f in fractions if f > 0])
    while not class_size_ok(n, fractions):
        n += 1
    return n


def check_class_sizes(labels: np.ndarray, fractions: dict[str, float], class_names: list[str], where: str) -> None:
    """DataError when a split to be carved would get no image of some class (or leave it no training image).

    Args:
        labels: the labels of the images the parts are carved from.
        fractions: the argument name and fraction of each carved part, in carving order,
            e.g. ``{"val_fraction": 0.1, "test_fraction": 0.1}``.
        class_names: every class; one with no image at all counts as too small.
        where: how to name the data in the message.
    """
    values = list(fractions.values())
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=len(class_names))
    small = [(c, int(n)) for c, n in enumerate(counts) if not class_size_ok(int(n), values)]
    if not small:
        return
    asked = ", ".join(f"{k}={v:g}" for k, v in fractions.items())
    parts = [{"val_fraction": "validation", "test_fraction": "test"}[k] for k, v in fractions.items() if v]
    listed = ", ".join(f"{class_names[c]!r} ({n})" for c, n in small[:10])
    listed += f" and {len(small) - 10} more" if len(small) > 10 else ""
    fewest = min(n for _, n in small)
    hint = ""
    if fewest > 0 and fewest < min_class_size(values):
        nudge = math.ceil(50 / fewest) / 100
        if class_size_ok(fewest, [nudge if v else 0.0 for v in values]):
            hint = f" (with {fewest} images, fractions of {nudge:g} give each split one)"
    who = f"{', '.join(parts)} and training each get one" if parts else "training gets one"
    raise DataError(
        f"{where}: {len(small)} of {len(class_names)} classes have too few images for the requested split "
        f"({asked}): a class needs at least {min_class_size(values)} images so that {who} of its images. Too small (images): "
        f"{listed}. Add images to those classes, give the data its own validation/test folders, or choose "
        f"other fractions{hint}; a fraction of 0 goes without that split."
    )


def stratified_subset(labels: np.ndarray, per_class: int | None, seed: int, split: str) -> np.ndarray:
    """Sorted indices of at most ``per_class`` images of each class, chosen at random (seeded)."""
    labels = np.asarray(labels)
    if per_class is None:
        return np.arange(len(labels))
    rng = np.random.default_rng([seed, _STREAM_SUBSET[split]])
    keep = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        if len(idx) > per_class:
            idx = idx[rng.permutation(len(idx))[:per_class]]
        keep.append(idx)
    return np.sort(np.concatenate(keep)) if keep else np.zeros(0, dtype=np.int64)


def shuffle_order(n: int, seed: int, split: str) -> np.ndarray:
    """A seeded permutation used to interleave classes in a split read in class order."""
    return np.random.default_rng([seed, _STREAM_SHUFFLE[split]]).permutation(n)


def stratified_subsample(y: np.ndarray, max_images: int | None, seed: int = 0) -> np.ndarray:
    """Indices of at most ``max_images`` examples with the class proportions of ``y``.

    Every class keeps its share (largest-remainder rounding, at least one image
    of every class that has any while the cap allows it). ``None`` or 0 keeps
    everything. The indices come back sorted.
    """
    y = np.asarray(y)
    n = len(y)
    if max_images is None or int(max_images) <= 0 or int(max_images) >= n:
        return np.arange(n)
    max_images = int(max_images)
    classes, counts = np.unique(y, return_counts=True)
    quota = counts * (max_images / n)
    take = np.floor(quota).astype(int)
    if max_images >= len(classes):
        take = np.maximum(take, 1)
    remainder = max_images - take.sum()
    if remainder > 0:
        order = np.argsort(-(quota - np.floor(quota)), kind="stable")
        for i in order:
            if remainder == 0:
                break
            if take[i] < counts[i]:
                take[i] += 1
                remainder -= 1
    elif remainder < 0:  # the minimum of one per class overshot: trim the largest classes
        for i in np.argsort(-take, kind="stable"):
            while remainder < 0 and take[i] > 1:
                take[i] -= 1
                remainder += 1
    rng = np.random.default_rng(seed)
    picked = [rng.choice(np.flatnonzero(y == c), size=int(k), replace=False) for c, k in zip(classes, take)]
    return np.sort(np.concatenate(picked))
