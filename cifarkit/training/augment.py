"""Training input pipeline: shuffled, augmented batches from uint8 image arrays.

The pipeline works on whole batches with numpy, never image by image in
Python: a random crop is one slice per distinct offset (at most ``2 * pad + 1``
of them per axis), a flip is one gather. On a 2-core CPU this makes well over
20,000 augmented 32x32 images per second at batch 256
(``benchmarks/bench_pipeline.py``), far above what the models train at.

Images stay raw: ``0..255`` pixels in NHWC, ``uint8`` unless mixup blends two
images (then ``float32``). Normalization happens inside the model (its
``Preprocess`` layer), so what the pipeline yields is what a saved model eats.

Randomness comes from one ``numpy.random.Generator`` (PCG64) owned by the
pipeline. Its state is part of every checkpoint (:meth:`TrainPipeline.state_dict`),
so a resumed run draws exactly the batches the uninterrupted run would have.

Example:
    >>> pipe = TrainPipeline(x, y, 128, num_classes=10, crop=4, flip=True, seed=0)
    >>> for xb, yb in pipe.epoch():
    ...     ...  # xb uint8 (B, 32, 32, 3), yb int64 (B,)
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

PAD_MODES = ("reflect", "zero")


@dataclass
class Augment:
    """Which augmentations to apply, in the order they run.

    Args:
        crop: pad each side by this many pixels and crop back at a random
            offset (a random translation by ``-crop..crop`` pixels); 0 = off.
        pad_mode: ``"reflect"`` (mirror the border, as airbench does) or
            ``"zero"`` (black border, as He et al. 2016 do).
        flip: random horizontal flip with probability 1/2.
        alternate_flip: with ``flip``, airbench's alternating flips: each
            image gets one random flip decision, drawn once from the pipeline's
            seed; even epochs (0, 2, ...) use it and odd epochs the opposite,
            so every image is seen both ways in every two epochs (Jordan 2024,
            section 3.6). The decision depends only on the seed, the image's
            index and the epoch, so a resumed run repeats it.
        cutout: side of a square set to ``cutout_fill`` at a random centre
            (it may be clipped by the border, as in DeVries & Taylor 2017); 0 = off.
        cutout_fill: pixel value(s) written by cutout, 0..255, one per channel
            or one for all. The training loop passes the training-set mean,
            which the model normalizes to zero, like cutout on normalized data.
        mixup: Beta(alpha, alpha) parameter of mixup; 0 = off.
        cutmix: Beta(alpha, alpha) parameter of CutMix; 0 = off. With both
            mixup and cutmix on, each batch uses one of them, chosen at random.
    """

    crop: int = 0
    pad_mode: str = "reflect"
    flip: bool = False
    alternate_flip: bool = False
    cutout: int = 0
    cutout_fill: float | tuple = 0.0
    mixup: float = 0.0
    cutmix: float = 0.0

    def __post_init__(self):
        if isinstance(self.crop, bool) or not isinstance(self.crop, (int, np.integer)) or self.crop < 0:
            raise ValueError(f"crop must be a non-negative int (pixels of padding), got {self.crop!r}.")
        if self.pad_mode not in PAD_MODES:
            raise ValueError(f"pad_mode must be one of {', '.join(PAD_MODES)}, got {self.pad_mode!r}.")
        if isinstance(self.cutout, bool) or not isinstance(self.cutout, (int, np.integer)) or self.cutout < 0:
            raise ValueError(f"cutout must be a non-negative int (square side in pixels), got {self.cutout!r}.")
        if self.alternate_flip and not self.flip:
            raise ValueError("alternate_flip=True needs flip=True (it decides how images are flipped).")
        for name in ("mixup", "cutmix"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{name} must be a non-negative number (Beta alpha; 0 = off), got {value!r}.")

    @property
    def soft_targets(self) -> bool:
        """True when batches carry probability targets (mixup or cutmix on)."""
        return self.mixup > 0 or self.cutmix > 0


def random_crop(x: np.ndarray, pad: int, rng: np.random.Generator, pad_mode: str = "reflect") -> np.ndarray:
    """Pad each image by ``pad`` pixels per side and crop it back at a random offset.

    Vectorized by offset: images that share a row (then column) offset are
    copied with one slice, so the cost is ``2 * (2 * pad + 1)`` numpy copies
    per batch whatever the batch size.

    Args:
        x: uint8 or float ``(N, H, W, C)``.
        pad: padding per side in pixels; offsets are uniform in ``0..2*pad``.
        rng: the generator that draws the offsets (rows, then columns).
        pad_mode: ``"reflect"`` or ``"zero"``.

    Returns:
        A new array with the shape and dtype of ``x``.
    """
    if pad == 0:
        return x.copy()
    n, h, w = x.shape[:3]
    if pad_mode == "reflect" and (pad >= h or pad >= w):
        raise ValueError(f"reflect padding needs pad < image size; got pad={pad} for {h}x{w} images.")
    mode = "reflect" if pad_mode == "reflect" else "constant"
    padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode=mode)
    dy = rng.integers(0, 2 * pad + 1, size=n)
    dx = rng.integers(0, 2 * pad + 1, size=n)
    rows = np.empty((n, h) + padded.shape[2:], dtype=x.dtype)
    for v in range(2 * pad + 1):
        sel = np.flatnonzero(dy == v)
        if len(sel):
            rows[sel] = padded[sel, v : v + h]
    out = np.empty_like(x)
    for v in range(2 * pad + 1):
        sel = np.flatnonzero(dx == v)
        if len(sel):
            out[sel] = rows[sel, :, v : v + w]
    return out


def random_flip(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Flip each image left-right with probability 1/2 (in place; returns ``x``)."""
    sel = np.flatnonzero(rng.random(len(x)) < 0.5)
    if len(sel):
        x[sel] = x[sel, :, ::-1]
    return x


