"""Pieces every model builder shares: argument checks, the input stem, conv/BN helpers, and cost counters.

The builders take images as the data layer stores them (NHWC, ``0..255``). The
first layer, :class:`~cifarkit.models.layers.Preprocess`, normalizes them and
moves them to the layout the backend runs fastest (channels-first on PyTorch),
so every layer after it is built with :func:`cifarkit.backend.data_format`.
"""

from __future__ import annotations

import math
import numbers

from cifarkit import backend
from cifarkit.models.layers import BiasConv2D, FusedBatchNorm, GlobalMaxPool, Preprocess

keras = backend.keras()
layers = keras.layers

#: Per-channel mean and std of the CIFAR-10 training split in 0..1 units, used when
#: a 3-channel model is built without the statistics of its own training data.
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
#: Neutral statistics for inputs that are not 3-channel (e.g. greyscale) when none are given.
NEUTRAL_MEAN = 0.5
NEUTRAL_STD = 0.25

#: Batch-norm momentum and epsilon in Keras' convention. These are PyTorch's defaults
#: (torch momentum 0.1 == Keras 0.9), which the reference CIFAR implementations were
#: trained with; Keras' own 0.99 adapts too slowly for runs of a few epochs.
BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5


# --------------------------------------------------------------------------- checks


def check_input_shape(input_shape, *, min_size: int = 1, model: str = "this model") -> tuple:
    """Validate an ``(height, width, channels)`` image shape and return it as a tuple of ints.

    Args:
        input_shape: NHWC image shape without the batch axis.
        min_size: smallest height and width the network's downsampling allows.
        model: model name for the error message.

    Returns:
        ``(height, width, channels)``.
    """
    try:
        shape = tuple(input_shape)
    except TypeError:
        shape = None
    if (
        shape is None
        or len(shape) != 3
        or not all(isinstance(d, numbers.Integral) and not isinstance(d, bool) and d > 0 for d in shape)
    ):
        raise ValueError(
            f"input_shape must be (height, width, channels) with positive integers, channels last "
            f"(images as the data layer stores them); received input_shape={input_shape!r}."
        )
    height, width, channels = (int(d) for d in shape)
    if height < min_size or width < min_size:
        raise ValueError(
            f"{model} needs images of at least {min_size}x{min_size} pixels (its downsampling would "
            f"reduce smaller ones to nothing); received input_shape={input_shape!r}. Resize the images "
            f"or choose a model with less downsampling."
        )
    return height, width, channels


def check_num_classes(num_classes) -> int:
    """Validate the number of classes (an integer >= 2) and return it."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral) or num_classes < 2:
        raise ValueError(
            f"num_classes must be an integer >= 2 (the number of output logits); received "
            f"num_classes={num_classes!r}. For a yes/no task use num_classes=2."
        )
    return int(num_classes)


def check_rate(value, name: str = "dropout") -> float:
    """Validate a dropout-like rate in ``[0, 1)`` and return it as float."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be a number in [0, 1); received {name}={value!r}. Use 0 to disable it.")
    return float(value)


