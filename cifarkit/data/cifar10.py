"""The official CIFAR-10 python archive: download, verification and safe parsing.

The archive holds pickled dicts of numpy arrays. Pickles can run arbitrary code
when loaded, so they are read with :class:`RestrictedUnpickler`, which admits
only the globals a numpy array needs and builtin containers.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import re
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

from .errors import DataError
from .folder_source import follow_link, link_problem
from .options import Limits, TooLarge, read_capped
from .sources import OFFICIAL_MEMBER, batch_too_large

# Module constants (not defaults baked into signatures) so tests can point them at a local server.
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_ARCHIVE_NAME = "cifar-10-python.tar.gz"
CIFAR10_SIZE = 170_498_071
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_DIR_NAME = "cifar-10-batches-py"
DOWNLOAD_TIMEOUT_S = 30.0

CIFAR10_CLASSES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]

_NUMPY_CORE = getattr(np, "_core", None) or np.core  # numpy >= 2 moved np.core to np._core


def _latin1_encode(text, encoding="latin1"):
    """``_codecs.encode`` restricted to latin-1, the only use protocol-2 pickles make of it (bytes)."""
    if encoding not in ("latin1", "latin-1", "iso-8859-1") or not isinstance(text, str):
        raise pickle.UnpicklingError(f"_codecs.encode with encoding {encoding!r} is not allowed")
    return text.encode("latin1")


_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _NUMPY_CORE.multiarray._reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _NUMPY_CORE.multiarray._reconstruct,
    ("numpy.core.multiarray", "scalar"): _NUMPY_CORE.multiarray.scalar,
    ("numpy._core.multiarray", "scalar"): _NUMPY_CORE.multiarray.scalar,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_encode,
    ("builtins", "list"): list,
    ("builtins", "dict"): dict,
    ("builtins", "tuple"): tuple,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "bytearray"): bytearray,
    ("builtins", "bytes"): bytes,
}
_PY2_MODULES = {"__builtin__": "builtins"}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that loads numpy arrays and builtin containers and nothing else.

    Any other global (``os.system``, ``builtins.eval``, ...) raises DataError
    naming the file, before the global is ever looked up.
    """

    def __init__(self, file, *, source_name: str):
        super().__init__(file, encoding="bytes")
        self.source_name = source_name

    def find_class(self, module: str, name: str):
        module = _PY2_MODULES.get(module, module)
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise DataError(
                f"refusing to unpickle {self.source_name}: it references the global '{module}.{name}', "
                "which a CIFAR-10 batch file never contains (only numpy arrays and builtin containers "
                "are allowed). The file is corrupt or was tampered with; do not use it."
            ) from None


def restricted_loads(data: bytes, source_name: str):
    """Unpickle bytes with :class:`RestrictedUnpickler`; every failure becomes DataError."""
    try:
        return RestrictedUnpickler(io.BytesIO(data), source_name=source_name).load()
    except DataError:
        raise
    except Exception as exc:  # a malformed pickle raises many different types
        raise DataError(
            f"Cannot read {source_name}: not a valid CIFAR-10 batch pickle ({type(exc).__name__}: {exc}). "
            "The file is truncated or corrupt; download or copy it again."
        ) from exc


def _get(d: dict, key: str, source_name: str):
    for k in (key.encode(), key):
        if k in d:
            return d[k]
    raise DataError(f"{source_name} has no {key!r} entry; it is not a CIFAR-10 batch file.")


def parse_meta(data: bytes, source_name: str) -> list[str]:
    meta = restricted_loads(data, source_name)
    if not isinstance(meta, dict):
        raise DataError(
            f"{source_name} holds a {type(meta).__name__}, expected a dict; it is not CIFAR-10's batches.meta."
        )
    names = _get(meta, "label_names", source_name)
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, (bytes, str)) for n in names):
        raise DataError(f"{source_name}: 'label_names' is not a list of strings.")
    names = [n.decode("utf-8") if isinstance(n, bytes) else n for n in names]
    if len(names) < 2:
        raise DataError(f"{source_name} names {len(names)} class(es); at least 2 classes are needed.")
    return names


def parse_batch(data: bytes, source_name: str, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """One batch file -> ``(x uint8 (N, 32, 32, 3), y int64 (N,))``."""
    batch = restricted_loads(data, source_name)
    if not isinstance(batch, dict):
        raise DataError(f"{source_name} holds a {type(batch).__name__}, expected a dict; it is not a CIFAR-10 batch.")
    x = _get(batch, "data", source_name)
    labels = _get(batch, "labels", source_name)
    if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or x.ndim != 2 or x.shape[1] != 3072:
        got = f"{x.dtype} array of shape {x.shape}" if isinstance(x, np.ndarray) else type(x).__name__
        raise DataError(f"{source_name}: 'data' should be a uint8 array of shape (N, 3072), got {got}.")
    y = _labels(labels, source_name)
    if len(y) != len(x):
        raise DataError(f"{source_name}: {len(x)} images but {len(y)} labels.")
    if len(y) and (y.min() < 0 or y.max() >= num_classes):
        raise DataError(f"{source_name}: labels range {y.min()}..{y.max()}, outside 0..{num_classes - 1}.")
    # Rows are 1024 red, 1024 green, 1024 blue values, each plane row-major.
    return np.ascontiguousarray(x.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)), y


