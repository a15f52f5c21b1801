"""Grouped splits (no patient or part in two splits), labels from file names or a CSV file, near duplicates."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/ is not a package
from conftest import REPO  # noqa: E402
from test_data_helpers import image_bytes, noise_png, write_files, write_zip  # noqa: E402

from cifarkit.analysis import explore  # noqa: E402
from cifarkit.data import DataError, Dataset, load_dataset, load_study_data, peek_class_names  # noqa: E402
from cifarkit.data.group_splits import check_group_counts, stratified_group_split  # noqa: E402
from cifarkit.report import profiles, runner  # noqa: E402


def _load(path, **kwargs):
    kwargs.setdefault("progress", False)
    kwargs.setdefault("use_cache", False)
    return load_dataset(path, **kwargs)


def _pixels_key(img: np.ndarray) -> bytes:
    return np.ascontiguousarray(img).tobytes()


def grouped_folder(root: Path, groups_per_class: int = 8, per_group=(1, 4), classes=("benign", "malignant"), seed=0):
    """``root/<class>/p<class initial><NN>_<k>.png`` of distinct noise images; returns ``{pixels: (class, group)}``."""
    rng = np.random.default_rng(seed)
    files, truth, s = {}, {}, 1000 * seed
    for cls in classes:
        for g in range(groups_per_class):
            for k in range(int(rng.integers(per_group[0], per_group[1] + 1))):
                data = noise_png(s)
                s += 1
                files[f"{cls}/p{cls[0]}{g:02d}_{k}.png"] = data
                truth[_pixels_key(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")))] = (cls, f"{cls[0]}{g:02d}")
    write_files(root, files)
    return truth


# ------------------------------------------------------------------------------ the split itself, property test


def _random_grouping(rng):
    """Labels and group ids of a random collection: 2-6 classes, 6-300 groups of 1-20 images, some groups mixed."""
    n_classes = int(rng.integers(2, 7))
    n_groups = int(rng.integers(6, 300))
    biggest = int(rng.integers(1, 21))
    mixed = rng.random() < 0.3
    weights = rng.dirichlet(np.ones(n_classes) * 2)
    labels, groups = [], []
    for g in range(n_groups):
        n = int(rng.integers(1, biggest + 1))
        ls = rng.choice(n_classes, n, p=weights) if mixed else np.full(n, rng.choice(n_classes, p=weights))
        labels += ls.tolist()
        groups += [f"g{g:03d}"] * n
    return np.asarray(labels), np.asarray(groups), n_classes


def test_group_splits_never_leak_over_random_groupings():
    rng = np.random.default_rng(2026)
    checked = refused = sized = 0
    for trial in range(300):
        labels, groups, k = _random_grouping(rng)
        fractions = [float(rng.choice([0.0, 0.05, 0.1, 0.2, 0.3])), float(rng.choice([0.0, 0.1, 0.15, 0.25]))]
        names = [f"c{i}" for i in range(k)]
        try:
            check_group_counts(labels, groups, dict(val_fraction=fractions[0], test_fraction=fractions[1]), names, "x")
            parts = stratified_group_split(labels, groups, fractions, seed=trial, class_names=names)
        except DataError as exc:
            assert "groups" in str(exc)
            refused += 1
            continue
        checked += 1
        # disjoint, covering every image once
        every = np.concatenate(parts)
        assert len(every) == len(labels) and len(np.unique(every)) == len(labels)
        # every group lands in exactly one part
        part_of_group = {}
        for p, idx in enumerate(parts):
            for g in np.unique(groups[idx]):
                assert part_of_group.setdefault(g, p) == p, f"trial {trial}: group {g} in parts {part_of_group[g]}, {p}"
        # every class is in training, and in every part asked for (the count check passed)
        for p, fraction in enumerate([1.0, *fractions]):
            if fraction > 0:
                assert set(labels[parts[p]]) == set(range(k)), f"trial {trial}: part {p} lacks a class"
            else:
                assert len(parts[p]) == 0
        # sizes: within the largest group's share (plus a little) of the target, when groups allow it, i.e.
        # when giving each carved part one group of every class does not already overshoot its target
        biggest = np.unique(groups, return_counts=True)[1].max()
        if all(f * len(labels) >= k * biggest for f in fractions if f > 0):
            sized += 1
            for p, fraction in enumerate([1.0 - sum(fractions), *fractions]):
                off = abs(len(parts[p]) / len(labels) - fraction)
                assert off <= biggest / len(labels) + 0.05, f"trial {trial}, part {p}: {off:.3f} off"
        # the same seed gives the same split
        again = stratified_group_split(labels, groups, fractions, seed=trial)
        assert all(np.array_equal(a, b) for a, b in zip(parts, again))
    assert checked > 200 and refused > 0 and sized > 50  # every path was exercised


def test_group_splits_keep_class_proportions_when_groups_allow():
    """Many small groups per class: every class's share of each part within 3 points of the target."""
    rng = np.random.default_rng(7)
    for trial in range(60):
        k = int(rng.integers(2, 6))
        labels, groups = [], []
        for g in range(int(rng.integers(300, 600))):
            n = int(rng.integers(1, 4))
            labels += (rng.integers(0, k, n) if trial % 2 else np.full(n, g % k)).tolist()
            groups += [f"{g}"] * n
        labels, groups = np.asarray(labels), np.asarray(groups)
        parts = stratified_group_split(labels, groups, [0.1, 0.2], seed=trial)
        for c in range(k):
            n_c = (labels == c).sum()
            for p, target in enumerate([0.7, 0.1, 0.2]):
                share = (labels[parts[p]] == c).sum() / n_c
                assert abs(share - target) <= 0.03, f"trial {trial}: class {c} part {p}: {share:.3f} vs {target}"