def check_positive(value, name: str) -> float:
    """Validate a positive number (e.g. ``width_multiplier``) and return it as float."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0 or not math.isfinite(value):
        raise ValueError(f"{name} must be a positive number; received {name}={value!r}.")
    return float(value)


def check_widths(widths, name: str = "widths", length: int | None = None) -> tuple:
    """Validate a sequence of positive integer layer widths."""
    try:
        values = tuple(widths)
    except TypeError:
        values = None
    if (
        not values
        or not all(isinstance(w, numbers.Integral) and not isinstance(w, bool) and w > 0 for w in values)
        or (length is not None and len(values) != length)
    ):
        expected = f"{length} positive integers" if length is not None else "a non-empty sequence of positive integers"
        raise ValueError(f"{name} must be {expected}; received {name}={widths!r}.")
    return tuple(int(w) for w in values)


def scale_width(width: int, multiplier: float) -> int:
    """Scale a layer width by ``multiplier``, rounding to the nearest integer (at least 1)."""
    return max(1, int(round(width * multiplier)))


def resolve_stats(mean, std, channels: int) -> tuple[tuple, tuple]:
    """Per-channel normalization statistics for ``channels`` input channels.

    ``None`` means CIFAR-10's statistics for 3 channels and neutral ones (0.5, 0.25)
    otherwise; a single number is used for every channel.
    """
    if mean is None:
        mean = CIFAR10_MEAN if channels == 3 else NEUTRAL_MEAN
    if std is None:
        std = CIFAR10_STD if channels == 3 else NEUTRAL_STD
    out = []
    for label, value in (("mean", mean), ("std", std)):
        values = (value,) * channels if isinstance(value, numbers.Real) else tuple(value)
        if len(values) != channels or not all(isinstance(v, numbers.Real) for v in values):
            raise ValueError(
                f"{label} needs one number per input channel ({channels}) in 0..1 units; received "
                f"{label}={value!r}. Pass the training split's per-channel {label} or leave it None."
            )
        out.append(tuple(float(v) for v in values))
    if any(s <= 0 for s in out[1]):
        raise ValueError(f"std must be positive for every channel; received std={std!r}.")
    return out[0], out[1]


# --------------------------------------------------------------------------- building blocks


def model_input(input_shape, mean=None, std=None, *, min_size: int = 1, model: str = "this model"):
    """The image input and the normalization layer every builder starts with.

    Args:
        input_shape: ``(height, width, channels)`` of the raw images.
        mean, std: per-channel statistics of the training split in 0..1 units (see
            :func:`resolve_stats`).
        min_size: smallest height/width the network allows (checked here).
        model: model name for error messages.

    Returns:
        ``(inputs, x)``: the ``keras.Input`` and the normalized tensor in
        :func:`cifarkit.backend.data_format` layout.
    """
    shape = check_input_shape(input_shape, min_size=min_size, model=model)
    mean, std = resolve_stats(mean, std, shape[-1])
    inputs = keras.Input(shape=shape, name="image")
    x = Preprocess(mean=mean, std=std, data_format=backend.data_format(), name="preprocess")(inputs)
    return inputs, x


def conv2d(
    filters, kernel_size=3, *, strides=1, padding="same", use_bias=False, kernel_initializer="he_normal", name=None
):
    """A ``Conv2D`` in the backend's layout; no bias by default because a batch norm follows.

    With ``use_bias=True`` it is a :class:`~cifarkit.models.layers.BiasConv2D`
    (the bias is added in the output's dtype, which keeps bf16 autocast in bf16).
    """
    return (BiasConv2D if use_bias else layers.Conv2D)(
        filters,
        kernel_size,
        strides=strides,
        padding=padding,
        use_bias=use_bias,
        kernel_initializer=kernel_initializer,
        data_format=backend.data_format(),
        name=name,
    )


def batch_norm(*, momentum=BN_MOMENTUM, epsilon=BN_EPSILON, axis=None, name=None, **kwargs):
    """A :class:`FusedBatchNorm` over the channel axis of the backend's layout."""
    return FusedBatchNorm(
        axis=backend.channel_axis() if axis is None else axis, momentum=momentum, epsilon=epsilon, name=name, **kwargs
    )


def classifier_head(x, num_classes: int, *, dropout: float = 0.0, pool: str = "avg", name: str = "head"):
    """Global pooling, optional dropout and the ``Dense(num_classes)`` logits layer."""
    fmt = backend.data_format()
    if pool == "avg":
        x = layers.GlobalAveragePooling2D(data_format=fmt, name=f"{name}_pool")(x)
    elif pool == "max":
        x = GlobalMaxPool(data_format=fmt, name=f"{name}_pool")(x)
    else:
        raise ValueError(f"pool must be 'avg' or 'max'; received pool={pool!r}.")
    if dropout > 0:
        x = layers.Dropout(dropout, name=f"{name}_dropout")(x)
    return layers.Dense(num_classes, dtype="float32", name=f"{name}_dense")(x)


# --------------------------------------------------------------------------- cost


def count_params(model, *, trainable_only: bool = False) -> int:
    """Number of scalars in the model's weights: all of them (BN statistics included), or only the trainable ones."""
    weights = model.trainable_weights if trainable_only else model.weights
    return int(sum(math.prod(int(d) for d in w.shape) for w in weights))


def _functional_graph(model, caller: str = "count_flops"):
    if isinstance(model, keras.Sequential):
        if not model.built or getattr(model, "_functional", None) is None:
            raise ValueError(f"{caller} needs a built Sequential model; give it an Input or call it once first.")
        return model._functional
    if not hasattr(model, "_run_through_graph"):
        raise ValueError(
            f"{caller} supports Functional and Sequential Keras models; received {type(model).__name__}. "
            f"Build the model with keras.Input(...) and keras.Model(inputs, outputs)."
        )
    return model


def _layer_macs(layer, in_shapes, out_shape) -> int:
    """Multiply-accumulates of one forward pass of ``layer`` for one example."""
    conv_types = (layers.Conv1D, layers.Conv2D, layers.Conv3D)
    out_elems = math.prod(int(d) for d in out_shape[1:])
    if isinstance(layer, layers.SeparableConv2D):
        kh, kw, cin, mult = layer.depthwise_kernel.shape
        fmt = layer.data_format
        spatial = out_shape[2:] if fmt == "channels_first" else out_shape[1:-1]
        positions = math.prod(int(d) for d in spatial)
        return positions * cin * mult * kh * kw + out_elems * cin * mult
    if isinstance(layer, (layers.DepthwiseConv1D, layers.DepthwiseConv2D)):
        window = math.prod(int(d) for d in layer.kernel.shape[:-2])
        return out_elems * window
    if isinstance(layer, (layers.Conv1DTranspose, layers.Conv2DTranspose, layers.Conv3DTranspose)):
        in_elems = math.prod(int(d) for d in in_shapes[0][1:])
        # kernel: (*window, out_channels, in_channels); every input element feeds window*out_channels outputs
        return in_elems * math.prod(int(d) for d in layer.kernel.shape[:-1])
    if isinstance(layer, conv_types):
        # kernel: (*window, in_channels / groups, filters); each output element is one window dot product
        return out_elems * math.prod(int(d) for d in layer.kernel.shape[:-1])
    if isinstance(layer, layers.Dense):
        if in_shapes and in_shapes[0][-1] != layer.kernel.shape[0]:
            raise ValueError(
                f"Layer '{layer.name}' expects {layer.kernel.shape[0]} input features but would receive "
                f"{in_shapes[0][-1]} at this input size; build the model with that input_shape and count it instead."
            )
        return out_elems * int(layer.kernel.shape[0])
    return 0


def count_flops(model, input_shape=None, *, per_layer: bool = False):
    """Forward-pass FLOPs for one image, counted analytically from layer shapes.

    Counts the multiply-accumulates (MACs) of convolutions (also depthwise,
    separable and transposed) and dense layers from their kernel and output
    shapes, and reports FLOPs = 2 * MACs, the convention of most CIFAR papers'
    cost plots. Batch norm, activations, pooling, additions and biases are
    ignored (they are a few percent at most for these networks).

    Args:
        model: a Functional (or built Sequential) Keras model.
        input_shape: ``(height, width, channels)`` to count for; defaults to the
            model's own input shape. A different size is propagated through the
            graph symbolically (fine for global-pooling heads; a flatten head
            raises ValueError because its dense layer fixes the size).
        per_layer: return ``{layer_name: flops}`` for the layers that cost
            anything instead of the total.

    Returns:
        The total forward FLOPs per image (int), or the per-layer dict.
    """
    costs: dict[str, int] = {}

    def visit(op, args, kwargs, out):
        if isinstance(op, keras.Model):
            nested = count_flops(op, tuple(args[0].shape[1:]), per_layer=True)
            costs.update({f"{op.name}/{k}": v for k, v in nested.items()})
        else:
            in_shapes = [tuple(t.shape) for t in keras.tree.flatten((args, kwargs)) if hasattr(t, "shape")]
            macs = _layer_macs(op, in_shapes, tuple(out.shape))
            if macs:
                costs[op.name] = costs.get(op.name, 0) + 2 * macs

    _walk_graph(model, input_shape, visit, "count_flops")
    return costs if per_layer else int(sum(costs.values()))


def activation_elements(model, input_shape=None) -> int:
    """How many values one image's forward pass holds at its peak: every layer's output, all of them.

    Keras' Functional models keep every intermediate output until the pass ends (also without gradients), so
    this, times the batch and the bytes per value, is the memory an inference batch takes (DenseNet-BC-100:
    ~13 M values per 32x32 image, 27 GB in float32 at batch 512). :func:`cifarkit.training.inference.predict_logits`
    sizes its batches with it. ``input_shape``: as for :func:`count_flops`.
    """
    total = 0

    def visit(op, args, kwargs, out):
        nonlocal total
        if isinstance(op, keras.Model):
            total += activation_elements(op, tuple(args[0].shape[1:]))
        else:
            total += sum(math.prod(int(d) for d in t.shape[1:]) for t in keras.tree.flatten(out))

    _walk_graph(model, input_shape, visit, "activation_elements")
    return total


def _walk_graph(model, input_shape, visit, caller: str) -> None:
    """Run ``model``'s graph on a symbolic one-image input of ``input_shape`` (default: the model's own),
    calling ``visit(op, args, kwargs, output_spec)`` at every operation."""
    graph = _functional_graph(model, caller)
    if len(graph.inputs) != 1:
        raise ValueError(f"{caller} supports single-input models; this one has {len(graph.inputs)} inputs.")
    ref = graph.inputs[0]
    if input_shape is None:
        shape = tuple(ref.shape[1:])
        if any(d is None for d in shape):
            raise ValueError(
                f"The model's input shape {tuple(ref.shape)} has unknown dimensions; pass input_shape=(H, W, C)."
            )
    else:
        shape = tuple(int(d) for d in input_shape)
        if len(shape) != len(ref.shape) - 1:
            raise ValueError(
                f"input_shape must have {len(ref.shape) - 1} dimensions like the model input "
                f"{tuple(ref.shape[1:])}; received input_shape={input_shape!r}."
            )

    def record(op):
        def run(*args, **kwargs):
            out = op.compute_output_spec(*args, **kwargs)
            visit(op, args, kwargs, out)
            return out

        return run

    # Keras has no public per-layer shape inference for new input sizes; Functional's own
    # compute_output_spec walks the graph the same way.
    graph._run_through_graph([keras.KerasTensor((1,) + shape, dtype=ref.dtype)], operation_fn=record)
