"""Decoding image files of any format, mode and size into uint8 RGB arrays.

Policy (applied to every image from an image folder):

- Format comes from the file's content (Pillow), never from its extension.
- EXIF orientation is applied when the file has EXIF data.
- Mode conversion to RGB: images with an alpha channel (RGBA, LA, P with
  transparency, ...) are composited onto a **black** background, which equals
  premultiplying by alpha; 16-bit greyscale (``I;16*``) is scaled by 1/257 to
  8 bits; 32-bit integer greyscale (``I``) is scaled the same way when its
  values exceed 255, else taken as 8-bit; float greyscale (``F``) is taken as
  ``[0, 1]`` when its maximum is at most 1, else as ``[0, 255]``, and clipped;
  CMYK, YCbCr, L, P, 1 go through Pillow's ``convert("RGB")``.
- Size: the shorter side is resized to the target (keeping the aspect ratio),
  then the centre is cropped to the target size; both happen in one Lanczos
  resample of the centre box (``reducing_gap=2`` keeps large downscales fast).
  JPEGs much larger than the target are first decoded at reduced scale with
  ``Image.draft``. Images already at the target size are not resampled.
"""

from __future__ import annotations

import io
import warnings
from collections import Counter

import numpy as np
from PIL import Image, ImageOps

# Pillow signals a malformed file with many exception types (OSError, SyntaxError,
# struct.error, IndexError, ...); any of them means "this file is unreadable".
# Decompression-bomb warnings are raised as errors, so such a file is skipped too.
_PIL_ERRORS = (Exception,)

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})


def centre_box(width: int, height: int, target_w: int, target_h: int) -> tuple[float, float, float, float]:
    """The largest centred box of the target's aspect ratio inside a ``width x height`` image."""
    target_ratio = target_w / target_h
    if width / height > target_ratio:  # too wide: crop left and right
        box_w, box_h = height * target_ratio, float(height)
    else:  # too tall: crop top and bottom
        box_w, box_h = float(width), width / target_ratio
    left = (width - box_w) / 2
    top = (height - box_h) / 2
    return (left, top, left + box_w, top + box_h)


def _to_rgb(im: Image.Image) -> Image.Image:
    mode = im.mode
    if mode == "RGB":
        return im
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        mode = im.mode
        if mode == "RGB":
            return im
    if mode.startswith("I;16") or mode == "I" or mode == "F":
        a = np.asarray(im)
        if mode == "F":
            a = a.astype(np.float64)
            scale = 255.0 if np.nanmax(a, initial=0.0) <= 1.0 else 1.0
            a = np.nan_to_num(a * scale)
        else:
            a = a.astype(np.float64)
            if mode.startswith("I;16") or a.max(initial=0) > 255:
                a = a / 257.0
        grey = np.clip(np.rint(a), 0, 255).astype(np.uint8)
        return Image.fromarray(np.repeat(grey[:, :, None], 3, axis=2), "RGB")
    if "A" in im.getbands() or mode in ("RGBa", "La", "PA"):
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return im.convert("RGB")


def decode_image(data: bytes, size: tuple[int, int]) -> tuple[np.ndarray, dict]:
    """Decode one image file to a ``uint8`` array of shape ``(H, W, 3)``.

    Args:
        data: the file's bytes.
        size: target ``(height, width)``.

    Returns:
        ``(array, info)`` where info holds the original ``size`` ("WxH"),
        ``mode`` and ``format``.

    Raises:
        OSError, ValueError, ...: the file is not a readable image
        (see ``decode_many``, which turns these into skip records).
    """
    target_h, target_w = size
    im = Image.open(io.BytesIO(data))
    info = {"size": f"{im.width}x{im.height}", "mode": im.mode, "format": im.format or "unknown"}
    if im.format == "JPEG" and (im.width > 2 * target_w and im.height > 2 * target_h):
        scale = max(target_w / im.width, target_h / im.height)
        im.draft("RGB", (int(np.ceil(im.width * scale)), int(np.ceil(im.height * scale))))
    im.load()
    if "exif" in im.info:
        im = ImageOps.exif_transpose(im)
    im = _to_rgb(im)
    if im.size != (target_w, target_h):
        im = im.resize(
            (target_w, target_h),
            Image.Resampling.LANCZOS,
            box=centre_box(im.width, im.height, target_w, target_h),
            reducing_gap=2.0,
        )
    array = np.asarray(im, dtype=np.uint8)
    if array.shape != (target_h, target_w, 3):  # pragma: no cover - defensive
        raise ValueError(f"decoded to shape {array.shape}, expected {(target_h, target_w, 3)}")
    return array, info


def decode_many(items, size: tuple[int, int], out: np.ndarray, strict: bool = False, on_progress=None):
    """Decode ``(index, name, bytes)`` items into ``out[index]``.

    Returns:
        ``(ok, failures, info)``: a boolean array marking the decoded indices,
        a list of ``(index, name, reason)`` for unreadable files, and Counters
        of original sizes, modes and formats.

    Raises:
        ``StrictFailure`` on the first unreadable file when ``strict``.
    """
    ok = np.zeros(len(out), dtype=bool)
    failures: list[tuple[int, str, str]] = []
    info = {"sizes": Counter(), "modes": Counter(), "formats": Counter()}
    done = 0
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        for index, name, data in items:
            done += _decode_one(index, name, data, size, out, strict, ok, failures, info)
            if on_progress is not None and done % 256 == 0:
                on_progress(256)
    if on_progress is not None:
        on_progress(done % 256)
    return ok, failures, info


def _decode_one(index, name, data, size, out, strict, ok, failures, info) -> int:
    try:
        if data is None:
            raise OSError("could not read file")
        if isinstance(data, Exception):
            raise data
        out[index], meta = decode_image(data, size)
    except _PIL_ERRORS as exc:
        reason = f"{type(exc).__name__}: {exc}"
        if strict:
            raise StrictFailure(name, reason) from exc
        failures.append((index, name, reason))
    else:
        ok[index] = True
        info["sizes"][meta["size"]] += 1
        info["modes"][meta["mode"]] += 1
        info["formats"][meta["format"]] += 1
    return 1


class StrictFailure(Exception):
    """An unreadable image met while ``strict=True``; the loader turns it into a DataError."""

    def __init__(self, name: str, reason: str):
        super().__init__(name, reason)
        self.name = name
        self.reason = reason


def resize_array(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a batch of uint8 RGB images with the same policy as :func:`decode_image`."""
    target_h, target_w = size
    if x.shape[1:3] == (target_h, target_w):
        return x
    out = np.empty((len(x), target_h, target_w, 3), dtype=np.uint8)
    box = centre_box(x.shape[2], x.shape[1], target_w, target_h)
    for i, img in enumerate(x):
        im = Image.fromarray(img, "RGB").resize(
            (target_w, target_h), Image.Resampling.LANCZOS, box=box, reducing_gap=2.0
        )
        out[i] = np.asarray(im)
    return out