def test_too_few_groups_are_refused_with_the_number_needed():
    labels = np.array([0, 0, 0, 1, 1, 1, 1])
    groups = np.array(["a", "a", "b", "c", "d", "e", "f"])
    with pytest.raises(DataError, match=r"class needs images from at least 3 groups .*'x' \(2\)"):
        check_group_counts(labels, groups, {"val_fraction": 0.1, "test_fraction": 0.1}, ["x", "y"], "data")
    check_group_counts(labels, groups, {"val_fraction": 0.1, "test_fraction": 0.0}, ["x", "y"], "data")  # 2 enough


# ------------------------------------------------------------------------------ groups from paths


def test_groups_from_paths_are_kept_whole_and_recorded(tmp_path):
    truth = grouped_folder(tmp_path / "scans", groups_per_class=10)
    ds = _load(tmp_path / "scans", group_by=r"/p(\w\d+)_", val_fraction=0.2, test_fraction=0.2)
    assert ds.class_names == ["benign", "malignant"]
    seen = {}
    for split in ("train", "val", "test"):
        x, y = ds.split(split)
        assert len(ds.groups[split]) == len(y)
        for img, label, group in zip(x, y, ds.groups[split]):
            cls, true_group = truth[_pixels_key(img)]
            assert ds.class_names[label] == cls and group == true_group  # aligned with the images
            assert seen.setdefault(group, split) == split  # no group in two splits
        assert set(y) == {0, 1}  # every class in every split
    record = json.loads(json.dumps(ds.to_dict()))
    assert record["groups"] == {s: len(ds.group_ids(s)) for s in ("train", "val", "test")}
    assert sum(record["groups"].values()) == 20
    assert record["group_by"] == r"regex '/p(\w\d+)_' on the relative paths"
    assert "whole groups per split (20 groups" in ds.split_origin
    # a subset keeps groups apart too
    small = _load(tmp_path / "scans", group_by=r"/p(\w\d+)_", subset=2, val_fraction=0.2, test_fraction=0.2)
    assert not set(small.group_ids("train")) & set(small.group_ids("test"))


