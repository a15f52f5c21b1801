"""The official CIFAR-10 python format: archive, extracted folder, download, safe unpickling."""

from __future__ import annotations

import hashlib
import pickle
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/ is not a package
from test_data_helpers import (  # noqa: E402
    CountingServer,
    closed_port_url,
    isolated_cache,  # noqa: F401 - fixture
    official_batch,
    official_meta,
    poisoned_pickle,
    write_tar,
)

from cifarkit.data import (  # noqa: E402
    CIFAR10_CLASSES,
    DataError,
    cifar10,  # noqa: E402
    load_dataset,
    write_synthetic_cifar_archive,
)


@pytest.fixture(autouse=True)
def _no_user_cache(isolated_cache):  # noqa: F811
    return isolated_cache


@pytest.fixture
def official_archive(tmp_path):
    """A synthetic archive in the official format: 10 classes, 20 train + 5 test images each."""
    return write_synthetic_cifar_archive(tmp_path / "synthetic-cifar.tar.gz", 20, 5)


def _batches_dir(tmp_path, batches: dict[str, bytes]) -> Path:
    folder = tmp_path / "extracted" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name, data in batches.items():
        (folder / name).write_bytes(data)
    return folder


def _tiny_official_members(names=("a", "b")):
    """Two train images and two test images whose pixels encode their position, channel and index."""
    h = np.arange(32)[:, None]
    w = np.arange(32)[None, :]
    x = np.stack([np.stack([(h + 2 * w + 50 * c + 7 * i) % 256 for c in range(3)], axis=-1) for i in range(4)])
    x = x.astype(np.uint8)
    batches = {f"data_batch_{k}": official_batch(x[:0], []) for k in range(2, 6)}
    batches["data_batch_1"] = official_batch(x[:2], [0, 1])
    batches["test_batch"] = official_batch(x[2:], [1, 0])
    batches["batches.meta"] = official_meta(names)
    return x, batches


def test_official_archive_any_name_loads_with_cifar_names(official_archive, tmp_path):
    ds = load_dataset(official_archive, progress=False)
    assert ds.source_kind == "cifar10-archive"
    assert ds.class_names == CIFAR10_CLASSES
    assert ds.counts() == {"train": 180, "val": 20, "test": 50}
    assert np.bincount(ds.y_val, minlength=10).tolist() == [2] * 10  # 10% of each class
    assert ds.x_train.dtype == np.uint8 and ds.x_train.shape[1:] == (32, 32, 3)
    assert ds.x_train.flags.c_contiguous and ds.y_train.dtype == np.int64
    assert ds.source == str(official_archive.resolve())
    assert ds.source_sha256 == hashlib.sha256(official_archive.read_bytes()).hexdigest()
    assert ds.split_origin == "given train/test; val from train"


def test_official_rows_become_nhwc(tmp_path):
    """Each row is 1024 red, 1024 green then 1024 blue values, row-major: check the transpose."""
    x, batches = _tiny_official_members()
    archive = write_tar(tmp_path / "tiny.tgz", [(f"cifar-10-batches-py/{n}", b) for n, b in batches.items()])
    ds = load_dataset(archive, val_fraction=0.0, progress=False)
    assert ds.class_names == ["a", "b"]
    np.testing.assert_array_equal(ds.x_train, x[:2])
    np.testing.assert_array_equal(ds.y_train, [0, 1])
    np.testing.assert_array_equal(ds.x_test, x[2:])
    np.testing.assert_array_equal(ds.y_test, [1, 0])


def test_extracted_folder_and_its_parent_match_the_archive(official_archive, tmp_path):
    with tarfile.open(official_archive) as tar:
        tar.extractall(tmp_path / "extracted", filter="data")
    from_archive = load_dataset(official_archive, progress=False, use_cache=False)
    for path in (tmp_path / "extracted", tmp_path / "extracted" / "cifar-10-batches-py"):
        ds = load_dataset(path, progress=False, use_cache=False)
        assert ds.source_kind == "cifar10-dir"
        assert ds.class_names == CIFAR10_CLASSES
        for name in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
            np.testing.assert_array_equal(getattr(ds, name), getattr(from_archive, name))


