"""A small VGG-style baseline: three blocks of two 3x3 convolutions and a max pool."""

from __future__ import annotations

from cifarkit import backend
from cifarkit.models import common
from cifarkit.models.registry import register

keras = backend.keras()
layers = keras.layers


@register(
    "simple_cnn",
    family="simple_cnn",
    paper="Classic Keras/TensorFlow CIFAR-10 tutorial design (conv-conv-pool blocks of 32, 64, 128 filters)",
    notes="A baseline, not from a paper; no reference numbers.",
)
def build_simple_cnn(
    *,
    input_shape=(32, 32, 3),
    num_classes=10,
    mean=None,
    std=None,
    widths=(32, 64, 128),
    width_multiplier=1.0,
    batch_norm=True,
    dropout=0.3,
    dense_units=128,
    pooling="flatten",
    name="simple_cnn",
):
    """Build the classic conv-conv-pool CIFAR baseline.

    Each block is ``[conv3x3-(BN)-ReLU] x 2 -> maxpool 2 -> (dropout)``; the head
    is ``flatten (or global average pool) -> Dense(dense_units)-(BN)-ReLU-dropout
    -> Dense(num_classes)``.

    Args:
        input_shape: ``(height, width, channels)`` of the raw images; at least
            ``2 ** len(widths)`` pixels on each side.
        num_classes: number of output logits.
        mean, std: per-channel training-split statistics (0..1 units) for the
            input normalization; None uses CIFAR-10's.
        widths: filters of the conv blocks before ``width_multiplier``.
        width_multiplier: scales every block width.
        batch_norm: add batch norm after every conv and the hidden dense layer.
        dropout: rate after every block and before the output layer (0 disables).
        dense_units: width of the hidden dense layer.
        pooling: ``"flatten"`` (keeps the spatial layout, more parameters) or
            ``"avg"`` (global average pooling, size-independent head).
        name: model name.

    Returns:
        A ``keras.Model`` from images to logits.
    """
    widths = common.check_widths(widths)
    width_multiplier = common.check_positive(width_multiplier, "width_multiplier")
    dropout = common.check_rate(dropout)
    num_classes = common.check_num_classes(num_classes)
    dense_units = common.check_widths([dense_units], "dense_units")[0]
    if pooling not in ("flatten", "avg"):
        raise ValueError(f"pooling must be 'flatten' or 'avg'; received pooling={pooling!r}.")
    fmt = backend.data_format()

    inputs, x = common.model_input(input_shape, mean, std, min_size=2 ** len(widths), model=name)
    for b, base_width in enumerate(widths, start=1):
        filters = common.scale_width(base_width, width_multiplier)
        for c in (1, 2):
            x = common.conv2d(filters, 3, use_bias=not batch_norm, name=f"block{b}_conv{c}")(x)
            if batch_norm:
                x = common.batch_norm(name=f"block{b}_bn{c}")(x)
            x = layers.Activation("relu", name=f"block{b}_relu{c}")(x)
        x = layers.MaxPooling2D(2, data_format=fmt, name=f"block{b}_pool")(x)
        if dropout > 0:
            x = layers.Dropout(dropout, name=f"block{b}_dropout")(x)

    if pooling == "flatten":
        x = layers.Flatten(data_format=fmt, name="head_flatten")(x)
    else:
        x = layers.GlobalAveragePooling2D(data_format=fmt, name="head_pool")(x)
    x = layers.Dense(dense_units, use_bias=not batch_norm, name="head_hidden")(x)
    if batch_norm:
        # A (batch, features) tensor has its features last whatever the image layout.
        x = common.batch_norm(axis=-1, name="head_bn")(x)
    x = layers.Activation("relu", name="head_relu")(x)
    if dropout > 0:
        x = layers.Dropout(dropout, name="head_dropout")(x)
    outputs = layers.Dense(num_classes, dtype="float32", name="head_dense")(x)
    return keras.Model(inputs, outputs, name=name)
