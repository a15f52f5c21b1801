"""How many images each split of a run's data holds, counted before anything is decoded.

The time estimate needs the images per split for every ``DATA_SUBSET`` a notebook (or a ``--budget``
plan) may use, so it counts them from the source's listing rather than by loading the data:

- ``synthetic:N`` and the official CIFAR-10 (``--data`` left out, or a CIFAR-10 python archive or
  folder): the counts follow from the source (N per class; 5,000 training and 1,000 test images per
  class), the validation (and test) splits from the fractions with the loader's own rounding
  (:func:`cifarkit.data.splits.carve_counts`).
- an image folder or archive: its listing (one streaming pass over an archive, the same one
  :func:`cifarkit.data.peek_class_names` makes), split into classes and given splits by the loader's
  own :func:`cifarkit.data.image_folder.plan_folder`, the missing splits carved as above.

Listing rather than loading keeps the runner free of the decoded arrays and gives the count for any
subset by arithmetic (``min(subset, images of the class)``), which the budget planner needs for every
subset it tries. A few images of a folder or archive are decoded to time the decoding; unreadable
files are not known until the real load, so the counts can be a little high.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SPLITS = ("train", "val", "test")
DECODE_SAMPLE = 12
CIFAR10_PER_CLASS = {"train": 5000, "test": 1000}


@dataclass
class DataCounts:
    """Images per class of each split, before any subset; and what loading the source costs."""

    class_names: list[str]
    per_class: dict[str, list[int]]  # split -> images per class
    how: str
    kind: str  # "synthetic" | "cifar10" | "folder"
    listing_seconds: float = 0.0  # one pass over the source (an archive is decompressed once more to decode)
    decode_seconds_per_image: float | None = None  # measured on DECODE_SAMPLE images of the source
    source_sha256: str | None = None  # for the decode-cache check (files and folders)
    notes: list[str] = field(default_factory=list)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def class_sizes(self, split: str, subset: int = 0) -> np.ndarray:
        """Images per class of ``split`` with at most ``subset`` per class (0: all)."""
        counts = np.asarray(self.per_class[split], dtype=np.int64)
        return np.minimum(counts, subset) if subset else counts

    def split_sizes(self, subset: int = 0) -> tuple[int, int, int]:
        """Training, validation and test images with at most ``subset`` per class and split (0: all)."""
        return tuple(int(self.class_sizes(split, subset).sum()) for split in SPLITS)

    def largest_class(self) -> int:
        return int(max(max(c, default=0) for c in self.per_class.values()))

    def to_dict(self) -> dict:
        return {
            "how": self.how,
            "class_names": self.class_names,
            "images": dict(zip(SPLITS, self.split_sizes(0))),
            "listing_seconds": round(self.listing_seconds, 3),
            "decode_seconds_per_image": self.decode_seconds_per_image,
        }


def _carve(per_class_train, fractions: list[float]):
    """``(rest, [part per fraction])`` per class, as :func:`cifarkit.data.splits.stratified_split` cuts them."""
    from cifarkit.data.splits import carve_counts

    rest, parts = [], [[] for _ in fractions]
    for n in per_class_train:
        *carved, left = carve_counts(int(n), fractions)
        rest.append(left)
        for k, c in enumerate(carved):
            parts[k].append(c)
    return rest, parts


def count_images(
    data: str | None, *, val_fraction: float = 0.1, test_fraction: float = 0.1, labels=None, group_by=None
) -> DataCounts:
    """Count the images of every split of ``data`` (as ``--data`` takes it) without decoding them all.

    ``labels`` and ``group_by`` are the notebooks' ``LABELS`` and ``GROUP_BY``: images are counted under the
    labels they will get (a grouped split's sizes are estimated as a stratified one's).

    Raises what :func:`cifarkit.data.load_dataset` raises for a missing or malformed source.
    """
    from cifarkit.data import CIFAR10_CLASSES
    from cifarkit.data.source_spec import SYNTHETIC_CLASSES, synthetic_spec
    from cifarkit.data.synthetic import synthetic_class_names

    per = synthetic_spec(data)
    if per is not None:
        rest, (val, test) = _carve([per] * SYNTHETIC_CLASSES, [val_fraction, test_fraction])
        names = synthetic_class_names(SYNTHETIC_CLASSES)
        return DataCounts(names, {"train": rest, "val": val, "test": test}, f"synthetic:{per}", "synthetic")
    if not data or str(data).strip().lower() == "cifar10":
        return _cifar10_counts(list(CIFAR10_CLASSES), val_fraction, "CIFAR-10's published counts (official archive)")
    naming = {"labels": labels or None, "group_by": group_by or None}
    return _local_counts(Path(data).expanduser(), val_fraction, test_fraction, naming)


def _cifar10_counts(names, val_fraction, how) -> DataCounts:
    k = len(names)
    rest, (val,) = _carve([CIFAR10_PER_CLASS["train"]] * k, [val_fraction])
    return DataCounts(names, {"train": rest, "val": val, "test": [CIFAR10_PER_CLASS["test"]] * k}, how, "cifar10")


def _local_counts(path: Path, val_fraction: float, test_fraction: float, naming: dict) -> DataCounts:
    import re

    from cifarkit import files
    from cifarkit.data import cifar10, sources
    from cifarkit.data.folder_source import DirSource
    from cifarkit.data.labels import plan_source
    from cifarkit.data.options import resolve_limits
    from cifarkit.data.source_spec import guarded, local_path

    path = local_path(path)
    limits = resolve_limits(None, None)
    t0 = time.perf_counter()
    if path.is_dir():
        batches = cifar10.find_batches_dir(path)
        if batches is not None:
            names = cifar10.parse_meta(
                cifar10.read_batches_dir(batches, path, limits, only=r"batches\.meta")["batches.meta"], str(batches)
            )
            return _cifar10_counts(names, val_fraction, f"CIFAR-10 python batches in {path} (published counts)")
        reader = DirSource(path, limits)
        sha = None
    else:
        reader = guarded(
            path, sources.open_source, path, limits, in_memory=False, official=re.compile(r"^batches\.meta$")
        )
        sha = None
    try:
        entries = guarded(path, reader.entries)
        if getattr(reader, "official_names", None):
            names = cifar10.parse_meta(reader.official_members()["batches.meta"], f"{path}::batches.meta")
            return _cifar10_counts(names, val_fraction, f"CIFAR-10 python archive {path.name} (published counts)")
        plan = guarded(path, plan_source, entries, str(path), reader.kind, **naming)
        listing_seconds = time.perf_counter() - t0
        counts = _folder_counts(plan, val_fraction, test_fraction)
        decode = _decode_sample(reader, [e for e in entries if e.is_image])
    finally:
        reader.close()
    if path.is_file():
        sha = files.file_sha256(path)
    else:
        sha = _folder_sha256(entries)
    return DataCounts(
        plan.class_names,
        counts,
        f"listing of {path} ({sum(len(labels) for _, labels in plan.splits.values())} images)",
        "folder",
        listing_seconds=listing_seconds,
        decode_seconds_per_image=decode,
        source_sha256=sha,
    )


def _folder_counts(plan, val_fraction: float, test_fraction: float) -> dict[str, list[int]]:
    k = len(plan.class_names)
    given = {s: np.bincount(labels, minlength=k).tolist() for s, (_, labels) in plan.splits.items()}
    carve = [s for s in ("val", "test") if s not in given]
    fractions = [val_fraction if s == "val" else test_fraction for s in carve]
    rest, parts = _carve(given["train"], fractions)
    out = {"train": rest}
    out.update(dict(zip(carve, parts)))
    out.update({s: given[s] for s in ("val", "test") if s in given})
    return out


def _decode_sample(reader, images) -> float | None:
    """Seconds per image to decode and resize a few images of the source (the first ones of an archive,
    where reading them costs no extra pass; spread over a folder)."""
    from cifarkit.data.decode import decode_image

    if not images:
        return None
    if reader.__class__.__name__ == "TarSource":
        chosen = sorted(images, key=lambda e: e.ref.offset_data)[:DECODE_SAMPLE]
    else:
        step = max(len(images) // DECODE_SAMPLE, 1)
        chosen = images[::step][:DECODE_SAMPLE]
    seconds, n = 0.0, 0
    for i, _, data in reader.read(list(enumerate(chosen))):
        if isinstance(data, bytes):
            t0 = time.perf_counter()
            try:
                decode_image(data, (32, 32))
            except Exception:  # noqa: BLE001 - an unreadable sample image costs its attempt, as in the load
                pass
            if i:  # the first decode warms Pillow's plugins up and is left out
                seconds += time.perf_counter() - t0
                n += 1
    return seconds / n if n else None


def _folder_sha256(entries) -> str | None:
    """The folder fingerprint the decode cache is keyed by (``cifarkit.data.loader``'s listing hash)."""
    try:
        from cifarkit.data.loader import _listing_sha256
    except ImportError:
        return None
    return _listing_sha256([f"{e.name}\t{e.size}\t{e.mtime_ns}" for e in entries if e.is_image])


def decode_cached(counts: DataCounts, *, image_size: int, val_fraction: float, seed: int, subset: int) -> bool:
    """Whether the decode cache holds this source with these options already (then loading is a read)."""
    from cifarkit.data.cache import cache_key, resolve_cache_dir
    from cifarkit.data.options import DEFAULT_MAX_IMAGE_BYTES, resolve_limits

    if not counts.source_sha256:
        return False
    fields = dict(
        source_sha256=counts.source_sha256,
        image_size=[int(image_size), int(image_size)],
        val_fraction=float(val_fraction),
        test_fraction=0.1,
        seed=int(seed),
        subset=int(subset) or None,
    )
    limit = resolve_limits(None, None).max_image_bytes
    if limit != DEFAULT_MAX_IMAGE_BYTES:
        fields["max_image_bytes"] = limit
    return (resolve_cache_dir() / "decoded" / cache_key(**fields) / "meta.json").is_file()