def cutout(x: np.ndarray, size: int, rng: np.random.Generator, fill=0.0) -> np.ndarray:
    """Set a ``size`` x ``size`` square at a random centre of each image to ``fill`` (in place).

    The centre is uniform over the image, so squares near the border are
    clipped (DeVries & Taylor 2017).
    """
    if size <= 0:
        return x
    n, h, w = x.shape[:3]
    cy = rng.integers(0, h, size=n)
    cx = rng.integers(0, w, size=n)
    y0 = cy - size // 2
    x0 = cx - size // 2
    ys = np.arange(h)
    xs = np.arange(w)
    in_rows = (ys >= y0[:, None]) & (ys < (y0 + size)[:, None])
    in_cols = (xs >= x0[:, None]) & (xs < (x0 + size)[:, None])
    mask = in_rows[:, :, None] & in_cols[:, None, :]
    fill = np.broadcast_to(np.asarray(fill, dtype=np.float64), (x.shape[3],))
    if np.issubdtype(x.dtype, np.integer):
        fill = np.clip(np.rint(fill), 0, 255)
    x[mask] = fill.astype(x.dtype)
    return x


def one_hot(y: np.ndarray, num_classes: int) -> np.ndarray:
    """Float32 one-hot rows for int labels."""
    out = np.zeros((len(y), num_classes), dtype=np.float32)
    out[np.arange(len(y)), y] = 1.0
    return out


def mixup(x: np.ndarray, targets: np.ndarray, alpha: float, rng: np.random.Generator):
    """Blend the batch with a shuffled copy of itself (Zhang et al. 2018).

    One ``lam ~ Beta(alpha, alpha)`` per batch.

    Returns:
        ``(x_mixed, targets_mixed, lam)``: float32 images in 0..255 and float32
        targets whose rows still sum to 1.
    """
    lam = float(rng.beta(alpha, alpha))
    perm = rng.permutation(len(x))
    xf = x.astype(np.float32)
    mixed = lam * xf + (1.0 - lam) * xf[perm]
    np.clip(mixed, 0.0, 255.0, out=mixed)  # float rounding could step just past 255
    t = (lam * targets + (1.0 - lam) * targets[perm]).astype(np.float32)
    return mixed, t, lam


