"""glibc malloc's thresholds, set for training's large buffers that come and go every step.

With glibc's defaults a block above the *mmap threshold* (128 KiB at first) is mapped fresh from the kernel and
unmapped when freed, so each training step page-faults its activations and gradients in again. glibc raises the
threshold to the size of a freed mapped block, but only after such a block is freed, and never above 32 MiB:
in a training process the threshold stays below most of a step's buffers until something allocates bigger ones.
In cifarkit that was the first evaluation pass (batches of 512): on the 2-core AVX-512 EPYC fastnet's steps ran
5% (float32) and 13% (bf16) faster after it than before, so every run's first epoch was slow and the time
estimate's probe, which times steps before any evaluation, read the slow speed. With the thresholds below the
steps before any evaluation ran 1.12x faster in both precisions (``benchmarks/bench_allocator.py``,
``benchmarks/results/allocator_epyc_avx512.json``).

:func:`tune` sets the mmap threshold to glibc's 64-bit maximum (32 MiB) and the *trim threshold* (free memory
at the top of the heap kept rather than given back to the kernel) to 1 GiB, so that steps reuse their memory
from the first one. A process then holds up to 1 GiB of freed heap memory for reuse instead of giving it back;
results do not change.

It is left alone where it cannot apply or where the user has decided: on a C library other than glibc (macOS,
Windows, musl), when ``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_``, ``MALLOC_TOP_PAD_`` or a
``glibc.malloc`` tunable in ``GLIBC_TUNABLES`` is set, and when ``CIFARKIT_MALLOC=default`` (the benchmarks'
way to time glibc's defaults). :func:`cifarkit.backend.torch` calls it once per process, before any training.
"""

from __future__ import annotations

import ctypes
import os
import platform

#: Environment variable: ``default`` keeps glibc's defaults; unset or ``tuned`` sets the thresholds below.
ENV = "CIFARKIT_MALLOC"
MMAP_THRESHOLD = 32 * 2**20  # glibc's upper bound for it on 64-bit systems (DEFAULT_MMAP_THRESHOLD_MAX)
TRIM_THRESHOLD = 2**30  # mallopt takes an int
_M_TRIM_THRESHOLD = -1  # from glibc's malloc.h
_M_MMAP_THRESHOLD = -3
USER_VARIABLES = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")

_state: dict | None = None


def _decision(environ) -> str | None:
    """Why the thresholds stay as they are, or None when they are to be set."""
    choice = environ.get(ENV, "").strip().lower()
    if choice not in ("", "tuned", "default"):
        raise ValueError(f"{ENV} must be 'tuned' or 'default', got {environ.get(ENV)!r}. Unset it to use 'tuned'.")
    if choice == "default":
        return f"{ENV}=default"
    user = [name for name in USER_VARIABLES if name in environ]
    if "glibc.malloc." in environ.get("GLIBC_TUNABLES", ""):
        user.append("GLIBC_TUNABLES")
    if user:
        return "set by the user (" + ", ".join(user) + ")"
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return "not glibc"
    return None


def tune(environ=None) -> dict:
    """Set glibc malloc's mmap and trim thresholds once per process (see the module docstring).

    Returns the process's allocator settings: ``{"malloc": "tuned", "mmap_threshold", "trim_threshold"}``
    or ``{"malloc": "default", "why": ...}``; later calls return the first call's answer.

    Raises:
        ValueError: ``CIFARKIT_MALLOC`` is set to something other than ``tuned`` or ``default``.
    """
    global _state
    if _state is not None:
        return dict(_state)
    why = _decision(os.environ if environ is None else environ)
    if why is None:
        try:
            libc = ctypes.CDLL("libc.so.6")
            ok = (
                libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
                and libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
            )
        except (OSError, AttributeError):
            ok = False
        why = None if ok else "mallopt refused"
    _state = (
        {"malloc": "tuned", "mmap_threshold": MMAP_THRESHOLD, "trim_threshold": TRIM_THRESHOLD}
        if why is None
        else {"malloc": "default", "why": why}
    )
    return dict(_state)


def settings() -> dict:
    """The process's allocator settings as :func:`tune` left them (``{"malloc": "not set yet"}`` before it ran)."""
    return dict(_state) if _state is not None else {"malloc": "not set yet"}


def describe(state: dict | None) -> str:
    """One line for a report about recorded allocator settings (:func:`settings`' answer in a model's metrics):
    ``"malloc thresholds set (mmap 32 MiB, trim 1024 MiB)"``, ``"malloc at the C library's defaults (why)"``,
    or ``""`` when nothing was recorded (runs from before the allocator was tuned)."""
    if not isinstance(state, dict) or state.get("malloc") not in ("tuned", "default"):
        return ""
    if state["malloc"] == "default":
        return "malloc at the C library's defaults" + (f" ({state['why']})" if state.get("why") else "")
    mib = 1024 * 1024
    return (
        f"malloc thresholds set (mmap {int(state.get('mmap_threshold', 0)) // mib} MiB, "
        f"trim {int(state.get('trim_threshold', 0)) // mib} MiB)"
    )
