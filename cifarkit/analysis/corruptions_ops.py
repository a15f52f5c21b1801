"""The 15 CIFAR-10-C corruptions, each on a batch of uint8 NHWC images.

Each function follows the CIFAR-10 definition of ``make_cifar_c.py`` (Hendrycks & Dietterich
2019) step for step, in the same float types and the same order of operations, with the
constants of :data:`~cifarkit.analysis.corruptions_params.PARAMETERS`. Signature:
``op(x, p, rng) -> array`` where ``x`` is ``(N, H, W, 3)`` uint8, ``p`` one severity's
parameters and ``rng`` a ``numpy.random.Generator``; the result is in 0..255 and becomes
uint8 by truncation (``astype(np.uint8)``), as the paper's ``np.uint8(corruption(img))``.
The paper draws its random numbers image by image from the global RNG; here they are drawn
for the whole batch from ``rng`` (same distributions, different streams).

Other sizes than 32x32: lengths that the paper gives in pixels (defocus radius and
anti-aliasing sigma, glass blur sigma, motion blur radius and sigma, the snow layer's zoom
and motion blur, the frost photos' resize factor) are multiplied by ``side / 32`` with
``side = max(H, W)``, so a corruption covers the same share of the image at any size (the
snow layer's zoom never goes below 1);
``elastic_transform`` is defined in fractions of the side and the fog map is made at the
image's size (next power of two, cropped). Per-pixel corruptions (noise, brightness,
contrast, JPEG) and ``pixelate``/``zoom_blur`` (relative factors) need no scaling. Glass
blur's shuffle distance stays 1 pixel (an integer grid step). Only 32x32 is CIFAR-10-C.
"""

from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image
from scipy import ndimage as ndi
from skimage import color as skcolor
from skimage import util as skutil

from cifarkit.analysis.corruptions_primitives import (
    clipped_zoom,
    disk_kernel,
    frost_photos,
    gaussian_hw,
    motion_blur,
    plasma_fractal,
    trim_kernel,
)


def side_scale(x: np.ndarray) -> float:
    """``max(H, W) / 32``: the factor applied to lengths the paper gives in pixels (1 for CIFAR-10)."""
    return max(x.shape[1], x.shape[2]) / 32.0


# --------------------------------------------------------------------------- noise


def gaussian_noise(x, p, rng):
    """``clip(x/255 + N(0, std^2), 0, 1) * 255``, independently per value."""
    f = x / 255.0
    return np.clip(f + rng.normal(0.0, p["std"], size=x.shape), 0, 1) * 255


def shot_noise(x, p, rng):
    """``clip(Poisson(x/255 * photons) / photons, 0, 1) * 255``: variance ``x * 255 / photons`` in 0..255 units."""
    c = p["photons"]
    return np.clip(rng.poisson((x / 255.0) * c) / c, 0, 1) * 255


def impulse_noise(x, p, rng):
    """scikit-image's ``random_noise(mode='s&p', amount)``: each value becomes 0 or 1 with probability ``amount``."""
    noisy = skutil.random_noise(x / 255.0, mode="s&p", amount=p["amount"], rng=rng)
    return np.clip(noisy, 0, 1) * 255


# --------------------------------------------------------------------------- blur


def defocus_blur(x, p, rng):
    """Each channel filtered with the paper's disk kernel (OpenCV ``filter2D``: correlation, reflect-101 borders).

    The kernel's all-zero margin is cut off first (same sums, fewer taps) and the filter runs
    on the whole batch with scipy's ``correlate(mode='mirror')``, scipy's name for reflect-101.
    """
    s = side_scale(x)
    kernel = trim_kernel(disk_kernel(p["radius"] * s, p["alias_blur"] * s)).astype(np.float64)
    out = ndi.correlate(x / 255.0, kernel[None, :, :, None], mode="mirror")
    return np.clip(out, 0, 1) * 255


