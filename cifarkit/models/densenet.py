"""DenseNet-BC for CIFAR (Huang et al. 2017): bottleneck layers and compressing transitions."""

from __future__ import annotations

from cifarkit import backend
from cifarkit.models import common
from cifarkit.models.registry import register

keras = backend.keras()
layers = keras.layers

_PAPER = "Huang, Liu, van der Maaten & Weinberger 2017, Densely Connected Convolutional Networks (CVPR)"


def _bn_relu_conv(x, filters, kernel_size, *, dropout, prefix, suffix=""):
    """Pre-activation unit: BN -> ReLU -> conv (-> dropout), as DenseNet orders them."""
    x = common.batch_norm(name=f"{prefix}_bn{suffix}")(x)
    x = layers.Activation("relu", name=f"{prefix}_relu{suffix}")(x)
    x = common.conv2d(filters, kernel_size, name=f"{prefix}_conv{suffix}")(x)
    if dropout > 0:
        x = layers.Dropout(dropout, name=f"{prefix}_dropout{suffix}")(x)
    return x


@register(
    "densenet_bc_100",
    family="densenet",
    paper=_PAPER,
    reference_params=800_000,
    reference_error_pct=4.51,
    reference_source="Table 2, DenseNet-BC (L=100, k=12), C10+ (standard augmentation, no dropout)",
    reference_epochs=300,
    paper_recipe="paper_densenet",
    notes="The paper's 0.8M counts trainable parameters; Keras also counts the BN moving statistics.",
    depth=100,
    growth_rate=12,
    compression=0.5,
    bottleneck=True,
)
def build_densenet(
    *,
    input_shape=(32, 32, 3),
    num_classes=10,
    mean=None,
    std=None,
    depth=100,
    growth_rate=12,
    compression=0.5,
    bottleneck=True,
    dropout=0.0,
    name=None,
):
    """Build a CIFAR DenseNet (DenseNet-BC with the defaults).

    A 3x3 stem conv with ``2 * growth_rate`` filters, three dense blocks
    separated by transitions (BN-ReLU-conv1x1 to ``compression`` times the
    channels, then 2x2 average pooling), and BN-ReLU-global-average-pool-dense.
    Each bottleneck layer is BN-ReLU-conv1x1(4k)-BN-ReLU-conv3x3(k) and its
    output is concatenated to its input.

    Args:
        input_shape: ``(height, width, channels)`` of the raw images, at least 4x4.
        num_classes: number of output logits.
        mean, std: per-channel training-split statistics (0..1 units); None uses CIFAR-10's.
        depth: total depth L; ``(L - 4)`` must split into three blocks of
            ``(L - 4) / 6`` bottleneck layers (or ``/ 3`` plain layers).
        growth_rate: channels k each layer adds.
        compression: channel factor theta of the transitions (1 = DenseNet, 0.5 = -C).
        bottleneck: use the 1x1 bottleneck before each 3x3 conv (the -B).
        dropout: rate after every conv (the paper uses 0.2 only without augmentation).
        name: model name (default ``"densenet_bc_{depth}"`` / ``"densenet_{depth}"``).

    Returns:
        A ``keras.Model`` from images to logits.
    """
    convs_per_layer = 2 if bottleneck else 1
    step = 3 * convs_per_layer  # three blocks of layers of this many convs
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 4 + step or (depth - 4) % step:
        raise ValueError(
            f"DenseNet depth must be 4 + {step}m (e.g. 100 for DenseNet-BC, 40 without "
            f"bottlenecks); received depth={depth!r} with bottleneck={bottleneck!r}."
        )
    growth_rate = common.check_widths([growth_rate], "growth_rate")[0]
    if not 0 < compression <= 1:
        raise ValueError(f"compression must be in (0, 1]; received compression={compression!r}.")
    dropout = common.check_rate(dropout)
    num_classes = common.check_num_classes(num_classes)
    name = name or (f"densenet_bc_{depth}" if bottleneck and compression < 1 else f"densenet_{depth}")
    layers_per_block = (depth - 4) // step
    axis = backend.channel_axis()
    fmt = backend.data_format()

    inputs, x = common.model_input(input_shape, mean, std, min_size=4, model=name)
    channels = 2 * growth_rate if bottleneck and compression < 1 else 16
    x = common.conv2d(channels, 3, name="stem_conv")(x)
    for block in range(1, 4):
        for i in range(1, layers_per_block + 1):
            prefix = f"block{block}_layer{i}"
            y = x
            if bottleneck:
                y = _bn_relu_conv(y, 4 * growth_rate, 1, dropout=dropout, prefix=prefix, suffix="1")
            y = _bn_relu_conv(y, growth_rate, 3, dropout=dropout, prefix=prefix, suffix="2" if bottleneck else "")
            x = layers.Concatenate(axis=axis, name=f"{prefix}_concat")([x, y])
            channels += growth_rate
        if block < 3:
            channels = int(channels * compression)
            x = _bn_relu_conv(x, channels, 1, dropout=dropout, prefix=f"transition{block}")
            x = layers.AveragePooling2D(2, data_format=fmt, name=f"transition{block}_pool")(x)
    x = common.batch_norm(name="head_bn")(x)
    x = layers.Activation("relu", name="head_relu")(x)
    outputs = common.classifier_head(x, num_classes)
    return keras.Model(inputs, outputs, name=name)
