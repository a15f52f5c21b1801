"""Accuracy under synthetic corruptions of the test images (noise, blur, contrast, JPEG, brightness).

The strengths are CIFAR-10-C's severities 1, 3 and 5 (Hendrycks & Dietterich 2019,
``make_cifar_c.py``), so severity 3 here is CIFAR-10-C's strongest.
"""

from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd

from cifarkit.training.inference import predict_logits

#: Synthetic corruptions of :func:`corrupt`, in the order the tables list them.
CORRUPTIONS = ("gaussian_noise", "gaussian_blur", "contrast", "jpeg", "brightness")
#: Severity 1..3 -> corruption strength: CIFAR-10-C's severities 1, 3 and 5 (Hendrycks & Dietterich 2019,
#: ``make_cifar_c.py``). Noise std and brightness shift are in 0..1 pixel units; blur sigma is in pixels
#: for a 32-pixel image (scaled with the image side); contrast is the factor that pulls each pixel towards
#: its image's channel mean; jpeg is the JPEG quality.
SEVERITIES = {
    "gaussian_noise": (0.04, 0.08, 0.10),
    "gaussian_blur": (0.4, 0.7, 1.0),
    "contrast": (0.75, 0.4, 0.15),
    "jpeg": (80, 58, 40),
    "brightness": (0.05, 0.15, 0.3),
}
CORRUPTION_UNITS = {
    "gaussian_noise": "noise std (0-1 units)",
    "gaussian_blur": "blur sigma (pixels at 32 px)",
    "contrast": "contrast factor",
    "jpeg": "JPEG quality",
    "brightness": "value (HSV) shift (0-1 units)",
}


# --------------------------------------------------------------------------- corruptions


def _gaussian_kernel(sigma: float) -> np.ndarray:
    radius = max(1, int(math.ceil(4 * sigma)))  # truncated at 4 sigma, as scikit-image's gaussian filter
    t = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


