"""CIFAR-10-C corruptions (cifarkit.analysis.corruptions): shapes, determinism, severity order, the published definitions.

"Literal" references below are written from the definitions of ``make_cifar_c.py`` (one image at a
time, with the primitives the paper calls: scikit-image, scipy, OpenCV, Pillow) and compared with our
batched code. For the random corruptions the reference draws its numbers with the same calls from a
Generator seeded alike, so the formula can be compared value by value.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import tempfile

import cv2
import numpy as np
import pytest
from PIL import Image
from scipy.ndimage import map_coordinates
from scipy.ndimage import zoom as scipy_zoom
from skimage import color as skcolor
from skimage import util as skutil
from skimage.filters import gaussian as sk_gaussian

from cifarkit.analysis import corruptions as cc
from cifarkit.analysis import corruptions_ops as ops
from cifarkit.analysis import corruptions_primitives as prim
from cifarkit.analysis.corruptions_params import PARAMETERS, REFERENCE_POINTS

NAMES = list(cc.CORRUPTIONS_C)
DETERMINISTIC = {"defocus_blur", "zoom_blur", "brightness", "contrast", "pixelate", "jpeg_compression"}


def structured_image(size: int = 32) -> np.ndarray:
    """Gradients (R across, G down), diagonal sine stripes in B, a red disk and a dark blue bar."""
    yy, xx = np.mgrid[:size, :size] / (size - 1)
    img = np.stack([0.1 + 0.8 * xx, 0.1 + 0.8 * yy, 0.5 + 0.4 * np.sin(2 * np.pi * (xx + yy) * 3.3)], axis=-1)
    img[(yy - 0.62) ** 2 + (xx - 0.33) ** 2 < 0.2**2] = (0.95, 0.15, 0.1)
    img[(yy > 0.12) & (yy < 0.22) & (xx > 0.5)] = (0.05, 0.05, 0.45)
    return np.round(img * 255).astype(np.uint8)


IMG = structured_image()


def psnr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2, axis=(1, 2, 3))
    return 10 * np.log10(255.0**2 / np.maximum(mse, 1e-10))


def as_uint8(f: np.ndarray) -> np.ndarray:
    """The paper's final ``np.uint8(...)`` of a float image in 0..255 (truncation)."""
    return np.clip(f, 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- constants


def test_names_groups_and_published_parameters():
    assert NAMES == [
        "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
        "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate", "jpeg_compression",
    ]  # fmt: skip
    assert [n for g in ("noise", "blur", "weather", "digital") for n in cc.GROUPS[g]] == NAMES
    assert set(PARAMETERS) == set(NAMES) and all(sorted(PARAMETERS[n]) == [1, 2, 3, 4, 5] for n in NAMES)
    # spot checks against make_cifar_c.py
    assert [PARAMETERS["gaussian_noise"][s]["std"] for s in range(1, 6)] == [0.04, 0.06, 0.08, 0.09, 0.10]
    assert [PARAMETERS["shot_noise"][s]["photons"] for s in range(1, 6)] == [500, 250, 100, 75, 50]
    assert PARAMETERS["glass_blur"][4] == {"sigma": 0.25, "max_delta": 1, "iterations": 2}
    assert PARAMETERS["motion_blur"][5] == {"radius": 9, "sigma": 2.5, "angle_range": (-45.0, 45.0)}
    assert PARAMETERS["snow"][5]["zoom"] == 1.25 and PARAMETERS["snow"][5]["sigma"] == 12
    assert [PARAMETERS["jpeg_compression"][s]["quality"] for s in range(1, 6)] == [80, 65, 58, 50, 40]
    assert [len(PARAMETERS["zoom_blur"][s]["zooms"]) for s in range(1, 6)] == [7, 12, 16, 21, 26]
    assert PARAMETERS["zoom_blur"][1]["zooms"][-1] == pytest.approx(1.06)
    assert 32 * PARAMETERS["elastic_transform"][2]["alpha"] == 32 * 0.05
    for ref in REFERENCE_POINTS.values():
        assert 0 < ref["mean_corruption_acc"] < ref["clean_acc"] < 100 and "15" in ref["what"] and ref["source"]
        # a figure's legend: short, naming the same network (depth-width) as the full name
        assert re.search(r"\d+-\d+", ref["label"]).group() in ref["model"] and len(ref["label"]) <= 30


def test_frost_photos_come_from_imagecorruptions():
    folder = prim.frost_photo_dir()
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith("frost")) == [
        "frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg", "frost6.jpg",
    ]  # fmt: skip
    photos = prim.frost_photos(PARAMETERS["frost"][1]["photos"], 0.2)
    assert len(photos) == 5  # the paper draws np.random.randint(5): frost6 is never used
    assert all(p.dtype == np.uint8 and p.shape[0] > 32 and p.shape[1] > 32 for p in photos)


