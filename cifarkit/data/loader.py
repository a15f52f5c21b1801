"""``load_dataset``: one entry point for every supported data source.

Sources:
    - ``None`` or ``"cifar10"``: the official CIFAR-10 python archive from the
      cache folder, downloaded there first if missing (``download=True``).
    - a path to a CIFAR-10 python archive (any file name) or to its extracted
      ``cifar-10-batches-py`` folder (or that folder's parent).
    - a path to an image folder, as a directory or a ``.tar``, ``.tar.gz``,
      ``.tgz`` or ``.zip`` archive (members are streamed, never extracted):
      ``root/<split>/<class>/...`` with splits ``train``,
      ``val``/``valid``/``validation``, ``test``, or ``root/<class>/...``
      (then split at random, stratified, seeded), optionally inside one
      wrapper folder. Symbolic links must stay inside the folder.
    - ``"synthetic"`` or ``"synthetic:N"``: :func:`make_synthetic` shapes,
      ``N`` images per class (default 200) split like an unsplit folder.

Splits: validation (and test, when the source has none) always come out of
the training data, class by class, with the given fractions and seed. A class
too small to give every such split one image is refused (DataError).

Labels and groups (image folders and archives only; see :mod:`cifarkit.data.labels`):
``labels="filename:REGEX"`` reads each image's label from its file name,
``labels="labels.csv"`` from a CSV file (``path,label[,group]``); ``group_by=REGEX``
gives each image a group (patient, part, session) from its relative path. Grouped
data is split by whole groups (:mod:`cifarkit.data.group_splits`): no group is in
two splits, class proportions are kept as well as the groups allow, and given
``train/``/``val/``/``test/`` folders that share a group are refused.

Images: every image becomes RGB uint8 of ``image_size``. Policy: the shorter
side is resized to the target (aspect ratio kept), then the centre is cropped;
images with alpha are composited on black; 16-bit images are scaled to 8
bits; images already at the target size are not resampled (see
``cifarkit.data.decode`` for the details). Format is detected from content,
not the file extension. Unreadable files, and files over the per-image cap
(see ``cifarkit.data.options``), are skipped and listed in ``Dataset.skipped``
(``strict=True`` raises on the first instead).
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from pathlib import Path

import numpy as np

from . import cifar10, sources, split_record
from .cache import cache_key, load_entry, resolve_cache_dir, save_entry
from .dataset import SPLITS, Dataset
from .decode import StrictFailure, decode_many, resize_array
from .errors import DataError
from .folder_source import DirSource
from .group_splits import check_group_counts, stratified_group_split
from .labels import parse_group_by, parse_labels, plan_source
from .options import DEFAULT_MAX_IMAGE_BYTES, Limits, check_args, resolve_limits
from .options import image_size as parse_image_size
from .source_spec import SYNTHETIC_CLASSES, guarded, local_path, synthetic_spec
from .splits import check_class_sizes, shuffle_order, stratified_split, stratified_subset
from .synthetic import make_synthetic


def _listing_sha256(lines) -> str:
    h = hashlib.sha256()
    for line in sorted(lines):
        h.update(line.encode("utf-8", "surrogateescape") + b"\n")
    return h.hexdigest()


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
    max_image_bytes=None,
    max_total_bytes=None,
    group_by=None,
    labels=None,
) -> Dataset:
    """Load an image classification dataset as uint8 arrays with train/val/test splits.

    The sources, how splits are made and how images are converted are described
    in this module's docstring (``help(cifarkit.data.loader)``). In short:
    ``None``/``"cifar10"`` (the official archive, downloaded once), a CIFAR-10
    python archive or extracted folder, an image folder or its ``.tar[.gz]``/
    ``.zip``, or ``"synthetic[:N]"``. Unreadable files (and files over the
    per-image cap) are skipped and listed in ``Dataset.skipped``.

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
        max_image_bytes: per-image cap in bytes (or ``"128MiB"``); default
            ``$CIFARKIT_MAX_IMAGE_BYTES``, else 64 MiB. See :mod:`cifarkit.data.options`.
        max_total_bytes: cap on an archive's total uncompressed size; default
            ``$CIFARKIT_MAX_TOTAL_BYTES``, else 8 GiB.
        group_by: a regular expression with a capture group, searched in each image's
            path relative to the data root; what it captures is the image's group
            (patient, part, session), and whole groups go to one split each.
            Image folders and archives only.
        labels: None (class folders), ``"filename:REGEX"`` (the first capture group of
            REGEX in each file name is the label; ``"path:REGEX"`` searches the relative
            path), or the path of a CSV file with the columns ``path,label[,group]``
            (paths relative to the data root; the group column works like ``group_by``).
            Image folders and archives only. See :mod:`cifarkit.data.labels`.

    Returns:
        A :class:`Dataset`.

    Raises:
        FileNotFoundError: ``source`` (or the labels file) names a path that does not exist.
        DataError: the data is unreadable, unsafe, incomplete, too large or laid out wrongly.
        ValueError: an argument is invalid.
    """
    start = time.perf_counter()
    size = parse_image_size(image_size)
    check_args(val_fraction, test_fraction, subset, seed)
    limits = resolve_limits(max_image_bytes, max_total_bytes)
    options = dict(val_fraction=float(val_fraction), test_fraction=float(test_fraction), seed=int(seed), subset=subset)
    pattern, spec = parse_group_by(group_by), parse_labels(labels)
    naming = {"labels": spec, "group_by": pattern}

    per_class = synthetic_spec(source)
    if (spec is not None or pattern is not None) and (per_class is not None or _is_official_name(source)):
        raise ValueError(
            f"labels= and group_by= (--labels, --labels-from, --group-by) apply to image folders and archives; "
            f"the source {source or 'cifar10'!r} has its own labels and no file paths."
        )
    if per_class is not None:
        ds = _load_synthetic(per_class, size, **options)
        ds.load_seconds = time.perf_counter() - start
        return ds

    cache_root = resolve_cache_dir(cache_dir)
    path, kind, sha, reader = _locate(source, cache_root, download=download, progress=progress, limits=limits)
    fields = dict(source_sha256=sha, image_size=list(size), **options)
    if limits.max_image_bytes != DEFAULT_MAX_IMAGE_BYTES:  # a cap changes which images are skipped
        fields["max_image_bytes"] = limits.max_image_bytes
    if pattern is not None:  # absent when not given, so that earlier cache entries stay valid
        fields["group_by"] = pattern.pattern
    if spec is not None:
        fields["labels"] = spec.cache_field()
    key = cache_key(**fields)
    ds = _from_cache(cache_root, key, path, sha, size, strict, options, start) if use_cache else None
    if ds is not None:
        return ds
    ds, unreadable = guarded(
        path,
        _decode_source,
        kind,
        path,
        reader,
        size,
        strict=strict,
        progress=progress,
        options=options,
        limits=limits,
        naming=naming,
    )
    ds.source_sha256 = sha
    if use_cache:
        _save_to_cache(cache_root, key, ds, unreadable)
    ds.load_seconds = time.perf_counter() - start
    return ds


def _is_official_name(source) -> bool:
    return source is None or (isinstance(source, str) and source.strip().lower() == "cifar10")


def _no_naming(naming: dict, where: str) -> None:
    """labels/group_by given for CIFAR-10 batches: refused (they have their own labels and no paths)."""
    if naming.get("labels") is not None or naming.get("group_by") is not None:
        raise DataError(
            f"{where} holds CIFAR-10 python batches, which carry their own labels and no file paths; labels= and "
            "group_by= (--labels, --labels-from, --group-by) apply to image folders and archives."
        )


def _locate(source, cache_root, *, download, progress, limits):
    """``(path, kind, sha256, reader or None)`` of a non-synthetic source, before anything is decoded."""
    if _is_official_name(source):
        path, sha = cifar10.ensure_official_archive(cache_root, download=download, progress=progress)
        return path, "cifar10-archive", sha, None
    path = local_path(source)
    kind, sha, reader = guarded(path, _fingerprint, path, limits)  # a folder's reader keeps its listing
    return path, kind, sha, reader


def _from_cache(cache_root, key, path, sha, size, strict, options, start) -> Dataset | None:
    """The decoded dataset from the cache, or None on a miss."""
    hit = load_entry(cache_root, key, size)
    if hit is None:
        return None
    arrays, meta = hit
    if strict and meta.get("unreadable"):
        bad_path, reason = meta["unreadable"][0]
        raise DataError(_strict_message(bad_path, reason))
    groups = meta.get("groups")
    if groups is not None:
        groups = {s: np.asarray(groups[s], dtype=str) for s in SPLITS}
        if any(len(groups[s]) != len(arrays[f"y_{s}"]) for s in SPLITS):
            return None  # an entry that does not hold together: decode again
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
        groups=groups,
        group_by=meta.get("group_by"),
        labels_from=meta.get("labels_from"),
        **options,
    )


def _decode_source(kind, path, reader, size, *, strict, progress, options, limits: Limits, naming=None):
    """Read and decode a local source: ``(dataset, unreadable files)``."""
    unreadable: list[tuple[str, str]] = []
    naming = naming or {}
    if kind == "cifar10-dir":
        _no_naming(naming, str(path))
        batches = cifar10.find_batches_dir(path)
        members = cifar10.read_batches_dir(batches, path, limits)
        ds = _load_official(members, str(batches), size, **options)
    elif kind == "image-folder":
        ds, unreadable = _load_image_folder(
            path, reader, size, strict=strict, progress=progress, naming=naming, **options
        )
    else:  # an archive: official format or an image folder, known once its members are listed
        check_official_size(path)
        reader = sources.open_source(path, limits)
        try:
            members = dict(reader.official_members())
        except BaseException:
            reader.close()
            raise
        if members:
            reader.close()  # frees the decompressed archive before the batches are parsed
            del reader
            _no_naming(naming, str(path))
            kind = "cifar10-archive"
            ds = _load_official(members, f"{path}::{cifar10.CIFAR10_DIR_NAME}", size, **options)
        else:
            kind = "image-folder"
            ds, unreadable = _load_image_folder(
                path, reader, size, strict=strict, progress=progress, naming=naming, **options
            )
    ds.source, ds.source_kind = str(path), kind
    return ds, unreadable


def _save_to_cache(cache_root, key, ds: Dataset, unreadable) -> None:
    meta = {
        "class_names": ds.class_names,
        "skipped": [list(s) for s in ds.skipped],
        "unreadable": [list(s) for s in unreadable],
        "image_info": ds.image_info,
        "split_origin": ds.split_origin,
        "source_kind": ds.source_kind,
        "source_sha256": ds.source_sha256,
    }
    if ds.groups is not None:
        meta["groups"] = {s: [str(g) for g in ds.groups[s]] for s in SPLITS}
        meta["group_by"] = ds.group_by
    if ds.labels_from is not None:
        meta["labels_from"] = ds.labels_from
    save_entry(
        cache_root, key, {n: getattr(ds, n) for n in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")}, meta
    )


def _fingerprint(path: Path, limits: Limits):
    """``(kind, sha256, reader)`` of a local source, without decoding or (for archives) listing it.

    An archive's kind ("archive") is only settled once its members are read. A
    folder's sha256 hashes its listing (relative path, size, mtime_ns); its
    reader (holding that listing) is returned for the decode, else None.
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
        reader = DirSource(path, limits)
        lines = [f"{e.name}\t{e.size}\t{e.mtime_ns}" for e in reader.entries() if e.is_image]
        return "image-folder", _listing_sha256(lines), reader
    if not path.is_file():
        raise DataError(f"{path} is neither a file nor a folder; point at an archive or an image folder.")
    try:
        sha = cifar10.file_digests(path, ("sha256",))["sha256"]
    except OSError as exc:
        raise DataError(f"Cannot read {path}: {exc}. Check its permissions.") from exc
    return "archive", sha, None