def test_missing_batch_file_is_reported(tmp_path):
    _, batches = _tiny_official_members()
    del batches["test_batch"]
    folder = _batches_dir(tmp_path, batches)
    with pytest.raises(DataError, match="lacks test_batch"):
        load_dataset(folder, progress=False)


def test_poisoned_pickle_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "MARKER"
    _, batches = _tiny_official_members()
    batches["data_batch_1"] = poisoned_pickle(marker)
    folder = _batches_dir(tmp_path, batches)
    with pytest.raises(DataError, match=r"data_batch_1.*'posix\.system'|data_batch_1.*'os\.system'"):
        load_dataset(folder, progress=False)
    assert not marker.exists()

    archive = write_tar(tmp_path / "poisoned.tar.gz", [(f"cifar-10-batches-py/{n}", b) for n, b in batches.items()])
    with pytest.raises(DataError, match="refusing to unpickle"):
        load_dataset(archive, progress=False)
    assert not marker.exists()


def test_unpickler_refuses_builtins_eval(tmp_path):
    evil = b"cbuiltins\neval\n(S'__import__(\"os\").getcwd()'\ntR."
    assert pickle.loads(evil)  # a plain unpickler would run it
    _, batches = _tiny_official_members()
    batches["batches.meta"] = evil
    with pytest.raises(DataError, match=r"batches\.meta.*'builtins\.eval'"):
        load_dataset(_batches_dir(tmp_path, batches), progress=False)


def test_unpickler_loads_numpy_arrays_and_containers():
    value = {b"a": np.arange(6, dtype=np.uint8).reshape(2, 3), b"s": {1, 2}, b"n": np.int64(3), b"l": [b"x"]}
    for protocol in (2, 4):
        loaded = cifar10.restricted_loads(pickle.dumps(value, protocol=protocol), "test")
        np.testing.assert_array_equal(loaded[b"a"], value[b"a"])
        assert loaded[b"s"] == {1, 2} and loaded[b"n"] == 3 and loaded[b"l"] == [b"x"]


def test_truncated_or_garbage_archive_raises_data_error(official_archive, tmp_path):
    data = official_archive.read_bytes()
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="truncated or corrupt"):
        load_dataset(truncated, progress=False)
    garbage = tmp_path / "garbage.tar.gz"
    garbage.write_bytes(b"this is not an archive" * 100)
    with pytest.raises(DataError, match="truncated or corrupt"):
        load_dataset(garbage, progress=False)


def test_missing_path_raises_file_not_found(tmp_path):
    missing = tmp_path / "nowhere" / "cifar.tar.gz"
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_dataset(missing, progress=False)


def test_file_with_official_size_must_have_official_md5(official_archive, monkeypatch):
    monkeypatch.setattr(cifar10, "CIFAR10_SIZE", official_archive.stat().st_size)
    monkeypatch.setattr(cifar10, "CIFAR10_MD5", "0" * 32)
    with pytest.raises(DataError, match="md5"):
        load_dataset(official_archive, progress=False)
    monkeypatch.setattr(cifar10, "CIFAR10_MD5", hashlib.md5(official_archive.read_bytes()).hexdigest())
    assert load_dataset(official_archive, progress=False).counts()["train"] == 180


# ---------------------------------------------------------------------------- download


@pytest.fixture
def served_archive(official_archive, monkeypatch):
    """A local HTTP server serving the synthetic archive, with the expected size and md5 patched in."""
    payload = official_archive.read_bytes()
    with CountingServer(payload) as server:
        monkeypatch.setattr(cifar10, "CIFAR10_URL", server.url)
        monkeypatch.setattr(cifar10, "CIFAR10_SIZE", len(payload))
        monkeypatch.setattr(cifar10, "CIFAR10_MD5", hashlib.md5(payload).hexdigest())
        yield server


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part") or ".part" in p.name)


