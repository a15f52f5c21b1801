"""Wide Residual Networks (Zagoruyko & Komodakis 2016): shallow, wide, pre-activation ResNets."""

from __future__ import annotations

from cifarkit import backend
from cifarkit.models import common
from cifarkit.models.registry import register

keras = backend.keras()
layers = keras.layers

_PAPER = "Zagoruyko & Komodakis 2016, Wide Residual Networks (BMVC)"


def wide_block(x, filters, *, strides, dropout, prefix):
    """Pre-activation block ``BN-ReLU-conv3x3-BN-ReLU-(dropout)-conv3x3`` plus shortcut.

    When the shape changes, the shortcut is a 1x1 conv applied to the
    pre-activated input (as in the authors' code), otherwise the identity.
    """
    in_channels = x.shape[backend.channel_axis()]
    pre = common.batch_norm(name=f"{prefix}_bn1")(x)
    pre = layers.Activation("relu", name=f"{prefix}_relu1")(pre)
    y = common.conv2d(filters, 3, strides=strides, name=f"{prefix}_conv1")(pre)
    y = common.batch_norm(name=f"{prefix}_bn2")(y)
    y = layers.Activation("relu", name=f"{prefix}_relu2")(y)
    if dropout > 0:
        y = layers.Dropout(dropout, name=f"{prefix}_dropout")(y)
    y = common.conv2d(filters, 3, name=f"{prefix}_conv2")(y)
    if strides != 1 or in_channels != filters:
        x = common.conv2d(filters, 1, strides=strides, name=f"{prefix}_shortcut_conv")(pre)
    return layers.Add(name=f"{prefix}_add")([x, y])


@register(
    "wrn_16_4",
    family="wrn",
    paper=_PAPER,
    reference_params=2_700_000,
    reference_error_pct=5.02,
    reference_source="Table 6, WRN-16-4 without dropout, CIFAR-10 with flip + crop augmentation",
    reference_epochs=200,
    depth=16,
    widen_factor=4,
)
@register(
    "wrn_28_10",
    family="wrn",
    paper=_PAPER,
    reference_params=36_500_000,
    reference_error_pct=3.89,
    reference_source="Table 6, WRN-28-10 with dropout 0.3 in every block (4.00% without dropout)",
    reference_epochs=200,
    notes="Pass dropout=0.3 to match the 3.89% setting.",
    depth=28,
    widen_factor=10,
)
def build_wrn(
    *,
    input_shape=(32, 32, 3),
    num_classes=10,
    mean=None,
    std=None,
    depth=16,
    widen_factor=4,
    dropout=0.0,
    name=None,
):
    """Build a Wide ResNet WRN-depth-k.

    A 3x3 conv with 16 filters, three groups of ``(depth - 4) / 6`` pre-activation
    blocks with ``16k``, ``32k`` and ``64k`` filters (stride 2 at the start of
    groups 2 and 3), then BN-ReLU, global average pooling and a dense layer.

    Args:
        input_shape: ``(height, width, channels)`` of the raw images, at least 4x4.
        num_classes: number of output logits.
        mean, std: per-channel training-split statistics (0..1 units); None uses CIFAR-10's.
        depth: ``6n + 4`` (16, 22, 28, 40, ...).
        widen_factor: width multiplier k of the groups.
        dropout: rate between the two convs of every block (the paper uses 0.3 on CIFAR).
        name: model name (default ``f"wrn_{depth}_{widen_factor}"``).

    Returns:
        A ``keras.Model`` from images to logits.
    """
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 10 or (depth - 4) % 6:
        raise ValueError(f"WRN depth must be 6n + 4 with n >= 1 (16, 22, 28, 40, ...); received depth={depth!r}.")
    widen_factor = common.check_widths([widen_factor], "widen_factor")[0]
    dropout = common.check_rate(dropout)
    num_classes = common.check_num_classes(num_classes)
    name = name or f"wrn_{depth}_{widen_factor}"
    blocks_per_group = (depth - 4) // 6

    inputs, x = common.model_input(input_shape, mean, std, min_size=4, model=name)
    x = common.conv2d(16, 3, name="stem_conv")(x)
    for group, base in enumerate((16, 32, 64), start=1):
        for block in range(1, blocks_per_group + 1):
            strides = 2 if group > 1 and block == 1 else 1
            x = wide_block(
                x, base * widen_factor, strides=strides, dropout=dropout, prefix=f"stage{group}_block{block}"
            )
    x = common.batch_norm(name="head_bn")(x)
    x = layers.Activation("relu", name="head_relu")(x)
    outputs = common.classifier_head(x, num_classes)
    return keras.Model(inputs, outputs, name=name)
