"""``load_dataset``: one entry point for every supported data source."""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections import Counter
from pathlib import Path

import numpy as np

from . import cifar10, sources
from .cache import cache_key, load_entry, resolve_cache_dir, save_entry
from .dataset import SPLITS, Dataset
from .decode import StrictFailure, decode_many, resize_array
from .errors import DataError
from .image_folder import plan_folder
from .splits import shuffle_order, stratified_split, stratified_subset
from .synthetic import make_synthetic

DEFAULT_IMAGE_SIZE = (32, 32)
SYNTHETIC_DEFAULT_PER_CLASS = 200


def _image_size(image_size) -> tuple[int, int]:
    if image_size is None:
        return DEFAULT_IMAGE_SIZE
    if isinstance(image_size, (int, np.integer)) and not isinstance(image_size, bool):
        size = (int(image_size), int(image_size))
    elif (
        isinstance(image_size, (tuple, list))
        and len(image_size) == 2
        and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in image_size)
    ):
        size = (int(image_size[0]), int(image_size[1]))
    else:
        raise ValueError(f"image_size must be None, an int or (height, width), got {image_size!r}.")
    if min(size) < 1 or max(size) > 4096:
        raise ValueError(f"image_size must be between 1 and 4096 pixels per side, got {size}.")
    return size


def _check_args(val_fraction, test_fraction, subset, seed) -> None:
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


def _listing_sha256(lines) -> str:
    h = hashlib.sha256()
    for line in sorted(lines):
        h.update(line.encode("utf-8", "surrogateescape") + b"\n")
    return h.hexdigest()


def _subset_note(subset) -> str:
    return f"; at most {subset} per class per split" if subset is not None else ""


