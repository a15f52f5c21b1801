"""Custom Keras layers shared by the model builders.

All of them are registered Keras serializables, so a saved ``.keras`` model
loads again with ``keras.saving.load_model`` once ``cifarkit.models`` is
imported.
"""

from __future__ import annotations

from cifarkit import backend

keras = backend.keras()
layers = keras.layers
ops = keras.ops


@keras.saving.register_keras_serializable(package="cifarkit")
class Preprocess(layers.Layer):
    """Cast raw ``0..255`` NHWC pixels to float, normalize, and change layout.

    The model takes images exactly as the data layer stores them (uint8 or
    float, NHWC, unscaled), so a saved model needs no separate preprocessing
    recipe: the per-channel mean and std of the training split (in ``0..1``
    units) are stored in the layer's config.

    On a channels-first network (the PyTorch backend) the output is the NCHW
    permutation of the NHWC input. Under PyTorch this is a view whose memory is
    channels-last, which is the layout oneDNN's fastest CPU convolutions use.

    Args:
        mean: per-channel mean in 0..1 units (training split only).
        std: per-channel standard deviation in 0..1 units.
        data_format: layout of the network after this layer.
    """

    def __init__(self, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), data_format="channels_last", **kwargs):
        super().__init__(**kwargs)
        self.mean = [float(m) for m in mean]
        self.std = [float(s) for s in std]
        if len(self.mean) != len(self.std):
            raise ValueError(f"mean and std need the same length; received mean={mean}, std={std}.")
        if any(s <= 0 for s in self.std):
            raise ValueError(f"std must be positive per channel; received std={std}.")
        self.data_format = data_format

    def call(self, inputs):
        x = ops.cast(inputs, "float32")
        scale = [1.0 / (255.0 * s) for s in self.std]
        shift = [-m / s for m, s in zip(self.mean, self.std)]
        x = x * ops.convert_to_tensor(scale, dtype="float32") + ops.convert_to_tensor(shift, dtype="float32")
        if self.data_format == "channels_first":
            x = ops.transpose(x, (0, 3, 1, 2))
        return ops.cast(x, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        if self.data_format == "channels_first":
            n, h, w, c = input_shape
            return (n, c, h, w)
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(mean=self.mean, std=self.std, data_format=self.data_format)
        return config


@keras.saving.register_keras_serializable(package="cifarkit")
class FusedBatchNorm(layers.BatchNormalization):
    """``BatchNormalization`` that runs PyTorch's fused kernel on the torch backend.

    Keras' generic implementation computes the moments, the normalization and
    the moving-average updates as separate element-wise passes; on a 2-core CPU
    that cost ~9% of the training throughput of ``fastnet``
    (``benchmarks/bench_backend.py``). Under PyTorch this layer calls
    ``torch.nn.functional.batch_norm`` instead, which does all of it in one
    kernel forward and one backward. The semantics match Keras' layer with one
    documented difference: PyTorch updates the moving variance with the
    unbiased batch variance. Other backends, masks, renorm and synchronized
    BN use the parent implementation unchanged.
    """

    def call(self, inputs, training=None, mask=None):
        if backend.name() != "torch" or mask is not None or self.renorm or getattr(self, "synchronized", False):
            return super().call(inputs, training=training, mask=mask)
        import torch
        import torch.nn.functional as F

        axis = self.axis if self.axis >= 0 else len(inputs.shape) + self.axis
        if axis != 1:
            return super().call(inputs, training=training, mask=mask)
        x = inputs
        # PyTorch's CPU and CUDA kernels take bf16 activations with float32 statistics and affine
        # parameters (what torch.autocast hands them); other mixes are computed in float32.
        if x.dtype != self.moving_mean.value.dtype and not (
            x.dtype == torch.bfloat16 and self.moving_mean.value.dtype == torch.float32
        ):
            x = x.float()
        out = F.batch_norm(
            x,
            self.moving_mean.value,
            self.moving_variance.value,
            self.gamma.value if self.scale else None,
            self.beta.value if self.center else None,
            training=bool(training) and self.trainable,
            momentum=1.0 - self.momentum,
            eps=self.epsilon,
        )
        return out.to(inputs.dtype) if out.dtype != inputs.dtype else out


@keras.saving.register_keras_serializable(package="cifarkit")
class BiasConv2D(layers.Conv2D):
    """``Conv2D`` that adds its bias in the dtype of the convolution's output, inside the convolution on torch.

    Keras' ``Conv2D`` adds the float32 bias to the convolution's output. Under
    ``torch.autocast`` to bf16 that output is bf16, so the sum is promoted to
    float32, and everything up to the next convolution (activation,
    pooling, and their gradients) runs in float32 with extra copies. fastnet's
    whitening stem is such a layer: in a bf16 step on the project's 2-core CPU
    it cost ~5% of the step. This layer casts the bias to the output's dtype
    first (its gradient still reaches the float32 variable); in float32 it
    computes exactly what ``Conv2D`` does.

    On the torch backend, for the channels-first layout it runs in, a plain 2-D convolution (no dilation or
    groups, ``valid`` padding or ``same`` at stride 1 with odd kernels) passes the bias to
    ``torch.nn.functional.conv2d`` itself, as a PyTorch ``Conv2d`` does: the separate broadcast add over the
    output and its gradient's reduction (a sum over batch and pixels) were ~3% of fastnet's bf16 step on a
    Xeon with AMX, with the stem's bias still training (benchmarks/README.md, 2026-12-07). Autocast casts the
    bias with the other operands.
    """

    #: False takes Keras' convolution and a separate add on every backend (benchmarks/bench_throughput.py's
    #: ``--unfused`` arm sets it on a layer to time the step as it ran before).
    fuse_bias = True

    def call(self, inputs):
        if not self.use_bias:
            return super().call(inputs)
        padding = self._torch_padding()
        if padding is not None:
            import torch

            kernel = self.kernel.value.permute(3, 2, 0, 1)  # (kh, kw, in, out) -> (out, in, kh, kw), as Keras does
            outputs = torch.nn.functional.conv2d(inputs, kernel, self.bias.value, stride=self.strides, padding=padding)
        else:
            outputs = self.convolution_op(inputs, self.kernel)
            if self.data_format == "channels_last":
                bias_shape = (1,) * (self.rank + 1) + (self.filters,)
            else:
                bias_shape = (1, self.filters) + (1,) * self.rank
            bias = ops.cast(ops.reshape(self.bias, bias_shape), keras.backend.standardize_dtype(outputs.dtype))
            outputs = ops.add(outputs, bias)
        if self.activation is not None:
            return self.activation(outputs)
        return outputs

    def _torch_padding(self):
        """The ``padding`` argument of ``conv2d`` for this layer, or None where Keras' own path must run."""
        plain = (
            self.fuse_bias
            and backend.name() == "torch"
            and self.rank == 2
            and self.data_format == "channels_first"
            and self.groups == 1
            and all(d == 1 for d in self.dilation_rate)
        )
        if not plain:
            return None
        if self.padding == "valid":
            return 0
        if self.padding == "same" and all(s == 1 for s in self.strides) and all(k % 2 for k in self.kernel_size):
            return tuple(k // 2 for k in self.kernel_size)
        return None


@keras.saving.register_keras_serializable(package="cifarkit")
class GlobalMaxPool(layers.GlobalMaxPooling2D):
    """``GlobalMaxPooling2D`` that calls ``torch.amax`` itself on the torch backend.

    Keras' ``ops.max`` computes the same ``amax`` and then tests ``isinstance(getattr(result, "values", None),
    Tensor)``, which TorchDynamo cannot trace: ``torch.compile`` broke fastnet's graph there (three breaks per
    forward) and recompiled Keras' ``Functional.call`` to its limit. Same arguments, config and result; other
    backends use the parent's ``call``.
    """

    def call(self, inputs):
        if backend.name() != "torch":
            return super().call(inputs)
        import torch

        dims = (1, 2) if self.data_format == "channels_last" else (2, 3)
        return torch.amax(inputs, dim=dims, keepdim=self.keepdims)


@keras.saving.register_keras_serializable(package="cifarkit")
class Rescale(layers.Rescaling):
    """``Rescaling`` (``inputs * scale + offset`` in the layer's dtype) computed with ``keras.ops``.

    Keras' preprocessing layers call through a ``DynamicBackend`` that looks the backend module up with
    ``importlib`` on every call, which TorchDynamo refuses to trace: ``torch.compile`` broke fastnet's graph at its
    output scale. Same arguments, config and result for a scalar ``scale``/``offset`` (fastnet's); per-channel
    scales use the parent's ``call``.
    """

    def call(self, inputs):
        if not all(isinstance(v, (int, float)) for v in (self.scale, self.offset)):
            return super().call(inputs)
        dtype = self.compute_dtype
        return ops.cast(inputs, dtype) * ops.cast(self.scale, dtype) + ops.cast(self.offset, dtype)