# --------------------------------------------------------------------------- every corruption


@pytest.mark.parametrize("name", NAMES)
def test_shape_dtype_range_and_change(name):
    batch = np.repeat(IMG[None], 3, axis=0)
    for s in range(1, 6):
        out = cc.corrupt_c(batch, name, s, seed=3)
        assert out.shape == batch.shape and out.dtype == np.uint8
        assert out.min() >= 0 and out.max() <= 255
        assert not np.array_equal(out[0], IMG), f"{name} severity {s} left the image unchanged"
    one = cc.corrupt_c(IMG, name, 2)
    assert one.shape == IMG.shape and one.dtype == np.uint8


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_for_a_seed_and_global_rng_untouched(name):
    batch = np.repeat(IMG[None], 2, axis=0)
    state = np.random.get_state()[1].copy()
    a = cc.corrupt_c(batch, name, 3, seed=11)
    b = cc.corrupt_c(batch, name, 3, seed=11)
    np.testing.assert_array_equal(a, b)
    assert np.array_equal(np.random.get_state()[1], state), "the global numpy RNG was used"
    c = cc.corrupt_c(batch, name, 3, seed=12)
    assert np.array_equal(a, c) == (name in DETERMINISTIC)


@pytest.mark.parametrize("size", [(64, 64), (40, 48)])
def test_other_sizes(size):
    x = np.stack([np.asarray(Image.fromarray(IMG).resize(size[::-1], Image.Resampling.BILINEAR))] * 2)
    for name in NAMES:
        out = cc.corrupt_c(x, name, 5)
        assert out.shape == x.shape and out.dtype == np.uint8, name


# Which corruptions are not monotone in an image-quality measure, in the paper's own parameters:
#   glass_blur   severities 1-3 are one shuffle pass with sigma 0.05/0.25/0.4 and 4-5 two passes with
#                0.25/0.4; within a pass count the larger sigma smooths the shuffled pixels, so PSNR
#                rises with it (1 < 2 < 3 and 4 < 5); only "more passes, same sigma" orders (4 < 2, 5 < 3).
#   motion_blur  severities 3 and 4 differ only by radius 6 -> 8 at sigma 2; the extra taps weigh 0.08%
#                of the kernel, so they are practically the same blur (random angles decide which looks worse).
#   frost        severities 3-5 lower the image weight (0.9, 0.85, 0.75) while the frost weight barely
#                rises (0.4, 0.4, 0.45): PSNR stays flat or rises from 3 to 5.
#   elastic      the affine jitter is largest at severity 1 (8% of the side) and shrinks to 3% while the
#                smooth displacement field grows: PSNR *rises* with severity (also on CIFAR-10 test images).
#   pixelate     monotone on natural images (300 CIFAR-10 test images: 33.0, 30.4, 29.3, 27.5, 25.6 dB), but
#                the BOX resampling phase (30, 28, 27, 24, 20 px) can swap neighbours on a synthetic image.
# Every other corruption is non-increasing in PSNR within 0.25 dB (averaged over 24 random draws).
def test_severity_order_of_psnr():
    batch = np.repeat(IMG[None], 24, axis=0)
    q = {n: np.array([psnr(cc.corrupt_c(batch, n, s, seed=1), batch).mean() for s in range(1, 6)]) for n in NAMES}
    for name in NAMES:
        v = q[name]
        if name == "glass_blur":
            assert v[3] < v[1] and v[4] < v[2] and max(v[3:]) < min(v[:3]), v
        elif name == "motion_blur":
            assert v[0] > v[1] > v[2] and v[3] > v[4] and abs(v[2] - v[3]) < 1.0, v
            w3, w4 = prim.motion_blur_taps(6, 2, [0])[0], prim.motion_blur_taps(8, 2, [0])[0]
            assert np.abs(w4[: len(w3)] - w3).sum() + w4[len(w3) :].sum() < 0.002
        elif name == "frost":
            assert v[0] > v[1] > v[2] and max(v[2:]) < v[1] + 0.25, v
        elif name == "elastic_transform":
            assert v[0] < v[4], v  # documented inversion
        elif name == "pixelate":
            assert np.all(np.diff(v) <= 0.5) and v[0] - v[4] > 5, v
        else:
            assert np.all(np.diff(v) <= 0.25) and v[0] - v[4] > 1, (name, v)