def test_the_cache_key_includes_groups_and_labels(tmp_path):
    grouped_folder(tmp_path / "scans")
    plain = load_dataset(tmp_path / "scans", progress=False)
    grouped = load_dataset(tmp_path / "scans", group_by=r"p(\w\d+)_", progress=False)
    assert not plain.from_cache and not grouped.from_cache and plain.groups is None
    again = load_dataset(tmp_path / "scans", group_by=r"p(\w\d+)_", progress=False)
    assert again.from_cache and again.to_dict()["groups"] == grouped.to_dict()["groups"]
    for s in ("train", "val", "test"):
        assert np.array_equal(again.groups[s], grouped.groups[s])
    other = load_dataset(tmp_path / "scans", group_by=r"(p\w\d+)_", progress=False)  # another regex: another key
    assert not other.from_cache
    csv = tmp_path / "labels.csv"
    rows = [
        f"{p.relative_to(tmp_path / 'scans').as_posix()},{p.parent.name}" for p in (tmp_path / "scans").rglob("*.png")
    ]
    csv.write_text("\n".join(rows))
    first = load_dataset(tmp_path / "scans", labels=csv, progress=False)
    assert not first.from_cache and load_dataset(tmp_path / "scans", labels=csv, progress=False).from_cache
    csv.write_text("\n".join(rows[::-1]))  # the same labels, other bytes: another key
    assert not load_dataset(tmp_path / "scans", labels=csv, progress=False).from_cache


def test_a_path_the_group_regex_misses_is_named(tmp_path):
    grouped_folder(tmp_path / "scans")
    write_files(tmp_path / "scans", {"benign/scan_without_id.png": noise_png(999)})
    with pytest.raises(
        DataError, match=r"group regex 'p\(\\w\\d\+\)_' .* does not match 1 of .*benign/scan_without_id\.png"
    ):
        _load(tmp_path / "scans", group_by=r"p(\w\d+)_")
    with pytest.raises(ValueError, match=r"has no capture group"):
        _load(tmp_path / "scans", group_by=r"p\d+")
    with pytest.raises(ValueError, match=r"not a valid regular expression"):
        _load(tmp_path / "scans", group_by=r"p(\d+")
    with pytest.raises(ValueError, match=r"apply to image folders and archives"):
        _load("synthetic:20", group_by=r"(\d+)")


def test_too_few_groups_in_a_folder_are_refused(tmp_path):
    grouped_folder(tmp_path / "scans", groups_per_class=2)
    with pytest.raises(DataError, match=r"at least 3 groups \(training, validation, test each get one\)"):
        _load(tmp_path / "scans", group_by=r"p(\w\d+)_")
    with pytest.raises(DataError, match=r"at least 3 groups"):
        peek_class_names(tmp_path / "scans", group_by=r"p(\w\d+)_", val_fraction=0.1)
    ds = _load(tmp_path / "scans", group_by=r"p(\w\d+)_", val_fraction=0.3, test_fraction=0.0)
    assert ds.counts()["test"] == 0 and ds.group_counts()["val"] == 2


def test_given_split_folders_that_share_a_group_are_refused(tmp_path):
    root = tmp_path / "parts"
    files = {}
    for cls in ("dent", "ok"):
        for part in range(6):
            for k in range(2):
                files[f"train/{cls}/part{cls}{part}_{k}.png"] = noise_png(len(files))
        files[f"test/{cls}/part{cls}9_0.png"] = noise_png(len(files))
    write_files(root, files)
    ds = _load(root, group_by=r"part(\w+?\d)_")
    assert ds.split_origin.startswith("given train/test; val from train; whole groups per split")
    assert ds.group_ids("test") == ["dent9", "ok9"] and not set(ds.group_ids("val")) & set(ds.group_ids("train"))
    write_files(root, {"test/ok/partok3_5.png": noise_png(500)})  # part ok3 now in train and test
    message = (
        r"group 'ok3' .* has images in more than one of the given split folders "
        r"\(train: train/ok/partok3_0\.png, train/ok/partok3_1\.png; test: test/ok/partok3_5\.png\)"
    )
    with pytest.raises(DataError, match=message):
        _load(root, group_by=r"part(\w+?\d)_")
    with pytest.raises(DataError, match=message):
        peek_class_names(root, group_by=r"part(\w+?\d)_")