def check_official_size(path: Path) -> None:
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
    x, y, names = make_synthetic(per_class, SYNTHETIC_CLASSES, size, seed)
    fractions = {"val_fraction": val_fraction, "test_fraction": test_fraction}
    check_class_sizes(y, fractions, names, f"synthetic:{per_class} ({per_class} images per class)")
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
        split_origin=split_record.SYNTHETIC + split_record.subset_note(subset),
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        seed=seed,
        subset=subset,
    )


# ---------------------------------------------------------------------------- official format


def _load_official(members, where, size, *, val_fraction, test_fraction, seed, subset) -> Dataset:
    x_train, y_train, x_test, y_test, names = cifar10.parse_members(members, where)
    del members
    check_class_sizes(y_train, {"val_fraction": val_fraction}, names, f"{where} (training batches)")
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
        split_origin=split_record.given({"train", "test"}) + split_record.subset_note(subset),
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        seed=seed,
        subset=subset,
    )


# ---------------------------------------------------------------------------- image folders


def _strict_message(path: str, reason: str) -> str:
    return (
        f"Cannot read image {path} ({reason}). Fix or remove the file, or pass strict=False to skip unreadable images."
    )


def carved_fractions(plan, val_fraction: float, test_fraction: float) -> dict[str, float]:
    """``{"val_fraction": ..., "test_fraction": ...}`` for the splits a folder lacks, in carving order."""
    return {
        f"{s}_fraction": (val_fraction if s == "val" else test_fraction)
        for s in ("val", "test")
        if s not in plan.splits
    }


