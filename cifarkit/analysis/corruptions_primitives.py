"""Building blocks of the CIFAR-10-C corruptions, on batches of NHWC images.

Each one reproduces a primitive that ``make_cifar_c.py`` calls on one image at a time
(scikit-image's ``gaussian``, scipy's ``zoom``, the paper's ``disk``, ``plasma_fractal``
and ``clipped_zoom``, ImageMagick's motion blur) so that the corruptions can work on a
whole batch at once; the tests compare each one with the per-image original.
"""

from __future__ import annotations

import functools
import importlib.util
import math
from pathlib import Path

import cv2
import numpy as np
from scipy import ndimage as ndi


def gaussian_hw(x: np.ndarray, sigma: float, *, mode: str = "nearest", truncate: float = 4.0) -> np.ndarray:
    """``skimage.filters.gaussian(img, sigma, channel_axis=-1)`` of every image of a batch.

    ``x`` is ``(N, H, W)`` or ``(N, H, W, C)`` floats; only H and W are blurred (sigma 0 on the
    batch and channel axes, which scipy skips), so each image gets exactly what scikit-image
    gives it alone: scipy's ``gaussian_filter`` with the same ``mode`` and ``truncate``.
    """
    sigmas = [0.0] * x.ndim
    sigmas[1] = sigmas[2] = float(sigma)
    return ndi.gaussian_filter(x, sigmas, mode=mode, truncate=truncate)


def disk_kernel(radius: float, alias_blur: float) -> np.ndarray:
    """The paper's defocus kernel: a normalized disk of ``radius`` anti-aliased by a Gaussian.

    The disk (``x^2 + y^2 <= radius^2``) lives on a 17x17 grid up to radius 8 (then on
    ``-radius..radius``), is normalized to sum 1 in float32, and is smoothed by OpenCV's
    ``GaussianBlur`` with a 3x3 window (5x5 beyond radius 8) of sigma ``alias_blur``.
    """
    half = 8 if radius <= 8 else radius
    window = (3, 3) if radius <= 8 else (5, 5)
    grid = np.arange(-half, half + 1)
    inside = (grid[None, :] ** 2 + grid[:, None] ** 2) <= radius**2
    aliased = inside.astype(np.float32)
    aliased /= np.sum(aliased)
    return cv2.GaussianBlur(aliased, ksize=window, sigmaX=alias_blur)


def trim_kernel(kernel: np.ndarray) -> np.ndarray:
    """``kernel`` cut to the smallest centred square that holds all its non-zero taps (same result, fewer taps)."""
    c = kernel.shape[0] // 2
    rows, cols = np.nonzero(kernel)
    r = int(max(np.abs(rows - c).max(), np.abs(cols - c).max())) if rows.size else 0
    return kernel[c - r : c + r + 1, c - r : c + r + 1]


def _zoom_matrix(n_in: int, n_out: int) -> np.ndarray:
    """``(n_out, n_in)`` matrix of ``scipy.ndimage.zoom(order=1)`` along one axis (``grid_mode=False``).

    Output sample ``o`` sits at input coordinate ``o * (n_in - 1) / (n_out - 1)`` and is the
    linear interpolation of its two neighbours, which is what scipy computes.
    """
    m = np.zeros((n_out, n_in))
    if n_out == 1 or n_in == 1:
        m[:, 0] = 1.0
        return m
    coords = np.arange(n_out) * ((n_in - 1) / (n_out - 1))
    lo = np.minimum(np.floor(coords).astype(int), n_in - 2)
    t = coords - lo
    rows = np.arange(n_out)
    m[rows, lo] += 1.0 - t
    m[rows, lo + 1] += t
    return m