# ------------------------------------------------------------------------------ labels from names


def _defects(root: Path, per_class: int = 8) -> dict:
    files, truth = {}, {}
    for cls in ("crazing", "patches", "scratches"):
        for i in range(per_class):
            data = noise_png(len(files))
            files[f"{cls}_{i}.png"] = data
            truth[_pixels_key(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")))] = cls
    write_files(root, files)
    return truth


def test_labels_from_file_names(tmp_path):
    truth = _defects(tmp_path / "neu")
    ds = _load(tmp_path / "neu", labels=r"filename:^([a-z]+)_\d+")
    assert ds.class_names == ["crazing", "patches", "scratches"]
    assert ds.labels_from == r"file names (regex '^([a-z]+)_\d+')"
    assert ds.counts() == {"train": 18, "val": 3, "test": 3}
    for split in ("train", "val", "test"):
        x, y = ds.split(split)
        assert [truth[_pixels_key(img)] for img in x] == [ds.class_names[v] for v in y]
    # the same folder zipped (members inside one folder): the same labels
    members = [(f"neu/{p.name}", p.read_bytes()) for p in sorted((tmp_path / "neu").iterdir())]
    zipped = _load(write_zip(tmp_path / "neu.zip", members), labels=r"filename:^([a-z]+)_\d+")
    assert zipped.class_names == ds.class_names and zipped.counts() == ds.counts()
    assert peek_class_names(tmp_path / "neu.zip", labels=r"filename:^([a-z]+)_") == ds.class_names
    # a file the regex does not match is named, with the regex
    write_files(tmp_path / "neu", {"README.png": noise_png(99)})
    with pytest.raises(DataError, match=r"label regex '\^\(\[a-z\]\+\)_\\d\+' .* does not match .* README\.png"):
        _load(tmp_path / "neu", labels=r"filename:^([a-z]+)_\d+")
    with pytest.raises(ValueError, match=r"has no capture group"):
        _load(tmp_path / "neu", labels=r"filename:^[a-z]+_")


def test_labels_from_names_with_groups_and_split_folders(tmp_path):
    files = {}
    for split, parts in (("train", range(8)), ("test", range(8, 10))):
        for cls in ("crazing", "patches"):
            for part in parts:
                for k in range(2):
                    files[f"{split}/{cls}_part{part}_{k}.png"] = noise_png(len(files))
    write_files(tmp_path / "d", files)
    ds = _load(tmp_path / "d", labels=r"filename:^([a-z]+)_", group_by=r"_(part\d+)_")
    assert ds.class_names == ["crazing", "patches"] and ds.counts()["test"] == 8
    assert ds.group_ids("test") == ["part8", "part9"]
    assert not set(ds.group_ids("train")) & set(ds.group_ids("val"))
    write_files(tmp_path / "d", {"test/cracks_part9_0.png": noise_png(77)})
    with pytest.raises(DataError, match=r"the label 'cracks' \(test/cracks_part9_0\.png.*no training image"):
        _load(tmp_path / "d", labels=r"filename:^([a-z]+)_", group_by=r"_(part\d+)_")


# ------------------------------------------------------------------------------ labels from a CSV file


@pytest.fixture
def labelled(tmp_path):
    """A flat folder of 12 images (3 per group, 2 groups per class) and a valid labels file with groups."""
    root = tmp_path / "images"
    write_files(root, {f"img{i:02d}.png": noise_png(i) for i in range(24)})
    lines = ["path,label,group"] + [f"img{i:02d}.png,{'cat' if i % 2 else 'dog'},g{i % 8}" for i in range(24)]
    (tmp_path / "labels.csv").write_text("\n".join(lines) + "\n")
    return root, tmp_path / "labels.csv", lines


def test_a_labels_file_gives_labels_and_groups(labelled):
    root, csv, lines = labelled
    ds = _load(root, labels=csv)
    assert ds.class_names == ["cat", "dog"] and sum(ds.counts().values()) == 24
    assert ds.group_counts() == {"train": 4, "val": 2, "test": 2}
    assert ds.group_by == "labels file's group column" and ds.labels_from == f"labels file {csv}"
    for split in ("train", "val", "test"):
        x, y = ds.split(split)
        for img, label, group in zip(x, y, ds.groups[split]):
            i = next(
                i
                for i in range(24)
                if _pixels_key(img) == _pixels_key(np.asarray(Image.open(root / f"img{i:02d}.png")))
            )
            assert ds.class_names[label] == ("cat" if i % 2 else "dog") and group == f"g{i % 8}"
    # no header, no group column: the same labels
    csv.write_text("\n".join(",".join(line.split(",")[:2]) for line in lines[1:]))
    plain = _load(root, labels=csv)
    assert plain.class_names == ["cat", "dog"] and plain.groups is None and sum(plain.counts().values()) == 24
    # images the file does not name are ignored and listed
    csv.write_text("\n".join(",".join(line.split(",")[:2]) for line in lines[1:21]))
    part = _load(root, labels=csv)
    assert sum(part.counts().values()) == 20 and len(part.skipped) == 4
    assert all("not in the labels file labels.csv" in why for _, why in part.skipped)
    assert peek_class_names(root, labels=csv) == ["cat", "dog"]
    with pytest.raises(ValueError, match=r"has a group column and a group regex"):
        _load(root, labels=_with_groups(csv, lines), group_by=r"img(\d)")
    with pytest.raises(FileNotFoundError, match=r"Labels file not found: .*nope\.csv"):
        _load(root, labels=csv.parent / "nope.csv")


def _with_groups(csv: Path, lines) -> Path:
    csv.write_text("\n".join(lines))
    return csv


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("img01.png", r"line 3: expected 2 or 3 columns \(path,label\[,group\]\), found 1: 'img01\.png'"),
        ("img01.png,cat,g1,extra", r"line 3: expected 2 or 3 columns .*found 4"),
        ("img01.png,cat", r"line 3: 2 columns where line 1 has 3"),
        ("img01.png,,g1", r"line 3: the label is blank for 'img01\.png'"),
        ("img01.png,  ,g1", r"line 3: the label is blank for 'img01\.png'"),
        ("img01.png,NaN,g1", r"line 3: the label 'NaN' marks a missing label .* for 'img01\.png'"),
        ("img01.png,unknown,g1", r"line 3: the label 'unknown' marks a missing label"),
        ("img01.png,cat,", r"line 3: the group is blank for 'img01\.png'"),
        (",cat,g1", r"line 3: the path is empty"),
        ("/etc/passwd.png,cat,g1", r"line 3: the path '/etc/passwd\.png' is absolute"),
        ("C:\\x\\img01.png,cat,g1", r"line 3: the path 'C:\\x\\img01\.png' is absolute"),
        ("../images/img01.png,cat,g1", r"line 3: the path '\.\./images/img01\.png' leads outside the data root"),
        ("sub/../../img01.png,cat,g1", r"line 3: the path 'sub/\.\./\.\./img01\.png' leads outside the data root"),
        ("img00.png,cat,g1", r"line 3: 'img00\.png' is listed again \(first on line 2\)"),
        ("./img00.png,cat,g1", r"line 3: 'img00\.png' is listed again \(first on line 2\)"),
        ("notes.txt,cat,g1", r"line 3: 'notes\.txt' is not an image file"),
        ("img99.png,cat,g1", r"1 line\(s\) name no image of .*: line 3: img99\.png"),
    ],
)
def test_bad_lines_of_a_labels_file_are_refused_with_their_line_number(labelled, line, problem):
    root, csv, lines = labelled
    csv.write_text("\n".join([lines[0], lines[1], line, *lines[2:]]) + "\n")
    with pytest.raises(DataError, match=r"Labels file .*labels\.csv(, |: )" + problem):
        _load(root, labels=csv)
    with pytest.raises(DataError, match=problem):  # the runner's check finds it too, before any notebook
        peek_class_names(root, labels=csv)