def load_dataset(
    source=None,
    *,
    image_size=None,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
    cache_dir=None,
    subset: int | None = None,
    strict: bool = False,
    download: bool = True,
    use_cache: bool = True,
    progress: bool = True,
) -> Dataset:
    """Load an image classification dataset as uint8 arrays with train/val/test splits.

    Sources:
        - ``None`` or ``"cifar10"``: the official CIFAR-10 python archive from the
          cache folder, downloaded there first if missing (``download=True``).
        - a path to a CIFAR-10 python archive (any file name) or to its extracted
          ``cifar-10-batches-py`` folder (or that folder's parent).
        - a path to an image folder, as a directory or a ``.tar``, ``.tar.gz``,
          ``.tgz`` or ``.zip`` archive read in memory: ``root/<split>/<class>/...``
          with splits ``train``, ``val``/``valid``/``validation``, ``test``, or
          ``root/<class>/...`` (then split at random, stratified, seeded),
          optionally inside one wrapper folder.
        - ``"synthetic"`` or ``"synthetic:N"``: :func:`make_synthetic` shapes,
          ``N`` images per class (default 200) split like an unsplit folder.

    Splits: validation (and test, when the source has none) always come out of
    the training data, class by class, with the given fractions and seed.

    Images: every image becomes RGB uint8 of ``image_size``. Policy: the shorter
    side is resized to the target (aspect ratio kept), then the centre is
    cropped; images with alpha are composited on black; 16-bit images are
    scaled to 8 bits; images already at the target size are not resampled
    (see ``cifarkit.data.decode`` for the details). Format is detected from
    content, not the file extension. Unreadable files are skipped and listed in
    ``Dataset.skipped`` (``strict=True`` raises on the first instead).

    Args:
        source: see above.
        image_size: None (32x32), an int, or ``(height, width)``.
        val_fraction: fraction of each training class moved to validation.
        test_fraction: fraction of each class moved to test when the source has no test split.
        seed: seed of every random choice (splits, subsets, order).
        cache_dir: folder for the downloaded archive and the decode cache
            (default ``$CIFARKIT_DATA_DIR``, else the user cache folder).
        subset: at most this many images per class in each split, chosen at
            random (seeded) before decoding, for quick runs.
        strict: raise DataError on the first unreadable image instead of skipping it.
        download: allow downloading the official archive.
        use_cache: read and write decoded arrays in ``<cache_dir>/decoded/``.
        progress: show progress bars (download and decoding).

    Returns:
        A :class:`Dataset`.

    Raises:
        FileNotFoundError: ``source`` names a path that does not exist.
        DataError: the data is unreadable, unsafe, incomplete or laid out wrongly.
        ValueError: an argument is invalid.
    """
    start = time.perf_counter()
    size = _image_size(image_size)
    _check_args(val_fraction, test_fraction, subset, seed)
    options = dict(val_fraction=float(val_fraction), test_fraction=float(test_fraction), seed=int(seed), subset=subset)

    spec = source.strip().lower() if isinstance(source, str) else None
    if spec is not None and re.fullmatch(r"synthetic(:\d+)?", spec):
        per_class = int(spec.split(":")[1]) if ":" in spec else SYNTHETIC_DEFAULT_PER_CLASS
        if per_class < 1:
            raise ValueError(f"'synthetic:N' needs N >= 1 images per class, got {source!r}.")
        ds = _load_synthetic(per_class, size, **options)
        ds.load_seconds = time.perf_counter() - start
        return ds

    cache_root = resolve_cache_dir(cache_dir)
    entries = None  # a folder's listing, reused after the cache lookup
    if source is None or spec == "cifar10":
        path, sha = cifar10.ensure_official_archive(cache_root, download=download, progress=progress)
        kind = "cifar10-archive"
    else:
        if not isinstance(source, (str, os.PathLike)):
            raise ValueError(f"source must be None, 'cifar10', 'synthetic[:N]' or a path, got {type(source).__name__}.")
        path = Path(source).expanduser()
        if not path.exists():
            raise FileNotFoundError(
                f"Data source not found: {path}. Pass an existing path to an image folder (directory, "
                ".tar.gz, .tgz, .tar or .zip), a CIFAR-10 python archive or its extracted "
                "cifar-10-batches-py folder; or 'cifar10' to use (and download) the official archive."
            )
        path = path.resolve()
        kind, sha, entries = _fingerprint(path)

    key = cache_key(source_sha256=sha, image_size=list(size), **options)
    if use_cache:
        hit = load_entry(cache_root, key, size)
        if hit is not None:
            arrays, meta = hit
            if strict and meta.get("unreadable"):
                bad_path, reason = meta["unreadable"][0]
                raise DataError(_strict_message(bad_path, reason))
            return Dataset(
                **arrays,
                class_names=meta["class_names"],
                source=str(path),
                source_kind=meta["source_kind"],
                source_sha256=sha,
                image_size=size,
                skipped=[tuple(s) for s in meta["skipped"]],
                image_info=meta["image_info"],
                split_origin=meta["split_origin"],
                load_seconds=time.perf_counter() - start,
                from_cache=True,
                **options,
            )

    unreadable: list[tuple[str, str]] = []
    if kind == "cifar10-dir":
        batches = cifar10.find_batches_dir(path)
        ds = _load_official(cifar10.read_batches_dir(batches), str(batches), size, **options)
    elif kind == "image-folder":
        ds, unreadable = _load_image_folder(path, sources.DirSource(path), entries, size, strict=strict, progress=progress, **options)
    else:  # an archive: official format or an image folder, known once its members are listed
        _check_official_size(path)
        reader = sources.open_source(path)
        members = dict(reader.official_members()) if isinstance(reader, sources.TarSource) else {}
        if members:
            reader.close()  # frees the decompressed archive before the batches are parsed
            del reader
            kind = "cifar10-archive"
            ds = _load_official(members, f"{path}::{cifar10.CIFAR10_DIR_NAME}", size, **options)
        else:
            kind = "image-folder"
            ds, unreadable = _load_image_folder(path, reader, None, size, strict=strict, progress=progress, **options)
    ds.source, ds.source_kind, ds.source_sha256 = str(path), kind, sha
    if use_cache:
        meta = {
            "class_names": ds.class_names,
            "skipped": [list(s) for s in ds.skipped],
            "unreadable": [list(s) for s in unreadable],
            "image_info": ds.image_info,
            "split_origin": ds.split_origin,
            "source_kind": kind,
            "source_sha256": sha,
        }
        save_entry(cache_root, key, {n: getattr(ds, n) for n in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")}, meta)
    ds.load_seconds = time.perf_counter() - start
    return ds


def _fingerprint(path: Path):
    """``(kind, sha256, listing)`` of a local source, without decoding or (for archives) listing it.

    An archive's kind ("archive") is only settled once its members are read. A
    folder's sha256 hashes its listing (relative path, size, mtime_ns).
    """
    if path.is_dir():
        batches = cifar10.find_batches_dir(path)
        if batches is not None:
            lines = [
                f"{p.name}\t{p.stat().st_size}\t{p.stat().st_mtime_ns}"
                for p in sorted(batches.iterdir())
                if p.is_file() and sources.OFFICIAL_MEMBER.match(p.name)
            ]
            return "cifar10-dir", _listing_sha256(lines), None
        entries = sources.DirSource(path).entries()
        lines = [f"{e.name}\t{e.size}\t{e.mtime_ns}" for e in entries if e.is_image]
        return "image-folder", _listing_sha256(lines), entries
    if not path.is_file():
        raise DataError(f"{path} is neither a file nor a folder; point at an archive or an image folder.")
    try:
        sha = cifar10.file_digests(path, ("sha256",))["sha256"]
    except OSError as exc:
        raise DataError(f"Cannot read {path}: {exc}. Check its permissions.") from exc
    return "archive", sha, None


def _check_official_size(path: Path) -> None:
    """A file with the official archive's exact size is held to its md5 too."""
    if path.stat().st_size == cifar10.CIFAR10_SIZE:
        md5 = cifar10.file_digests(path, ("md5",))["md5"]
        if md5 != cifar10.CIFAR10_MD5:
            raise DataError(
                f"{path} has the size of the official CIFAR-10 archive but md5 {md5} instead of "
                f"{cifar10.CIFAR10_MD5}: it is corrupt. Download it again from {cifar10.CIFAR10_URL}."
            )


# ---------------------------------------------------------------------------- synthetic


def _load_synthetic(per_class, size, *, val_fraction, test_fraction, seed, subset) -> Dataset:
    x, y, names = make_synthetic(per_class, 4, size, seed)
    rest, val, test = stratified_split(y, [val_fraction, test_fraction], seed)
    parts = {}
    for split, idx in (("train", rest), ("val", val), ("test", test)):
        idx = idx[stratified_subset(y[idx], subset, seed, split)]
        parts[f"x_{split}"], parts[f"y_{split}"] = np.ascontiguousarray(x[idx]), y[idx]
    return Dataset(
        **parts,
        class_names=names,
        source=f"synthetic:{per_class}",
        source_kind="synthetic",
        source_sha256=None,
        image_size=size,
        image_info={},
        split_origin="stratified split of a synthetic pool" + _subset_note(subset),
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        seed=seed,
        subset=subset,
    )


# ---------------------------------------------------------------------------- official format


def _load_official(members, where, size, *, val_fraction, test_fraction, seed, subset) -> Dataset:
    x_train, y_train, x_test, y_test, names = cifar10.parse_members(members, where)
    del members
    train_idx, val_idx = stratified_split(y_train, [val_fraction], seed)
    parts = {}
    for split, x, y, idx in (
        ("train", x_train, y_train, train_idx),
        ("val", x_train, y_train, val_idx),
        ("test", x_test, y_test, np.arange(len(y_test))),
    ):
        idx = idx[stratified_subset(y[idx], subset, seed, split)]
        parts[f"x_{split}"] = resize_array(np.ascontiguousarray(x[idx]), size)
        parts[f"y_{split}"] = y[idx]
    n = sum(len(parts[f"y_{s}"]) for s in SPLITS)
    return Dataset(
        **parts,
        class_names=names,
        source=where,
        source_kind="cifar10-archive",
        source_sha256=None,
        image_size=size,
        image_info={"sizes": {"32x32": n}, "modes": {"RGB": n}, "formats": {"CIFAR-10 python batch": n}},
        split_origin="given train/test; val from train" + _subset_note(subset),
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        seed=seed,
        subset=subset,
    )


# ---------------------------------------------------------------------------- image folders


def _strict_message(path: str, reason: str) -> str:
    return f"Cannot read image {path} ({reason}). Fix or remove the file, or pass strict=False to skip unreadable images."


def _split_origin(given: set[str]) -> str:
    if given == {"train", "val", "test"}:
        return "given train/val/test"
    if given == {"train", "test"}:
        return "given train/test; val from train"
    if given == {"train", "val"}:
        return "given train/val; test from train"
    return "given train only; val and test from train"


def _load_image_folder(path, reader, entries, size, *, strict, progress, val_fraction, test_fraction, seed, subset):
    """Decode the images an image folder's plan selects; returns ``(dataset, unreadable files)``."""
    try:
        if entries is None:
            entries = reader.entries()
        plan = plan_folder(entries, str(path))
        # Carve the missing splits out of the training images, then subset, all before decoding.
        train_entries, train_labels = plan.splits["train"]
        carve = [s for s in ("val", "test") if s not in plan.splits]
        fractions = [val_fraction if s == "val" else test_fraction for s in carve]
        pieces = stratified_split(train_labels, fractions, seed)
        chosen: dict[str, tuple[list, np.ndarray, str]] = {}
        chosen["train"] = ([train_entries[i] for i in pieces[0]], train_labels[pieces[0]], "train")
        for s, idx in zip(carve, pieces[1:]):
            chosen[s] = ([train_entries[i] for i in idx], train_labels[idx], "train")
        for s in ("val", "test"):
            if s in plan.splits:
                chosen[s] = (*plan.splits[s], s)
        if plan.layout == "unsplit":
            origin = "stratified split of unsplit folder"
        else:
            origin = _split_origin(set(plan.splits))

        # One output buffer for all splits; each split's images land in a seeded shuffled order.
        items, labels, origins, offsets = [], [], [], {}
        for s in SPLITS:
            split_entries, split_labels, from_dir = chosen[s]
            keep = stratified_subset(split_labels, subset, seed, s)
            order = shuffle_order(len(keep), seed, s)
            slots = np.empty(len(keep), dtype=np.int64)
            slots[order] = np.arange(len(keep))
            base = len(labels)
            offsets[s] = (base, base + len(keep))
            split_y = np.empty(len(keep), dtype=np.int64)
            split_y[slots] = split_labels[keep]
            labels.extend(split_y.tolist())
            origins.extend([from_dir] * len(keep))
            items.extend((base + int(slot), split_entries[i]) for slot, i in zip(slots, keep))
        labels = np.asarray(labels, dtype=np.int64)
        out = np.empty((len(labels), size[0], size[1], 3), dtype=np.uint8)

        from tqdm.auto import tqdm

        with tqdm(total=len(items), desc="Decoding images", unit="img", disable=not progress, mininterval=0.5) as bar:
            try:
                ok, failures, info = decode_many(reader.read(items), size, out, strict=strict, on_progress=bar.update)
            except StrictFailure as exc:
                raise DataError(_strict_message(exc.name, exc.reason)) from None
    finally:
        reader.close()

    # A class folder none of whose images could be read is an error, not a silently missing class.
    tried = Counter(zip(origins, labels.tolist()))
    read = Counter(zip(np.asarray(origins)[ok].tolist(), labels[ok].tolist())) if len(labels) else Counter()
    for (from_dir, label), n in sorted(tried.items()):
        if read[(from_dir, label)] == 0:
            folder = plan.class_dirs.get((from_dir, label), plan.class_names[label])
            raise DataError(
                f"Class folder {folder} has no readable image ({n} tried; e.g. "
                f"{next((f[1] + ': ' + f[2]) for f in failures if labels[f[0]] == label)}). "
                "Replace the broken files or remove the folder."
            )

    parts = {}
    for s in SPLITS:
        lo, hi = offsets[s]
        if ok[lo:hi].all():
            parts[f"x_{s}"], parts[f"y_{s}"] = out[lo:hi], labels[lo:hi]
        else:
            keep = np.flatnonzero(ok[lo:hi]) + lo
            parts[f"x_{s}"], parts[f"y_{s}"] = out[keep], labels[keep]
    unreadable = [(name, reason) for _, name, reason in failures]
    skipped = unreadable + [(reader.display(e), why) for e, why in plan.loose]
    ds = Dataset(
        **parts,
        class_names=plan.class_names,
        source=str(path),
        source_kind="image-folder",
        source_sha256=None,
        image_size=size,
        skipped=skipped,
        image_info={k: dict(sorted(v.items())) for k, v in info.items()},
        split_origin=origin + _subset_note(subset),
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        seed=seed,
        subset=subset,
    )
    return ds, unreadable
