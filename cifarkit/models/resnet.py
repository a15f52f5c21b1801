"""He et al.'s CIFAR ResNets (20/32/44/56/110 layers) with the parameter-free option-A shortcut."""

from __future__ import annotations

from cifarkit import backend
from cifarkit.models import common
from cifarkit.models.registry import register

keras = backend.keras()
layers = keras.layers
ops = keras.ops

_PAPER = "He, Zhang, Ren & Sun 2016, Deep Residual Learning for Image Recognition (CVPR), Section 4.2"
_SOURCE = "Table 6, CIFAR-10 test error with the paper's augmentation (4-pixel pad + crop, flip)"


@keras.saving.register_keras_serializable(package="cifarkit")
class ZeroPadShortcut(layers.Layer):
    """Parameter-free shortcut (He et al.'s option A): subsample, then zero-pad the channels.

    Where a residual stage halves the resolution and doubles the width, the
    identity cannot be added directly. Option A keeps every spatial position
    ``strides`` apart and appends zero channels (half before, half after, as in
    the authors' Torch code), so the shortcut adds no parameters.

    Args:
        filters: number of output channels (>= input channels).
        strides: spatial subsampling factor.
        data_format: ``"channels_first"`` or ``"channels_last"``.
    """

    def __init__(self, filters, strides=2, data_format="channels_last", **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.strides = int(strides)
        self.data_format = data_format

    def _channel_axis(self):
        return 1 if self.data_format == "channels_first" else 3

    def build(self, input_shape):
        in_channels = input_shape[self._channel_axis()]
        if in_channels is not None and in_channels > self.filters:
            raise ValueError(
                f"ZeroPadShortcut pads channels up, it cannot reduce {in_channels} channels to {self.filters}; "
                f"use a projection shortcut (shortcut='B')."
            )

    def call(self, inputs):
        s = self.strides
        x = inputs[:, :, ::s, ::s] if self.data_format == "channels_first" else inputs[:, ::s, ::s, :]
        extra = self.filters - x.shape[self._channel_axis()]
        if not extra:
            return x
        before, after = extra // 2, extra - extra // 2
        if backend.name() == "torch":
            # torch's own pad: keras.ops.pad creates a new named Keras op per call, whose name counter (global
            # state) made torch.compile recompile the network at every step until it gave up after 8
            import torch.nn.functional as F

            # F.pad's widths run from the last axis backwards, (left, right) per axis
            widths = (0, 0, 0, 0, before, after) if self._channel_axis() == 1 else (before, after)
            return F.pad(x, widths)
        pad = [[0, 0], [0, 0], [0, 0], [0, 0]]
        pad[self._channel_axis()] = [before, after]
        return ops.pad(x, pad)

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        spatial = (2, 3) if self.data_format == "channels_first" else (1, 2)
        for axis in spatial:
            if shape[axis] is not None:
                shape[axis] = -(-shape[axis] // self.strides)  # ceil, like a strided "same" conv
        shape[self._channel_axis()] = self.filters
        return tuple(shape)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, strides=self.strides, data_format=self.data_format)
        return config


def basic_block(x, filters, *, strides=1, shortcut="A", prefix):
    """Two 3x3 conv-BN layers with a shortcut: ``relu(bn(conv(relu(bn(conv(x))))) + shortcut(x))``."""
    fmt = backend.data_format()
    in_channels = x.shape[backend.channel_axis()]
    y = common.conv2d(filters, 3, strides=strides, name=f"{prefix}_conv1")(x)
    y = common.batch_norm(name=f"{prefix}_bn1")(y)
    y = layers.Activation("relu", name=f"{prefix}_relu1")(y)
    y = common.conv2d(filters, 3, name=f"{prefix}_conv2")(y)
    y = common.batch_norm(name=f"{prefix}_bn2")(y)
    if strides != 1 or in_channels != filters:
        if shortcut == "A" and filters >= in_channels:
            x = ZeroPadShortcut(filters, strides=strides, data_format=fmt, name=f"{prefix}_shortcut")(x)
        else:
            x = common.conv2d(filters, 1, strides=strides, name=f"{prefix}_shortcut_conv")(x)
            x = common.batch_norm(name=f"{prefix}_shortcut_bn")(x)
    y = layers.Add(name=f"{prefix}_add")([x, y])
    return layers.Activation("relu", name=f"{prefix}_out")(y)


@register(
    "resnet20",
    family="resnet",
    paper=_PAPER,
    reference_params=270_000,
    reference_error_pct=8.75,
    reference_source=_SOURCE,
    reference_epochs=164,
    paper_recipe="paper",
    depth=20,
)
@register(
    "resnet32",
    family="resnet",
    paper=_PAPER,
    reference_params=460_000,
    reference_error_pct=7.51,
    reference_source=_SOURCE,
    reference_epochs=164,
    paper_recipe="paper",
    depth=32,
)
@register(
    "resnet44",
    family="resnet",
    paper=_PAPER,
    reference_params=660_000,
    reference_error_pct=7.17,
    reference_source=_SOURCE,
    reference_epochs=164,
    paper_recipe="paper",
    depth=44,
)
@register(
    "resnet56",
    family="resnet",
    paper=_PAPER,
    reference_params=850_000,
    reference_error_pct=6.97,
    reference_source=_SOURCE,
    reference_epochs=164,
    paper_recipe="paper",
    depth=56,
)
@register(
    "resnet110",
    family="resnet",
    paper=_PAPER,
    reference_params=1_700_000,
    reference_error_pct=6.43,
    reference_source=_SOURCE,
    reference_epochs=164,
    paper_recipe="paper",
    notes="6.43% is the best of 5 runs; the paper gives 6.61 +/- 0.16 as mean.",
    depth=110,
)
def build_resnet(
    *,
    input_shape=(32, 32, 3),
    num_classes=10,
    mean=None,
    std=None,
    depth=20,
    width_multiplier=1.0,
    shortcut="A",
    dropout=0.0,
    name=None,
):
    """Build a CIFAR ResNet of ``depth = 6n + 2`` layers.

    A 3x3 conv with 16 filters, then three stages of ``n`` basic blocks with 16,
    32 and 64 filters (the first block of stages 2 and 3 has stride 2), global
    average pooling and a dense layer. Convolutions use Kaiming-normal
    initialization and no weight regularizer: weight decay belongs to the
    optimizer.

    Args:
        input_shape: ``(height, width, channels)`` of the raw images, at least 4x4.
        num_classes: number of output logits.
        mean, std: per-channel training-split statistics (0..1 units); None uses CIFAR-10's.
        depth: 20, 32, 44, 56, 110, ... (any ``6n + 2``).
        width_multiplier: scales the 16/32/64 widths.
        shortcut: ``"A"`` (subsample + zero-pad channels, parameter-free, the
            paper's CIFAR choice) or ``"B"`` (1x1 conv + BN projection).
        dropout: rate before the dense layer (0 in the paper).
        name: model name (default ``f"resnet{depth}"``).

    Returns:
        A ``keras.Model`` from images to logits.
    """
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
        raise ValueError(
            f"ResNet depth must be 6n + 2 with n >= 1 (20, 32, 44, 56, 110, ...); received depth={depth!r}."
        )
    if shortcut not in ("A", "B"):
        raise ValueError(f"shortcut must be 'A' (zero-padding) or 'B' (projection); received shortcut={shortcut!r}.")
    name = name or f"resnet{depth}"
    width_multiplier = common.check_positive(width_multiplier, "width_multiplier")
    dropout = common.check_rate(dropout)
    num_classes = common.check_num_classes(num_classes)
    blocks_per_stage = (depth - 2) // 6
    widths = [common.scale_width(w, width_multiplier) for w in (16, 32, 64)]

    inputs, x = common.model_input(input_shape, mean, std, min_size=4, model=name)
    x = common.conv2d(widths[0], 3, name="stem_conv")(x)
    x = common.batch_norm(name="stem_bn")(x)
    x = layers.Activation("relu", name="stem_relu")(x)
    for stage, filters in enumerate(widths, start=1):
        for block in range(1, blocks_per_stage + 1):
            strides = 2 if stage > 1 and block == 1 else 1
            x = basic_block(x, filters, strides=strides, shortcut=shortcut, prefix=f"stage{stage}_block{block}")
    outputs = common.classifier_head(x, num_classes, dropout=dropout)
    return keras.Model(inputs, outputs, name=name)
