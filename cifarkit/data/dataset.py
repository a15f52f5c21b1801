"""The in-memory dataset returned by :func:`cifarkit.data.load_dataset`."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import DataError

SPLITS = ("train", "val", "test")


@dataclass(repr=False, eq=False)
class Dataset:
    """Train, validation and test arrays plus a record of where they came from.

    Images are ``uint8`` arrays of shape ``(N, H, W, 3)`` (RGB, C-contiguous);
    labels are ``int64`` arrays of shape ``(N,)`` indexing ``class_names``.
    The validation split always comes out of the training data; the test split
    is never used for selection.

    Grouped data (``load_dataset(group_by=...)`` or a labels file with a group
    column) has ``groups``: for each split, the group id (str) of every image,
    aligned with its labels; no group id appears in two splits. ``group_by``
    says where the groups came from and ``labels_from`` where the labels came
    from (None: class folders, CIFAR-10 batches or synthetic data).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]
    source: str
    source_kind: str
    source_sha256: str | None
    image_size: tuple[int, int]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    image_info: dict = field(default_factory=dict)
    split_origin: str = ""
    load_seconds: float = 0.0
    from_cache: bool = False
    val_fraction: float | None = None
    test_fraction: float | None = None
    seed: int | None = None
    subset: int | None = None
    groups: dict[str, np.ndarray] | None = None
    group_by: str | None = None
    labels_from: str | None = None

    @property
    def num_classes(self) -> int:
        """Number of classes (the length of ``class_names``)."""
        return len(self.class_names)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """Shape of one image, ``(H, W, 3)``, as a model's input layer wants it."""
        return (int(self.image_size[0]), int(self.image_size[1]), 3)

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(x, y)`` of the split ``"train"``, ``"val"`` or ``"test"``."""
        if name not in SPLITS:
            raise ValueError(f"Unknown split {name!r}. Known splits: {', '.join(SPLITS)}.")
        return getattr(self, f"x_{name}"), getattr(self, f"y_{name}")

    def counts(self) -> dict[str, int]:
        """Number of images in each split."""
        return {name: int(len(self.split(name)[1])) for name in SPLITS}

    def group_ids(self, name: str) -> list[str]:
        """The sorted distinct group ids of a split (``[]`` for ungrouped data)."""
        if self.groups is None:
            return []
        self.split(name)  # checks the name
        return sorted({str(g) for g in self.groups.get(name, [])})

    def group_counts(self) -> dict[str, int] | None:
        """Number of distinct groups in each split, or None for ungrouped data."""
        if self.groups is None:
            return None
        return {name: len(self.group_ids(name)) for name in SPLITS}

    def channel_stats(self, chunk_size: int = 2048) -> tuple[np.ndarray, np.ndarray]:
        """Per-channel mean and standard deviation of the training images.

        Computed on the training split only (never validation or test), in
        ``[0, 1]`` units, with exact integer sums over chunks so that no float
        copy of the whole split is made.

        Returns:
            ``(mean, std)``, two float64 arrays of shape ``(3,)`` (population std).
        """
        x = self.x_train
        if len(x) == 0:
            raise DataError("Cannot compute channel statistics: the training split is empty.")
        total = np.zeros(3, dtype=np.int64)
        total_sq = np.zeros(3, dtype=np.int64)
        for start in range(0, len(x), chunk_size):
            pixels = x[start : start + chunk_size].reshape(-1, 3).astype(np.int64)
            total += pixels.sum(axis=0)
            total_sq += np.einsum("ij,ij->j", pixels, pixels)
        n = x.shape[0] * x.shape[1] * x.shape[2]
        mean = total / n
        var = np.maximum(total_sq / n - mean**2, 0.0)
        return mean / 255.0, np.sqrt(var) / 255.0

    def summary(self) -> dict:
        """Counts per split and per class, as a JSON-serializable dict."""
        splits = {}
        for name in SPLITS:
            y = self.split(name)[1]
            per_class = np.bincount(y, minlength=self.num_classes) if len(y) else np.zeros(self.num_classes, int)
            splits[name] = {
                "total": int(len(y)),
                "per_class": {c: int(n) for c, n in zip(self.class_names, per_class)},
            }
        return {
            "source_kind": self.source_kind,
            "image_size": list(self.image_size),
            "num_classes": self.num_classes,
            "class_names": list(self.class_names),
            "splits": splits,
            "skipped": len(self.skipped),
        }

    def to_dict(self) -> dict:
        """Provenance record (JSON-serializable): where the data came from and how it was split."""
        return {
            "source": self.source,
            "source_kind": self.source_kind,
            "source_sha256": self.source_sha256,
            "image_size": list(self.image_size),
            "class_names": list(self.class_names),
            "counts": self.counts(),
            "skipped": len(self.skipped),
            "split_origin": self.split_origin,
            "val_fraction": self.val_fraction,
            "test_fraction": self.test_fraction,
            "seed": self.seed,
            "subset": self.subset,
            "labels_from": self.labels_from,
            "group_by": self.group_by,
            "groups": self.group_counts(),
            "from_cache": self.from_cache,
            "load_seconds": round(float(self.load_seconds), 3),
        }

    def __repr__(self) -> str:
        counts = ", ".join(f"{k}={v}" for k, v in self.counts().items())
        return (
            f"Dataset({self.source_kind} {self.source!r}, {counts}, "
            f"classes={self.num_classes}, image_size={self.image_size}, "
            f"skipped={len(self.skipped)}, from_cache={self.from_cache})"
        )