def cutmix(x: np.ndarray, targets: np.ndarray, alpha: float, rng: np.random.Generator):
    """Paste a box from a shuffled copy of the batch into each image (Yun et al. 2019).

    One ``lam ~ Beta(alpha, alpha)`` and one box per batch; the box is clipped
    by the border and the targets use the area actually pasted. Pixels are
    copied, not blended, so the dtype of ``x`` is kept.

    Returns:
        ``(x_mixed, targets_mixed, lam)`` with ``lam`` the kept fraction.
    """
    n, h, w = x.shape[:3]
    lam = float(rng.beta(alpha, alpha))
    perm = rng.permutation(n)
    cut = np.sqrt(1.0 - lam)
    bh, bw = int(h * cut), int(w * cut)
    cy, cx = int(rng.integers(0, h)), int(rng.integers(0, w))
    y0, y1 = np.clip(cy - bh // 2, 0, h), np.clip(cy + bh - bh // 2, 0, h)
    x0, x1 = np.clip(cx - bw // 2, 0, w), np.clip(cx + bw - bw // 2, 0, w)
    out = x.copy()
    out[:, y0:y1, x0:x1] = x[perm, y0:y1, x0:x1]
    lam = 1.0 - (y1 - y0) * (x1 - x0) / float(h * w)
    t = (lam * targets + (1.0 - lam) * targets[perm]).astype(np.float32)
    return out, t, lam


class EpochBatches:
    """Batches per epoch of a pipeline with ``x``, ``batch_size`` and ``drop_last`` (shared by both pipelines)."""

    def __len__(self) -> int:
        """Batches per epoch."""
        n = len(self.x)
        if self.drop_last and n >= self.batch_size:
            return n // self.batch_size
        return -(-n // self.batch_size)

    @property
    def images_per_epoch(self) -> int:
        return min(len(self.x), len(self) * self.batch_size)


class TrainPipeline(EpochBatches):
    """Shuffled, augmented training batches over in-memory uint8 arrays.

    Args:
        x: uint8 ``(N, H, W, C)`` training images.
        y: int ``(N,)`` labels.
        batch_size: images per batch.
        num_classes: number of classes (size of soft targets).
        augment: an :class:`Augment`; keyword arguments of ``Augment`` are
            accepted instead (``crop=4, flip=True``).
        shuffle: draw a new order every epoch.
        drop_last: drop the last, smaller batch of an epoch (the usual choice
            for batch-norm networks). A dataset smaller than one batch still
            gives one batch.
        seed: seed of the pipeline's generator.

    Batches are ``(x, y)``: ``x`` uint8 (float32 under mixup), ``y`` int64
    labels, or float32 ``(B, num_classes)`` probabilities when mixup or cutmix
    is on (every batch of such a run, so the loss sees one kind of target).
    """

    def __init__(
        self,
        x: np.ndarray,
        y: np.ndarray,
        batch_size: int,
        *,
        num_classes: int,
        augment: Augment | None = None,
        shuffle: bool = True,
        drop_last: bool = True,
        seed: int = 0,
        **augment_options,
    ):
        if augment is not None and augment_options:
            raise ValueError("Pass either augment=Augment(...) or augmentation keywords, not both.")
        self.augment = augment if augment is not None else Augment(**augment_options)
        if x.ndim != 4 or x.dtype != np.uint8:
            raise ValueError(f"x must be uint8 (N, H, W, C); got {x.dtype} {x.shape}.")
        if len(x) != len(y) or len(x) == 0:
            raise ValueError(f"x and y must be non-empty and of equal length; got {len(x)} and {len(y)}.")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}.")
        self.x = np.ascontiguousarray(x)
        self.y = np.asarray(y, dtype=np.int64)
        self.batch_size = int(batch_size)
        self.num_classes = int(num_classes)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.rng = np.random.default_rng(seed)
        self._flip_base = None
        if self.augment.alternate_flip:
            # Its own generator, so the decisions need no saved state and leave self.rng's sequence alone.
            self._flip_base = np.random.default_rng([int(seed), 0xF11B]).random(len(self.x)) < 0.5

    def epoch(self, index: int = 0):
        """Yield the batches of one epoch. The order is drawn when the epoch starts.

        ``index`` is the 0-based epoch number; only alternating flips use it.
        """
        n = len(self.x)
        order = self.rng.permutation(n) if self.shuffle else np.arange(n)
        for b in range(len(self)):
            idx = order[b * self.batch_size : (b + 1) * self.batch_size]
            if self.shuffle:
                idx = np.sort(idx)  # reading memory in order is faster; the set is what is random
            flips = None if self._flip_base is None else self._flip_base[idx] ^ bool(index % 2)
            yield self.transform(self.x[idx], self.y[idx], flips)

    def __iter__(self):
        return self.epoch()

    def transform(self, x: np.ndarray, y: np.ndarray, flips: np.ndarray | None = None):
        """Augment one batch (``x`` is not modified). Draws from the pipeline's generator.

        ``flips``: a boolean mask of the images to flip (alternating flips); None draws them at random.
        """
        a = self.augment
        rng = self.rng
        out = random_crop(x, a.crop, rng, a.pad_mode) if a.crop else x.copy()
        if a.flip and flips is not None:
            sel = np.flatnonzero(flips)
            out[sel] = out[sel, :, ::-1]
        elif a.flip:
            random_flip(out, rng)
        if a.cutout:
            cutout(out, a.cutout, rng, a.cutout_fill)
        if not a.soft_targets:
            return out, y
        targets = one_hot(y, self.num_classes)
        use_mixup = a.mixup > 0 and (a.cutmix <= 0 or rng.random() < 0.5)
        if use_mixup:
            out, targets, _ = mixup(out, targets, a.mixup, rng)
        else:
            out, targets, _ = cutmix(out, targets, a.cutmix, rng)
        return out, targets

    def state_dict(self) -> dict:
        """The generator's state (plain Python ints and strings; picklable and JSON-able)."""
        return copy.deepcopy(self.rng.bit_generator.state)

    def load_state_dict(self, state: dict) -> None:
        """Restore a state from :meth:`state_dict`, so the next batches repeat exactly."""
        if state.get("bit_generator") != type(self.rng.bit_generator).__name__:
            raise ValueError(
                f"Pipeline state is for {state.get('bit_generator')!r}, "
                f"this pipeline uses {type(self.rng.bit_generator).__name__!r}."
            )
        self.rng.bit_generator.state = copy.deepcopy(state)