# --------------------------------------------------------------------------- deterministic definitions


def test_contrast_matches_formula():
    x = np.stack([IMG, IMG[::-1], IMG[:, ::-1]])
    for s in range(1, 6):
        c = PARAMETERS["contrast"][s]["factor"]
        ref = []
        for img in x:
            f = img / 255.0
            m = f.mean(axis=(0, 1), keepdims=True)
            ref.append(np.uint8(np.clip((f - m) * c + m, 0, 1) * 255))
        np.testing.assert_array_equal(cc.corrupt_c(x, "contrast", s), np.stack(ref))


def test_brightness_matches_skimage_hsv():
    x = np.stack([IMG, IMG[::-1]])
    for s in range(1, 6):
        shift = PARAMETERS["brightness"][s]["shift"]
        ref = []
        for img in x:
            hsv = skcolor.rgb2hsv(img / 255.0)
            hsv[:, :, 2] = np.clip(hsv[:, :, 2] + shift, 0, 1)
            ref.append(np.uint8(np.clip(skcolor.hsv2rgb(hsv), 0, 1) * 255))
        out = cc.corrupt_c(x, "brightness", s)
        np.testing.assert_array_equal(out, np.stack(ref))
        # the same in closed form: scaling RGB by v'/v changes only the HSV value (v = max channel)
        f = x / 255.0
        v = f.max(axis=-1, keepdims=True)
        closed = f * np.minimum(v + shift, 1) / np.maximum(v, 1e-12)
        assert np.abs(out.astype(int) - (closed * 255).astype(int)).max() <= 1


def test_pixelate_matches_pillow_box():
    for s in range(1, 6):
        c = PARAMETERS["pixelate"][s]["scale"]
        img = (
            Image.fromarray(IMG)
            .resize((int(32 * c), int(32 * c)), Image.Resampling.BOX)
            .resize((32, 32), Image.Resampling.BOX)
        )
        np.testing.assert_array_equal(cc.corrupt_c(IMG, "pixelate", s), np.asarray(img))


def test_jpeg_matches_pillow_quality():
    for s in range(1, 6):
        buf = io.BytesIO()
        Image.fromarray(IMG).save(buf, "JPEG", quality=PARAMETERS["jpeg_compression"][s]["quality"])
        np.testing.assert_array_equal(cc.corrupt_c(IMG, "jpeg_compression", s), np.asarray(Image.open(buf)))


def literal_clipped_zoom(img: np.ndarray, z: float) -> np.ndarray:
    h = img.shape[0]
    ch = int(np.ceil(h / z))
    top = (h - ch) // 2
    out = scipy_zoom(img[top : top + ch, top : top + ch], (z, z, 1), order=1)
    trim = (out.shape[0] - h) // 2
    return out[trim : trim + h, trim : trim + h]


def test_zoom_blur_matches_scipy_zoom():
    for s in range(1, 6):
        zooms = np.arange(1, [1.06, 1.11, 1.16, 1.21, 1.26][s - 1], 0.01)  # as the paper writes them
        f = (IMG / 255.0).astype(np.float32)
        acc = np.zeros_like(f)
        for z in zooms:
            acc += literal_clipped_zoom(f, z)
        ref = np.uint8(np.clip((f + acc) / (len(zooms) + 1), 0, 1) * 255)
        np.testing.assert_array_equal(cc.corrupt_c(IMG, "zoom_blur", s), ref)