def carve_pieces(plan, where, *, val_fraction, test_fraction, seed):
    """``(names of the carved splits, [rest, *carved] index arrays into the training images)``.

    Ungrouped: stratified by class (:func:`stratified_split`); a class too small to give every carved split
    (with a fraction above 0) one image is a DataError. Grouped: whole groups per split
    (:func:`stratified_group_split`); a class in too few groups is a DataError.
    """
    train_labels = plan.splits["train"][1]
    carve = carved_fractions(plan, val_fraction, test_fraction)
    fractions = list(carve.values())
    names = [name.removesuffix("_fraction") for name in carve]
    if plan.groups is None:
        check_class_sizes(train_labels, carve, plan.class_names, where)
        return names, stratified_split(train_labels, fractions, seed)
    check_group_counts(train_labels, plan.groups["train"], carve, plan.class_names, where)
    pieces = stratified_group_split(
        train_labels,
        plan.groups["train"],
        fractions,
        seed,
        class_names=plan.class_names,
        part_names=["validation" if n == "val" else n for n in names],
        where=where,
    )
    return names, pieces


def _choose_splits(plan, where, *, val_fraction, test_fraction, seed):
    """Each split's ``(entries, labels, groups or None, folder it came from)``: given splits as they are,
    missing ones carved (stratified, seeded; by whole groups for grouped data) out of the training images,
    before anything is decoded."""
    train_entries, train_labels = plan.splits["train"]
    carve, pieces = carve_pieces(plan, where, val_fraction=val_fraction, test_fraction=test_fraction, seed=seed)
    groups = plan.groups

    def group_part(split, idx=None):
        if groups is None:
            return None
        return groups[split] if idx is None else groups[split][idx]

    chosen: dict[str, tuple[list, np.ndarray, np.ndarray | None, str]] = {}
    chosen["train"] = (
        [train_entries[i] for i in pieces[0]],
        train_labels[pieces[0]],
        group_part("train", pieces[0]),
        "train",
    )
    for s, idx in zip(carve, pieces[1:]):
        chosen[s] = ([train_entries[i] for i in idx], train_labels[idx], group_part("train", idx), "train")
    for s in ("val", "test"):
        if s in plan.splits:
            chosen[s] = (*plan.splits[s], group_part(s), s)
    return chosen