def _labels(labels, source_name: str) -> np.ndarray:
    """A batch's labels as int64, refusing anything that is not integer-typed.

    CIFAR-10 stores labels as a list of Python ints. Float labels are refused
    even when every value is whole (3.0): they mean the file was written by
    something else (one-hot or smoothed targets, normalised values), and the
    cast to int that used to be applied silently truncated 2.7 to class 2.
    Refusing every float dtype is one clear rule with a one-line fix for whole
    values, where accepting "whole floats" would let a batch with a single
    2.7 among them pass or fail by chance. Booleans, strings and integers too
    large for int64 (an object array) are refused too.
    """
    try:
        arr = np.asarray(labels)
    except (TypeError, ValueError) as exc:  # ragged nested lists
        raise DataError(f"{source_name}: 'labels' is not a list of integers ({exc}).") from exc
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.dtype.kind not in "iu" or (arr.dtype.kind == "u" and arr.max() > np.iinfo(np.int64).max):
        flat = arr.reshape(-1)
        odd = [v for v in flat[:100_000].tolist() if not isinstance(v, int) or isinstance(v, bool)]
        example = next((v for v in odd if isinstance(v, float) and not v.is_integer()), odd[0] if odd else flat[0])
        raise DataError(
            f"{source_name}: 'labels' must be integer class indices, got {arr.dtype} values (e.g. {example!r}). "
            "Non-integer labels are refused, even whole floats like 3.0, because converting them would silently "
            "truncate any that are not whole. If yours are whole class indices, write them as ints "
            "(labels = [int(v) for v in labels]) and save the batch again."
        )
    return arr.astype(np.int64).reshape(-1)


def _batch_number(name: str) -> int:
    return int(name.rsplit("_", 1)[1])


def parse_members(members: dict[str, bytes], where: str):
    """Parse the batch files given by basename -> bytes.

    Returns:
        ``(x_train, y_train, x_test, y_test, class_names)``.
    """
    check_official_names(members, where)
    data_names = sorted((n for n in members if re.fullmatch(r"data_batch_\d+", n)), key=_batch_number)
    names = parse_meta(members.pop("batches.meta"), f"{where}/batches.meta")
    parts = [parse_batch(members.pop(n), f"{where}/{n}", len(names)) for n in data_names]
    x_test, y_test = parse_batch(members.pop("test_batch"), f"{where}/test_batch", len(names))
    x_train = np.concatenate([p[0] for p in parts]) if len(parts) > 1 else parts[0][0]
    y_train = np.concatenate([p[1] for p in parts])
    for split, y, files in (("training", y_train, ", ".join(data_names)), ("test", y_test, "test_batch")):
        if len(y) == 0:
            raise DataError(
                f"{where}: the {split} batches ({files}) hold no images, so the {split} split would be empty. "
                "The archive or folder is incomplete or was written wrongly; download or write it again."
            )
    return x_train, y_train, x_test, y_test, names


def check_official_names(names, where: str) -> None:
    """DataError when the official batch files named in ``names`` (basenames) are incomplete."""
    missing = [n for n in ("batches.meta", "test_batch") if n not in names]
    if not any(re.fullmatch(r"data_batch_\d+", n) for n in names):
        missing.insert(0, "data_batch_1")
    if missing:
        raise DataError(
            f"{where} looks like CIFAR-10's python format but lacks {', '.join(missing)}. "
            "The archive or folder is incomplete; download or copy it again."
        )


def find_batches_dir(path: Path) -> Path | None:
    """The folder holding the batch files: ``path`` itself or its ``cifar-10-batches-py`` child."""
    for candidate in (path, path / CIFAR10_DIR_NAME):
        if candidate.is_dir() and any(
            (candidate / n).is_file() for n in ("batches.meta", "data_batch_1", "test_batch")
        ):
            return candidate
    return None


def read_batches_dir(folder: Path, root: Path | None = None, limits=None, only=None) -> dict[str, bytes]:
    """The batch files in ``folder`` by name (``only``: a regex of the names to read).

    Symbolic links must stay inside ``root`` (default: ``folder``), as in any
    data folder; a file over the batch cap is refused before it is read.
    """
    limits = limits or Limits()
    root_real = os.path.realpath(root or folder)
    members = {}
    try:
        if folder.is_symlink():
            follow_link(str(folder), root_real)
        for child in sorted(folder.iterdir()):
            if not OFFICIAL_MEMBER.match(child.name) or (only is not None and not re.fullmatch(only, child.name)):
                continue
            if child.is_symlink():
                try:
                    follow_link(str(child), root_real)
                except OSError as exc:
                    raise DataError(f"Cannot read {child}: {link_problem(str(child), exc)}.") from exc
            if not child.is_file():
                continue
            if child.stat().st_size > limits.max_batch_bytes:
                raise batch_too_large(str(child), child.stat().st_size, limits)
            with open(child, "rb") as f:
                members[child.name] = read_capped(f, limits.max_batch_bytes)
    except TooLarge as exc:
        raise DataError(f"{folder}: a batch file grew past the cap while it was read ({exc}).") from exc
    except OSError as exc:
        raise DataError(f"Cannot read the CIFAR-10 batch files in {folder}: {exc}. Check their permissions.") from exc
    return members


