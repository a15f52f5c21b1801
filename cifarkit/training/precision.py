"""Where and in what precision a run computes: the device, bf16/fp16 autocast, memory layout and compilation.

``device="auto"`` uses CUDA when ``torch.cuda.is_available()``; the training
loop builds and runs the model inside ``keras.device(...)`` so that
``device="cpu"`` keeps everything on the CPU even on a GPU machine. On a CPU
with native bf16 units (AMX or AVX512-BF16) ``mixed_precision="auto"``
autocasts to bf16 as it does on a GPU; the measured speed-ups are in
``benchmarks/README.md``.

What a CUDA run gets by default (each ``"auto"`` setting of the config; a CPU
run keeps all of them off except bf16, and with it channels-last kernels, on CPUs with bf16 units):

- ``mixed_precision="auto"``: bf16 autocast (:func:`autocast_dtype`); weights stay float32.
- ``channels_last="auto"`` (also on a CPU under bf16 autocast, see :func:`use_channels_last`):
  activations are channels-last already (the
  models take NHWC and ``Preprocess`` permutes it to an NCHW view with NHWC
  memory); :func:`to_channels_last` stores the convolution kernels so that the
  OIHW weight PyTorch's convolution sees is channels-last too, so cuDNN should
  need no layout copy of the weight per convolution (and its gradient lands in
  the same layout; the gain is not measured yet, no GPU has run it).
- ``compile="auto"``: nothing yet: only models in ``loop.AUTO_COMPILE_MODELS`` (empty until a GPU has
  measured that compiling pays; see there why) are compiled. ``compile="on"`` asks for ``torch.compile``
  of the model's forward pass (``loop._compiled_forward``), after :func:`dynamo_friendly_signatures`
  removes the graph breaks that Keras' argument binding causes at layer calls
  once any dict was mutated in the traced code. A model can still break the
  graph or recompile (see ``benchmarks/gpu_check.py``, which records both, and
  ``benchmarks/README.md``); a failure at the first step falls back to eager
  mode (``optim.TrainStep``).
- ``pipeline="auto"``: the training set on the device and augmentation as
  tensor ops (:mod:`cifarkit.training.augment_torch`).
- ``torch.backends.cudnn.benchmark`` on for the run (:func:`cuda_settings`)
  unless ``deterministic``: training batches all have one shape (``drop_last``),
  so the autotuned kernel choice is paid once.
"""

from __future__ import annotations

import contextlib
import inspect
import os

from cifarkit import backend
from cifarkit.training.config import TrainConfig


def choose_device(config: TrainConfig) -> str:
    """``"cuda"`` or ``"cpu"`` for ``config.device``; ``"gpu"`` without CUDA is a clear error."""
    torch = backend.torch()
    if config.device == "cpu":
        return "cpu"
    if config.device == "gpu":
        if not torch.cuda.is_available():
            raise ValueError(
                "device='gpu' was requested but PyTorch sees no CUDA GPU "
                f"(torch {torch.__version__}, torch.cuda.is_available() is False). "
                "Use device='auto' or 'cpu', or install a CUDA build of PyTorch."
            )
        return "cuda"
    return "cuda" if torch.cuda.is_available() else "cpu"


#: Why ``mixed_precision="auto"`` trains the ``keras.applications`` backbones in float32 on a CPU, even one
#: with bf16 units: their depthwise and squeeze-excite layers ran slower under bf16 autocast. Measured on the
#: 2-core Intel Xeon with AMX and AVX512-BF16, 96 px, batch 32, fine-tuning (benchmarks/results/backbones.json):
#: MobileNetV2 173 img/s float32 vs 119 bf16, EfficientNetB0 101 vs 63.
CPU_FLOAT32_BACKBONES = "bf16 autocast measured 0.63-0.69x float32's speed for MobileNetV2/EfficientNetB0 on CPU"


def _is_backbone(name: str) -> bool:
    from cifarkit.models import model_info

    try:
        return model_info(name).get("kind") == "backbone"
    except ValueError:
        return False


