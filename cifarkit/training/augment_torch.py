"""Training input pipeline on the accelerator: the training set lives on the device, augmentation is tensor ops.

:class:`DevicePipeline` has the interface of :class:`~cifarkit.training.augment.TrainPipeline`
(``__len__``, ``epoch(i)``, ``state_dict()``/``load_state_dict()``) and the same
augmentations (:class:`~cifarkit.training.augment.Augment`: random crop with
reflect or zero padding, random or airbench's alternating flips, cutout), but
it keeps the whole training set on the device as one uint8 tensor and draws
every random number there, from its own seeded ``torch.Generator``. Nothing
crosses the PCIe bus during training: a batch is one gather from the resident
set, which selects the shuffled images, translates them (the padding is index
arithmetic, never materialized) and mirrors them in a single kernel; cutout is
one ``torch.where``. On a GPU this takes a few kernel launches per batch,
against numpy work plus a host-to-device copy per batch for
:class:`~cifarkit.training.augment.TrainPipeline`.

Layout: NHWC (``(N, H, W, C)`` uint8), as the data layer stores it. The
models take NHWC and their ``Preprocess`` layer permutes it to an NCHW view
whose memory is channels-last, the layout cuDNN's tensor-core convolutions
run fastest in bf16; an NCHW-resident set would need a transpose back before
every step (or a second input convention), for no gain: a crop is a gather
over H and W whichever dimension holds the channels, and the 3 channels of a
pixel stay together, so each gathered element is one contiguous 3-byte pixel.

Randomness: ``torch.randperm`` draws each epoch's order (``drop_last`` as the
numpy pipeline: the last, smaller batch is dropped unless the set is smaller
than a batch); each batch then draws crop offsets (rows, then columns), flips,
and cutout centres from the pipeline's generator. Alternating flips use the
numpy pipeline's per-image decisions (a function of the seed alone), so both
pipelines flip the same images in the same epochs. The generator's state is
the pipeline's :meth:`DevicePipeline.state_dict`, saved in every checkpoint, so
a resumed run draws exactly the batches of the uninterrupted run *on the same
kind of device* (a CUDA generator's stream differs from a CPU one's; the
state records the device type and refuses another).

Mixup and CutMix are not implemented here (a Beta draw has no seeded
``torch.Generator`` form): the pipeline refuses them, and ``pipeline="auto"``
uses the numpy pipeline for such runs (:func:`choose_pipeline`).

Example:
    >>> pipe = DevicePipeline(x, y, 512, num_classes=10, crop=2, flip=True, seed=0, device="cuda")
    >>> for xb, yb in pipe.epoch(0):
    ...     ...  # xb uint8 (512, 32, 32, 3) on the device, yb int64 (512,) on the device
"""

from __future__ import annotations

import numpy as np
import torch

from cifarkit.training.augment import Augment, EpochBatches
from cifarkit.training.config import PIPELINES

#: What a state dict of this pipeline says it is (the numpy pipeline's says ``bit_generator: PCG64``).
STATE_KIND = "torch"


def choose_pipeline(pipeline: str, device: str, augment: Augment | None = None) -> str:
    """``"torch"`` or ``"numpy"``: which input pipeline a run on ``device`` uses.

    ``"auto"`` is the device pipeline on CUDA and the numpy pipeline on the CPU
    (where numpy's per-offset slicing is faster than a gather, and the data is
    already where the model is). ``"auto"`` also keeps numpy for runs with
    mixup or CutMix, which only the numpy pipeline implements; asking for
    ``"torch"`` with them is an error.
    """
    if pipeline not in PIPELINES:
        raise ValueError(f"pipeline must be one of {', '.join(map(repr, PIPELINES))}; got {pipeline!r}.")
    mixing = augment is not None and augment.soft_targets
    if pipeline == "torch" and mixing:
        raise ValueError(_MIXING_REFUSED)
    if pipeline == "auto":
        return "torch" if str(device).startswith("cuda") and not mixing else "numpy"
    return pipeline


