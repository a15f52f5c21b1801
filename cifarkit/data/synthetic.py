"""Synthetic, easily learnable image data, and writers for every supported on-disk format.

Each class is a shape in its own colour (circle, square, triangle, cross, ...)
on a randomly tinted dark background, with position and scale jitter and
Gaussian pixel noise. Classes differ in both shape and colour, so a small CNN
separates them within a few epochs, while the jitter keeps the task from being
a lookup of fixed pixels. Used by smoke tests and by the loader's own tests.
"""

from __future__ import annotations

import colorsys
import io
import pickle
import tarfile
import time
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from .cifar10 import CIFAR10_CLASSES, CIFAR10_DIR_NAME

SHAPES = ["circle", "square", "triangle", "cross", "ring", "diamond", "hbar", "vbar", "xcross", "frame"]
_COLOURS = [
    (230, 40, 40),  # red
    (40, 200, 60),  # green
    (50, 90, 240),  # blue
    (240, 220, 40),  # yellow
    (220, 50, 220),  # magenta
    (40, 210, 220),  # cyan
    (250, 140, 30),  # orange
    (140, 70, 210),  # purple
    (235, 235, 235),  # white
    (150, 100, 50),  # brown
]


def _colour(k: int) -> tuple[int, int, int]:
    if k < len(_COLOURS):
        return _COLOURS[k]
    r, g, b = colorsys.hsv_to_rgb((k * 0.618034) % 1.0, 0.8, 0.95)
    return (int(r * 255), int(g * 255), int(b * 255))