def glass_offsets(rng: np.random.Generator, n: int, h: int, w: int, max_delta: int) -> np.ndarray:
    """The paper's ``dx, dy = randint(-max_delta, max_delta)`` for every pixel its shuffle loop visits.

    Returns ``(n, len(rows), len(cols), 2)`` integers (``[..., 0]`` = dx, ``[..., 1]`` = dy), rows and
    columns in the loop's order: ``H-1`` down to ``max_delta+1`` (``range(32 - 1, 1, -1)`` for CIFAR-10).
    """
    rows, cols = len(range(h - max_delta, max_delta, -1)), len(range(w - max_delta, max_delta, -1))
    return rng.integers(-max_delta, max_delta, size=(n, rows, cols, 2))


def glass_shuffle(y: np.ndarray, offsets: np.ndarray, max_delta: int) -> np.ndarray:
    """One pass of the paper's local pixel "swap", vectorized; ``y`` is ``(N, H, W, C)`` uint8.

    The paper visits ``h = H-1..2`` and, in each row, ``w = W-1..2``, draws ``dx, dy`` in
    ``[-max_delta, max_delta)`` (-1 or 0 for CIFAR-10, whose ``max_delta`` is 1) and runs
    ``x[h, w], x[h', w'] = x[h', w'], x[h, w]``. On numpy arrays the right-hand side holds
    views, so this statement copies pixel ``(h', w')`` into ``(h, w)`` and leaves ``(h', w')``
    as it was: a copy, not a swap, and the published CIFAR-10-C was made that way. With
    offsets in {-1, 0} the source ``(h+dy, w+dx)`` is always a pixel that the loop has not
    written yet, so the pass equals one gather from the unmodified image, done here for the
    whole batch at once (``tests/test_corruptions.py`` checks it against the literal loop).
    """
    if max_delta != 1:
        raise ValueError(
            f"glass blur's shuffle is vectorized for max_delta=1 (all CIFAR-10-C severities); got {max_delta}."
        )
    n, h, w = y.shape[:3]
    rows = np.arange(h - max_delta, max_delta, -1)
    cols = np.arange(w - max_delta, max_delta, -1)
    src_r = rows[None, :, None] + offsets[..., 1]
    src_c = cols[None, None, :] + offsets[..., 0]
    out = y.copy()
    out[:, rows[:, None], cols[None, :]] = y[np.arange(n)[:, None, None], src_r, src_c]
    return out


def glass_blur(x, p, rng):
    """Gaussian blur, truncated to uint8; ``iterations`` passes of :func:`glass_shuffle`; Gaussian blur again.

    Both blurs are scikit-image's ``gaussian`` (``mode='nearest'``, truncate 4) with ``sigma``.
    Cost: two small Gaussian filters and one gather per pass, no per-pixel Python loop.
    """
    sigma = p["sigma"] * side_scale(x)
    y = (gaussian_hw(x / 255.0, sigma) * 255).astype(np.uint8)
    n, h, w = x.shape[:3]
    for _ in range(p["iterations"]):
        y = glass_shuffle(y, glass_offsets(rng, n, h, w, p["max_delta"]), p["max_delta"])
    return np.clip(gaussian_hw(y / 255.0, sigma), 0, 1) * 255


def motion_blur_op(x, p, rng):
    """ImageMagick's motion blur (our implementation, see ``corruptions_primitives.motion_blur``), angle ~ U(-45, 45)."""
    s = side_scale(x)
    angles = rng.uniform(*p["angle_range"], size=len(x))
    return motion_blur(x, p["radius"] * s, p["sigma"] * s, angles).astype(np.float64)


def zoom_blur(x, p, rng):
    """Mean of the image and its :func:`clipped_zoom` by every factor, in float32 as the paper."""
    f = (x / 255.0).astype(np.float32)
    acc = np.zeros_like(f)
    for z in p["zooms"]:
        acc += clipped_zoom(f, z)
    f = (f + acc) / (len(p["zooms"]) + 1)
    return np.clip(f, 0, 1) * 255


# --------------------------------------------------------------------------- weather