def test_labels_file_encoding_header_and_split_folders(labelled, tmp_path):
    root, csv, lines = labelled
    csv.write_bytes(("\n".join(lines[:3]) + "\nimg02.png,caf\xe9,g2\n").encode("latin-1"))
    with pytest.raises(DataError, match=r"labels\.csv, line 4: not UTF-8 text"):
        _load(root, labels=csv)
    csv.write_text("filename,class\n" + "\n".join(lines[1:]))  # not the header the file format names
    with pytest.raises(
        DataError, match=r"line 1: 'filename' is not an image file .*a header line must read path,label"
    ):
        _load(root, labels=csv)
    # split folders: paths under train/ and test/ keep their split; a label only in test is refused
    split_root = tmp_path / "split"
    write_files(
        split_root,
        {f"{s}/{i}.png": noise_png(i + (100 if s == "test" else 0)) for s in ("train", "test") for i in range(10)},
    )
    table = tmp_path / "split.csv"
    table.write_text("\n".join(f"{s}/{i}.png,{'a' if i % 2 else 'b'}" for s in ("train", "test") for i in range(10)))
    ds = _load(split_root, labels=table)
    assert ds.counts()["test"] == 10 and ds.split_origin.startswith("given train/test; val from train")
    table.write_text(table.read_text().replace("test/9.png,a", "test/9.png,c"))
    with pytest.raises(DataError, match=r"the label 'c' \(line 20 \(test/9\.png\).*no training image"):
        _load(split_root, labels=table)