def test_defocus_matches_disk_kernel():
    for s in range(1, 6):
        radius, alias = PARAMETERS["defocus_blur"][s]["radius"], PARAMETERS["defocus_blur"][s]["alias_blur"]
        grid = np.arange(-8, 9)
        disk = ((grid[:, None] ** 2 + grid[None, :] ** 2) <= radius**2).astype(np.float32)
        disk /= disk.sum()
        g = np.exp(-(np.arange(-1, 2) ** 2) / (2 * alias**2))
        g /= g.sum()  # OpenCV's 3x3 Gaussian of sigma `alias`, applied separably
        kernel = np.zeros_like(disk)
        kernel[1:-1, 1:-1] = sum(g[i] * g[j] * disk[i : i + 15, j : j + 15] for i in range(3) for j in range(3))
        np.testing.assert_allclose(prim.disk_kernel(radius, alias), kernel, atol=1e-7)
        # Filtering with the paper's call (OpenCV filter2D per channel, the whole 17x17 kernel). The kernel
        # must be OpenCV's own float32 one: its sum misses 1 by ~1e-8, which the final truncation turns into
        # -1 on flat areas, so a float64 rebuild of it is not bit-for-bit the paper's output.
        k = prim.disk_kernel(radius, alias)
        ref = np.stack([cv2.filter2D(IMG[:, :, c] / 255.0, -1, k) for c in range(3)], axis=-1)
        np.testing.assert_array_equal(cc.corrupt_c(IMG, "defocus_blur", s), np.uint8(np.clip(ref, 0, 1) * 255))


# --------------------------------------------------------------------------- random definitions, value by value


