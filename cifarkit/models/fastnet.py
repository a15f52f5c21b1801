"""A speed-first CIFAR network after Keller Jordan's airbench (2024), with its patch-whitening stem.

airbench trains to 94% CIFAR-10 test accuracy in seconds on a GPU. Its network
is small and shallow: a fixed-size 2x2 "whitening" convolution initialised
from the data, three conv-pool-BN blocks, global max pooling and a scaled
linear head. :func:`init_whitening` computes the stem from training images;
the trainer calls it once before the first step.
"""

from __future__ import annotations

import numpy as np

from cifarkit import backend
from cifarkit.models import common
from cifarkit.models.layers import GlobalMaxPool, Rescale
from cifarkit.models.registry import register

keras = backend.keras()
layers = keras.layers
ops = keras.ops

_PAPER = "Jordan 2024, 94% on CIFAR-10 in 3.29 Seconds on a Single GPU (arXiv:2404.00498), airbench94"

#: airbench's batch norm: torch momentum 0.4 (Keras 0.6) so statistics follow the fast-moving weights.
BN_MOMENTUM = 0.6
BN_EPSILON = 1e-12
WHITEN_KERNEL = 2


@keras.saving.register_keras_serializable(package="cifarkit")
class PartialDirac(keras.initializers.Initializer):
    """PyTorch's default conv init, with the first ``in_channels`` filters set to the identity.

    airbench starts each conv as a partial identity (``torch.nn.init.dirac_`` on
    the first ``in_channels`` output filters) so the signal passes through the
    untrained network undistorted; the remaining filters are uniform in
    ``+-1/sqrt(fan_in)`` like PyTorch's default.
    """

    def __init__(self, seed=None):
        self.seed = seed
        self._uniform = keras.initializers.VarianceScaling(
            scale=1.0 / 3.0, mode="fan_in", distribution="uniform", seed=seed
        )

    def __call__(self, shape, dtype=None):
        kh, kw, cin, cout = shape
        weights = self._uniform(shape, dtype=dtype)
        n = min(cin, cout)
        identity = np.zeros(shape, dtype="float32")
        identity[kh // 2, kw // 2, np.arange(n), np.arange(n)] = 1.0
        first = np.zeros(shape, dtype=bool)
        first[..., :n] = True
        return ops.where(ops.convert_to_tensor(first), ops.cast(identity, weights.dtype), weights)

    def get_config(self):
        return {"seed": self.seed}


def _conv(filters, name):
    return common.conv2d(filters, 3, use_bias=False, kernel_initializer=PartialDirac(), name=name)


def _bn(scale, name):
    return common.batch_norm(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, scale=scale, name=name)


@register(
    "fastnet",
    family="fastnet",
    paper=_PAPER,
    paper_recipe="fast",
    whitening_layer="stem_conv",
    notes="airbench94 reaches 94.0% in ~10 epochs with its own recipe "
    "(label smoothing, flip + translate, lookahead, TTA); no reference number applies to other recipes.",
)
def build_fastnet(
    *,
    input_shape=(32, 32, 3),
    num_classes=10,
    mean=None,
    std=None,
    block_widths=(64, 256, 256),
    width_multiplier=1.0,
    dropout=0.0,
    bn_scale=False,
    output_scale=1.0 / 9.0,
    stem_stride=1,
    convs_per_block=2,
    name="fastnet",
):
    """Build the airbench-style network.

    ``conv2x2 valid (2 * 4 * channels filters, whitening) -> GELU``, then per
    block ``conv3x3 -> maxpool2 -> BN -> GELU -> conv3x3 -> BN -> GELU`` (with
    ``convs_per_block=3`` a third ``conv3x3 -> BN`` added to the pooled input
    before its GELU, as airbench96's blocks), then
    global max pooling, ``Dense(num_classes, use_bias=False)`` and a fixed
    ``output_scale``. Batch norm uses momentum 0.6 and epsilon 1e-12 as airbench.

    Args:
        input_shape: ``(height, width, channels)`` of the raw images; at least
            ``2 ** len(block_widths) + 1`` pixels on each side.
        num_classes: number of output logits.
        mean, std: per-channel training-split statistics (0..1 units); None uses CIFAR-10's.
        block_widths: filters of the blocks before ``width_multiplier``.
        width_multiplier: scales the block widths.
        dropout: rate before the output layer (airbench uses none).
        bn_scale: learn the batch-norm scale (airbench freezes it at 1).
        output_scale: constant factor on the logits (airbench: 1/9), which sets the
            effective temperature of the softmax at initialisation.
        stem_stride: stride of the 2x2 whitening stem (1 as airbench). 2 whitens
            non-overlapping patches and halves the resolution the blocks see, ~4x fewer
            operations: for images of 64 px and more, whose detail 32 px nets never had.
        convs_per_block: 2 (airbench94) or 3 (airbench96: a residual third conv per
            block, about 1.4x the operations at 32 px).
        name: model name.

    Returns:
        A ``keras.Model`` from images to logits.
    """
    block_widths = common.check_widths(block_widths, "block_widths")
    width_multiplier = common.check_positive(width_multiplier, "width_multiplier")
    dropout = common.check_rate(dropout)
    output_scale = common.check_positive(output_scale, "output_scale")
    num_classes = common.check_num_classes(num_classes)
    if stem_stride not in (1, 2) or isinstance(stem_stride, bool):
        raise ValueError(f"Argument `stem_stride` must be 1 or 2; received: stem_stride={stem_stride!r}")
    if convs_per_block not in (2, 3) or isinstance(convs_per_block, bool):
        raise ValueError(f"Argument `convs_per_block` must be 2 or 3; received: convs_per_block={convs_per_block!r}")
    fmt = backend.data_format()
    min_size = stem_stride * 2 ** len(block_widths) + WHITEN_KERNEL - 1

    inputs, x = common.model_input(input_shape, mean, std, min_size=min_size, model=name)
    channels = inputs.shape[-1]
    # One filter per eigenvector of the 2x2xC patch covariance and its negative (see init_whitening).
    x = common.conv2d(
        2 * WHITEN_KERNEL * WHITEN_KERNEL * channels,
        WHITEN_KERNEL,
        strides=stem_stride,
        padding="valid",
        use_bias=True,
        kernel_initializer=keras.initializers.VarianceScaling(1.0 / 3.0, "fan_in", "uniform"),
        name="stem_conv",
    )(x)
    x = layers.Activation("gelu", name="stem_gelu")(x)
    for b, base in enumerate(block_widths, start=1):
        filters = common.scale_width(base, width_multiplier)
        x = _conv(filters, f"block{b}_conv1")(x)
        x = layers.MaxPooling2D(2, data_format=fmt, name=f"block{b}_pool")(x)
        x = _bn(bn_scale, f"block{b}_bn1")(x)
        x = layers.Activation("gelu", name=f"block{b}_gelu1")(x)
        pooled = x
        x = _conv(filters, f"block{b}_conv2")(x)
        x = _bn(bn_scale, f"block{b}_bn2")(x)
        x = layers.Activation("gelu", name=f"block{b}_gelu2")(x)
        if convs_per_block == 3:
            x = _conv(filters, f"block{b}_conv3")(x)
            x = _bn(bn_scale, f"block{b}_bn3")(x)
            x = layers.Add(name=f"block{b}_add")([x, pooled])
            x = layers.Activation("gelu", name=f"block{b}_gelu3")(x)
    x = GlobalMaxPool(data_format=fmt, name="head_pool")(x)
    if dropout > 0:
        x = layers.Dropout(dropout, name="head_dropout")(x)
    x = layers.Dense(num_classes, use_bias=False, name="head_dense")(x)
    outputs = Rescale(output_scale, dtype="float32", name="head_scale")(x)
    return keras.Model(inputs, outputs, name=name)


def init_whitening(model, images, *, eps=5e-4, layer_name="stem_conv", batch_size=256):
    """Set the whitening stem's kernel from the covariance of image patches.

    For the ``k x k x C`` patches of the normalized images (normalized with the
    model's own ``preprocess`` statistics), each eigenvector ``v`` of the
    uncentered patch covariance with eigenvalue ``lam`` becomes a filter
    ``v / sqrt(lam + eps)`` and its negative, so the stem's outputs start
    decorrelated with unit variance (up to ``eps``). airbench uses the first
    5000 training images.

    Args:
        model: a model from :func:`build_fastnet`.
        images: uint8 (or 0..255 float) array ``(n, height, width, channels)``,
            training images only.
        eps: added to the eigenvalues; limits the gain on near-constant directions.
        layer_name: the whitening conv.
        batch_size: images per chunk when accumulating the covariance (memory bound).

    Returns:
        The patch-covariance eigenvalues in descending order (numpy array).
    """
    layer = model.get_layer(layer_name)
    pre = model.get_layer("preprocess")
    images = np.asarray(images)
    kh, kw, cin, cout = (int(d) for d in layer.kernel.shape)
    if images.ndim != 4 or images.shape[-1] != cin or images.shape[1] < kh or images.shape[2] < kw:
        raise ValueError(
            f"init_whitening needs images shaped (n, height, width, {cin}) with 0..255 values, as the data layer "
            f"stores them; received an array of shape {images.shape}."
        )
    if len(images) == 0:
        raise ValueError("init_whitening needs at least one image; received an empty array.")
    dim = kh * kw * cin
    if cout != 2 * dim:
        raise ValueError(
            f"Layer '{layer_name}' has {cout} filters; whitening a {kh}x{kw}x{cin} patch needs 2 * {dim} = {2 * dim}."
        )
    mean = np.asarray(pre.mean, dtype=np.float32)
    std = np.asarray(pre.std, dtype=np.float32)
    cov = np.zeros((dim, dim), dtype=np.float64)
    count = 0
    for start in range(0, len(images), batch_size):
        chunk = (images[start : start + batch_size].astype(np.float32) / 255.0 - mean) / std
        windows = np.lib.stride_tricks.sliding_window_view(chunk, (kh, kw), axis=(1, 2))  # n, H', W', C, kh, kw
        patches = windows.transpose(0, 1, 2, 4, 5, 3).reshape(-1, dim).astype(np.float64)  # Keras kernel order
        cov += patches.T @ patches
        count += len(patches)
    cov /= count
    eigenvalues, eigenvectors = np.linalg.eigh(cov)
    eigenvalues, eigenvectors = eigenvalues[::-1], eigenvectors[:, ::-1]
    filters = eigenvectors / np.sqrt(np.maximum(eigenvalues, 0.0) + eps)
    kernel = filters.reshape(kh, kw, cin, dim)
    kernel = np.concatenate([kernel, -kernel], axis=-1)
    layer.kernel.assign(kernel.astype(np.float32))
    return eigenvalues


__all__ = ["PartialDirac", "build_fastnet", "init_whitening", "BN_MOMENTUM", "BN_EPSILON"]