_MIXING_REFUSED = (
    "mixup and cutmix are implemented only in the numpy input pipeline; set pipeline='numpy' "
    "(or 'auto', which picks it for such runs), or turn mixup and cutmix off."
)


# --------------------------------------------------------------------------- batched tensor ops
def crop_flip_indices(
    h: int,
    w: int,
    pad: int,
    dy: torch.Tensor | None,
    dx: torch.Tensor | None,
    flip: torch.Tensor | None,
    pad_mode: str = "reflect",
    n: int | None = None,
    device=None,
):
    """Source rows and columns of a padded random crop followed by a horizontal flip.

    Output pixel ``(r, c)`` of image ``i`` comes from row ``rows[i, r]`` and
    column ``cols[i, c]`` of the unpadded image: padding by ``pad`` and
    cropping at offset ``(dy, dx)`` (in ``0..2*pad``) reads padded pixel
    ``(r + dy, c + dx)``, that is original pixel ``(r + dy - pad, c + dx - pad)``;
    reflect padding mirrors an index outside the image back inside
    (``-k -> k``, ``h - 1 + k -> h - 1 - k``, numpy's ``"reflect"``), zero
    padding marks it invalid. A flip reads column ``w - 1 - c`` of the crop.

    Returns:
        ``(rows, cols, valid)``: int64 ``(n, h)`` and ``(n, w)``, and for zero
        padding a bool ``(n, h, w)`` mask of pixels inside the image (``None``
        when every pixel is).
    """
    device = device if device is not None else (dy.device if dy is not None else None)
    if n is None:
        n = len(dy) if dy is not None else len(flip)
    r = torch.arange(h, device=device).expand(n, h)
    c = torch.arange(w, device=device).expand(n, w)
    if flip is not None:
        c = torch.where(flip[:, None], (w - 1) - c, c)
    if pad and dy is not None:
        r = r + (dy[:, None] - pad)
        c = c + (dx[:, None] - pad)
    valid = None
    if pad and pad_mode == "reflect":
        r = _reflect(r, h)
        c = _reflect(c, w)
    elif pad:
        vr = (r >= 0) & (r < h)
        vc = (c >= 0) & (c < w)
        valid = vr[:, :, None] & vc[:, None, :]
        r = r.clamp(0, h - 1)
        c = c.clamp(0, w - 1)
    return r, c, valid


def _reflect(index: torch.Tensor, size: int) -> torch.Tensor:
    index = torch.where(index < 0, -index, index)
    return torch.where(index > size - 1, 2 * (size - 1) - index, index)


def gather_crop_flip(
    x: torch.Tensor,
    idx: torch.Tensor | None,
    pad: int,
    dy: torch.Tensor | None,
    dx: torch.Tensor | None,
    flip: torch.Tensor | None,
    pad_mode: str = "reflect",
) -> torch.Tensor:
    """Images ``x[idx]`` (all of ``x`` for ``idx=None``), cropped at ``(dy, dx)`` after padding by ``pad``, then flipped where ``flip``.

    One advanced-indexing gather does the batch selection, the translation
    and the flip; zero padding adds one ``torch.where``. ``x`` is NHWC. With
    ``pad=0`` the offsets are ignored; ``flip=None`` flips nothing.
    Deterministic given its arguments (the random draws happen in
    :class:`DevicePipeline`), so tests can compare it with numpy exactly.
    """
    n_all, h, w = x.shape[:3]
    if pad_mode == "reflect" and pad and (pad >= h or pad >= w):
        raise ValueError(f"reflect padding needs pad < image size; got pad={pad} for {h}x{w} images.")
    if idx is None:
        idx = torch.arange(n_all, device=x.device)
    n = len(idx)
    rows, cols, valid = crop_flip_indices(h, w, pad, dy, dx, flip, pad_mode, n=n, device=x.device)
    out = x[idx[:, None, None], rows[:, :, None], cols[:, None, :]]
    if valid is not None:
        out = torch.where(valid[..., None], out, torch.zeros((), dtype=out.dtype, device=out.device))
    return out