def test_labels_file_paths_work_on_a_zipped_folder(labelled, tmp_path):
    root, csv, lines = labelled
    members = [(f"images/{p.name}", p.read_bytes()) for p in sorted(root.iterdir())]
    archive = write_zip(tmp_path / "images.zip", members)
    assert _load(archive, labels=csv).group_counts() == _load(root, labels=csv).group_counts()
    csv.write_text("\n".join(f"images/{line}" for line in lines[1:]))  # naming the archive's folder works too
    assert sum(_load(archive, labels=csv).counts().values()) == 24


# ------------------------------------------------------------------------------ near duplicates


def _smooth_images(n: int, seed: int) -> np.ndarray:
    """Photograph-like images: random colour fields with the 1/f amplitude spectrum of natural images."""
    rng = np.random.default_rng(seed)
    fy, fx = np.fft.fftfreq(32)[:, None], np.fft.fftfreq(32)[None, :]
    f = np.hypot(fx, fy)
    f[0, 0] = 1.0
    out = []
    for _ in range(n):
        spectrum = (rng.normal(size=(3, 32, 32)) + 1j * rng.normal(size=(3, 32, 32))) / f
        img = np.moveaxis(np.real(np.fft.ifft2(spectrum)), 0, -1)
        out.append(np.clip((img - img.mean()) / img.std() * 50 + 128, 0, 255).astype(np.uint8))
    return np.stack(out)


def _recompressed(img: np.ndarray, rng) -> np.ndarray:
    noisy = np.clip(img + rng.normal(0, 3, img.shape), 0, 255).astype(np.uint8)
    return np.asarray(Image.open(io.BytesIO(image_bytes(Image.fromarray(noisy), "JPEG", quality=75))).convert("RGB"))


def _dataset(x_train, x_val, x_test) -> Dataset:
    y = lambda x: np.zeros(len(x), dtype=np.int64)  # noqa: E731
    return Dataset(x_train, y(x_train), x_val, y(x_val), x_test, y(x_test), ["a"], "mem", "memory", None, (32, 32))