def test_download_verifies_shows_progress_and_is_reused(served_archive, tmp_path, capsys):
    cache = tmp_path / "cache"
    ds = load_dataset(cache_dir=cache, progress=True)
    assert served_archive.requests == ["/cifar-10-python.tar.gz"]
    assert "Downloading cifar-10-python.tar.gz" in capsys.readouterr().err
    archive = cache / "cifar-10-python.tar.gz"
    assert archive.read_bytes() == served_archive.payload
    assert ds.source == str(archive) and ds.source_kind == "cifar10-archive"
    assert ds.class_names == CIFAR10_CLASSES and ds.counts()["test"] == 50
    assert _leftovers(cache) == []

    again = load_dataset(cache_dir=cache, progress=False, use_cache=False)  # verified copy, no request
    cached = load_dataset("cifar10", cache_dir=cache, progress=False)  # decoded arrays from the cache
    assert len(served_archive.requests) == 1
    assert not again.from_cache and cached.from_cache
    np.testing.assert_array_equal(cached.x_train, ds.x_train)


def test_download_goes_to_env_cache_dir(served_archive, isolated_cache):  # noqa: F811
    load_dataset(progress=False)
    assert (isolated_cache / "cifar-10-python.tar.gz").is_file()


def test_download_with_wrong_checksum_is_moved_aside(served_archive, tmp_path, monkeypatch):
    monkeypatch.setattr(cifar10, "CIFAR10_MD5", "f" * 32)
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match=r"expected .* md5 f{32}.*moved to") as info:
        load_dataset(cache_dir=cache, progress=False)
    assert "--data PATH" in str(info.value)
    assert not (cache / "cifar-10-python.tar.gz").exists()
    aside = list(cache.glob("cifar-10-python.tar.gz.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == served_archive.payload
    assert _leftovers(cache) == []


def test_corrupt_cached_archive_is_moved_aside_and_downloaded_again(served_archive, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "cifar-10-python.tar.gz").write_bytes(b"partial download")
    with pytest.raises(DataError, match="download=False"):
        load_dataset(cache_dir=cache, download=False, progress=False)
    assert len(list(cache.glob("*.corrupt-*"))) == 1 and served_archive.requests == []
    (cache / "cifar-10-python.tar.gz").write_bytes(b"partial download")
    ds = load_dataset(cache_dir=cache, progress=False)
    assert len(served_archive.requests) == 1 and ds.counts()["train"] == 180
    assert len(list(cache.glob("*.corrupt-*"))) == 2


def test_connection_refused_names_url_and_local_alternatives(tmp_path, monkeypatch):
    url = closed_port_url()
    monkeypatch.setattr(cifar10, "CIFAR10_URL", url)
    cache = tmp_path / "cache"
    with pytest.raises(DataError) as info:
        load_dataset(cache_dir=cache, progress=False)
    message = str(info.value)
    assert url in message
    assert "--data PATH" in message and "load_dataset('/path/to/cifar-10-python.tar.gz')" in message
    assert "$CIFARKIT_DATA_DIR" in message
    assert list(cache.iterdir()) == []  # no temp file left behind


def test_http_error_is_a_data_error(served_archive, tmp_path):
    served_archive.status = 404
    with pytest.raises(DataError, match="404"):
        load_dataset(cache_dir=tmp_path / "cache", progress=False)
    assert list((tmp_path / "cache").iterdir()) == []


def test_download_false_never_touches_the_network(served_archive, tmp_path):
    with pytest.raises(DataError) as info:
        load_dataset(cache_dir=tmp_path / "cache", download=False, progress=False)
    assert served_archive.url in str(info.value) and "--data PATH" in str(info.value)
    assert "$CIFARKIT_DATA_DIR" in str(info.value)
    assert served_archive.requests == []


def test_default_cache_dir_is_the_user_cache(monkeypatch):
    import platformdirs

    from cifarkit.data.cache import resolve_cache_dir

    monkeypatch.delenv("CIFARKIT_DATA_DIR", raising=False)
    assert resolve_cache_dir(None) == Path(platformdirs.user_cache_dir("cifarkit"))
    monkeypatch.setenv("CIFARKIT_DATA_DIR", "/somewhere/else")
    assert resolve_cache_dir(None) == Path("/somewhere/else")
    assert resolve_cache_dir("/given") == Path("/given")
