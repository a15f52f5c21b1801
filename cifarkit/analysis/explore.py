"""Computations behind the data-exploration notebook (no plotting here; see ``plots``)."""

from __future__ import annotations

import hashlib
from collections import defaultdict

import numpy as np
import pandas as pd

SPLITS = ("train", "val", "test")


def split_arrays(ds):
    """``{"train": (x, y), "val": (x, y), "test": (x, y)}`` of a Dataset."""
    return {"train": (ds.x_train, ds.y_train), "val": (ds.x_val, ds.y_val), "test": (ds.x_test, ds.y_test)}


def class_counts(ds) -> pd.DataFrame:
    """Images per class (rows) and split (columns), with totals."""
    k = len(ds.class_names)
    table = {s: np.bincount(y, minlength=k) for s, (_, y) in split_arrays(ds).items()}
    df = pd.DataFrame(table, index=pd.Index(ds.class_names, name="class"))
    df["total"] = df.sum(axis=1)
    df.loc["all"] = df.sum(axis=0)
    return df


def channel_stats(ds, chunk: int = 4096) -> pd.DataFrame:
    """Per-channel mean and std (0..1 units) of every split, computed in chunks (no float copy of the data)."""
    rows = {}
    for split, (x, _) in split_arrays(ds).items():
        if len(x) == 0:
            continue
        s = np.zeros(3)
        s2 = np.zeros(3)
        n = 0
        for i in range(0, len(x), chunk):
            block = x[i : i + chunk].reshape(-1, 3).astype(np.float64) / 255.0
            s += block.sum(0)
            s2 += (block**2).sum(0)
            n += len(block)
        mean = s / n
        rows[split] = {
            **{f"mean_{c}": m for c, m in zip("RGB", mean)},
            **{f"std_{c}": v for c, v in zip("RGB", np.sqrt(np.maximum(s2 / n - mean**2, 0)))},
        }
    return pd.DataFrame(rows).T


def pixel_histograms(x: np.ndarray, max_images: int = 5000, seed: int = 0) -> np.ndarray:
    """Counts of each 0..255 value per channel, shape (3, 256), over up to ``max_images`` images."""
    if len(x) > max_images:
        x = x[np.random.default_rng(seed).choice(len(x), max_images, replace=False)]
    return np.stack([np.bincount(x[..., c].ravel(), minlength=256) for c in range(3)])


def image_hashes(x: np.ndarray) -> list[str]:
    return [hashlib.blake2b(img.tobytes(), digest_size=16).hexdigest() for img in x]


def find_duplicates(ds) -> dict:
    """Exact (pixel-identical, after decoding and resizing) duplicates within and across splits.

    Returns counts: ``within`` maps a split to the number of images that repeat an
    earlier image of the same split; ``across`` maps "train-test" etc. to the
    number of images of the second split that also occur in the first; and a few
    example index pairs.
    """
    hashes = {s: image_hashes(x) for s, (x, _) in split_arrays(ds).items()}
    out = {"within": {}, "across": {}, "examples": {}}
    index = {}
    for split, hs in hashes.items():
        seen = defaultdict(list)
        for i, h in enumerate(hs):
            seen[h].append(i)
        index[split] = seen
        groups = [v for v in seen.values() if len(v) > 1]
        out["within"][split] = int(sum(len(v) - 1 for v in groups))
        out["examples"][split] = [v[:2] for v in groups[:5]]
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        common = set(index[a]) & set(index[b])
        out["across"][f"{a}-{b}"] = int(sum(len(index[b][h]) for h in common))
        out["examples"][f"{a}-{b}"] = [(index[a][h][0], index[b][h][0]) for h in list(common)[:5]]
    return out


def mean_images(ds) -> np.ndarray:
    """Mean training image of each class, uint8, shape (classes, H, W, 3)."""
    k = len(ds.class_names)
    out = np.zeros((k, *ds.x_train.shape[1:]), dtype=np.float64)
    for c in range(k):
        sel = ds.x_train[ds.y_train == c]
        if len(sel):
            out[c] = sel.mean(axis=0, dtype=np.float64)
    return np.clip(out.round(), 0, 255).astype(np.uint8)


def sample_indices(y: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """Up to ``n`` indices, stratified by label, reproducible for a seed."""
    rng = np.random.default_rng(seed)
    classes = np.unique(y)
    per = max(1, n // max(len(classes), 1))
    idx = [rng.permutation(np.flatnonzero(y == c))[:per] for c in classes]
    return np.sort(np.concatenate(idx)) if idx else np.array([], dtype=int)


def embed_2d(x: np.ndarray, y: np.ndarray, *, method: str = "pca", n: int = 2000, seed: int = 0):
    """2-D embedding of a stratified subset of images.

    ``pca``: the first two principal components of the raw pixels (0..1).
    ``tsne``: t-SNE (scikit-learn) on the first 50 principal components.
    Returns ``(points (m, 2), labels (m,), info dict)``.
    """
    from sklearn.decomposition import PCA

    idx = sample_indices(y, n, seed)
    flat = x[idx].reshape(len(idx), -1).astype(np.float32) / 255.0
    info = {"method": method, "n": int(len(idx))}
    if method == "pca":
        pca = PCA(n_components=2, random_state=seed)
        pts = pca.fit_transform(flat)
        info["explained_variance_ratio"] = [float(v) for v in pca.explained_variance_ratio_]
    elif method == "tsne":
        from sklearn.manifold import TSNE

        k = min(50, flat.shape[0] - 1, flat.shape[1])
        reduced = PCA(n_components=k, random_state=seed).fit_transform(flat)
        perplexity = float(min(30.0, max(5.0, (len(idx) - 1) / 4)))
        pts = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(reduced)
        info["perplexity"] = perplexity
    else:
        raise ValueError(f"Unknown embedding method {method!r}. Use 'pca' or 'tsne'.")
    return pts, y[idx], info