def test_near_duplicates_across_splits_are_found_and_unrelated_images_are_not():
    rng = np.random.default_rng(0)
    train, unrelated = _smooth_images(40, 1), _smooth_images(30, 2)
    copies = np.stack([_recompressed(train[i], rng) for i in (3, 17, 29)])
    assert not any((c == train[i]).all() for c, i in zip(copies, (3, 17, 29)))  # not exact duplicates
    test = np.concatenate([unrelated[:20], copies, unrelated[20:]])  # the copies at test indices 20, 21, 22
    found = explore.near_duplicates(_dataset(train, _smooth_images(5, 3), test))
    assert found["max_distance"] == explore.NEAR_DUPLICATE_BITS == 6
    assert found["pairs"] == {"train-val": 0, "train-test": 3, "val-test": 0}
    assert found["images"]["train-test"] == 3
    assert sorted((e["i"], e["j"]) for e in found["examples"]) == [(3, 20), (17, 21), (29, 22)]
    assert all(e["a"] == "train" and e["b"] == "test" and e["distance"] <= 6 for e in found["examples"])
    # hashes: unrelated images are far apart, copies close
    h, _ = explore.perceptual_hashes(train)
    hc, _ = explore.perceptual_hashes(copies)
    assert explore.hamming(h[[3, 17, 29]], hc).max() <= 6
    assert np.sort(explore.hamming(h[:, None], h[None, :])[np.triu_indices(40, 1)])[0] > 6


def test_featureless_images_are_counted_apart_and_the_popcount_fallback_agrees(monkeypatch):
    solid = np.stack([np.full((32, 32, 3), v, np.uint8) for v in (10, 120, 240)])
    found = explore.near_duplicates(_dataset(solid, solid[:1], solid))
    assert found["featureless"] == {"train": 3, "val": 1, "test": 3} and sum(found["pairs"].values()) == 0
    h, _ = explore.perceptual_hashes(_smooth_images(20, 5))
    fast = explore.hamming(h[:, None], h[None, :])
    monkeypatch.delattr(np, "bitwise_count", raising=False)
    assert np.array_equal(explore.hamming(h[:, None], h[None, :]), fast)


def test_straddling_groups_are_computed_from_the_loaded_splits():
    x = np.zeros((2, 32, 32, 3), np.uint8)
    ds = _dataset(x, x, x)
    assert explore.straddling_groups(ds) == [] and explore.group_table(ds).empty
    ds.groups = {"train": np.array(["p1", "p2"]), "val": np.array(["p3", "p3"]), "test": np.array(["p2", "p4"])}
    assert explore.straddling_groups(ds) == [{"group": "p2", "splits": {"train": 1, "test": 1}}]
    table = explore.group_table(ds)
    assert table.loc["val", "groups"] == 1 and table.loc["val", "largest group"] == 2


# ------------------------------------------------------------------------------ the runner's checks


def test_the_runner_checks_groups_and_labels_before_any_notebook(tmp_path):
    grouped_folder(tmp_path / "scans")
    data = str(tmp_path / "scans")
    _, plan = runner.plan_run("smoke", only=["01"], data=data, group_by=r"p(\w\d+)_")
    assert plan[0][1]["GROUP_BY"] == r"p(\w\d+)_"
    _, plan = runner.plan_run("smoke", {"GROUP_BY": r"p(\w\d+)_"}, only=["01"], data=data)
    assert plan[0][1]["GROUP_BY"] == r"p(\w\d+)_"
    with pytest.raises(ValueError, match=r"has no capture group"):
        runner.plan_run("smoke", only=["01"], data=data, group_by=r"p\d+")
    with pytest.raises(ValueError, match=r"does not match .* image paths"):
        runner.plan_run("smoke", only=["01"], data=data, group_by=r"patient(\d+)")
    with pytest.raises(ValueError, match=r"--group-by needs --data"):
        runner.plan_run("smoke", only=["01"], group_by=r"p(\d+)")
    if not all(
        "GROUP_BY" in runner.notebook_parameters(s) for s in profiles.NOTEBOOKS
    ):  # until every notebook declares it: refused, so no two notebooks see other splits
        with pytest.raises(ValueError, match=r"--group-by sets GROUP_BY, which changes the splits, but notebook"):
            runner.plan_run("smoke", only=["01", "03"], data=data, group_by=r"p(\w\d+)_")
    (tmp_path / "labels.csv").write_text("benign/pb00_0.png,benign\nbenign/pb01_0.png,nan\n")
    with pytest.raises(ValueError, match=r"labels\.csv, line 2: the label 'nan' marks a missing label"):
        runner.plan_run("smoke", only=["01"], data=data, labels=str(tmp_path / "labels.csv"))