def snow(x, p, rng):
    """Snow flakes: a thresholded, zoomed Gaussian layer, motion-blurred, added twice (as is and turned 180°).

    The image is first brightened towards ``max(x, 1.5 * grey + 0.5)`` (OpenCV's RGB -> grey)
    with weight ``1 - blend``. The layer goes through 8 bits before ImageMagick's motion blur
    (angle ~ U(-135, -45)) as in the paper, which writes it to a PNG.
    """
    n, h, w = x.shape[:3]
    s = side_scale(x)
    f = x.astype(np.float32) / 255.0
    layer = rng.normal(p["mean"], p["std"], size=(n, h, w, 1))
    layer = clipped_zoom(layer, max(1.0, p["zoom"] * s))  # a zoom below 1 would not fill the image
    layer[layer < p["threshold"]] = 0
    layer8 = (np.clip(layer[..., 0], 0, 1) * 255).astype(np.uint8)
    angles = rng.uniform(*p["angle_range"], size=n)
    flakes = (motion_blur(layer8, p["radius"] * s, p["sigma"] * s, angles) / 255.0)[..., None]
    grey = cv2.cvtColor(np.ascontiguousarray(f.reshape(n * h, w, 3)), cv2.COLOR_RGB2GRAY).reshape(n, h, w, 1)
    b = p["blend"]
    f = b * f + (1 - b) * np.maximum(f, grey * 1.5 + 0.5)
    return np.clip(f + flakes + np.rot90(flakes, k=2, axes=(1, 2)), 0, 1) * 255


def frost(x, p, rng):
    """``clip(image_weight * x + frost_weight * crop, 0, 255)`` with a random crop of a random frost photo.

    The photo is one of the first five (the paper's ``np.random.randint(5)``), resized by
    0.2 (times ``side / 32``); the crop's corner is ``randint(0, photo_rows - H)``,
    ``randint(0, photo_cols - W)``.
    """
    n, h, w = x.shape[:3]
    photos = frost_photos(tuple(p["photos"]), p["resize"] * side_scale(x))
    which = rng.integers(0, len(photos), size=n)
    rows_max = np.array([photos[i].shape[0] - h for i in which])
    cols_max = np.array([photos[i].shape[1] - w for i in which])
    if n and (rows_max.min() < 1 or cols_max.min() < 1):
        raise ValueError(f"the resized frost photos are too small for {h}x{w} images")
    r0 = rng.integers(0, rows_max)
    c0 = rng.integers(0, cols_max)
    crops = np.stack([photos[i][r : r + h, c : c + w] for i, r, c in zip(which, r0, c0)]) if n else x
    return np.clip(p["image_weight"] * x + p["frost_weight"] * crops, 0, 255)


def fog(x, p, rng):
    """``x + strength * plasma``, rescaled by ``max / (max + strength)`` (max over the whole image)."""
    n, h, w = x.shape[:3]
    mapsize = 1 << max(1, (max(h, w) - 1).bit_length())  # 32 for CIFAR-10, as the paper
    plasma = plasma_fractal(n, mapsize, p["wibble_decay"], rng)[:, :h, :w, None]
    f = x / 255.0
    top = f.max(axis=(1, 2, 3), keepdims=True)
    f = f + p["strength"] * plasma
    return np.clip(f * top / (top + p["strength"]), 0, 1) * 255


# --------------------------------------------------------------------------- digital


def brightness(x, p, rng):
    """HSV value + ``shift`` (clipped to 0..1) with scikit-image's ``rgb2hsv`` / ``hsv2rgb``."""
    hsv = skcolor.rgb2hsv(x / 255.0)
    hsv[..., 2] = np.clip(hsv[..., 2] + p["shift"], 0, 1)
    return np.clip(skcolor.hsv2rgb(hsv), 0, 1) * 255


def contrast(x, p, rng):
    """``(x - m) * factor + m`` with ``m`` each image's per-channel mean (0..1 units), clipped."""
    f = x / 255.0
    means = np.mean(f, axis=(1, 2), keepdims=True)
    return np.clip((f - means) * p["factor"] + means, 0, 1) * 255


