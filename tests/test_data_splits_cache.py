"""Stratified splits and subsets, the decode cache, and the Dataset container."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/ is not a package
from test_data_helpers import isolated_cache, noise_folder, noise_png  # noqa: E402,F401

from cifarkit.data import DataError, Dataset, load_dataset, write_synthetic_cifar_archive  # noqa: E402
from cifarkit.data.splits import stratified_split, stratified_subset  # noqa: E402


@pytest.fixture(autouse=True)
def _no_user_cache(isolated_cache):  # noqa: F811
    return isolated_cache


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """An unsplit folder of distinct noise images: 20, 30 and 40 per class."""
    return noise_folder(tmp_path_factory.mktemp("noise") / "f", {"ant": 20, "bee": 30, "cow": 40})


def _digests(x: np.ndarray) -> list[str]:
    return [hashlib.sha1(img.tobytes()).hexdigest() for img in x]


def test_stratified_split_proportions_and_determinism():
    labels = np.repeat(np.arange(3), [20, 30, 40])
    rest, val, test = stratified_split(labels, [0.1, 0.25], seed=3)
    assert np.bincount(labels[val]).tolist() == [2, 3, 4]
    assert np.bincount(labels[test]).tolist() == [5, 8, 10]  # 7.5 rounds half up
    assert sorted(np.concatenate([rest, val, test]).tolist()) == list(range(90))
    again = stratified_split(labels, [0.1, 0.25], seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(again, (rest, val, test)))
    other = stratified_split(labels, [0.1, 0.25], seed=4)
    assert not np.array_equal(other[1], val)
    keep = stratified_subset(labels, 7, seed=0, split="train")
    assert np.bincount(labels[keep]).tolist() == [7, 7, 7]


def test_unsplit_folder_split_is_stratified_disjoint_and_seeded(folder):
    ds = load_dataset(folder, val_fraction=0.1, test_fraction=0.2, seed=1, progress=False, use_cache=False)
    assert np.bincount(ds.y_val).tolist() == [2, 3, 4]
    assert np.bincount(ds.y_test).tolist() == [4, 6, 8]
    assert np.bincount(ds.y_train).tolist() == [14, 21, 28]
    train, val, test = (set(_digests(x)) for x in (ds.x_train, ds.x_val, ds.x_test))
    assert len(train | val | test) == 90 and not (train & val) and not (train & test) and not (val & test)
    same = load_dataset(folder, val_fraction=0.1, test_fraction=0.2, seed=1, progress=False, use_cache=False)
    np.testing.assert_array_equal(same.x_val, ds.x_val)
    np.testing.assert_array_equal(same.y_train, ds.y_train)
    other = load_dataset(folder, val_fraction=0.1, test_fraction=0.2, seed=2, progress=False, use_cache=False)
    assert set(_digests(other.x_val)) != val


def test_classes_are_interleaved_not_sorted(folder):
    ds = load_dataset(folder, progress=False, use_cache=False)
    assert not np.all(np.diff(ds.y_train) >= 0)  # shuffled (seeded), so a tail slice holds every class


def test_val_from_given_train_never_touches_test(tmp_path):
    root = tmp_path / "f"
    noise_folder(root, {"a": 10, "b": 10}, prefix="train/")
    test_files = {f"test/{c}/{i}.png": noise_png(1000 + 10 * k + i) for k, c in enumerate("ab") for i in range(5)}
    for rel, data in test_files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    ds = load_dataset(root, val_fraction=0.2, progress=False)
    assert ds.counts() == {"train": 16, "val": 4, "test": 10}
    assert not set(_digests(ds.x_val)) & set(_digests(ds.x_test))
    assert not set(_digests(ds.x_val)) & set(_digests(ds.x_train))


def test_subset_is_per_class_per_split_and_inside_the_full_split(folder):
    full = load_dataset(folder, progress=False, use_cache=False)
    small = load_dataset(folder, subset=3, progress=False, use_cache=False)
    for split in ("train", "val", "test"):
        x, y = small.split(split)
        assert np.bincount(y, minlength=3).max() <= 3
        assert set(_digests(x)) <= set(_digests(full.split(split)[0]))
    assert np.bincount(small.y_train).tolist() == [3, 3, 3]
    assert small.subset == 3 and small.to_dict()["subset"] == 3


def test_decode_cache_hit_returns_identical_arrays(folder, tmp_path):
    cache = tmp_path / "cache"
    first = load_dataset(folder, cache_dir=cache, progress=False)
    second = load_dataset(folder, cache_dir=cache, progress=False)
    assert not first.from_cache and second.from_cache
    for name in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        a, b = getattr(first, name), getattr(second, name)
        assert a.dtype == b.dtype and np.array_equal(a, b)
    assert second.class_names == first.class_names and second.split_origin == first.split_origin
    assert second.image_info == first.image_info and second.source_sha256 == first.source_sha256
    assert len(list((cache / "decoded").iterdir())) == 1
    resized = load_dataset(folder, cache_dir=cache, image_size=16, progress=False)
    assert not resized.from_cache and len(list((cache / "decoded").iterdir())) == 2


def test_use_cache_false_writes_nothing(folder, tmp_path):
    load_dataset(folder, cache_dir=tmp_path / "cache", use_cache=False, progress=False)
    assert not (tmp_path / "cache").exists()


def test_corrupt_cache_entry_is_rebuilt(folder, tmp_path):
    cache = tmp_path / "cache"
    first = load_dataset(folder, cache_dir=cache, progress=False)
    (entry,) = (cache / "decoded").iterdir()
    (entry / "x_train.npy").write_bytes(b"\x93NUMPY garbage")
    rebuilt = load_dataset(folder, cache_dir=cache, progress=False)
    assert not rebuilt.from_cache
    np.testing.assert_array_equal(rebuilt.x_train, first.x_train)
    assert load_dataset(folder, cache_dir=cache, progress=False).from_cache
    (entry / "meta.json").write_text("{not json")
    assert not load_dataset(folder, cache_dir=cache, progress=False).from_cache


def test_changed_folder_misses_the_cache(tmp_path):
    root = noise_folder(tmp_path / "f", {"a": 4, "b": 4})
    cache = tmp_path / "cache"
    no_split = dict(val_fraction=0.0, test_fraction=0.0)  # 4 per class is too few for the default 10% splits
    load_dataset(root, cache_dir=cache, progress=False, **no_split)
    (root / "a" / "extra.png").write_bytes(noise_png(999))
    ds = load_dataset(root, cache_dir=cache, progress=False, **no_split)
    assert not ds.from_cache and sum(ds.counts().values()) == 9


def test_archive_cache_uses_file_sha256(tmp_path):
    archive = write_synthetic_cifar_archive(tmp_path / "c.tar.gz", 10, 2)
    cache = tmp_path / "cache"
    a = load_dataset(archive, cache_dir=cache, progress=False)
    b = load_dataset(archive, cache_dir=cache, progress=False)
    assert b.from_cache and b.source_kind == "cifar10-archive"
    assert a.source_sha256 == b.source_sha256 == hashlib.sha256(archive.read_bytes()).hexdigest()


def _toy_dataset(x_train, x_val, x_test) -> Dataset:
    def y(x):
        return np.arange(len(x), dtype=np.int64) % 2

    return Dataset(
        x_train, y(x_train), x_val, y(x_val), x_test, y(x_test), ["a", "b"], "toy", "synthetic", None, (4, 4)
    )


def test_channel_stats_use_the_training_split_only():
    x_train = np.zeros((10, 4, 4, 3), dtype=np.uint8)
    x_train[:5, ..., 0] = 255  # red: half 0, half 255
    x_train[..., 1] = 51  # green: constant 0.2
    x_train[:, :2, :, 2] = 102  # blue: half 0, half 0.4
    ds = _toy_dataset(x_train, np.full((4, 4, 4, 3), 255, np.uint8), np.full((4, 4, 4, 3), 255, np.uint8))
    mean, std = ds.channel_stats(chunk_size=3)
    np.testing.assert_allclose(mean, [0.5, 0.2, 0.2])
    np.testing.assert_allclose(std, [0.5, 0.0, 0.2], atol=1e-12)


def test_channel_stats_match_numpy_on_real_data(folder):
    ds = load_dataset(folder, progress=False, use_cache=False)
    mean, std = ds.channel_stats(chunk_size=7)
    x = ds.x_train.astype(np.float64) / 255
    np.testing.assert_allclose(mean, x.mean(axis=(0, 1, 2)))
    np.testing.assert_allclose(std, x.std(axis=(0, 1, 2)))


def test_channel_stats_of_empty_train_is_an_error():
    empty = np.zeros((0, 4, 4, 3), np.uint8)
    with pytest.raises(DataError, match="training split is empty"):
        _toy_dataset(empty, empty, empty).channel_stats()


def test_summary_and_provenance_are_json(folder):
    ds = load_dataset(folder, val_fraction=0.1, test_fraction=0.2, seed=5, progress=False)
    summary = json.loads(json.dumps(ds.summary()))
    assert summary["splits"]["val"]["per_class"] == {"ant": 2, "bee": 3, "cow": 4}
    assert summary["splits"]["train"]["total"] == len(ds.y_train)
    record = json.loads(json.dumps(ds.to_dict()))
    assert record["source"] == str(folder.resolve()) and record["source_kind"] == "image-folder"
    assert record["counts"] == ds.counts() and record["seed"] == 5 and record["val_fraction"] == 0.1
    assert record["image_size"] == [32, 32] and record["skipped"] == 0 and len(record["source_sha256"]) == 64
    assert "stratified" in record["split_origin"]
    assert ds.num_classes == 3 and ds.input_shape == (32, 32, 3)
    assert "image-folder" in repr(ds) and len(repr(ds)) < 400


@pytest.mark.parametrize(
    "kwargs",
    [
        {"val_fraction": 1.0},
        {"val_fraction": -0.1},
        {"val_fraction": 0.5, "test_fraction": 0.5},
        {"subset": 0},
        {"subset": 2.5},
        {"seed": -1},
        {"image_size": "32"},
    ],
)
def test_bad_arguments_raise_value_error(folder, kwargs):
    with pytest.raises(ValueError):
        load_dataset(folder, progress=False, **kwargs)