def test_run_all_refuses_bad_group_and_label_options_in_one_line(tmp_path):
    def run(*args):
        out = subprocess.run(
            [
                sys.executable,
                str(REPO / "run_all.py"),
                "--profile",
                "smoke",
                "--only",
                "01",
                "--out",
                str(tmp_path / "out"),
                *args,
            ],
            capture_output=True,
            text=True,
        )
        assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
        return out.stderr

    assert "--group-by" in run("--data", "synthetic:20", "--group-by", "p(\\d+")
    assert "Labels file not found" in run("--data", "synthetic:20", "--labels", str(tmp_path / "missing.csv"))
    assert "--labels-from takes 'filename:REGEX'" in run("--data", "synthetic:20", "--labels-from", "^([a-z]+)_")
    assert not (tmp_path / "out").exists()


def test_run_all_turns_the_options_into_parameters_and_keeps_a_resumed_run_on_its_splits(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("run_all_script", REPO / "run_all.py")
    run_all = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run_all)
    csv = tmp_path / "labels.csv"
    csv.write_text("a.png,x\n")

    def options(*argv, overrides=None):
        return run_all.data_options(run_all.build_parser().parse_args(list(argv)), overrides or {})

    assert options("--group-by", r"p(\d+)") == {"GROUP_BY": r"p(\d+)"}
    assert options("--labels", str(csv)) == {"LABELS": str(csv.resolve())}
    assert options("--labels-from", "filename:^(\\w+)_") == {"LABELS": "filename:^(\\w+)_"}
    with pytest.raises(ValueError, match=r"--labels and --labels-from do not go together"):
        options("--labels", str(csv), "--labels-from", "filename:(a)")
    with pytest.raises(ValueError, match=r"--group-by and -p GROUP_BY disagree"):
        options("--group-by", r"p(\d+)", overrides={"GROUP_BY": r"q(\d+)"})
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    manifest = {"run_id": "run", "profile": "smoke", "overrides": {"GROUP_BY": r"p(\d+)"}, "notebooks": {}}
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    assert options("--resume", str(run_dir), "--group-by", r"p(\d+)") == {"GROUP_BY": r"p(\d+)"}
    with pytest.raises(ValueError, match=r"Cannot resume .* with --group-by 'q\(\\d\+\)': that run used 'p"):
        options("--resume", str(run_dir), "--group-by", r"q(\d+)")


# ------------------------------------------------------------------------------ 01 end to end


@pytest.mark.notebook
def test_explore_notebook_reports_groups_and_near_duplicates(tmp_path):
    grouped_folder(tmp_path / "scans", groups_per_class=10, per_group=(1, 2))  # at most 20 images a class
    regex = r"/p(\w\d+)_"
    result = runner.run_study(
        "smoke",
        data=str(tmp_path / "scans"),
        out=tmp_path / "out",
        only=["01"],
        overrides={"GROUP_BY": regex},
        pdf=False,
        log=lambda *a: None,
    )
    assert result.ok
    metrics = json.loads((result.run_dir / "metrics" / "01_explore_data.json").read_text())
    ds = load_study_data(str(tmp_path / "scans"), subset=20, group_by=regex)  # what the notebook loaded
    assert metrics["groups"]["per_split"] == ds.group_counts() == metrics["data"]["groups"]
    assert sum(metrics["groups"]["per_split"].values()) == 20
    assert metrics["groups"]["grouped"] and metrics["groups"]["no_group_straddles"] is True
    assert (
        metrics["groups"]["straddling"] == 0 and metrics["groups"]["check"] == "no group appears in more than one split"
    )
    near = metrics["near_duplicates"]
    assert near["max_distance"] == 6 and near["pairs"] == {"train-val": 0, "train-test": 0, "val-test": 0}
    html = (result.run_dir / "01_explore_data.html").read_text()
    assert "no group appears in more than one split" in html and "Near duplicates across splits" in html
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    assert manifest["overrides"]["GROUP_BY"] == regex
    assert re.search(r"whole groups per split", metrics["data"]["split_origin"])
