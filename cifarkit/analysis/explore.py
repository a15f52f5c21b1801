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


def class_quota(n: int, available) -> np.ndarray:
    """Images a stratified sample of ``n`` draws from each class, for classes holding ``available`` images each.

    ``n`` is spread evenly; the first ``n % classes`` classes give one image more, so that the sample is ``n``
    images, as a planned sample size (``--budget``'s) says, not the nearest multiple of the number of classes
    below it. Every class gives at least one image, and no class more than it holds (the sample is then smaller).
    ``n`` of 0 (or less) asks for no sample at all: every quota is 0 (01 then skips the plot).
    :func:`sample_indices` draws by it, and the run's time estimate counts by it.
    """
    available = np.asarray(available, dtype=np.int64)
    if int(n) <= 0:
        return np.zeros_like(available)
    k = max(len(available), 1)
    per = np.maximum(1, int(n) // k + (np.arange(len(available)) < int(n) % k))
    return np.minimum(per, available)


def sample_indices(y: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """``n`` indices stratified by label as :func:`class_quota` spreads them, reproducible for a seed."""
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(y, return_counts=True)
    quota = class_quota(n, counts)
    idx = [rng.permutation(np.flatnonzero(y == c))[:m] for c, m in zip(classes, quota)]
    return np.sort(np.concatenate(idx)) if idx else np.array([], dtype=int)


def embed_2d(x: np.ndarray, y: np.ndarray, *, method: str = "pca", n: int = 2000, seed: int = 0):
    """2-D embedding of a stratified subset of images.

    ``pca``: the first two principal components of the raw pixels (0..1).
    ``tsne``: t-SNE (scikit-learn) on the first 50 principal components; its perplexity (5 to 30) stays below
    the number of images, so that a sample of a few images still embeds.
    Returns ``(points (m, 2), labels (m,), info dict)``; ``n`` of 0 embeds nothing: ``m`` is 0.
    """
    from sklearn.decomposition import PCA

    if method not in ("pca", "tsne"):
        raise ValueError(f"Unknown embedding method {method!r}. Use 'pca' or 'tsne'.")
    idx = sample_indices(y, n, seed)
    info = {"method": method, "n": int(len(idx))}
    if not len(idx):
        if method == "pca":
            info["explained_variance_ratio"] = []
        return np.zeros((0, 2), dtype=np.float32), y[idx], info
    flat = x[idx].reshape(len(idx), -1).astype(np.float32) / 255.0
    if method == "pca":
        pca = PCA(n_components=2, random_state=seed)
        pts = pca.fit_transform(flat)
        info["explained_variance_ratio"] = [float(v) for v in pca.explained_variance_ratio_]
    elif method == "tsne":
        from sklearn.manifold import TSNE

        k = min(50, flat.shape[0], flat.shape[1])
        reduced = PCA(n_components=k, random_state=seed).fit_transform(flat)
        perplexity = float(min(30.0, max(5.0, (len(idx) - 1) / 4), len(idx) - 1))
        pts = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(reduced)
        info["perplexity"] = perplexity
    return pts, y[idx], info


# ---------------------------------------------------------------------------- groups


def group_table(ds) -> pd.DataFrame:
    """Per split: images, distinct groups and images per group (smallest, median, largest).

    Empty (no rows) for data without groups (``Dataset.groups`` is None).
    """
    if ds.groups is None:
        return pd.DataFrame(columns=["images", "groups", "smallest group", "median group", "largest group"])
    rows = {}
    for split in SPLITS:
        ids = np.asarray(ds.groups[split])
        sizes = np.unique(ids, return_counts=True)[1] if len(ids) else np.zeros(0, dtype=int)
        rows[split] = {
            "images": int(len(ids)),
            "groups": int(len(sizes)),
            "smallest group": int(sizes.min()) if len(sizes) else 0,
            "median group": float(np.median(sizes)) if len(sizes) else 0.0,
            "largest group": int(sizes.max()) if len(sizes) else 0,
        }
    return pd.DataFrame(rows).T.astype({"images": int, "groups": int, "smallest group": int, "largest group": int})


def groups_per_class(ds) -> pd.DataFrame:
    """Distinct groups holding each class (rows) in each split (columns); empty for ungrouped data."""
    if ds.groups is None:
        return pd.DataFrame()
    table = {}
    for split, (_, y) in split_arrays(ds).items():
        ids = np.asarray(ds.groups[split])
        table[split] = [len(np.unique(ids[y == c])) for c in range(len(ds.class_names))]
    return pd.DataFrame(table, index=pd.Index(ds.class_names, name="class"))


def straddling_groups(ds) -> list[dict]:
    """Groups with images in more than one split, each ``{"group", "splits": {split: images}}`` (``[]`` when none,
    and for ungrouped data). Computed from the loaded splits themselves, not from how they were made."""
    if ds.groups is None:
        return []
    where: dict[str, dict[str, int]] = defaultdict(dict)
    for split in SPLITS:
        ids, n = np.unique(np.asarray(ds.groups[split]), return_counts=True)
        for g, k in zip(ids.tolist(), n.tolist()):
            where[str(g)][split] = int(k)
    return [{"group": g, "splits": s} for g, s in sorted(where.items()) if len(s) > 1]


# ---------------------------------------------------------------------------- near duplicates

#: Two images are near duplicates when their 64-bit perceptual hashes differ in at most this many bits.
#: Why 6 (measured on 6,000 CIFAR-10 training and 6,000 test images of the shared JPEG archive, 32x32):
#: an image and its copy with Gaussian noise (sigma 4 or 8 of 255), re-saved as JPEG (quality 50 to 90),
#: or brightened by 10 differ in 0-2 bits at the median and at most 6 bits in 99.9% of cases (8 at the very
#: worst, sigma-8 noise); of the 36 million pairs of unrelated training/test images, 19 differ in 6 bits or
#: fewer and about 15 of those are the same photograph (CIFAR-10's known near-duplicates), while at 8 bits
#: 38 pairs match and about half are different pictures with the same layout. Distances are even (the bits
#: split the coefficients at their median), so 6 means at most three coefficients crossed it.
NEAR_DUPLICATE_BITS = 6
#: Images whose grey version varies less than this (standard deviation, 0-255) have no structure to hash;
#: they all hash alike, so they are counted apart and never paired.
FEATURELESS_STD = 1.0
HASH_SIDE = 32


def _area_matrix(n_in: int, n_out: int) -> np.ndarray:
    """``(n_out, n_in)`` weights that average pixels over equal intervals (exact area resampling)."""
    edges = np.linspace(0.0, n_in, n_out + 1)
    lo = np.maximum(edges[:-1, None], np.arange(n_in)[None, :])
    hi = np.minimum(edges[1:, None], np.arange(n_in)[None, :] + 1)
    w = np.clip(hi - lo, 0.0, None)
    return w / w.sum(axis=1, keepdims=True)


def _dct_matrix(n: int) -> np.ndarray:
    """The orthonormal DCT-II matrix: ``C @ v`` transforms a length-``n`` signal."""
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    c = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    c[0] /= np.sqrt(2.0)
    return c


def perceptual_hashes(x: np.ndarray, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """64-bit DCT perceptual hashes (pHash) of uint8 RGB images, computed with numpy only.

    Each image is turned grey (ITU-R 601 weights), area-resampled to 32x32, transformed with a 2-D DCT;
    the 8x8 lowest frequencies give 64 bits, each set when its coefficient is above the median of the 63
    non-constant ones. Low frequencies carry the layout of the picture, which noise, JPEG artefacts and
    small brightness changes leave in place.

    Returns:
        ``(hashes, featureless)``: uint64 array of shape ``(N,)``, and a bool array marking images
        with no structure to hash (grey standard deviation below ``FEATURELESS_STD``).
    """
    n = len(x)
    hashes = np.zeros(n, dtype=np.uint64)
    featureless = np.zeros(n, dtype=bool)
    if n == 0:
        return hashes, featureless
    rows = _area_matrix(x.shape[1], HASH_SIDE)
    cols = _area_matrix(x.shape[2], HASH_SIDE)
    dct = _dct_matrix(HASH_SIDE)[:8]
    left, right = dct @ rows, (dct @ cols).T  # resample and transform in one product per side
    weights = np.array([0.299, 0.587, 0.114], dtype=np.float32)
    for start in range(0, n, chunk):
        grey = x[start : start + chunk].astype(np.float32) @ weights
        coef = np.einsum("ih,nhw,wj->nij", left, grey, right, optimize=True).reshape(len(grey), 64)
        median = np.median(coef[:, 1:], axis=1, keepdims=True)
        bits = np.packbits(coef > median, axis=1)
        hashes[start : start + len(grey)] = bits.view(">u8").ravel()
        featureless[start : start + len(grey)] = grey.reshape(len(grey), -1).std(axis=1) < FEATURELESS_STD
    return hashes, featureless


_POPCOUNT8 = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bits that differ between uint64 hashes (broadcasting ``a`` against ``b``)."""
    x = np.bitwise_xor(a, b)
    if hasattr(np, "bitwise_count"):  # numpy >= 2.0
        return np.bitwise_count(x)
    return _POPCOUNT8[np.ascontiguousarray(x).view(np.uint8)].reshape(*x.shape, 8).sum(axis=-1)


def near_duplicates(
    ds, *, max_distance: int = NEAR_DUPLICATE_BITS, max_examples: int = 200, block: int = 1 << 22
) -> dict:
    """Near-duplicate images across splits: pairs whose perceptual hashes differ in at most ``max_distance`` bits.

    Every pair of images from two different splits is compared (in blocks, so memory stays bounded).
    Featureless images (blank frames) are left out and counted.

    Returns:
        ``pairs`` (per split pair, e.g. ``"train-test"``: pairs found), ``images`` (images of the second split
        with a near duplicate in the first), ``featureless`` (per split), ``max_distance``, ``hash`` (in words),
        and ``examples``: up to ``max_examples`` pairs, closest first, each
        ``{"a": split, "i": index, "b": split, "j": index, "distance": bits}``.
    """
    hashed = {s: perceptual_hashes(x) for s, (x, _) in split_arrays(ds).items()}
    out = {
        "hash": "64-bit DCT perceptual hash of the grey image at 32x32",
        "max_distance": int(max_distance),
        "pairs": {},
        "images": {},
        "featureless": {s: int(f.sum()) for s, (_, f) in hashed.items()},
    }
    examples = []
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        (ha, fa), (hb, fb) = hashed[a], hashed[b]
        ia, ib = np.flatnonzero(~fa), np.flatnonzero(~fb)
        n_pairs, matched = 0, np.zeros(len(hb), dtype=bool)
        step = max(1, block // max(len(ib), 1))
        for start in range(0, len(ia), step):
            rows = ia[start : start + step]
            dist = hamming(ha[rows][:, None], hb[ib][None, :])
            r, c = np.nonzero(dist <= max_distance)
            n_pairs += len(r)
            matched[ib[c]] = True
            if len(r) > max_examples:  # memory stays bounded however many pairs there are: keep the closest
                keep = np.argpartition(dist[r, c], max_examples - 1)[:max_examples]
                r, c = r[keep], c[keep]
            examples += [(int(dist[i, j]), a, int(rows[i]), b, int(ib[j])) for i, j in zip(r, c)]
            if len(examples) > 4 * max_examples:
                examples = sorted(examples)[:max_examples]
        out["pairs"][f"{a}-{b}"] = int(n_pairs)
        out["images"][f"{a}-{b}"] = int(matched.sum())
    order = {"train": 0, "val": 1, "test": 2}
    examples.sort(key=lambda e: (e[0], order[e[1]], order[e[3]], e[2], e[4]))
    out["examples"] = [{"a": a, "i": i, "b": b, "j": j, "distance": d} for d, a, i, b, j in examples[:max_examples]]
    return out