def _blur(x: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of NHWC float images; borders repeat the edge pixel."""
    k = _gaussian_kernel(sigma)
    r = len(k) // 2
    out = x
    for axis in (1, 2):
        pad = [(0, 0)] * 4
        pad[axis] = (r, r)
        padded = np.pad(out, pad, mode="edge")
        acc = np.zeros_like(out)
        size = out.shape[axis]
        for i, w in enumerate(k):
            acc += w * np.take(padded, np.arange(i, i + size), axis=axis)
        out = acc
    return out


def _brighten(f: np.ndarray, shift: float) -> np.ndarray:
    """Add ``shift`` (0..255 units) to the HSV value of every pixel, keeping hue and saturation.

    In HSV the value is the largest channel and scaling RGB scales only the value,
    so this is ``rgb * min(v + shift, 255) / v`` (a black pixel becomes grey).
    """
    v = f.max(axis=-1, keepdims=True)
    new_v = np.minimum(v + shift, 255.0)
    scale = np.divide(new_v, v, out=np.ones_like(v), where=v > 0)
    return np.where(v > 0, f * scale, new_v)


def _jpeg(x: np.ndarray, quality: int) -> np.ndarray:
    from PIL import Image

    out = np.empty_like(x)
    for i, img in enumerate(x):
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=int(quality))
        buf.seek(0)
        out[i] = np.asarray(Image.open(buf).convert("RGB"))
    return out


def corrupt(x, kind: str, severity: int, seed: int = 0) -> np.ndarray:
    """A synthetically corrupted copy of uint8 NHWC images.

    Kinds (strength per severity in :data:`SEVERITIES`):
        ``gaussian_noise``  adds N(0, sigma^2) noise (seeded; the only random kind);
        ``gaussian_blur``   Gaussian blur, sigma scaled with the image side / 32;
        ``contrast``        pulls every pixel towards its image's per-channel mean by a factor;
        ``jpeg``            JPEG compression at a low quality (Pillow);
        ``brightness``      raises the HSV value of every pixel by a constant.
    The strengths are CIFAR-10-C's severities 1, 3 and 5, so severity 3 here is
    CIFAR-10-C's strongest.
    Results are clipped to 0..255 and rounded.

    Args:
        x: uint8 images ``(N, H, W, 3)``.
        kind: one of :data:`CORRUPTIONS`.
        severity: 1, 2 or 3.
        seed: seed of the noise, so a corruption is the same on every call.

    Returns:
        uint8 array of the same shape.
    """
    if kind not in SEVERITIES:
        raise ValueError(f"Unknown corruption {kind!r}. Known corruptions: {', '.join(CORRUPTIONS)}.")
    levels = SEVERITIES[kind]
    if isinstance(severity, bool) or not isinstance(severity, (int, np.integer)) or not 1 <= severity <= len(levels):
        raise ValueError(f"severity must be an integer from 1 to {len(levels)}; received severity={severity!r}.")
    x = np.asarray(x)
    if x.ndim != 4 or x.dtype != np.uint8:
        raise ValueError(f"corrupt needs uint8 images shaped (N, H, W, C); received {x.dtype} of shape {x.shape}.")
    level = levels[int(severity) - 1]
    if kind == "jpeg":
        return _jpeg(x, level)
    f = x.astype(np.float32)
    if kind == "gaussian_noise":
        rng = np.random.default_rng(seed)
        f = f + rng.normal(0.0, level * 255.0, size=x.shape).astype(np.float32)
    elif kind == "gaussian_blur":
        f = _blur(f, level * max(x.shape[1], x.shape[2]) / 32.0)
    elif kind == "contrast":
        mean = f.mean(axis=(1, 2), keepdims=True)
        f = (f - mean) * level + mean
    elif kind == "brightness":
        f = _brighten(f, level * 255.0)
    return np.clip(np.rint(f), 0, 255).astype(np.uint8)


def subsample(n: int, samples: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of a seeded random subsample of ``samples`` out of ``n`` (all when ``samples`` is 0 or >= n)."""
    if samples < 0:
        raise ValueError(f"samples must be >= 0 (0 means all); received {samples}.")
    if samples == 0 or samples >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=samples, replace=False))


def robustness_table(
    model, x, y, *, kinds=CORRUPTIONS, severities=(1, 2, 3), samples: int = 0, seed: int = 0, batch_size: int = 512
) -> pd.DataFrame:
    """Accuracy of ``model`` on corrupted copies of ``(x, y)``.

    Args:
        model: a trained model returning logits.
        x, y: uint8 NHWC images and their labels (the test split).
        kinds: corruptions from :data:`CORRUPTIONS`.
        severities: severities from 1 to 3.
        samples: evaluate on a seeded random subsample of this many images (0 = all).
        seed: seed of the subsample and of the noise.
        batch_size: images per forward pass.

    Returns:
        A DataFrame with one row per corruption and one column per severity (accuracy);
        ``df.attrs`` holds ``clean_acc`` (the same subsample, uncorrupted), ``n`` and ``indices``.
    """
    x = np.asarray(x)
    y = np.asarray(y).reshape(-1)
    idx = subsample(len(x), int(samples), seed)
    xs, ys = x[idx], y[idx]
    clean = float(np.mean(predict_logits(model, xs, batch_size).argmax(1) == ys))
    rows = {}
    for kind in kinds:
        rows[kind] = {}
        for s in severities:
            pred = predict_logits(model, corrupt(xs, kind, s, seed=seed), batch_size).argmax(1)
            rows[kind][int(s)] = float(np.mean(pred == ys))
    df = pd.DataFrame.from_dict(rows, orient="index")
    df.index.name = "corruption"
    df.columns.name = "severity"
    df.attrs.update(clean_acc=clean, n=int(len(idx)), indices=idx)
    return df


def robustness_dict(df: pd.DataFrame) -> dict:
    """``{kind: {severity: accuracy}}`` (severity keys as strings) from :func:`robustness_table`."""
    return {kind: {str(s): float(v) for s, v in row.items()} for kind, row in df.iterrows()}
