"""One place that chooses and configures the Keras backend.

cifarkit runs Keras 3 on PyTorch by default. The choice was measured (see
``benchmarks/bench_backend.py`` and the README): on a 2-core CPU, Keras on
PyTorch with channels-first layers, channels-last memory and a fused
batch-norm kernel trains at ~96% of raw PyTorch, ahead of Keras on TensorFlow
and far ahead of Keras on JAX. ``KERAS_BACKEND`` set by the user wins; the
models then fall back to Keras' own layers and channels-last layout.

Import this module (or call :func:`keras`) before anything imports Keras.
"""

from __future__ import annotations

import os

from cifarkit import allocator

DEFAULT_BACKEND = "torch"

os.environ.setdefault("KERAS_BACKEND", DEFAULT_BACKEND)


def keras():
    """Return the configured ``keras`` module (imports it on first use)."""
    import keras as _keras

    return _keras


def name() -> str:
    """Name of the Keras backend in use ("torch", "tensorflow" or "jax")."""
    return keras().backend.backend()


def torch():
    """The ``torch`` module, after checking that Keras runs on it (the training loop drives torch directly)."""
    if name() != "torch":
        raise RuntimeError(
            f"cifarkit's training loop needs the PyTorch backend of Keras, but KERAS_BACKEND is {name()!r}. "
            "Unset KERAS_BACKEND or set KERAS_BACKEND=torch before Python starts."
        )
    import torch as _torch

    allocator.tune()  # once per process, before any training step (see cifarkit.allocator)
    return _torch


def data_format() -> str:
    """Layout the model builders use inside the network.

    PyTorch convolutions are channels-first: building the network that way
    avoids a transpose around every convolution, and feeding it NHWC memory
    (a permuted view, see ``cifarkit.models.layers.Preprocess``) lets oneDNN
    run channels-last kernels. Other backends use Keras' channels-last default.
    """
    return "channels_first" if name() == "torch" else "channels_last"


def channel_axis() -> int:
    return 1 if data_format() == "channels_first" else -1


#: /proc/cpuinfo flags of x86 CPUs whose matrix units compute in bfloat16 natively.
NATIVE_BF16_FLAGS = ("amx_bf16", "avx512_bf16")


def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> set[str]:
    """The CPU's feature flags from the Linux ``/proc/cpuinfo`` (an empty set elsewhere)."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[-1].split())
    except OSError:
        pass
    return set()


def cpu_native_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether this CPU computes bfloat16 products in hardware (Intel AMX or AVX512-BF16).

    On such CPUs oneDNN runs bf16 convolutions and matrix products much faster
    than float32 (fastnet trains ~3x faster on the project's 2-core Xeon), so
    ``mixed_precision="auto"`` turns bf16 autocast on there. Elsewhere bf16 is
    emulated and slower, and ``auto`` stays in float32. Reads the Linux
    ``/proc/cpuinfo`` flags; other systems answer False.
    """
    flags = cpu_flags(cpuinfo)
    return any(flag in flags for flag in NATIVE_BF16_FLAGS)


def versions() -> dict:
    """Versions of Keras and of the backend library, for provenance."""
    k = keras()
    out = {"keras": k.__version__, "backend": name()}
    if out["backend"] == "torch":
        import torch

        out["torch"] = torch.__version__
        out["torch_threads"] = torch.get_num_threads()
        out["allocator"] = allocator.settings()
        out["cuda"] = torch.cuda.is_available()
        if out["cuda"]:
            out["gpu"] = torch.cuda.get_device_name(0)
    elif out["backend"] == "tensorflow":
        import tensorflow as tf

        out["tensorflow"] = tf.__version__
    elif out["backend"] == "jax":
        import jax

        out["jax"] = jax.__version__
    return out