#: Environment variable that replaces ``mixed_precision="auto"`` for a whole process and its notebook kernels:
#: ``run_all.py --precision off`` sets it, so a machine with bf16 units can measure the float32 study that
#: float32-only CPUs run. A config's explicit ``"off"``/``"bf16"``/``"fp16"`` is kept.
ENV_MIXED_PRECISION = "CIFARKIT_MIXED_PRECISION"


def default_mixed_precision() -> str:
    """What ``mixed_precision="auto"`` means in this process: ``$CIFARKIT_MIXED_PRECISION`` or ``"auto"``.

    Raises:
        ValueError: the variable holds something else than auto, off, bf16 or fp16.
    """
    from cifarkit.training.config import MIXED_PRECISIONS

    value = os.environ.get(ENV_MIXED_PRECISION, "").strip().lower() or "auto"
    if value not in MIXED_PRECISIONS:
        raise ValueError(
            f"{ENV_MIXED_PRECISION}={os.environ.get(ENV_MIXED_PRECISION)!r} is not one of "
            f"{', '.join(MIXED_PRECISIONS)}; unset it or give one of those."
        )
    return value


def autocast_dtype(config: TrainConfig, device: str):
    """The autocast dtype of ``config.mixed_precision`` on ``device`` (``None``: float32); ``"auto"`` first
    resolves through :func:`default_mixed_precision`."""
    torch = backend.torch()
    mp = config.mixed_precision
    if mp == "auto":
        mp = default_mixed_precision()
    if mp == "off" or (mp == "auto" and device == "cpu" and not backend.cpu_native_bf16()):
        return None
    if mp == "auto" and device == "cpu" and _is_backbone(config.model):
        return None  # bf16 autocast slowed the ImageNet backbones down on CPU (see CPU_FLOAT32_BACKBONES)
    if mp == "fp16" and device == "cpu":
        raise ValueError("mixed_precision='fp16' needs a GPU; on CPU use 'bf16' or 'off'.")
    return torch.float16 if mp == "fp16" else torch.bfloat16


def autocast(device: str, dtype):
    """``torch.autocast`` to ``dtype`` on the device's type, or a no-op for ``dtype=None``."""
    if dtype is None:
        return contextlib.nullcontext()
    return backend.torch().autocast(device_type=device.split(":")[0], dtype=dtype)


def model_layers(model) -> list:
    """``model`` and every layer inside it, nested models included (as the optimizer's groups walk them)."""
    return list(model._flatten_layers(include_self=True))


@contextlib.contextmanager
def native_dtypes(layers_: list, dtype):
    """Let activations keep autocast's dtype from layer to layer.

    A Keras layer casts its floating inputs to its compute dtype (float32)
    before ``call``. Under ``torch.autocast`` to bf16 that turns every
    convolution's bf16 output back into float32, and the next convolution
    casts it to bf16 again: on the project's 2-core CPU these copies took a
    third of fastnet's bf16 step. Inside this context the layers take their
    inputs as they come (``Layer._convert_input_args``, Keras' own switch for
    it); weights stay float32 and autocast still decides each op's precision.
    A no-op for ``dtype=None``.
    """
    if dtype is None:
        yield
        return
    saved = [getattr(layer, "_convert_input_args", True) for layer in layers_]
    for layer in layers_:
        layer._convert_input_args = False
    try:
        yield
    finally:
        for layer, value in zip(layers_, saved):
            layer._convert_input_args = value


def use_channels_last(config: TrainConfig, device: str, amp=None) -> bool:
    """Whether ``config.channels_last`` re-lays the convolution kernels on ``device``.

    ``"auto"``: on CUDA, and on a CPU that trains under bf16 autocast (``amp``, the run's
    :func:`autocast_dtype`). There fastnet's training step ran 1.025x faster with the kernels re-laid, 1.057x
    with :class:`~cifarkit.models.layers.BiasConv2D`'s bias inside the convolution as well, and resnet20's
    1.007x (2-core Xeon with AMX, batch 256; benchmarks/README.md, 2026-12-07). In float32 on the CPU it gave
    fastnet 1.01-1.02x and resnet20 0.995x, inside the noise, so float32 CPU runs keep Keras' layout.
    """
    if config.channels_last in ("on", "off"):
        return config.channels_last == "on"
    if str(device).startswith("cuda"):
        return True
    return amp is not None and amp == backend.torch().bfloat16