def cutout_mask(h: int, w: int, size: int, cy: torch.Tensor, cx: torch.Tensor) -> torch.Tensor:
    """Bool ``(n, h, w)``: the ``size`` x ``size`` squares centred at ``(cy, cx)``, clipped by the border.

    As the numpy pipeline: rows ``cy - size // 2`` up to (not including)
    ``cy - size // 2 + size``, the same for columns.
    """
    y0 = (cy - size // 2)[:, None]
    x0 = (cx - size // 2)[:, None]
    ys = torch.arange(h, device=cy.device)
    xs = torch.arange(w, device=cx.device)
    in_rows = (ys >= y0) & (ys < y0 + size)
    in_cols = (xs >= x0) & (xs < x0 + size)
    return in_rows[:, :, None] & in_cols[:, None, :]


def cutout_fill_values(fill, channels: int, dtype, device) -> torch.Tensor:
    """The per-channel cutout fill as a tensor of ``dtype`` (rounded and clipped to 0..255 for integer images, as numpy's)."""
    values = np.broadcast_to(np.asarray(fill, dtype=np.float64), (channels,))
    if not torch.empty((), dtype=dtype).is_floating_point():
        values = np.clip(np.rint(values), 0, 255)
    return torch.as_tensor(values.copy(), device=device).to(dtype)


def apply_cutout(x: torch.Tensor, size: int, cy: torch.Tensor, cx: torch.Tensor, fill=0.0) -> torch.Tensor:
    """``x`` (NHWC) with each image's square at ``(cy, cx)`` set to ``fill`` (a new tensor)."""
    if size <= 0:
        return x
    n, h, w, c = x.shape
    mask = cutout_mask(h, w, size, cy, cx)
    return torch.where(mask[..., None], cutout_fill_values(fill, c, x.dtype, x.device), x)


# --------------------------------------------------------------------------- the pipeline
class DevicePipeline(EpochBatches):
    """Shuffled, augmented training batches from a uint8 training set resident on ``device``.

    Args:
        x: uint8 ``(N, H, W, C)`` images (numpy or a tensor); copied to ``device`` once.
        y: int ``(N,)`` labels.
        batch_size: images per batch.
        num_classes: number of classes (kept for the interface; batches carry int labels).
        augment: an :class:`~cifarkit.training.augment.Augment` without mixup
            or cutmix; its keyword arguments are accepted instead.
        shuffle: draw a new order every epoch (``torch.randperm``).
        drop_last: drop the last, smaller batch of an epoch; a set smaller
            than one batch still gives one batch.
        seed: seed of the pipeline's ``torch.Generator`` (on ``device``).
        device: where the data lives and the augmentation runs (``"cuda"``, ``"cpu"``).

    Batches are ``(x, y)`` tensors on ``device``: ``x`` uint8 NHWC, ``y`` int64.
    """

    kind = STATE_KIND

    def __init__(
        self,
        x,
        y,
        batch_size: int,
        *,
        num_classes: int,
        augment: Augment | None = None,
        shuffle: bool = True,
        drop_last: bool = True,
        seed: int = 0,
        device="cpu",
        **augment_options,
    ):
        if augment is not None and augment_options:
            raise ValueError("Pass either augment=Augment(...) or augmentation keywords, not both.")
        self.augment = augment if augment is not None else Augment(**augment_options)
        if self.augment.soft_targets:
            raise ValueError(_MIXING_REFUSED)
        x_np = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
        y_np = y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
        if x_np.ndim != 4 or x_np.dtype != np.uint8:
            raise ValueError(f"x must be uint8 (N, H, W, C); got {x_np.dtype} {x_np.shape}.")
        if len(x_np) != len(y_np) or len(x_np) == 0:
            raise ValueError(f"x and y must be non-empty and of equal length; got {len(x_np)} and {len(y_np)}.")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}.")
        a = self.augment
        h, w = x_np.shape[1:3]
        if a.crop and a.pad_mode == "reflect" and (a.crop >= h or a.crop >= w):
            raise ValueError(f"reflect padding needs pad < image size; got pad={a.crop} for {h}x{w} images.")
        self.device = torch.device(device)
        self.x = torch.as_tensor(np.ascontiguousarray(x_np), device=self.device)
        self.y = torch.as_tensor(y_np.astype(np.int64), device=self.device)
        self.batch_size = int(batch_size)
        self.num_classes = int(num_classes)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.seed = int(seed)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(self.seed)
        self._fill = cutout_fill_values(a.cutout_fill, self.x.shape[3], self.x.dtype, self.device)
        self._flip_base = None
        if a.alternate_flip:
            # The numpy pipeline's decisions (its own generator, a function of the seed alone): both pipelines
            # flip the same images, and the decisions need no saved state.
            base = np.random.default_rng([self.seed, 0xF11B]).random(len(x_np)) < 0.5
            self._flip_base = torch.as_tensor(base, device=self.device)

    def epoch(self, index: int = 0):
        """Yield the batches of one epoch; the order is drawn when the epoch starts.

        ``index`` is the 0-based epoch number; only alternating flips use it
        (even epochs use each image's decision, odd epochs the opposite).
        """
        n = len(self.x)
        if self.shuffle:
            order = torch.randperm(n, generator=self.generator, device=self.device)
        else:
            order = torch.arange(n, device=self.device)
        for b in range(len(self)):
            idx = order[b * self.batch_size : (b + 1) * self.batch_size]
            yield self.transform(idx, index)

    def __iter__(self):
        return self.epoch()

    def _randint(self, high: int, n: int) -> torch.Tensor:
        return torch.randint(0, high, (n,), generator=self.generator, device=self.device)

    def transform(self, idx: torch.Tensor, epoch_index: int = 0):
        """The augmented batch of the images at ``idx`` (draws from the pipeline's generator).

        Draw order, per batch: crop rows, crop columns, flips, cutout rows, cutout columns.
        """
        a = self.augment
        n = len(idx)
        h, w = self.x.shape[1:3]
        dy = dx = flips = None
        if a.crop:
            dy = self._randint(2 * a.crop + 1, n)
            dx = self._randint(2 * a.crop + 1, n)
        if a.flip and self._flip_base is not None:
            flips = self._flip_base[idx] ^ bool(epoch_index % 2)
        elif a.flip:
            flips = torch.rand(n, generator=self.generator, device=self.device) < 0.5
        out = gather_crop_flip(self.x, idx, a.crop, dy, dx, flips, a.pad_mode)
        if a.cutout:
            cy = self._randint(h, n)
            cx = self._randint(w, n)
            out = torch.where(cutout_mask(h, w, a.cutout, cy, cx)[..., None], self._fill, out)
        return out, self.y[idx]

    def state_dict(self) -> dict:
        """The generator's state (a CPU uint8 tensor) and where it runs; picklable, loads with ``weights_only``."""
        return {
            "pipeline": STATE_KIND,
            "device_type": self.device.type,
            "generator": self.generator.get_state().clone(),
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore a state from :meth:`state_dict`, so the next batches repeat exactly."""
        if not isinstance(state, dict) or state.get("pipeline") != STATE_KIND:
            other = state.get("bit_generator") if isinstance(state, dict) else None
            raise ValueError(
                f"This pipeline state was written by the numpy input pipeline ({other or 'unknown generator'}), "
                "not the device pipeline; resume the run with pipeline='numpy' (on this machine, "
                "set it explicitly instead of 'auto')."
            )
        if state.get("device_type") != self.device.type:
            raise ValueError(
                f"This pipeline state was written on a {state.get('device_type')!r} device and cannot continue "
                f"on {self.device.type!r}: the two generators draw different streams. Resume on the same kind "
                "of device, or start the run over (resume=False)."
            )
        self.generator.set_state(state["generator"].to("cpu", torch.uint8))
