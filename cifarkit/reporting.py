"""Provenance, metrics files and safe writes shared by notebooks and ``run_all.py``.

Nothing here imports a deep-learning backend: versions are read from package
metadata, so the orchestrator stays light.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import subprocess
import tempfile
import time
from importlib import metadata
from pathlib import Path

from cifarkit.config import PROJECT_ROOT

TRACKED_PACKAGES = (
    "cifarkit", "keras", "torch", "tensorflow", "jax", "numpy", "scikit-learn", "pillow",
    "papermill", "nbconvert", "matplotlib", "seaborn", "pandas",
)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to a temporary file beside ``path`` and rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def _jsonable(obj):
    """Make numpy scalars/arrays, paths and non-finite floats JSON-safe."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist") and not isinstance(obj, (str, bytes)):
        return _jsonable(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def atomic_write_json(path: str | os.PathLike, obj) -> Path:
    return atomic_write_text(path, json.dumps(_jsonable(obj), indent=2, sort_keys=False) + "\n")


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def package_versions() -> dict:
    out = {"python": platform.python_version()}
    for name in TRACKED_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def hardware_info() -> dict:
    info = {"platform": platform.platform(), "machine": platform.machine(), "cpu_count": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu"] = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), None)
    except OSError:
        info["cpu"] = platform.processor() or None
    try:
        pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        info["memory_gib"] = round(pages * page_size / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10)
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


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


# ---------------------------------------------------------------- metrics files
def metrics_path(run_dir: str | os.PathLike, notebook: str) -> Path:
    return Path(run_dir) / "metrics" / f"{notebook}.json"


def record_metrics(run_dir: str | os.PathLike, notebook: str, metrics: dict) -> Path:
    """Merge ``metrics`` into ``<run_dir>/metrics/<notebook>.json`` (atomic write)."""
    path = metrics_path(run_dir, notebook)
    current = load_metrics(run_dir, notebook) if path.exists() else {}
    current.update(_jsonable(metrics))
    current["recorded_at"] = now_iso()
    return atomic_write_json(path, current)


def load_metrics(run_dir: str | os.PathLike, notebook: str) -> dict:
    path = metrics_path(run_dir, notebook)
    if not path.exists():
        raise FileNotFoundError(
            f"No metrics recorded for notebook {notebook!r} in {run_dir} (looked for {path}). "
            f"Run that notebook first, e.g. `python run_all.py --only {notebook}`."
        )
    with open(path) as f:
        return json.load(f)


def resolve_run_dir(run_dir: str | os.PathLike | None) -> Path:
    """The run directory a notebook writes into.

    ``run_all.py`` passes ``RUN_DIR``; a notebook opened by hand (empty
    ``RUN_DIR``) writes under ``reports/interactive``.
    """
    from cifarkit.config import REPORTS_DIR

    path = Path(run_dir) if run_dir else REPORTS_DIR / "interactive"
    path.mkdir(parents=True, exist_ok=True)
    return path