def to_channels_last(model) -> int:
    """Store every 2-D convolution kernel of ``model`` so that PyTorch sees it as a channels-last OIHW weight.

    Keras keeps a kernel as ``(kh, kw, in, out)`` and its PyTorch backend
    permutes it to ``(out, in, kh, kw)`` for ``conv2d``; with a contiguous
    kernel that view is in no standard layout and cuDNN copies it to
    channels-last at every convolution (forward and backward). Here the
    parameter's storage is reordered to ``(out, kh, kw, in)`` and viewed back as
    ``(kh, kw, in, out)``: same shape, same values, same ``Parameter`` object
    (so optimizers and saved models see no difference), but the permuted view
    is channels-last. ``assign``, checkpoints, optimizer state and gradients
    keep the layout. Returns how many kernels were re-laid.
    """
    keras = backend.keras()
    torch = backend.torch()
    count = 0
    for layer in model_layers(model):
        if not isinstance(layer, keras.layers.Conv2D) or getattr(layer, "kernel", None) is None:
            continue
        param = layer.kernel.value
        if param.ndim != 4:
            continue
        with torch.no_grad():
            param.data = param.data.permute(3, 0, 1, 2).contiguous().permute(1, 2, 3, 0)
        count += 1
    return count


def relay_kernels(model, config: TrainConfig, device: str, amp=None) -> bool:
    """Re-lay ``model``'s kernels channels-last where :func:`use_channels_last` says so (the layout ``train()``
    gives them; the estimate's probe and the benchmarks take it from here too); whether any kernel was re-laid."""
    return use_channels_last(config, device, amp) and to_channels_last(model) > 0


def is_channels_last_kernel(variable) -> bool:
    """Whether a Keras ``(kh, kw, in, out)`` kernel reaches ``conv2d`` as a channels-last OIHW tensor."""
    torch = backend.torch()
    return variable.value.permute(3, 2, 0, 1).is_contiguous(memory_format=torch.channels_last)


def dynamo_friendly_signatures(model) -> int:
    """Let ``torch.compile`` trace through the Keras layer calls of ``model``; returns the layers changed.

    Keras binds a layer's arguments against ``inspect.signature(layer.call)``
    (``layers.layer.CallSpec``), after popping call-context arguments such as
    ``training`` from the keyword dict. TorchDynamo refuses to read a
    signature's ``parameters`` (a ``mappingproxy``) once any dict was mutated
    in the traced code (a ``keras.ops`` call such as ``pad`` builds a named
    Keras op, which updates a global dict), so every later layer call broke the graph
    and Dynamo gave up on the frame ("mapping proxy affected by dictionary
    mutation"; resnet20 with torch 2.13 and Keras 3.15: 11 graph breaks, the
    network left mostly eager). Each layer's cached signature is
    replaced by an equal one whose ``parameters`` is a plain dict, which Dynamo
    reads freely. Eager behaviour is unchanged.
    """
    count = 0
    for layer in model_layers(model):
        sig = getattr(layer, "_call_signature", None)
        if sig is None or isinstance(sig, _PlainSignature):
            continue
        layer._call_signature = _PlainSignature(list(sig.parameters.values()), return_annotation=sig.return_annotation)
        count += 1
    return count


class _PlainSignature(inspect.Signature):
    """An ``inspect.Signature`` whose ``parameters`` is a plain (never mutated) dict instead of a mappingproxy."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._plain_parameters = dict(self._parameters)

    @property
    def parameters(self):
        return self._plain_parameters


@contextlib.contextmanager
def cuda_settings(config: TrainConfig, device: str):
    """cuDNN autotuning (``cudnn.benchmark``) for a CUDA run that is not ``deterministic``; restored afterwards.

    A no-op on the CPU.
    """
    if not str(device).startswith("cuda"):
        yield
        return
    torch = backend.torch()
    before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = not config.deterministic
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = before