def clipped_zoom(x: np.ndarray, zoom: float) -> np.ndarray:
    """The paper's ``clipped_zoom`` of every image: zoom the centre by ``zoom`` (linear), crop back to size.

    ``x`` is ``(N, H, W, C)``. Per axis of size ``n``: the centre ``ceil(n / zoom)`` samples
    (starting at ``(n - ceil(n / zoom)) // 2``) are zoomed to ``round(ceil(n / zoom) * zoom)``
    samples with ``scipy.ndimage.zoom(order=1)`` and the middle ``n`` are kept (trimming
    ``(len - n) // 2`` first). The paper uses the height for both axes; for square images
    that is the same. Done as two small matrix products per image and channel (float64); the
    result keeps ``x``'s dtype.
    """
    n, h, w, _ = x.shape
    mats = []
    for size in (h, w):
        crop = int(np.ceil(size / zoom))
        start = (size - crop) // 2
        out_len = int(round(crop * zoom))
        trim = (out_len - size) // 2
        mats.append((start, crop, _zoom_matrix(crop, out_len)[trim : trim + size]))
    (r0, rc, mr), (c0, cc, mc) = mats
    crop = np.ascontiguousarray(x[:, r0 : r0 + rc, c0 : c0 + cc, :].transpose(0, 3, 1, 2), dtype=np.float64)
    out = (mr @ crop @ np.ascontiguousarray(mc.T)).transpose(0, 2, 3, 1)  # (N, C, rows, cols) -> NHWC
    return np.ascontiguousarray(out, dtype=x.dtype)


# --------------------------------------------------------------------------- ImageMagick's motion blur


