"""Seeded, stratified splitting and per-class subsetting of label arrays.

Everything here works on labels (and indices) only, so that a loader can decide
which images it keeps before it decodes any of them.
"""

from __future__ import annotations

import numpy as np

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