def _shape_mask(shape: int, dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """Mask of a shape in normalized coordinates (the shape fits in [-1, 1]^2)."""
    ax, ay = np.abs(dx), np.abs(dy)
    r2 = dx**2 + dy**2
    if shape == 0:
        return r2 <= 1.0
    if shape == 1:
        return np.maximum(ax, ay) <= 0.85
    if shape == 2:  # apex up
        return (dy >= -1.0) & (dy <= 0.8) & (ax <= (dy + 1.0) / 1.8)
    if shape == 3:
        return ((ax <= 0.3) & (ay <= 1.0)) | ((ay <= 0.3) & (ax <= 1.0))
    if shape == 4:
        return (r2 <= 1.0) & (r2 >= 0.55**2)
    if shape == 5:
        return ax + ay <= 1.0
    if shape == 6:
        return (ay <= 0.35) & (ax <= 1.0)
    if shape == 7:
        return (ax <= 0.35) & (ay <= 1.0)
    if shape == 8:
        return (np.abs(ax - ay) <= 0.3) & (np.maximum(ax, ay) <= 0.9)
    return (np.maximum(ax, ay) <= 0.9) & (np.maximum(ax, ay) >= 0.55)


def synthetic_class_names(num_classes: int) -> list[str]:
    """Shape names, with a numbered colour variant once the 10 shapes are used up."""
    return [SHAPES[k % len(SHAPES)] + ("" if k < len(SHAPES) else f"_{k // len(SHAPES)}") for k in range(num_classes)]


def _size_pair(image_size) -> tuple[int, int]:
    if isinstance(image_size, (int, np.integer)) and not isinstance(image_size, bool):
        h = w = int(image_size)
    elif isinstance(image_size, (tuple, list)) and len(image_size) == 2:
        h, w = (int(v) for v in image_size)
    else:
        raise ValueError(f"image_size must be an int or (height, width), got {image_size!r}.")
    if h < 4 or w < 4:
        raise ValueError(f"image_size must be at least 4x4 for synthetic images, got {(h, w)}.")
    return h, w


def make_synthetic(n_per_class: int = 200, num_classes: int = 4, image_size=32, seed: int = 0):
    """Generate a deterministic, easily learnable image classification set.

    Args:
        n_per_class: images per class.
        num_classes: number of classes (>= 2); class k is shape ``k % 10`` in colour k.
        image_size: int or ``(height, width)``.
        seed: the same seed gives the same arrays.

    Returns:
        ``(x, y, class_names)``: uint8 ``(N, H, W, 3)``, int64 ``(N,)`` in
        shuffled order, and the class names (shape names).
    """
    if isinstance(n_per_class, bool) or not isinstance(n_per_class, (int, np.integer)) or n_per_class < 1:
        raise ValueError(f"n_per_class must be a positive int, got {n_per_class!r}.")
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 2:
        raise ValueError(f"num_classes must be an int >= 2, got {num_classes!r}.")
    h, w = _size_pair(image_size)
    rng = np.random.default_rng(seed)
    n = n_per_class * num_classes
    y = np.repeat(np.arange(num_classes, dtype=np.int64), n_per_class)
    y = y[rng.permutation(n)]
    x = np.empty((n, h, w, 3), dtype=np.uint8)
    scale = min(h, w) / 2.0
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    yy, xx = (yy + 0.5 - h / 2) / scale, (xx + 0.5 - w / 2) / scale  # centred, in units of half the size
    chunk = 1024
    for start in range(0, n, chunk):
        labels = y[start : start + chunk]
        m = len(labels)
        radius = rng.uniform(0.45, 0.7, size=(m, 1, 1)).astype(np.float32)
        cx = rng.uniform(-1.0, 1.0, size=(m, 1, 1)).astype(np.float32) * (0.95 - radius)
        cy = rng.uniform(-1.0, 1.0, size=(m, 1, 1)).astype(np.float32) * (0.95 - radius)
        dx, dy = (xx - cx) / radius, (yy - cy) / radius
        mask = np.zeros((m, h, w), dtype=bool)
        for k in np.unique(labels):
            sel = labels == k
            mask[sel] = _shape_mask(int(k) % len(SHAPES), dx[sel], dy[sel])
        colours = np.array([_colour(int(k)) for k in labels], dtype=np.float32)[:, None, None, :]
        colours *= rng.uniform(0.75, 1.0, size=(m, 1, 1, 1)).astype(np.float32)
        background = rng.uniform(0, 70, size=(m, 1, 1, 1)) + rng.uniform(-20, 20, size=(m, 1, 1, 3))
        img = np.where(mask[..., None], colours, background.astype(np.float32))
        img += rng.normal(0.0, 12.0, size=img.shape).astype(np.float32)
        x[start : start + m] = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return x, y, synthetic_class_names(num_classes)


def _per_class_split(y: np.ndarray, n_first: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the first ``n_first`` images of each class, and of the rest (both in original order)."""
    first = np.zeros(len(y), dtype=bool)
    for k in np.unique(y):
        first[np.flatnonzero(y == k)[:n_first]] = True
    return np.flatnonzero(first), np.flatnonzero(~first)


def write_synthetic_cifar_archive(
    path,
    n_train_per_class: int = 20,
    n_test_per_class: int = 5,
    *,
    num_classes: int = 10,
    seed: int = 0,
    class_names: list[str] | None = None,
) -> Path:
    """Write synthetic data in the official ``cifar-10-python.tar.gz`` format.

    The archive holds ``cifar-10-batches-py/`` with ``data_batch_1`` to
    ``data_batch_5``, ``test_batch`` and ``batches.meta``, each a dict with
    bytes keys pickled with protocol 2, like the original. Class names default
    to CIFAR-10's when ``num_classes`` is 10, else ``class_0``, ``class_1``, ...

    Returns:
        The archive's path.
    """
    path = Path(path)
    if class_names is None:
        class_names = list(CIFAR10_CLASSES) if num_classes == 10 else [f"class_{k}" for k in range(num_classes)]
    if len(class_names) != num_classes:
        raise ValueError(f"class_names has {len(class_names)} names but num_classes is {num_classes}.")
    x, y, _ = make_synthetic(n_train_per_class + n_test_per_class, num_classes, 32, seed)
    train_idx, test_idx = _per_class_split(y, n_train_per_class)
    rows = x.transpose(0, 3, 1, 2).reshape(len(x), 3072)  # 1024 R, 1024 G, 1024 B per row

    def batch(idx, label: str) -> bytes:
        return pickle.dumps(
            {
                b"batch_label": label.encode(),
                b"labels": [int(v) for v in y[idx]],
                b"data": np.ascontiguousarray(rows[idx]),
                b"filenames": [f"synthetic_{i:06d}.png".encode() for i in idx],
            },
            protocol=2,
        )

    members = {}
    for k, idx in enumerate(np.array_split(train_idx, 5), start=1):
        members[f"data_batch_{k}"] = batch(idx, f"training batch {k} of 5")
    members["test_batch"] = batch(test_idx, "testing batch 1 of 1")
    members["batches.meta"] = pickle.dumps(
        {
            b"label_names": [n.encode() for n in class_names],
            b"num_cases_per_batch": int(max(len(a) for a in np.array_split(train_idx, 5))),
            b"num_vis": 3072,
        },
        protocol=2,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        _add_tar_dir(tar, CIFAR10_DIR_NAME)
        for name, data in members.items():
            _add_tar_file(tar, f"{CIFAR10_DIR_NAME}/{name}", data)
    return path


def _add_tar_dir(tar: tarfile.TarFile, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    info.mtime = int(time.time())
    tar.addfile(info)


def _add_tar_file(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    info.mtime = int(time.time())
    tar.addfile(info, io.BytesIO(data))


def _encode(img: np.ndarray, fmt: str) -> bytes:
    buf = io.BytesIO()
    if fmt in ("jpg", "jpeg"):
        Image.fromarray(img).save(buf, "JPEG", quality=90)
    else:
        Image.fromarray(img).save(buf, fmt.upper())
    return buf.getvalue()


def write_synthetic_image_folder(
    root,
    n_per_class: int = 20,
    *,
    split: bool = True,
    n_test_per_class: int | None = None,
    num_classes: int = 4,
    image_size=32,
    fmt: str = "png",
    archive: str | None = None,
    seed: int = 0,
) -> Path:
    """Write synthetic images in the image-folder layout.

    Args:
        root: folder to write (or, with ``archive``, the archive's path without
            its suffix; members then sit in a wrapper folder named after it).
        n_per_class: training images per class with ``split``, else images per class.
        split: write ``train/<class>/`` and ``test/<class>/`` (True) or ``<class>/`` only.
        n_test_per_class: test images per class with ``split`` (default ``max(1, n_per_class // 4)``).
        num_classes, image_size, seed: as in :func:`make_synthetic`.
        fmt: ``"png"`` or ``"jpg"``.
        archive: None (plain folder), ``"tar.gz"``, ``"tar"`` or ``"zip"``.

    Returns:
        The folder's or the archive's path.
    """
    root = Path(root)
    fmt = fmt.lower()
    if fmt not in ("png", "jpg", "jpeg"):
        raise ValueError(f"fmt must be 'png' or 'jpg', got {fmt!r}.")
    if archive not in (None, "tar.gz", "tgz", "tar", "zip"):
        raise ValueError(f"archive must be None, 'tar.gz', 'tar' or 'zip', got {archive!r}.")
    n_test = (n_test_per_class if n_test_per_class is not None else max(1, n_per_class // 4)) if split else 0
    x, y, names = make_synthetic(n_per_class + n_test, num_classes, image_size, seed)
    files: dict[str, bytes] = {}
    first, rest = _per_class_split(y, n_per_class)
    for split_name, idx in (("train", first), ("test", rest)) if split else (("", first),):
        for i in idx:
            folder = f"{split_name}/{names[y[i]]}" if split_name else names[y[i]]
            files[f"{folder}/{i:05d}.{fmt}"] = _encode(x[i], fmt)
    if archive is None:
        for rel, data in files.items():
            target = root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        return root
    out = root.with_name(f"{root.name}.{archive}")
    out.parent.mkdir(parents=True, exist_ok=True)
    if archive == "zip":
        with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
            for rel, data in files.items():
                zf.writestr(f"{root.name}/{rel}", data)
    else:
        with tarfile.open(out, "w:gz" if archive in ("tar.gz", "tgz") else "w") as tar:
            for rel, data in files.items():
                _add_tar_file(tar, f"{root.name}/{rel}", data)
    return out