def elastic_transform(x, p, rng):
    """Random affine warp, then a smooth random displacement field (the paper's modified Simard et al.).

    With ``side = max(H, W)``: the three points ``centre +- side//3`` move by ``U(-affine*side,
    affine*side)`` (OpenCV ``getAffineTransform`` + ``warpAffine``, bilinear, reflect-101
    borders); then each pixel is resampled (scipy ``map_coordinates``, linear, ``reflect``) at
    ``(row + dy, col + dx)`` where ``dx, dy`` are ``U(-1, 1)`` fields blurred by scikit-image's
    ``gaussian(sigma*side, mode='reflect', truncate=3)`` and multiplied by ``alpha*side``.
    """
    n, h, w = x.shape[:3]
    side = max(h, w)
    alpha, sigma, affine = p["alpha"] * side, p["sigma"] * side, p["affine"] * side
    f = x.astype(np.float32) / 255.0
    cx, cy, sq = w // 2, h // 2, min(h, w) // 3
    pts1 = np.float32([[cx + sq, cy + sq], [cx + sq, cy - sq], [cx - sq, cy - sq]])
    jitter = rng.uniform(-affine, affine, size=(n, 3, 2)).astype(np.float32)
    dx = (gaussian_hw(rng.uniform(-1, 1, size=(n, h, w)), sigma, mode="reflect", truncate=3) * alpha).astype(np.float32)
    dy = (gaussian_hw(rng.uniform(-1, 1, size=(n, h, w)), sigma, mode="reflect", truncate=3) * alpha).astype(np.float32)
    grid_r = np.arange(h)[:, None, None]
    grid_c = np.arange(w)[None, :, None]
    grid_z = np.broadcast_to(np.arange(x.shape[3])[None, None, :], x.shape[1:]).reshape(-1)
    out = np.empty(x.shape, dtype=np.float32)
    for i in range(n):
        m = cv2.getAffineTransform(pts1, pts1 + jitter[i])
        warped = cv2.warpAffine(f[i], m, (w, h), borderMode=cv2.BORDER_REFLECT_101)
        rows = np.broadcast_to(grid_r + dy[i][..., None], x.shape[1:]).reshape(-1)
        cols = np.broadcast_to(grid_c + dx[i][..., None], x.shape[1:]).reshape(-1)
        out[i] = ndi.map_coordinates(warped, (rows, cols, grid_z), order=1, mode="reflect").reshape(x.shape[1:])
    return np.clip(out, 0, 1) * 255


def pixelate(x, p, rng):
    """Pillow BOX resize to ``int(W * scale) x int(H * scale)`` and BOX back, image by image."""
    n, h, w = x.shape[:3]
    small = (int(w * p["scale"]), int(h * p["scale"]))
    out = np.empty_like(x)
    for i in range(n):
        img = Image.fromarray(x[i]).resize(small, Image.Resampling.BOX).resize((w, h), Image.Resampling.BOX)
        out[i] = np.asarray(img)
    return out


def jpeg_compression(x, p, rng):
    """Pillow JPEG at ``quality`` (Pillow's defaults otherwise), decoded again, image by image."""
    out = np.empty_like(x)
    for i in range(len(x)):
        buf = io.BytesIO()
        Image.fromarray(x[i]).save(buf, format="JPEG", quality=int(p["quality"]))
        buf.seek(0)
        out[i] = np.asarray(Image.open(buf).convert("RGB"))
    return out


#: name -> function, in the order of ``CORRUPTIONS_C``.
OPS = {
    "gaussian_noise": gaussian_noise,
    "shot_noise": shot_noise,
    "impulse_noise": impulse_noise,
    "defocus_blur": defocus_blur,
    "glass_blur": glass_blur,
    "motion_blur": motion_blur_op,
    "zoom_blur": zoom_blur,
    "snow": snow,
    "frost": frost,
    "fog": fog,
    "brightness": brightness,
    "contrast": contrast,
    "elastic_transform": elastic_transform,
    "pixelate": pixelate,
    "jpeg_compression": jpeg_compression,
}
