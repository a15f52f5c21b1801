"""VGG with batch norm, adapted to 32x32 images (configurations A and D)."""

from __future__ import annotations

from cifarkit import backend
from cifarkit.models import common
from cifarkit.models.registry import register

keras = backend.keras()
layers = keras.layers

#: Simonyan & Zisserman's configurations by depth: widths of the 3x3 convs, "M" = 2x2 max pool.
VGG_CONFIGS = {
    11: (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    13: (64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    16: (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
    19: (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"),
}

_PAPER = (
    "Simonyan & Zisserman 2015, Very Deep Convolutional Networks for Large-Scale Image Recognition (ICLR); "
    "CIFAR variant with batch norm and a small classifier"
)


@register("vgg11", family="vgg", paper=_PAPER, notes="Configuration A with batch norm.", depth=11)
@register("vgg16", family="vgg", paper=_PAPER, notes="Configuration D with batch norm.", depth=16)
def build_vgg(
    *,
    input_shape=(32, 32, 3),
    num_classes=10,
    mean=None,
    std=None,
    depth=16,
    width_multiplier=1.0,
    dropout=0.5,
    dense_units=512,
    name=None,
):
    """Build a CIFAR VGG with batch norm.

    The convolutional part is the paper's configuration (conv3x3-BN-ReLU, five
    2x2 max pools), so a 32x32 image ends at 1x1. The classifier is
    ``global average pool -> dropout -> Dense(dense_units) -> ReLU ->
    Dense(num_classes)``; on 32x32 inputs the pool equals the flatten of the 1x1
    map, on larger inputs it averages the remaining positions.

    Args:
        input_shape: ``(height, width, channels)`` of the raw images, at least 32x32.
        num_classes: number of output logits.
        mean, std: per-channel training-split statistics (0..1 units); None uses CIFAR-10's.
        depth: 11, 13, 16 or 19 (configurations A, B, D, E).
        width_multiplier: scales every conv width.
        dropout: rate before the hidden dense layer.
        dense_units: width of the hidden dense layer.
        name: model name (default ``f"vgg{depth}"``).

    Returns:
        A ``keras.Model`` from images to logits.
    """
    if depth not in VGG_CONFIGS:
        raise ValueError(f"VGG depth must be one of {sorted(VGG_CONFIGS)}; received depth={depth!r}.")
    name = name or f"vgg{depth}"
    width_multiplier = common.check_positive(width_multiplier, "width_multiplier")
    dropout = common.check_rate(dropout)
    num_classes = common.check_num_classes(num_classes)
    dense_units = common.check_widths([dense_units], "dense_units")[0]
    fmt = backend.data_format()
    config = VGG_CONFIGS[depth]

    inputs, x = common.model_input(input_shape, mean, std, min_size=2 ** config.count("M"), model=name)
    stage, conv = 1, 0
    for item in config:
        if item == "M":
            x = layers.MaxPooling2D(2, data_format=fmt, name=f"stage{stage}_pool")(x)
            stage, conv = stage + 1, 0
            continue
        conv += 1
        x = common.conv2d(common.scale_width(item, width_multiplier), 3, name=f"stage{stage}_conv{conv}")(x)
        x = common.batch_norm(name=f"stage{stage}_bn{conv}")(x)
        x = layers.Activation("relu", name=f"stage{stage}_relu{conv}")(x)

    x = layers.GlobalAveragePooling2D(data_format=fmt, name="head_pool")(x)
    if dropout > 0:
        x = layers.Dropout(dropout, name="head_dropout")(x)
    x = layers.Dense(dense_units, name="head_hidden")(x)
    x = layers.Activation("relu", name="head_relu")(x)
    outputs = layers.Dense(num_classes, dtype="float32", name="head_dense")(x)
    return keras.Model(inputs, outputs, name=name)