def _decode_order(chosen, *, subset, seed):
    """Where each chosen image goes in one output buffer: each split's images land in a seeded shuffled order.

    Returns ``(items, labels, origins, offsets, groups)``: ``(slot, entry)`` pairs to decode, the label and
    source folder of every slot, each split's ``(start, end)`` slots, and the group of every slot (None for
    ungrouped data).
    """
    items, labels, origins, offsets = [], [], [], {}
    grouped = chosen["train"][2] is not None
    groups = [] if grouped else None
    for s in SPLITS:
        split_entries, split_labels, split_groups, from_dir = chosen[s]
        keep = stratified_subset(split_labels, subset, seed, s)
        order = shuffle_order(len(keep), seed, s)
        slots = np.empty(len(keep), dtype=np.int64)
        slots[order] = np.arange(len(keep))
        base = len(labels)
        offsets[s] = (base, base + len(keep))
        split_y = np.empty(len(keep), dtype=np.int64)
        split_y[slots] = split_labels[keep]
        labels.extend(split_y.tolist())
        if grouped:
            split_g = np.empty(len(keep), dtype=object)
            split_g[slots] = split_groups[keep]
            groups.extend(split_g.tolist())
        origins.extend([from_dir] * len(keep))
        items.extend((base + int(slot), split_entries[i]) for slot, i in zip(slots, keep))
    groups = np.asarray(groups, dtype=str) if grouped else None
    return items, np.asarray(labels, dtype=np.int64), origins, offsets, groups


