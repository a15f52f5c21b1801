"""Synthetic data: determinism, learnability, writers; and the package's import hygiene."""

from __future__ import annotations

import ast
import pickle
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/ is not a package
from test_data_helpers import isolated_cache  # noqa: E402,F401

import cifarkit.data  # noqa: E402
from cifarkit.data import (  # noqa: E402
    CIFAR10_CLASSES,
    load_dataset,
    make_synthetic,
    write_synthetic_cifar_archive,
    write_synthetic_image_folder,
)

BACKENDS = ("keras", "torch", "tensorflow", "jax")


@pytest.fixture(autouse=True)
def _no_user_cache(isolated_cache):  # noqa: F811
    return isolated_cache


def test_make_synthetic_is_deterministic_and_balanced():
    x, y, names = make_synthetic(n_per_class=30, num_classes=4, image_size=32, seed=7)
    assert x.shape == (120, 32, 32, 3) and x.dtype == np.uint8 and y.dtype == np.int64
    assert names == ["circle", "square", "triangle", "cross"]
    assert np.bincount(y).tolist() == [30] * 4
    x2, y2, _ = make_synthetic(n_per_class=30, num_classes=4, image_size=32, seed=7)
    assert np.array_equal(x, x2) and np.array_equal(y, y2)
    x3, _, _ = make_synthetic(n_per_class=30, num_classes=4, image_size=32, seed=8)
    assert not np.array_equal(x, x3)
    assert make_synthetic(2, 12, (20, 28))[0].shape == (24, 20, 28, 3)
    with pytest.raises(ValueError):
        make_synthetic(0)
    with pytest.raises(ValueError):
        make_synthetic(5, num_classes=1)


def _features(x: np.ndarray) -> np.ndarray:
    """Colour of the brightest pixels and a coarse 4x4 layout of brightness: no learning backend needed."""
    f = x.astype(np.float32) / 255
    brightness = f.sum(-1)
    bright = brightness >= np.quantile(brightness.reshape(len(x), -1), 0.85, axis=1)[:, None, None]
    colour = (f * bright[..., None]).sum((1, 2)) / bright.sum((1, 2))[:, None]
    h, w = x.shape[1:3]
    layout = brightness.reshape(len(x), 4, h // 4, 4, w // 4).mean((2, 4)).reshape(len(x), -1)
    return np.concatenate([colour * 3, layout / 3], axis=1)


def test_synthetic_classes_are_easily_separable():
    """A nearest-centroid classifier on simple features separates the 10 classes of held-out images."""
    x, y, _ = make_synthetic(n_per_class=60, num_classes=10, seed=0)
    xt, yt, _ = make_synthetic(n_per_class=20, num_classes=10, seed=1)
    centroids = np.stack([_features(x[y == k]).mean(0) for k in range(10)])
    pred = np.argmin(((_features(xt)[:, None] - centroids[None]) ** 2).sum(-1), axis=1)
    assert (pred == yt).mean() >= 0.9


def test_synthetic_source_spec():
    ds = load_dataset("synthetic", progress=False)
    assert ds.source_kind == "synthetic" and ds.source == "synthetic:200" and ds.source_sha256 is None
    assert ds.counts() == {"train": 640, "val": 80, "test": 80}
    assert np.bincount(ds.y_val).tolist() == [20] * 4
    small = load_dataset("synthetic:10", image_size=16, subset=5, progress=False)
    assert small.counts() == {"train": 20, "val": 4, "test": 4} and small.input_shape == (16, 16, 3)
    again = load_dataset("synthetic:10", image_size=16, subset=5, progress=False)
    assert np.array_equal(small.x_train, again.x_train)


def test_cifar_archive_writer_matches_the_official_layout(tmp_path):
    path = write_synthetic_cifar_archive(tmp_path / "c.tar.gz", 7, 3)
    with tarfile.open(path) as tar:
        names = sorted(m.name for m in tar.getmembers() if m.isfile())
        expected = sorted(
            [f"cifar-10-batches-py/data_batch_{k}" for k in range(1, 6)]
            + ["cifar-10-batches-py/test_batch", "cifar-10-batches-py/batches.meta"]
        )
        assert names == expected
        raw = tar.extractfile("cifar-10-batches-py/data_batch_1").read()
        meta = pickle.loads(tar.extractfile("cifar-10-batches-py/batches.meta").read(), encoding="bytes")
    assert raw[:2] == b"\x80\x02"  # protocol 2, like the original
    batch = pickle.loads(raw, encoding="bytes")
    assert batch[b"data"].dtype == np.uint8 and batch[b"data"].shape[1] == 3072
    assert [n.decode() for n in meta[b"label_names"]] == CIFAR10_CLASSES
    ds = load_dataset(path, val_fraction=0.0, progress=False)
    assert np.bincount(ds.y_train).tolist() == [7] * 10 and np.bincount(ds.y_test).tolist() == [3] * 10
    four = load_dataset(write_synthetic_cifar_archive(tmp_path / "four.tar.gz", 5, 2, num_classes=4), progress=False)
    assert four.class_names == ["class_0", "class_1", "class_2", "class_3"]


def test_image_folder_writer_returns_paths(tmp_path):
    folder = write_synthetic_image_folder(tmp_path / "plain", 3, split=False)
    assert folder == tmp_path / "plain" and len(list(folder.glob("*/*.png"))) == 12
    tgz = write_synthetic_image_folder(tmp_path / "packed", 3, fmt="jpg", archive="tar.gz")
    assert tgz == tmp_path / "packed.tar.gz"
    with tarfile.open(tgz) as tar:
        assert all(n.startswith("packed/") for n in tar.getnames())
    assert write_synthetic_image_folder(tmp_path / "z", 2, archive="zip").suffix == ".zip"


def test_data_package_imports_no_backend():
    """Statically: no module of cifarkit.data imports a deep learning backend."""
    package = Path(cifarkit.data.__file__).parent
    for module in package.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            assert not [n for n in names if n.split(".")[0] in BACKENDS], (module.name, names)


def test_importing_and_using_the_data_package_loads_no_backend(tmp_path):
    """At run time: importing cifarkit.data and loading data adds no backend to sys.modules."""
    code = (
        "import sys, cifarkit; before = set(sys.modules);"
        "import cifarkit.data as d; d.load_dataset('synthetic:5', progress=False);"
        f"new = {{m.split('.')[0] for m in set(sys.modules) - before}} & set({BACKENDS!r});"
        "print(sorted(new)); sys.exit(1 if new else 0)"
    )
    root = Path(cifarkit.data.__file__).parents[2]
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root), "CIFARKIT_DATA_DIR": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
