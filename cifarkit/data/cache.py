"""Where cached files live, and the on-disk cache of decoded arrays.

A decoded dataset is stored as one ``.npy`` file per array plus ``meta.json``
in ``<cache_dir>/decoded/<key>/``. The key hashes everything that changes the
arrays: the source's sha256, image size, subset, split fractions, seed, the
group regex and the labels (their regex, or the labels file's sha256) when
given, and this module's format version. A grouped dataset's group ids are
kept in ``meta.json``. Entries are written to a temporary folder and
renamed into place, so a reader never sees half an entry; an entry that fails
to load is deleted and rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np

FORMAT_VERSION = 1
ENV_VAR = "CIFARKIT_DATA_DIR"
ARRAY_NAMES = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")


def resolve_cache_dir(cache_dir=None) -> Path:
    """``cache_dir`` if given, else ``$CIFARKIT_DATA_DIR``, else the user cache folder for cifarkit."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("cifarkit"))


def cache_key(**fields) -> str:
    fields["format_version"] = FORMAT_VERSION
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:32]


def load_entry(cache_dir: Path, key: str, image_size: tuple[int, int]):
    """``(arrays, meta)`` of a cache entry, or None when absent or unusable (then it is deleted)."""
    folder = cache_dir / "decoded" / key
    if not folder.is_dir():
        return None
    try:
        meta = json.loads((folder / "meta.json").read_text())
        if meta.get("format_version") != FORMAT_VERSION:
            raise ValueError("old format")
        arrays = {name: np.load(folder / f"{name}.npy", allow_pickle=False) for name in ARRAY_NAMES}
        for split in ("train", "val", "test"):
            x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
            if x.dtype != np.uint8 or x.shape[1:] != (*image_size, 3) or y.dtype != np.int64 or y.shape != (len(x),):
                raise ValueError(f"bad {split} arrays")
            if len(y) and (y.min() < 0 or y.max() >= len(meta["class_names"])):
                raise ValueError(f"bad {split} labels")
    except (OSError, ValueError, KeyError, TypeError, EOFError):
        shutil.rmtree(folder, ignore_errors=True)
        return None
    return arrays, meta


def save_entry(cache_dir: Path, key: str, arrays: dict, meta: dict) -> None:
    """Write an entry atomically; a failure to write (full disk, read-only folder) only loses the cache."""
    root = cache_dir / "decoded"
    tmp = None
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{key}.tmp-"))
        for name in ARRAY_NAMES:
            np.save(tmp / f"{name}.npy", np.ascontiguousarray(arrays[name]), allow_pickle=False)
        (tmp / "meta.json").write_text(json.dumps({**meta, "format_version": FORMAT_VERSION}))
        os.rename(tmp, root / key)
        tmp = None
    except OSError as exc:
        if not (root / key).is_dir():  # else another process wrote the same entry first: fine
            warnings.warn(
                f"Could not write the decode cache {root / key} ({exc}); the next load decodes again.", stacklevel=3
            )
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
