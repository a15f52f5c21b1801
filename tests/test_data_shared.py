"""Integration test on the real CIFAR-10 images of the shared JPEG archive (skipped when absent)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/ is not a package
from test_data_helpers import SHARED_ARCHIVE, SHARED_ARCHIVE_SHA256, isolated_cache, requires_shared_archive  # noqa: E402,F401

from cifarkit.data import CIFAR10_CLASSES, load_dataset  # noqa: E402


@requires_shared_archive
def test_shared_archive_subset(isolated_cache):  # noqa: F811
    ds = load_dataset(SHARED_ARCHIVE, subset=300, progress=False)
    assert ds.source_kind == "image-folder" and ds.source_sha256 == SHARED_ARCHIVE_SHA256
    assert ds.class_names == CIFAR10_CLASSES
    assert ds.x_train.shape == (3000, 32, 32, 3) and ds.x_train.dtype == np.uint8
    assert np.bincount(ds.y_train).tolist() == [300] * 10
    assert np.bincount(ds.y_val).tolist() == [300] * 10  # 500 of each class's 5000 go to val, 300 kept
    assert np.bincount(ds.y_test).tolist() == [300] * 10
    assert ds.split_origin.startswith("given train/test; val from train")
    assert ds.skipped == [] and ds.image_info["formats"] == {"JPEG": 9000}
    assert ds.image_info["sizes"] == {"32x32": 9000}
    # Real photos, not blank decodes: CIFAR-10's channel means are near (0.49, 0.48, 0.45).
    mean, std = ds.channel_stats()
    np.testing.assert_allclose(mean, [0.49, 0.48, 0.45], atol=0.03)
    assert (std > 0.2).all()
    cached = load_dataset(SHARED_ARCHIVE, subset=300, progress=False)
    assert cached.from_cache and np.array_equal(cached.x_val, ds.x_val)