# ---------------------------------------------------------------------------- hashing


def file_digests(path: Path, algorithms=("sha256",), chunk_size: int = 4 << 20) -> dict[str, str]:
    """Hex digests of a file, all computed in one read pass."""
    hashes = {name: hashlib.new(name) for name in algorithms}
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            for h in hashes.values():
                h.update(chunk)
    return {name: h.hexdigest() for name, h in hashes.items()}


# ---------------------------------------------------------------------------- download


def _local_copy_advice(cache_dir: Path) -> str:
    return (
        f"To use a local copy of {CIFAR10_ARCHIVE_NAME} instead, either pass its path as the data "
        f"source (load_dataset('/path/to/{CIFAR10_ARCHIVE_NAME}'), or --data PATH on the command line), "
        f"or put the archive in the cache folder $CIFARKIT_DATA_DIR (now {cache_dir})."
    )


def _move_aside(path: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    aside = path.with_name(f"{CIFAR10_ARCHIVE_NAME}.corrupt-{stamp}")
    n = 1
    while aside.exists():
        aside = path.with_name(f"{CIFAR10_ARCHIVE_NAME}.corrupt-{stamp}-{n}")
        n += 1
    os.replace(path, aside)
    return aside


def _check_official(path: Path, size: int, digests: dict[str, str]) -> str | None:
    """None when the file is the official archive, else a description of the mismatch."""
    if size == CIFAR10_SIZE and digests["md5"] == CIFAR10_MD5:
        return None
    return f"expected {CIFAR10_SIZE:,} bytes with md5 {CIFAR10_MD5}, got {size:,} bytes with md5 {digests['md5']}"


def ensure_official_archive(cache_dir: Path, *, download: bool, progress: bool) -> tuple[Path, str]:
    """Path and sha256 of a verified official archive in ``cache_dir``, downloading it if needed."""
    target = cache_dir / CIFAR10_ARCHIVE_NAME
    if target.is_file():
        digests = file_digests(target, ("md5", "sha256"))
        mismatch = _check_official(target, target.stat().st_size, digests)
        if mismatch is None:
            return target, digests["sha256"]
        aside = _move_aside(target)
        if not download:
            raise DataError(
                f"The cached CIFAR-10 archive {target} is corrupt ({mismatch}); it was moved to {aside}. "
                f"Downloading is disabled (download=False). {_local_copy_advice(cache_dir)}"
            )
    elif not download:
        raise DataError(
            f"CIFAR-10 is not in the cache folder {cache_dir} and downloading is disabled "
            f"(download=False); it would come from {CIFAR10_URL}. {_local_copy_advice(cache_dir)}"
        )
    return _download(target, cache_dir, progress=progress)


def _download(target: Path, cache_dir: Path, *, progress: bool) -> tuple[Path, str]:
    from tqdm.auto import tqdm

    url = CIFAR10_URL
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(
            f"Cannot create the cache folder {cache_dir}: {exc}. Set $CIFARKIT_DATA_DIR or pass cache_dir."
        ) from exc
    fd, tmp_name = tempfile.mkstemp(dir=cache_dir, prefix=f".{CIFAR10_ARCHIVE_NAME}.", suffix=".part")
    tmp = Path(tmp_name)
    md5, sha256, size = hashlib.md5(), hashlib.sha256(), 0
    try:
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
                length = response.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
                with tqdm(
                    total=total,
                    unit="B",
                    unit_scale=True,
                    unit_divisor=1024,
                    desc=f"Downloading {CIFAR10_ARCHIVE_NAME}",
                    disable=not progress,
                ) as bar:
                    while chunk := response.read(1 << 20):
                        out.write(chunk)
                        md5.update(chunk)
                        sha256.update(chunk)
                        size += len(chunk)
                        bar.update(len(chunk))
        except urllib.error.HTTPError as exc:
            raise DataError(
                f"Could not download CIFAR-10 from {url}: the server answered HTTP {exc.code} {exc.reason}. "
                f"{_local_copy_advice(cache_dir)}"
            ) from exc
        except (TimeoutError, urllib.error.URLError, ConnectionError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise DataError(
                f"Could not download CIFAR-10 from {url} ({reason}). This machine may have no network "
                f"access. {_local_copy_advice(cache_dir)}"
            ) from exc
        mismatch = _check_official(tmp, size, {"md5": md5.hexdigest()})
        if mismatch is not None:
            aside = _move_aside(tmp)
            raise DataError(
                f"The file downloaded from {url} is not the official CIFAR-10 archive ({mismatch}). "
                f"It was moved to {aside} and not used. Try again (the download may have been cut short "
                f"or altered by a proxy). {_local_copy_advice(cache_dir)}"
            )
        os.replace(tmp, target)
        return target, sha256.hexdigest()
    finally:
        if tmp.exists():
            tmp.unlink()