def literal_glass_pass(img: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """The paper's loop, statement for statement (the tuple "swap" on numpy views)."""
    x = img.copy()
    for a, h in enumerate(range(32 - 1, 1, -1)):
        for b, w in enumerate(range(32 - 1, 1, -1)):
            dx, dy = offsets[a, b]
            hp, wp = h + dy, w + dx
            x[h, w], x[hp, wp] = x[hp, wp], x[h, w]
    return x


def test_glass_blur_matches_the_literal_loop():
    for s in range(1, 6):
        p = PARAMETERS["glass_blur"][s]
        ref_rng = np.random.default_rng(5)
        x = np.uint8(sk_gaussian(IMG / 255.0, sigma=p["sigma"], channel_axis=-1) * 255)
        for _ in range(p["iterations"]):
            x = literal_glass_pass(x, ops.glass_offsets(ref_rng, 1, 32, 32, 1)[0])
        ref = np.uint8(np.clip(sk_gaussian(x / 255.0, sigma=p["sigma"], channel_axis=-1), 0, 1) * 255)
        out = as_uint8(ops.glass_blur(IMG[None], p, np.random.default_rng(5)))[0]
        np.testing.assert_array_equal(out, ref)


def test_noise_matches_formulas_value_by_value():
    for s in (1, 5):
        c = PARAMETERS["gaussian_noise"][s]["std"]
        ref = np.uint8(np.clip(IMG / 255.0 + np.random.default_rng(1).normal(size=IMG.shape, scale=c), 0, 1) * 255)
        out = as_uint8(ops.gaussian_noise(IMG[None], PARAMETERS["gaussian_noise"][s], np.random.default_rng(1)))
        np.testing.assert_array_equal(out[0], ref)
        c = PARAMETERS["shot_noise"][s]["photons"]
        ref = np.uint8(np.clip(np.random.default_rng(2).poisson(IMG / 255.0 * c) / c, 0, 1) * 255)
        out = as_uint8(ops.shot_noise(IMG[None], PARAMETERS["shot_noise"][s], np.random.default_rng(2)))
        np.testing.assert_array_equal(out[0], ref)
        c = PARAMETERS["impulse_noise"][s]["amount"]
        noisy = skutil.random_noise(IMG / 255.0, mode="s&p", amount=c, rng=np.random.default_rng(3))
        out = as_uint8(ops.impulse_noise(IMG[None], PARAMETERS["impulse_noise"][s], np.random.default_rng(3)))
        np.testing.assert_array_equal(out[0], np.uint8(np.clip(noisy, 0, 1) * 255))


GREY = np.full((64, 32, 32, 3), 128, dtype=np.uint8)  # mid-grey, far from clipping


@pytest.mark.parametrize("severity", [1, 3, 5])
def test_noise_statistics(severity):
    # Gaussian: residual std = std * 255 (truncation adds 1/12 to the variance and shifts the mean by -1/2)
    std = PARAMETERS["gaussian_noise"][severity]["std"] * 255
    r = cc.corrupt_c(GREY, "gaussian_noise", severity).astype(float) - 128
    assert abs(r.std() - np.sqrt(std**2 + 1 / 12)) / std < 0.02 and abs(r.mean() + 0.5) < 0.2
    # shot: out = 255 * Poisson(lam) / c with lam = x c / 255, so the variance is 255^2 lam / c^2 = x * 255 / c
    c = PARAMETERS["shot_noise"][severity]["photons"]
    for level in (64, 128):
        out = cc.corrupt_c(np.full_like(GREY, level), "shot_noise", severity).astype(float)
        assert abs(out.var() / (level * 255 / c + 1 / 12) - 1) < 0.04 and abs(out.mean() - level + 0.5) < 0.3
    # impulse: each value is replaced with probability c, by 0 or 255 half and half; the rest is untouched
    c = PARAMETERS["impulse_noise"][severity]["amount"]
    out = cc.corrupt_c(GREY, "impulse_noise", severity)
    salt, pepper = np.mean(out == 255), np.mean(out == 0)
    assert abs((salt + pepper) / c - 1) < 0.06 and abs(salt / pepper - 1) < 0.15
    assert np.all((out == 0) | (out == 255) | (out == 128))


def literal_plasma(mapsize: int, decay: float, rng: np.random.Generator) -> np.ndarray:
    m = np.empty((mapsize, mapsize))
    m[0, 0] = 0
    step, wibble = mapsize, 100.0
    while step >= 2:
        h = step // 2
        corner = m[0:mapsize:step, 0:mapsize:step]
        sq = corner + np.roll(corner, -1, axis=0)
        sq += np.roll(sq, -1, axis=1)
        m[h:mapsize:step, h:mapsize:step] = sq / 4 + wibble * rng.uniform(-wibble, wibble, sq.shape)
        dr, ul = m[h:mapsize:step, h:mapsize:step], m[0:mapsize:step, 0:mapsize:step]
        lt = (dr + np.roll(dr, 1, axis=0)) + (ul + np.roll(ul, -1, axis=1))
        m[0:mapsize:step, h:mapsize:step] = lt / 4 + wibble * rng.uniform(-wibble, wibble, lt.shape)
        tt = (dr + np.roll(dr, 1, axis=1)) + (ul + np.roll(ul, -1, axis=0))
        m[h:mapsize:step, 0:mapsize:step] = tt / 4 + wibble * rng.uniform(-wibble, wibble, tt.shape)
        step //= 2
        wibble /= decay
    m -= m.min()
    return m / m.max()


def test_fog_matches_formula_value_by_value():
    for s in range(1, 6):
        p = PARAMETERS["fog"][s]
        x = IMG / 255.0
        top = x.max()
        x = x + p["strength"] * literal_plasma(32, p["wibble_decay"], np.random.default_rng(4))[:32, :32, None]
        ref = np.uint8(np.clip(x * top / (top + p["strength"]), 0, 1) * 255)
        out = as_uint8(ops.fog(IMG[None], p, np.random.default_rng(4)))[0]
        np.testing.assert_array_equal(out, ref)


def test_frost_matches_formula_value_by_value():
    folder = prim.frost_photo_dir()
    for s in range(1, 6):
        p = PARAMETERS["frost"][s]
        g = np.random.default_rng(6)
        idx = g.integers(0, 5, size=1)[0]
        photo = cv2.resize(cv2.imread(str(folder / p["photos"][idx])), (0, 0), fx=0.2, fy=0.2)
        r = g.integers(0, np.array([photo.shape[0] - 32]))[0]
        c = g.integers(0, np.array([photo.shape[1] - 32]))[0]
        crop = photo[r : r + 32, c : c + 32][..., [2, 1, 0]]
        ref = np.uint8(np.clip(p["image_weight"] * IMG + p["frost_weight"] * crop, 0, 255))
        out = as_uint8(ops.frost(IMG[None], p, np.random.default_rng(6)))[0]
        np.testing.assert_array_equal(out, ref)


def literal_field(g: np.random.Generator, sigma: float, alpha: float) -> np.ndarray:
    noise = g.uniform(-1, 1, size=(1, 32, 32))[0]
    return (sk_gaussian(noise, sigma, mode="reflect", truncate=3) * alpha).astype(np.float32)[..., None]


def test_elastic_matches_formula_value_by_value():
    for s in range(1, 6):
        p = PARAMETERS["elastic_transform"][s]
        alpha, sigma, affine = 32 * p["alpha"], 32 * p["sigma"], 32 * p["affine"]
        g = np.random.default_rng(8)
        image = np.array(IMG, dtype=np.float32) / 255.0
        pts1 = np.float32([[26, 26], [26, 6], [6, 6]])  # centre 16 +- 32 // 3
        pts2 = pts1 + g.uniform(-affine, affine, size=(1, 3, 2)).astype(np.float32)[0]
        image = cv2.warpAffine(image, cv2.getAffineTransform(pts1, pts2), (32, 32), borderMode=cv2.BORDER_REFLECT_101)

        dx, dy = (literal_field(g, sigma, alpha) for _ in range(2))
        xg, yg, zg = np.meshgrid(np.arange(32), np.arange(32), np.arange(3))
        idx = tuple(np.reshape(v, (-1, 1)) for v in (yg + dy, xg + dx, zg))
        ref = np.uint8(np.clip(map_coordinates(image, idx, order=1, mode="reflect").reshape(IMG.shape), 0, 1) * 255)
        out = as_uint8(ops.elastic_transform(IMG[None], p, np.random.default_rng(8)))[0]
        np.testing.assert_array_equal(out, ref)


def test_snow_matches_formula_value_by_value():
    for s in range(1, 6):
        p = PARAMETERS["snow"][s]
        g = np.random.default_rng(9)
        x = np.array(IMG, dtype=np.float32) / 255.0
        layer = g.normal(size=(1, 32, 32, 1), loc=p["mean"], scale=p["std"])[0]
        layer = literal_clipped_zoom(layer, p["zoom"])
        layer[layer < p["threshold"]] = 0
        layer8 = (np.clip(layer.squeeze(), 0, 1) * 255).astype(np.uint8)
        angle = g.uniform(-135, -45, size=1)
        flakes = prim.motion_blur(layer8[None], p["radius"], p["sigma"], angle)[0][..., None] / 255.0
        grey = cv2.cvtColor(x, cv2.COLOR_RGB2GRAY).reshape(32, 32, 1)
        x = p["blend"] * x + (1 - p["blend"]) * np.maximum(x, grey * 1.5 + 0.5)
        ref = np.uint8(np.clip(x + flakes + np.rot90(flakes, k=2), 0, 1) * 255)
        out = as_uint8(ops.snow(IMG[None], p, np.random.default_rng(9)))[0]
        np.testing.assert_array_equal(out, ref)


# --------------------------------------------------------------------------- ImageMagick's motion blur


def test_motion_blur_taps_follow_imagemagick_definition():
    w, rows, cols = prim.motion_blur_taps(6, 2, [0.0, 90.0, -45.0])
    assert len(w) == 13 and w.sum() == pytest.approx(1)
    np.testing.assert_allclose(w / w[0], np.exp(-(np.arange(13) ** 2) / 8))
    np.testing.assert_array_equal(cols[0], np.arange(13))  # angle 0: along the row, to the right
    np.testing.assert_array_equal(rows[0], 0)
    np.testing.assert_array_equal(rows[1], np.arange(13))  # 90: down the column
    np.testing.assert_array_equal(cols[2], -rows[2])  # -45: up and to the right
    # a single bright pixel is smeared one-sidedly with the kernel's weights (the edge repeats elsewhere)
    img = np.zeros((1, 9, 40), dtype=np.uint8)
    img[0, 4, 30] = 200
    out = prim.motion_blur(img, 6, 2, [0.0])[0]
    np.testing.assert_array_equal(out[4, 30 - 12 : 31][::-1], np.floor(np.floor(200 * 257 * w + 0.5) / 257))
    assert out[[0, 1, 2, 3, 5, 6, 7, 8]].max() == 0 and out[4, 31:].max() == 0


def _imagemagick6() -> str | None:
    for exe in ("convert-im6.q16", "convert"):
        path = shutil.which(exe)
        if path:
            try:
                version = subprocess.run([path, "-version"], capture_output=True, text=True, timeout=20).stdout
            except (OSError, subprocess.SubprocessError):
                continue
            if "ImageMagick 6." in version and "Q16" in version and "HDRI" not in version:
                return path
    return None


def test_motion_blur_matches_imagemagick():
    exe = _imagemagick6()
    if exe is None:
        pytest.skip("no ImageMagick 6 Q16 'convert' here (Debian: apt-get install imagemagick)")
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as d:
        src, dst = os.path.join(d, "a.png"), os.path.join(d, "b.png")
        cases = [(6, 1), (6, 2), (8, 2), (9, 2.5), (10, 4), (14, 12)]
        for radius, sigma in cases:
            for angle in rng.uniform(-135, 45, size=3).round(2):
                for img in (IMG, IMG[:, :, 1]):
                    Image.fromarray(img).save(src)
                    subprocess.run([exe, src, "-motion-blur", f"{radius}x{sigma}+{angle}", dst], check=True, timeout=30)
                    ref = np.asarray(Image.open(dst).convert("RGB" if img.ndim == 3 else "L"))
                    np.testing.assert_array_equal(prim.motion_blur(img[None], radius, sigma, [angle])[0], ref)


# --------------------------------------------------------------------------- the table


def test_table_aggregates_hand_checkable_accuracies():
    y = np.arange(20) % 10
    x = np.repeat(IMG[None], 20, axis=0)
    names, sevs = ["gaussian_noise", "contrast", "fog"], (1, 3)
    script = [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4]  # clean, then (name, severity) in order

    def predict(images):
        acc = script[len(calls)]
        calls.append(len(images))
        pred = y.copy()
        k = round(acc * len(y))
        pred[k:] = (pred[k:] + 1) % 10
        return pred

    calls: list[int] = []
    df = cc.cifar10c_table(predict, x, y, names=names, severities=sevs)
    assert calls == [20] * 7
    assert list(df.index) == names and list(df.columns) == [1, 3]
    np.testing.assert_allclose(df.to_numpy(), [[0.9, 0.8], [0.7, 0.6], [0.5, 0.4]])
    a = df.attrs
    assert a["clean_acc"] == 1.0 and a["n"] == 20 and list(a["indices"]) == list(range(20))
    assert a["mean"] == pytest.approx(0.65) and a["mean_by_severity"] == pytest.approx({1: 0.7, 3: 0.6})
    assert a["by_group"] == pytest.approx({"noise": 0.85, "digital": 0.65, "weather": 0.45})
    assert a["complete"] is False and a["image_size"] == (32, 32)


def test_table_full_protocol_with_a_nearest_mean_classifier():
    # constant images, dark (class 0) or bright (class 1); nearest class mean = threshold at 127.5
    y = np.array([0, 1] * 5)
    x = np.where(y[:, None, None, None] == 1, 200, 50).astype(np.uint8) * np.ones((1, 32, 32, 3), np.uint8)
    df = cc.cifar10c_table(lambda im: (im.reshape(len(im), -1).mean(1) > 127.5).astype(int), x, y)
    assert df.shape == (15, 5) and df.attrs["complete"] and df.attrs["clean_acc"] == 1.0
    # blurs, contrast (towards the image's own mean), pixelate and JPEG keep a constant image constant
    for name in ["defocus_blur", "glass_blur", "motion_blur", "zoom_blur", "contrast", "pixelate", "jpeg_compression"]:
        assert (df.loc[name] == 1.0).all(), name
    assert df.attrs["mean"] == pytest.approx(df.to_numpy().mean())
    assert set(df.attrs["by_group"]) == {"noise", "blur", "weather", "digital"}


def test_table_subsample_and_score_arrays():
    y = np.arange(30) % 3
    x = np.repeat(IMG[None], 30, axis=0)
    scores = lambda im: np.eye(3)[np.zeros(len(im), int)]  # always class 0, as an (n, 3) score array
    df = cc.cifar10c_table(scores, x, y, names=["brightness"], severities=[2], samples=12, seed=4)
    assert df.attrs["n"] == 12 and len(set(df.attrs["indices"])) == 12
    assert df.loc["brightness", 2] == pytest.approx(np.mean(y[df.attrs["indices"]] == 0))


# --------------------------------------------------------------------------- errors


def test_error_messages():
    with pytest.raises(ValueError, match="Valid names: gaussian_noise, shot_noise.*jpeg_compression"):
        cc.corrupt_c(IMG, "speckle_noise", 1)
    for bad in (0, 6, True, 2.0, "3"):
        with pytest.raises(ValueError, match="severity must be one of 1, 2, 3, 4, 5"):
            cc.corrupt_c(IMG, "fog", bad)
    with pytest.raises(ValueError, match="uint8 RGB images"):
        cc.corrupt_c(IMG.astype(np.float32), "fog", 1)
    with pytest.raises(ValueError, match="uint8 RGB images"):
        cc.corrupt_c(IMG[..., :1], "fog", 1)
    with pytest.raises(ValueError, match="at least 8x8"):
        cc.corrupt_c(IMG[:4, :4], "fog", 1)
    with pytest.raises(ValueError, match="non-negative integer"):
        cc.corrupt_c(IMG, "fog", 1, seed=-1)
    with pytest.raises(ValueError, match="Valid names"):
        cc.cifar10c_table(lambda im: np.zeros(len(im)), IMG[None], [0], names=["blur"])
    with pytest.raises(ValueError, match="severity must be one of"):
        cc.cifar10c_table(lambda im: np.zeros(len(im)), IMG[None], [0], severities=[1, 7])
    with pytest.raises(ValueError, match="1 images but y has 2 labels"):
        cc.cifar10c_table(lambda im: np.zeros(len(im)), IMG[None], [0, 1])
    with pytest.raises(ValueError, match="group_of|Valid names"):
        cc.group_of("nope")


def test_the_cifar10c_summary_states_the_means_the_references_and_the_cells_at_chance():
    import pandas as pd

    table = pd.DataFrame(
        {1: [0.80, 0.90], 2: [0.40, 0.85], 3: [0.11, 0.70]},
        index=pd.Index(["gaussian_noise", "fog"], name="corruption"),
    )
    table.attrs.update(n=1000, clean_acc=0.91, mean=float(table.to_numpy().mean()))
    table.attrs["mean_by_severity"] = {s: float(table[s].mean()) for s in table.columns}
    # 10 classes on 1,000 images: chance is 10%, two standard errors 1.9 points, so 11% is at chance, 40% is not
    assert cc.cells_at_chance(table, 10) == ["gaussian noise at severity 3"]
    text = cc.cifar10c_summary(table, 10)
    assert (
        "**62.67%** over 2 corruptions x 3 severities (clean 91.00%); by severity 1, 2, 3: 85.0%, 62.5%, 40.5%." in text
    )
    for ref in cc.REFERENCE_POINTS.values():
        assert f"{ref['model']}: {ref['mean_corruption_acc']:.1f}%" in text
    assert text.endswith(
        "1 of 6 corruption settings brings the model to chance level (within two standard errors of 10%): gaussian "
        "noise (severity 3). On those images it does no better than guessing, whatever its clean accuracy."
    )
    table.loc["gaussian_noise", 3] = 0.5
    assert cc.cells_at_chance(
        table, 10
    ) == [] and "No corruption brings it down to chance level (10%)." in cc.cifar10c_summary(table, 10)
    # every cell at chance: grouped by corruption with severity ranges, not listed one by one
    many = table.map(lambda _: 0.1)
    many.loc["fog", 2] = 0.5
    assert cc.cifar10c_summary(many, 10).endswith(
        "5 of 6 corruption settings bring the model to chance level (within two standard errors of 10%): gaussian "
        "noise (severities 1-3); fog (severities 1 and 3). On those images it does no better than guessing, "
        "whatever its clean accuracy."
    )
    table.attrs["clean_acc"] = 0.105  # a model that learned nothing has no robustness to measure
    untrained = cc.cifar10c_summary(table, 10)
    assert (
        "at chance level (10%) on the clean images already" in untrained and "no better than guessing" not in untrained
    )
