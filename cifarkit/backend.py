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


#: Environment variables that cap the instruction set the math libraries use, whatever the CPU has: oneDNN
#: (convolutions, and PyTorch's bf16 products; ``DNNL_MAX_CPU_ISA`` is its older name), ATen's vectorized kernels
#: and MKL's products. Recorded with every run, since a capped run is not the CPU's speed.
ISA_LIMIT_VARS = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS")

#: oneDNN's ISA names in increasing order; from ``AVX512_CORE_BF16`` on, its kernels compute bf16 in hardware.
ONEDNN_ISAS = (
    "SSE41",
    "AVX",
    "AVX2",
    "AVX2_VNNI",
    "AVX2_VNNI_2",
    "AVX512_CORE",
    "AVX512_CORE_VNNI",
    "AVX512_CORE_BF16",
    "AVX10_1_512",
    "AVX512_CORE_FP16",
    "AVX10_1_512_AMX",
    "AVX512_CORE_AMX",
    "AVX10_1_512_AMX_FP16",
    "AVX512_CORE_AMX_FP16",
    "ALL",
)


def isa_limits(environ=None) -> dict[str, str]:
    """The :data:`ISA_LIMIT_VARS` set (non-empty) in ``environ`` (default: this process's environment)."""
    environ = os.environ if environ is None else environ
    return {var: environ[var].strip() for var in ISA_LIMIT_VARS if environ.get(var, "").strip()}


def onednn_native_bf16(environ=None) -> bool:
    """False where ``ONEDNN_MAX_CPU_ISA`` (or ``DNNL_MAX_CPU_ISA``) caps oneDNN below ``AVX512_CORE_BF16``.

    Capped, oneDNN computes bf16 with reference code however capable the CPU: on the AVX-512 EPYC with
    ``ONEDNN_MAX_CPU_ISA=AVX2``, ``bench_throughput.py``'s bf16 4096x4096 products had not finished after 20 minutes
    (2026-12-05; uncapped, seconds). A value oneDNN does not know counts as no cap (oneDNN ignores it too).
    """
    limits = isa_limits(environ)
    value = (limits.get("ONEDNN_MAX_CPU_ISA") or limits.get("DNNL_MAX_CPU_ISA") or "ALL").upper()
    if value not in ONEDNN_ISAS:
        return True
    return ONEDNN_ISAS.index(value) >= ONEDNN_ISAS.index("AVX512_CORE_BF16")


def cpu_native_bf16(cpuinfo: str = "/proc/cpuinfo", environ=None) -> bool:
    """Whether this CPU computes bfloat16 products in hardware (Intel AMX or AVX512-BF16) and oneDNN may use it.

    On such CPUs oneDNN runs bf16 convolutions and matrix products much faster
    than float32 (fastnet trains ~3x faster on the project's 2-core Xeon), so
    ``mixed_precision="auto"`` turns bf16 autocast on there. Elsewhere bf16 is
    emulated and slower, and ``auto`` stays in float32. Reads the Linux
    ``/proc/cpuinfo`` flags (other systems answer False) and oneDNN's ISA cap
    (:func:`onednn_native_bf16`).
    """
    flags = cpu_flags(cpuinfo)
    return any(flag in flags for flag in NATIVE_BF16_FLAGS) and onednn_native_bf16(environ)


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
