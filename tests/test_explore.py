"""The stratified sample behind 01's PCA and t-SNE plots: as many images as asked, spread over the classes."""

from __future__ import annotations

import numpy as np
import pytest

from cifarkit.analysis import explore


def _labels(per_class=(60, 60, 60, 60), seed=0):
    y = np.concatenate([np.full(m, c) for c, m in enumerate(per_class)])
    return np.random.default_rng(seed).permutation(y)


def test_a_sample_size_not_divisible_by_the_classes_is_drawn_whole():
    y = _labels()
    idx = explore.sample_indices(y, 10, seed=0)  # 4 classes: 3, 3, 2, 2
    assert len(idx) == 10 == len(np.unique(idx))
    assert sorted(np.bincount(y[idx]).tolist()) == [2, 2, 3, 3]


def test_a_divisible_sample_is_equal_per_class_and_reproducible():
    y = _labels()
    a, b = explore.sample_indices(y, 40, seed=3), explore.sample_indices(y, 40, seed=3)
    assert np.array_equal(a, b)
    assert np.bincount(y[a]).tolist() == [10, 10, 10, 10]
    assert not np.array_equal(a, explore.sample_indices(y, 40, seed=4))


def test_fewer_images_than_classes_still_shows_every_class_and_a_small_class_gives_what_it_has():
    y = _labels()
    assert np.bincount(y[explore.sample_indices(y, 2)]).tolist() == [1, 1, 1, 1]
    small = _labels((60, 60, 60, 5))
    counts = np.bincount(small[explore.sample_indices(small, 80)]).tolist()
    assert counts == [20, 20, 20, 5]


def test_the_embedding_reports_the_number_it_drew():
    rng = np.random.default_rng(0)
    y = _labels()
    x = rng.integers(0, 256, size=(len(y), 4, 4, 3), dtype=np.uint8)
    pts, labels, info = explore.embed_2d(x, y, method="pca", n=13)
    assert info["n"] == 13 == len(pts) == len(labels)


def test_the_quota_is_the_sample_that_is_drawn():
    assert explore.class_quota(10, [60, 60, 60, 60]).tolist() == [3, 3, 2, 2]
    assert explore.class_quota(80, [60, 60, 60, 5]).tolist() == [20, 20, 20, 5]
    assert explore.class_quota(1, [60, 60]).tolist() == [1, 1]  # every class is shown
    assert explore.class_quota(0, [60, 60]).tolist() == [0, 0]  # 0 asks for no sample: 01 skips the plot
    y = _labels((60, 7, 60, 3))
    for n in (0, 5, 13, 40, 200, 500):
        quota = explore.class_quota(n, np.bincount(y))
        assert np.bincount(y[explore.sample_indices(y, n)], minlength=4).tolist() == quota.tolist()


def test_a_sample_of_0_embeds_nothing_and_a_few_images_still_embed_with_t_sne():
    """``PCA_SAMPLES``/``TSNE_SAMPLES`` of 0 (their ranges allow it) skip the embedding; the smallest sample,
    one image per class, embeds with a perplexity below its size (scikit-learn refuses 5 for 4 images)."""
    rng = np.random.default_rng(0)
    y = _labels()
    x = rng.integers(0, 256, size=(len(y), 4, 4, 3), dtype=np.uint8)
    for method in ("pca", "tsne"):
        pts, labels, info = explore.embed_2d(x, y, method=method, n=0)
        assert pts.shape == (0, 2) and len(labels) == 0 and info["n"] == 0
    assert explore.embed_2d(x, y, method="pca", n=0)[2]["explained_variance_ratio"] == []
    pts, labels, info = explore.embed_2d(x, y, method="tsne", n=1)  # one per class: 4 images
    assert pts.shape == (4, 2) and sorted(labels.tolist()) == [0, 1, 2, 3]
    assert info["perplexity"] == 3.0 and np.isfinite(pts).all()
    with pytest.raises(ValueError, match="Unknown embedding method 'umap'"):
        explore.embed_2d(x, y, method="umap", n=0)