def motion_blur_taps(radius: float, sigma: float, angles) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weights and pixel offsets of ImageMagick's ``MotionBlurImage(radius, sigma, angle)``.

    Our implementation of ImageMagick's definition (MagickCore ``effect.c``): the kernel has
    ``width = 2 * ceil(radius) + 1`` taps with weights ``exp(-i^2 / (2 sigma^2))``, ``i = 0..width-1``,
    normalized to sum 1 (one-sided: tap 0 is the pixel itself); tap ``i`` reads the pixel at
    column offset ``ceil(i * cos(angle) - 0.5)`` and row offset ``ceil(i * sin(angle) - 0.5)``
    (computed as ImageMagick does, from ``width * (sin, cos)`` and their ``hypot``).

    Returns ``(weights (width,), row_offsets (N, width), col_offsets (N, width))`` for each angle in degrees.
    """
    width = int(2 * math.ceil(radius) + 1)
    s = sigma if abs(sigma) >= 1e-12 else 1e-12
    i = np.arange(width, dtype=np.float64)
    weights = np.exp(-(i * i) / (2.0 * s * s)) / (math.sqrt(2.0 * math.pi) * s)
    weights /= weights.sum()
    rad = np.pi * np.asarray(angles, dtype=np.float64).reshape(-1, 1) / 180.0
    px, py = width * np.sin(rad), width * np.cos(rad)
    norm = np.hypot(px, py)
    cols = np.ceil(i * py / norm - 0.5).astype(np.int64)
    rows = np.ceil(i * px / norm - 0.5).astype(np.int64)
    return weights, rows, cols


def motion_blur(x: np.ndarray, radius: float, sigma: float, angles) -> np.ndarray:
    """ImageMagick's motion blur of 8-bit images, one angle (degrees) per image; returns uint8.

    Our implementation of ImageMagick's ``MotionBlurImage`` (see :func:`motion_blur_taps`):
    each output pixel is the weighted sum of the pixels at the taps' offsets, pixels outside
    the image repeating the nearest edge pixel (ImageMagick's default "edge" virtual pixels).
    The sum is taken in ImageMagick's 16-bit quantum (8-bit value x 257), rounded to a 16-bit
    quantum (``ClampToQuantum``) and brought back to 8 bits as ImageMagick 6 (Q16) writes an
    8-bit PNG: ``floor(quantum / 257)``. Measured, not assumed: on random images, angles from
    -135 to 45 degrees and the paper's radii and sigmas, this matches Debian's ImageMagick
    6.9.11-60 Q16 (``convert -motion-blur RxS+A``) on every pixel.
    ``x`` is ``(N, H, W)`` or ``(N, H, W, C)`` uint8.
    """
    weights, rows, cols = motion_blur_taps(radius, sigma, angles)
    n, h, w = x.shape[:3]
    src = x.astype(np.float64) * 257.0
    acc = np.zeros(x.shape, dtype=np.float64)
    batch = np.arange(n)[:, None, None]
    for i, k in enumerate(weights):
        r = np.clip(np.arange(h)[None, :] + rows[:, i, None], 0, h - 1)
        c = np.clip(np.arange(w)[None, :] + cols[:, i, None], 0, w - 1)
        acc += k * src[batch, r[:, :, None], c[:, None, :]]
    quantum = np.floor(np.clip(acc, 0.0, 65535.0) + 0.5)
    return np.floor(quantum / 257.0).astype(np.uint8)


# --------------------------------------------------------------------------- fog and frost layers


def plasma_fractal(n: int, mapsize: int, wibble_decay: float, rng: np.random.Generator) -> np.ndarray:
    """``n`` diamond-square height maps ``(n, mapsize, mapsize)`` in 0..1, as the paper's ``plasma_fractal``.

    Starting from 0 at the corner, each level fills square centres with the mean of their
    four corners (``sum / 4``) plus ``wibble * U(-wibble, wibble)``, then the diamond points
    the same way (with wrap-around), halves the step and divides ``wibble`` (first 100) by
    ``wibble_decay``; each map is then shifted and scaled to 0..1. ``mapsize`` is a power of two.
    """
    if mapsize < 2 or mapsize & (mapsize - 1):
        raise ValueError(f"mapsize must be a power of two >= 2; received {mapsize}.")
    m = np.zeros((n, mapsize, mapsize))
    step, wibble = mapsize, 100.0

    def noisy_mean(total):
        return total / 4 + wibble * rng.uniform(-wibble, wibble, total.shape)

    while step >= 2:
        half = step // 2
        corners = m[:, ::step, ::step]
        squares = corners + np.roll(corners, -1, axis=1)
        squares = squares + np.roll(squares, -1, axis=2)
        m[:, half::step, half::step] = noisy_mean(squares)
        centres, corners = m[:, half::step, half::step], m[:, ::step, ::step]
        left = (centres + np.roll(centres, 1, axis=1)) + (corners + np.roll(corners, -1, axis=2))
        m[:, ::step, half::step] = noisy_mean(left)
        top = (centres + np.roll(centres, 1, axis=2)) + (corners + np.roll(corners, -1, axis=1))
        m[:, half::step, ::step] = noisy_mean(top)
        step //= 2
        wibble /= wibble_decay
    m -= m.min(axis=(1, 2), keepdims=True)
    return m / m.max(axis=(1, 2), keepdims=True)


def frost_photo_dir() -> Path:
    """Folder of the frost photographs shipped by the ``imagecorruptions`` package.

    Located with ``importlib.util.find_spec`` rather than ``importlib.resources.files``: the
    latter imports the package, whose ``__init__`` imports ``pkg_resources`` and scipy's
    deprecated ``scipy.ndimage.interpolation``; we need only its data files.
    """
    spec = importlib.util.find_spec("imagecorruptions")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "frost needs the frost photographs of the 'imagecorruptions' package: pip install imagecorruptions"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "frost"
    if not folder.is_dir():
        raise FileNotFoundError(f"no frost photographs in {folder}")
    return folder


@functools.lru_cache(maxsize=16)
def frost_photos(names: tuple, scale: float) -> tuple:
    """The frost photographs ``names`` as RGB uint8, read with OpenCV and resized by ``scale`` (bilinear).

    As the paper: ``cv2.imread`` (BGR), ``cv2.resize(fx=scale, fy=scale)`` with OpenCV's default
    bilinear interpolation, then BGR -> RGB. Cached per ``(names, scale)``; treat as read-only.
    """
    folder = frost_photo_dir()
    out = []
    for name in names:
        data = np.fromfile(folder / name, dtype=np.uint8)
        bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
        if bgr is None:
            raise OSError(f"cannot decode frost photograph {folder / name}")
        small = cv2.resize(bgr, (0, 0), fx=scale, fy=scale)
        rgb = np.ascontiguousarray(small[..., ::-1])
        rgb.setflags(write=False)
        out.append(rgb)
    return tuple(out)
