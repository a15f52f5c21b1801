"""Progressive resizing: the first epochs of a run see downscaled images (issue #15).

With ``progressive_size=S`` and ``progressive_epochs=E`` the first ``E`` epochs train on every augmented
batch scaled down to ``S x S`` (bilinear with antialiasing, as :func:`torch.nn.functional.interpolate`
computes it); the remaining epochs, and every evaluation, use the images at their own size. A convolution's
cost grows with the pixel count, so an epoch at 24 x 24 costs roughly (24/32)^2 = 0.56 of one at 32 x 32
(fast.ai's DAWNBench entries and Touvron et al. 2019, "Fixing the train-test resolution discrepancy").

Only a network that ends in global pooling can take both sizes with the same weights (fastnet, the ResNets,
WRN, DenseNet); one that flattens a fixed map (``simple_cnn``, ``vgg11``, ``vgg16``) is refused when the run starts, by
calling it once on a small batch of the reduced size. The Keras model keeps its declared input shape: while a
reduced epoch runs, its input check is relaxed to "four axes, this many channels" and restored afterwards,
so the saved model declares the training size.
"""

from __future__ import annotations

import contextlib
import re

from cifarkit import backend


def check_progressive(config, image_shape) -> None:
    """Raise ``ValueError`` when the run's progressive resizing does not fit its images.

    ``image_shape`` is ``(height, width, channels)`` of the training images.
    """
    size = int(config.progressive_size)
    if not size:
        return
    height, width = int(image_shape[0]), int(image_shape[1])
    if size >= min(height, width):
        raise ValueError(
            f"progressive_size={size} must be smaller than the images ({height}x{width}): the reduced epochs "
            f"train on downscaled copies. Choose a size below {min(height, width)} (e.g. "
            f"{max(1, round(0.75 * min(height, width)))}) or progressive_size=0 to train at full size throughout."
        )


class ProgressiveResize:
    """Downscales the batches of a run's first epochs and lets the model take them.

    Args:
        model: the run's Keras model (a functional model with one image input).
        size: side length of the reduced images (0: no reduction).
        epochs: how many of the first epochs are reduced.
    """

    def __init__(self, model, size: int, epochs: int):
        self.model = model
        self.size = int(size)
        self.epochs = int(epochs) if self.size else 0

    def applies(self, epoch: int) -> bool:
        """Whether 1-based ``epoch`` trains on reduced images."""
        return 1 <= epoch <= self.epochs

    def check_model(self, channels: int, device: str = "cpu") -> None:
        """Call the model once (inference, no state change) on a reduced batch; a clear error if it can't."""
        if not self.size:
            return
        torch = backend.torch()
        x = torch.zeros((2, self.size, self.size, channels), device=device)
        name = getattr(self.model, "name", "the model")
        try:
            with self.relaxed(), torch.no_grad():
                self.model(x, training=False)
        except Exception as e:  # noqa: BLE001 - any failure means: this model cannot take the reduced size
            raise ValueError(
                f"progressive_size={self.size}: {name} cannot take {self.size}x{self.size} images with the weights "
                f"it trains at full size ({type(e).__name__}: {_first_cause(e)}). Progressive resizing needs a "
                "network that ends in global pooling (fastnet, the resnets, wrn_16_4, wrn_28_10, densenet_bc_100) and a size its "
                "downsampling does not reduce to nothing: choose a larger progressive_size, or set "
                "progressive_size=0 for this model."
            ) from e

    def relaxed(self):
        """A context in which the model accepts images of any height and width."""
        return _RelaxedInput(self.model)

    def __call__(self, x):
        """``x`` (N, H, W, C), any dtype, reduced to (N, size, size, C) float32 in the images' value range."""
        torch = backend.torch()
        nchw = x.permute(0, 3, 1, 2).float()
        small = torch.nn.functional.interpolate(
            nchw, size=(self.size, self.size), mode="bilinear", align_corners=False, antialias=True
        )
        return small.permute(0, 2, 3, 1).contiguous()

    def during(self, epoch: int):
        """The context 1-based ``epoch`` trains in: the model's input check relaxed when the epoch is reduced."""
        return self.relaxed() if self.applies(epoch) else contextlib.nullcontext()


def _first_cause(error: Exception) -> str:
    """The informative line of a Keras call error (it wraps the cause between framing lines)."""
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip() for line in str(error).splitlines()]
    lines = [line for line in lines if line and not line.startswith(("Exception encountered", "Arguments received"))]
    return (lines[0] if lines else type(error).__name__)[:300]


class _RelaxedInput:
    def __init__(self, model):
        self.model = model

    def __enter__(self):
        self.before = self.model.input_spec
        channels = int(self.model.inputs[0].shape[-1])
        self.model.input_spec = backend.keras().layers.InputSpec(ndim=4, axes={-1: channels})
        return self

    def __exit__(self, *exc):
        self.model.input_spec = self.before
        return False
