"""What produced a run: library versions, hardware, git commit and time stamps.

Nothing here imports a deep-learning backend: versions are read from package
metadata, so the orchestrator stays light.
"""

from __future__ import annotations

import os
import platform
import resource
import shlex
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

from cifarkit.paths import PROJECT_ROOT

TRACKED_PACKAGES = (
    "cifarkit",
    "keras",
    "torch",
    "tensorflow",
    "jax",
    "numpy",
    "scikit-learn",
    "pillow",
    "papermill",
    "nbconvert",
    "matplotlib",
    "seaborn",
    "pandas",
)


def package_versions() -> dict:
    out = {"python": platform.python_version()}
    for name in TRACKED_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def cpu_model() -> str | None:
    """The CPU's model name from ``/proc/cpuinfo`` (``platform.processor()`` elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            return next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), None)
    except OSError:
        return platform.processor() or None


#: ``/proc/cpuinfo`` flags that decide how fast a CPU trains (float32 FMA width; native bf16), recorded with every
#: run and benchmark: "AMD EPYC" alone does not tell an AVX2-only part from one with AVX-512 and bf16 units.
SPEED_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16")


def speed_flags(flags: set[str]) -> str:
    """The :data:`SPEED_FLAGS` among ``flags``, space-separated (a string, as the reports print it)."""
    return " ".join(f for f in SPEED_FLAGS if f in flags) or "none of " + ", ".join(SPEED_FLAGS)


def hardware_info() -> dict:
    from cifarkit.backend import cpu_flags, isa_limits  # (backend sets the Keras backend's name; imports no Keras)

    info = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "cpu": cpu_model(),
    }
    flags = cpu_flags()
    if flags:  # Linux on x86; other systems have no /proc/cpuinfo flags line
        info["cpu_flags"] = speed_flags(flags)
    limits = isa_limits()
    if limits:  # the libraries were told to use less of the CPU than it has
        info["isa_limits"] = limits
    try:
        pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        info["memory_gib"] = round(pages * page_size / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        if out.returncode == 0 and out.stdout.strip():
            info["gpus"] = [line.strip() for line in out.stdout.strip().splitlines()]
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def git_info(root: str | os.PathLike = PROJECT_ROOT) -> dict:
    def git(*args):
        out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10)
        return out.stdout.strip() if out.returncode == 0 else None

    try:
        commit = git("rev-parse", "HEAD")
        status = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def command_line(script: str | os.PathLike, argv: list[str] | None = None) -> str:
    """How a script was called, as a benchmark's record keeps it: ``python benchmarks/bench_x.py ARGS``, the
    script's path relative to the project (its name where it lies elsewhere), ``argv`` (default: this process's
    arguments) quoted as a shell needs them, and the password of any URL among them masked."""
    path = Path(script).resolve()
    try:
        shown = path.relative_to(Path(PROJECT_ROOT).resolve()).as_posix()
    except ValueError:
        shown = path.name
    return " ".join(["python", shlex.quote(shown), quoted_args(sys.argv[1:] if argv is None else argv)]).rstrip()


def quoted_args(args: list) -> str:
    """``args`` as a shell takes them back (quoted where they need it), the password of any URL among them
    masked: how a recorded command line writes a process's arguments."""
    from cifarkit import secrets  # (the standard library only)

    return " ".join(shlex.quote(secrets.mask_text(str(a))) for a in args)


def python_command() -> str:
    """The interpreter running this, as a user would type it here (what a printed hint names):
    ``.venv/bin/python`` for the project's own environment (what ``make report`` runs), else ``python``."""
    try:
        return shlex.quote(str(Path(sys.executable).relative_to(Path.cwd())))
    except ValueError:
        return "python"


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def peak_rss_mib() -> float:
    """The largest resident set size of this process so far, in MiB."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024, 1)
