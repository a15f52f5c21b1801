"""Where and in what precision a run computes: the device, bf16/fp16 autocast, and activations kept in bf16.

``device="auto"`` uses CUDA when ``torch.cuda.is_available()``; the training
loop builds and runs the model inside ``keras.device(...)`` so that
``device="cpu"`` keeps everything on the CPU even on a GPU machine. On a CPU
with native bf16 units (AMX or AVX512-BF16) ``mixed_precision="auto"``
autocasts to bf16 as it does on a GPU; the measured speed-ups are in
``benchmarks/README.md``.
"""

from __future__ import annotations

import contextlib

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


def autocast_dtype(config: TrainConfig, device: str):
    """The autocast dtype of ``config.mixed_precision`` on ``device`` (``None``: float32)."""
    torch = backend.torch()
    mp = config.mixed_precision
    if mp == "off" or (mp == "auto" and device == "cpu" and not backend.cpu_native_bf16()):
        return None
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