def _check_every_class_read(plan, labels, origins, ok, failures) -> None:
    """A class folder none of whose images could be read is an error, not a silently missing class."""
    tried = Counter(zip(origins, labels.tolist()))
    read = Counter(zip(np.asarray(origins)[ok].tolist(), labels[ok].tolist())) if len(labels) else Counter()
    for (from_dir, label), n in sorted(tried.items()):
        if read[(from_dir, label)] == 0:
            folder = plan.class_dirs.get((from_dir, label))
            what = (
                f"Class folder {folder}"
                if folder
                else f"Class {plan.class_names[label]!r} ({from_dir} images; labels from the {plan.label_source})"
            )
            raise DataError(
                f"{what} has no readable image ({n} tried; e.g. "
                f"{next((f[1] + ': ' + f[2]) for f in failures if labels[f[0]] == label)}). "
                "Replace the broken files or remove " + ("the folder." if folder else "them.")
            )


def _load_image_folder(path, reader, size, *, strict, progress, val_fraction, test_fraction, seed, subset, naming=None):
    """Decode the images an image folder's plan selects; returns ``(dataset, unreadable files)``."""
    from tqdm.auto import tqdm

    naming = naming or {}
    try:
        plan = plan_source(reader.entries(), str(path), reader.kind, **naming)
        chosen = _choose_splits(plan, str(path), val_fraction=val_fraction, test_fraction=test_fraction, seed=seed)
        items, labels, origins, offsets, groups = _decode_order(chosen, subset=subset, seed=seed)
        out = np.empty((len(labels), size[0], size[1], 3), dtype=np.uint8)
        with tqdm(total=len(items), desc="Decoding images", unit="img", disable=not progress, mininterval=0.5) as bar:
            try:
                ok, failures, info = decode_many(reader.read(items), size, out, strict=strict, on_progress=bar.update)
            except StrictFailure as exc:
                raise DataError(_strict_message(exc.name, exc.reason)) from None
    finally:
        reader.close()
    _check_every_class_read(plan, labels, origins, ok, failures)
    parts, split_groups = {}, {}
    for s in SPLITS:
        lo, hi = offsets[s]
        keep = slice(lo, hi) if ok[lo:hi].all() else np.flatnonzero(ok[lo:hi]) + lo
        parts[f"x_{s}"], parts[f"y_{s}"] = out[keep], labels[keep]
        if groups is not None:
            split_groups[s] = groups[keep]
    unreadable = [(name, reason) for _, name, reason in failures]
    unsplit = plan.layout in ("unsplit", "labels")
    if groups is None:
        origin = split_record.UNSPLIT if unsplit else split_record.given(set(plan.splits))
    else:
        origin = split_record.GROUP_UNSPLIT if unsplit else split_record.given(set(plan.splits))
        origin += split_record.whole_groups(len(np.unique(groups)), plan.group_source)
    if plan.layout.startswith("labels"):
        origin += split_record.labels_from(plan.label_source)
    ds = Dataset(
        **parts,
        class_names=plan.class_names,
        source=str(path),
        source_kind="image-folder",
        source_sha256=None,
        image_size=size,
        skipped=unreadable + [(reader.display(e), why) for e, why in plan.loose] + list(reader.skipped),
        image_info={k: dict(sorted(v.items())) for k, v in info.items()},
        split_origin=origin + split_record.subset_note(subset),
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        seed=seed,
        subset=subset,
        groups=split_groups or None,
        group_by=(plan.group_source or None) if groups is not None else None,
        labels_from=plan.label_source if plan.layout.startswith("labels") else None,
    )
    return ds, unreadable
