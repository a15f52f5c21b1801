"""Hostile but ordinary inputs to the data layer: each gives a clear error, a counted skip or the right result.

Every case builds its own tiny data in ``tmp_path``: decompression bombs (zero-filled members streamed into
the archive, so building them stays light), archive headers that lie, folders with symbolic links in and out
of the root and link loops, CIFAR-10 batches with float labels or no images, classes too small for the
requested split, members over the size caps. Each case asserts its exact outcome, and that nothing was
written outside ``tmp_path`` and the per-test cache folder. The bomb cases run the load in a subprocess and
assert its peak memory (``VmHWM`` of ``/proc/self/status``) stays far below what the bomb inflates to.
"""

from __future__ import annotations

import functools
import io
import json
import os
import pickle
import re
import struct
import subprocess
import sys
import tarfile
import textwrap
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/ is not a package
from test_data_helpers import noise_folder, noise_png, official_meta, write_files, write_tar, write_zip  # noqa: E402

from cifarkit.data import CIFAR10_CLASSES, DataError, load_dataset, peek_class_names  # noqa: E402
from cifarkit.data import decode as decode_module  # noqa: E402

GIB, MIB = 1 << 30, 1 << 20
_ZEROS = bytes(MIB)
NS = {"val_fraction": 0.0, "test_fraction": 0.0}  # no validation or test split

# ---------------------------------------------------------------------------- builders


class _Zeros:
    """``n`` zero bytes as a file, never held in memory at once."""

    def __init__(self, n: int):
        self.left = n

    def read(self, n: int) -> bytes:
        n = min(n, self.left)
        self.left -= n
        return bytes(n)


def _images(prefix="d/", classes=("a", "b"), per_class=5) -> list[tuple[str, bytes]]:
    return [(f"{prefix}{c}/{i}.png", noise_png(10 * k + i)) for k, c in enumerate(classes) for i in range(per_class)]


def zip_with_zeros(path: Path, members, zero_name: str, zero_size: int) -> Path:
    """A zip of ``members`` plus one member of ``zero_size`` zero bytes, deflated as it is streamed in."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        with zf.open(zero_name, "w") as w:
            for _ in range(zero_size // MIB):
                w.write(_ZEROS)
        for name, data in members:
            zf.writestr(name, data)
    return path


def tar_with_zeros(path: Path, members, zero_name: str, zero_size: int) -> Path:
    """A tar.gz of one member of ``zero_size`` zero bytes (first: reading the others streams past it) + ``members``."""
    with tarfile.open(path, "w:gz", compresslevel=1) as tar:
        for name, size, data in [(zero_name, zero_size, _Zeros(zero_size))] + [(n, len(b), b) for n, b in members]:
            info = tarfile.TarInfo(name)
            info.size = size
            tar.addfile(info, io.BytesIO(data) if isinstance(data, bytes) else data)
    return path


def patch_zip_sizes(path: Path, name: str, file_size: int) -> Path:
    """Make the zip's headers (central directory and local) declare ``file_size`` for ``name``: a lying header."""
    with zipfile.ZipFile(path) as zf:
        pos, count = zf.start_dir, len(zf.infolist())
    data = bytearray(path.read_bytes())
    for _ in range(count):  # walk the central directory, record by record
        assert data[pos : pos + 4] == b"PK\x01\x02"
        n_name, n_extra, n_comment = struct.unpack_from("<HHH", data, pos + 28)
        if bytes(data[pos + 46 : pos + 46 + n_name]) == name.encode():
            struct.pack_into("<I", data, pos + 24, file_size)
            struct.pack_into("<I", data, struct.unpack_from("<I", data, pos + 42)[0] + 22, file_size)
        pos += 46 + n_name + n_extra + n_comment
    path.write_bytes(bytes(data))
    return path


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width x height`` pixels (a pixel-count bomb), with no pixel data worth decoding."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def cifar_members(train_labels, test_labels=(0, 1), names="ab", n_batches=1) -> dict[str, bytes]:
    """CIFAR-10 batch files with the labels as given (any type), 32x32 noise images."""

    def batch(labels) -> bytes:
        x = np.random.default_rng(len(labels)).integers(0, 256, size=(len(labels), 3072), dtype=np.uint8)
        return pickle.dumps({b"batch_label": b"b", b"labels": labels, b"data": x, b"filenames": []}, protocol=2)

    members = {f"data_batch_{k + 1}": batch(train_labels if k == 0 else []) for k in range(n_batches)}
    return {**members, "test_batch": batch(test_labels), "batches.meta": official_meta(list(names))}


def cifar(tmp_path: Path, *args, drop=None, **kwargs) -> Path:
    """A CIFAR-10 python archive of :func:`cifar_members` (less the member ``drop``)."""
    members = [(f"cifar-10-batches-py/{n}", b) for n, b in cifar_members(*args, **kwargs).items() if n != drop]
    return write_tar(tmp_path / "c.tar.gz", members)


def symlink(link: Path, target) -> Path:
    link.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, link)
    return link


def ab(tmp_path, n=5, prefix="") -> Path:
    """A folder of two classes, ``a`` and ``b``, of ``n`` noise images each."""
    return noise_folder(tmp_path / "f", {"a": n, "b": n}, prefix=prefix)


def linked(tmp_path, link: str, target, prefix="") -> Path:
    """:func:`ab` plus one symbolic link; a callable target is built first (and returns the link's target)."""
    root = ab(tmp_path, prefix=prefix)
    symlink(root / link, target(tmp_path) if callable(target) else target)
    return root


def outside(tmp_path) -> Path:
    return write_files(tmp_path / "outside", {"secret.png": noise_png(99)}) / "secret.png"


def big(tmp_path, name="a/huge.png", archive=None, lie=None) -> Path:
    """:func:`ab`'s images (in ``d/`` for an archive) plus one of 12 KiB; ``lie``: the size a zip header claims."""
    members = _images() + [(f"d/{name}", noise_png(0, size=(64, 64)))]
    if archive is None:
        return write_files(tmp_path / "f", {n[2:]: b for n, b in members})
    path = (write_zip if archive == "zip" else write_tar)(tmp_path / f"d.{archive}", members)
    return patch_zip_sizes(path, f"d/{name}", lie) if lie else path


# ---------------------------------------------------------------------------- cases


def C(source, expect, env=None, peek=False, **kwargs) -> dict:
    """A case: ``source`` and the keyword arguments of the call, its environment and expected outcome."""
    return {"source": source, "expect": expect, "env": env or {}, "peek": peek, "kwargs": kwargs}


def E(exc, pattern):
    """Expect ``exc`` with a message matching ``pattern``."""
    return ("raises", exc, pattern)


def L(train, val=0, test=0, skipped=(), names=None):
    """Expect a dataset of these counts, exactly these ``(path suffix, reason regex)`` skips, these class names."""
    return ("loads", {"train": train, "val": val, "test": test}, list(skipped), names)


OUT = r"refusing to follow the symbolic link .*/f/{} -> {}: it resolves to .*, outside the data folder"
LOOP = r"^symbolic link loop: "
NEED = r"a class needs at least 5 images so that {} each get one of its images"
LABELS = r"data_batch_1: 'labels' must be integer class indices, got {} values \(e\.g\. {}\)"
CAP = r"^TooLarge: {} (on disk|uncompressed), over the per-image cap of {}"
SHAPES = ["circle", "square", "triangle", "cross"]
CASES = {
    # Symbolic links in folders: outside the root refused, inside kept, loops and dangling links skipped.
    "link-file-outside-absolute": lambda t: C(
        linked(t, "a/evil.png", outside), E(DataError, OUT.format(r"a/evil\.png", r".*/outside/secret\.png"))
    ),
    "link-file-outside-relative": lambda t: C(
        linked(t, "a/evil.png", lambda t: outside(t) and "../../outside/secret.png"),
        E(DataError, OUT.format(r"a/evil\.png", r"\.\./\.\./outside/secret\.png")),
    ),
    "link-class-dir-outside": lambda t: C(
        linked(t, "c", lambda t: noise_folder(t / "x", {"c": 5}) / "c"), E(DataError, OUT.format("c", ".*/x/c"))
    ),
    "link-split-dir-outside": lambda t: C(
        linked(t, "test", lambda t: noise_folder(t / "x", {"a": 2, "b": 2}), "train/"),
        E(DataError, OUT.format("test", ".*/x")),
    ),
    "link-file-inside-root-kept": lambda t: C(linked(t, "a/copy.png", "../b/0000.png"), L(11), **NS),
    "link-class-dir-inside-root-kept": lambda t: C(linked(t, "c", "a"), L(15, names=["a", "b", "c"]), **NS),
    "link-loop-self": lambda t: C(linked(t, "a/l.png", "l.png"), L(10, skipped=[("a/l.png", LOOP)]), **NS),
    "link-loop-dir-to-root": lambda t: C(
        linked(t, "a/up", ".."), L(10, skipped=[("a/up", LOOP + r".* -> \.\. leads back to .*/f, a folder")]), **NS
    ),
    "link-dangling": lambda t: C(
        linked(t, "a/x.png", "no.png"), L(10, skipped=[("a/x.png", r"^broken symbolic link .*x\.png -> no\.png")]), **NS
    ),
    "root-is-link-loop": lambda t: C(symlink(t / "l", "l"), E(DataError, r"/l is a symbolic link loop")),
    "root-is-dangling-link": lambda t: C(
        symlink(t / "d", t / "gone"), E(FileNotFoundError, r"/d \(a symbolic link to .*/gone, which does not exist\)")
    ),
    "root-is-link-to-folder-elsewhere": lambda t: C(symlink(t / "d", ab(t)), L(6, 2, 2)),
    # Splits that cannot be made are refused, naming the small classes and what they need.
    "split-120-classes-of-3": lambda t: C(
        noise_folder(t / "f", {f"c{k:03d}": 3 for k in range(120)}),
        E(DataError, "120 of 120 classes .*" + NEED.format("validation, test and training") + r".*\(3\) and 110 more"),
    ),
    "split-one-small-class": lambda t: C(
        noise_folder(t / "f", {"a": 20, "b": 20, "c": 2}), E(DataError, r"1 of 3 classes .*\(images\): 'c' \(2\)\.")
    ),
    "split-val-from-given-train": lambda t: C(
        noise_folder(ab(t, 3, "train/"), {"a": 2, "b": 2}, prefix="test/"),
        E(DataError, r"\(val_fraction=0\.1\): " + NEED.format("validation and training")),
    ),
    "split-test-from-given-train": lambda t: C(
        noise_folder(ab(t, 3, "train/"), {"a": 2, "b": 2}, prefix="val/"),
        E(DataError, r"\(test_fraction=0\.1\): " + NEED.format("test and training")),
    ),
    "split-small-classes-no-val-test": lambda t: C(ab(t, 3), L(6), **NS),
    "split-small-classes-large-fractions": lambda t: C(ab(t, 3), L(2, 2, 2), val_fraction=0.34, test_fraction=0.34),
    "split-subset-of-one": lambda t: C(ab(t), L(2, 2, 2), subset=1),
    "split-synthetic-4": lambda t: C("synthetic:4", E(DataError, r"^synthetic:4 \(4 images per class\): 4 of 4")),
    "split-synthetic-40": lambda t: C("synthetic:40", L(128, 16, 16, names=SHAPES)),
    "split-cifar-batches-too-small": lambda t: C(
        cifar(t, [0, 1] * 3), E(DataError, r"\(training batches\): 2 of 2 .*\(val_fraction=0\.1\)")
    ),
    "split-cifar-class-without-training-image": lambda t: C(
        cifar(t, [0, 0, 0]), E(DataError, r"1 of 2 .* so that training gets one .*'b' \(0\)"), **NS
    ),
    # CIFAR-10 batches: labels must be integers; empty training or test batches are refused.
    "cifar-float-labels": lambda t: C(cifar(t, [0.0, 1.0, 0.5]), E(DataError, LABELS.format("float64", r"0\.5"))),
    "cifar-whole-float-labels": lambda t: C(
        cifar(t, [0.0, 1.0]), E(DataError, LABELS.format("float64", r"0\.0") + r".*\[int\(v\) for v in labels\]")
    ),
    "cifar-float32-array-labels": lambda t: C(
        cifar(t, np.array([0, 1], np.float32)), E(DataError, LABELS.format("float32", r"0\.0"))
    ),
    "cifar-bool-labels": lambda t: C(cifar(t, [True, False]), E(DataError, LABELS.format("bool", "True"))),
    "cifar-int32-labels-accepted": lambda t: C(
        cifar(t, np.array([1, 0, 1], np.int32), np.array([0, 1], np.uint8)), L(3, 0, 2, names=["a", "b"]), **NS
    ),
    "cifar-empty-training-batches": lambda t: C(
        cifar(t, [], n_batches=5), E(DataError, r"training batches \(data_batch_1, .*_5\) hold no images"), **NS
    ),
    "cifar-empty-test-batch": lambda t: C(
        cifar(t, [0, 1], []), E(DataError, r"the test batches \(test_batch\) hold no images"), **NS
    ),
    "cifar-batch-over-batch-cap": lambda t: C(
        cifar(t, [0, 1] * 20),
        E(DataError, r"data_batch_1 is \d+\.\d KiB, more than a CIFAR-10 batch .*\(cap 1\.0 KiB.*_MAX_BATCH_BYTES"),
        env={"CIFARKIT_MAX_BATCH_BYTES": "1KiB"},
    ),
    # Size caps and lying headers: oversize members are skipped with the reason; totals over the cap refused.
    "cap-folder-file": lambda t: C(
        big(t),
        L(10, skipped=[("a/huge.png", CAP.format(r"12\.\d KiB", r"8\.0 KiB") + ".*max_image_bytes=")]),
        max_image_bytes=8192,
        **NS,
    ),
    "cap-zip-member-from-env": lambda t: C(
        big(t, archive="zip"),
        L(10, skipped=[("d.zip::d/a/huge.png", CAP.format(r"12\.\d KiB", r"8\.0 KiB"))]),
        env={"CIFARKIT_MAX_IMAGE_BYTES": "8KiB"},
        **NS,
    ),
    "cap-tar-member": lambda t: C(
        big(t, "b/h.png", "tgz"),
        L(10, skipped=[("d.tgz::d/b/h.png", CAP.format(".*", r"8\.0 KiB"))]),
        **NS,
        max_image_bytes="8 KiB",
    ),
    "cap-raised-admits-the-file": lambda t: C(big(t), L(11), env={"CIFARKIT_MAX_IMAGE_BYTES": "16KiB"}, **NS),
    "cap-strict-raises": lambda t: C(
        big(t), E(DataError, r"huge\.png \(TooLarge: .*strict=False"), max_image_bytes=8192, strict=True, **NS
    ),
    "zip-header-claims-1gib-holds-12kib": lambda t: C(
        big(t, archive="zip", lie=GIB), L(10, skipped=[("::d/a/huge.png", CAP.format(r"1\.0 GiB", r"64\.0 MiB"))]), **NS
    ),
    "png-pixel-bomb-header": lambda t: C(
        write_files(ab(t), {"b/bomb.png": png_claiming(100_000, 100_000)}),
        L(10, skipped=[("b/bomb.png", r"^DecompressionBombError: Image size \(10000000000 pixels\) exceeds limit")]),
        **NS,
    ),
    "cap-env-garbage": lambda t: C(
        ab(t),
        E(ValueError, r"\$CIFARKIT_MAX_IMAGE_BYTES must be a positive number of bytes.*'lots'"),
        env={"CIFARKIT_MAX_IMAGE_BYTES": "lots"},
    ),
    "zip-total-over-cap": lambda t: C(
        write_zip(t / "d.zip", _images()),
        E(DataError, r"total cap of 10\.0 KiB uncompressed \(its 10 members declare .*or \$CIFARKIT_MAX_TOTAL_BYTES"),
        max_total_bytes=10240,
    ),
    "tar-total-over-cap-from-env": lambda t: C(
        write_tar(t / "d.tgz", _images()),
        E(DataError, r"d\.tgz holds more than the total cap of 10\.0 KiB uncompressed \(member 'd/a/\d\.png' is"),
        env={"CIFARKIT_MAX_TOTAL_BYTES": "10KiB"},
    ),
    # peek_class_names: the names from listings and batches.meta only; the same errors as load_dataset.
    "peek-folder": lambda t: C(noise_folder(t / "f", {"b": 1, "a": 1}, "train/"), ("names", ["a", "b"]), peek=True),
    "peek-zip": lambda t: C(write_zip(t / "d.zip", _images(per_class=1)), ("names", ["a", "b"]), peek=True),
    "peek-cifar-archive": lambda t: C(cifar(t, [0, 1], names="xyz"), ("names", ["x", "y", "z"]), peek=True),
    "peek-cifar-dir": lambda t: C(
        write_files(t / "c" / "cifar-10-batches-py", cifar_members([0], names="pq")), ("names", ["p", "q"]), peek=True
    ),
    "peek-synthetic": lambda t: C("synthetic:7", ("names", SHAPES), peek=True),
    "peek-cifar10-without-download": lambda t: C(None, ("names", list(CIFAR10_CLASSES)), peek=True),
    "peek-missing-path": lambda t: C(t / "nowhere", E(FileNotFoundError, r"source not found: .*/nowhere"), peek=True),
    "peek-link-outside": lambda t: C(
        linked(t, "b/e.png", outside), E(DataError, OUT.format(r"b/e\.png", ".*")), peek=True
    ),
    "peek-cifar-archive-incomplete": lambda t: C(
        cifar(t, [0, 1], drop="test_batch"), E(DataError, r"lacks test_batch"), peek=True
    ),
    "peek-split-too-small": lambda t: C(
        ab(t, 3), E(DataError, r"2 of 2 .*\(val_fraction=0\.2, test_fraction=0\.1\)"), peek=True, val_fraction=0.2
    ),
}


def _zip_link_with_huge_target(tmp_path):
    with zipfile.ZipFile(tmp_path / "d.zip", "w") as zf:
        for name, data in _images():
            zf.writestr(name, data)
        info = zipfile.ZipInfo("d/a/link.png")
        info.external_attr = 0o120777 << 16  # a symbolic link: its data is the target path
        zf.writestr(info, "x/" * MIB)
    return C(tmp_path / "d.zip", E(DataError, r"'d/a/link\.png' is a symbolic link whose target is over 4096 bytes"))


def _tar_header_claims_more_than_the_file_holds(tmp_path):
    with tarfile.open(tmp_path / "d.tar", "w") as tar:
        for name, data in _images() + [("d/a/huge.png", None)]:
            info = tarfile.TarInfo(name)
            info.size = GIB if data is None else len(data)
            tar.addfile(info, None if data is None else io.BytesIO(data))  # huge.png: its header only
    return C(tmp_path / "d.tar", E(DataError, r"d\.tar is truncated or corrupt \(ReadError: unexpected end of data\)"))


CASES["zip-link-member-with-huge-target"] = _zip_link_with_huge_target
CASES["tar-header-claims-more-than-the-file-holds"] = _tar_header_claims_more_than_the_file_holds

# ---------------------------------------------------------------------------- running the cases

_WRITES: list | None = None  # while a case runs: every path opened for writing, created, renamed or removed
_WRITE_EVENTS = {"os.mkdir", "os.rename", "os.remove", "os.rmdir", "os.symlink", "os.link", "os.truncate"}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def _audit(event, args):
    if _WRITES is None:
        return
    if event == "open":
        path, mode, flags = args
        writes = any(c in mode for c in "wax+") if isinstance(mode, str) else bool((flags or 0) & _WRITE_FLAGS)
        if writes and not isinstance(path, int):
            _WRITES.append(os.fsdecode(path))
    elif event in _WRITE_EVENTS:
        paths = args[:2] if event in ("os.rename", "os.symlink", "os.link") else args[:1]
        _WRITES.extend(os.fsdecode(p) for p in paths if isinstance(p, (str, bytes, os.PathLike)))


sys.addaudithook(_audit)


def _run_recording_writes(call, *args, **kwargs):
    """``(result or the exception raised, paths written)``."""
    global _WRITES
    _WRITES = []
    try:
        return call(*args, **kwargs), _WRITES
    except Exception as exc:  # the cases' expected errors; checked by the caller
        return exc, _WRITES
    finally:
        _WRITES = None


def _check_loaded(ds, counts, skipped, names):
    assert ds.counts() == counts
    got = sorted((str(p), r) for p, r in ds.skipped)
    assert len(got) == len(skipped), got
    for (path, reason), (suffix, pattern) in zip(got, sorted(skipped)):
        assert path.endswith(suffix) and re.search(pattern, reason), (path, reason, suffix, pattern)
    assert names is None or ds.class_names == names
    for split in ("train", "val", "test"):
        x, y = ds.split(split)
        assert x.dtype == np.uint8 and x.shape[1:] == (32, 32, 3) and len(y) == len(x)


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_input(name, tmp_path, monkeypatch):
    case = CASES[name](tmp_path)
    for key, value in case["env"].items():
        monkeypatch.setenv(key, value)
    if case["peek"]:  # peeking never decodes an image nor parses a data batch
        monkeypatch.setattr(decode_module, "decode_image", lambda *a: pytest.fail("peek decoded an image"))
        monkeypatch.setattr("cifarkit.data.cifar10.parse_batch", lambda *a: pytest.fail("peek parsed a batch"))
    call = peek_class_names if case["peek"] else functools.partial(load_dataset, progress=False)
    result, writes = _run_recording_writes(call, case["source"], **case["kwargs"])
    roots = [os.path.realpath(p) for p in (tmp_path, os.environ["CIFARKIT_DATA_DIR"])]
    outside_roots = [p for p in writes if not any((os.path.realpath(p) + os.sep).startswith(r + os.sep) for r in roots)]
    assert outside_roots == [], f"written outside {roots}"
    if case["expect"][0] == "loads" and not str(case["source"]).startswith("synthetic"):
        assert any("decoded" in p for p in writes)  # the recorder sees the decode cache being written
    kind, *expect = case["expect"]
    if kind == "raises":
        assert type(result) is expect[0] and re.search(expect[1], str(result)), repr(result)
    elif isinstance(result, Exception):
        raise result
    elif kind == "names":
        assert result == expect[0]
    else:
        _check_loaded(result, *expect)


def test_there_are_at_least_30_hostile_cases():
    assert len(CASES) >= 30


# ---------------------------------------------------------------------------- bombs, with peak memory


_PROBE = textwrap.dedent(
    """
    import json, sys
    from cifarkit.data import DataError, load_dataset
    try:
        ds = load_dataset(sys.argv[1], progress=False, val_fraction=0.0, test_fraction=0.0)
        skips = "; ".join(f"{p}: {r}" for p, r in ds.skipped)
        outcome = f"{'/'.join(str(n) for n in ds.counts().values())} loaded; {len(ds.skipped)} skipped: {skips}"
    except (DataError, FileNotFoundError) as exc:
        outcome = f"{type(exc).__name__}: {exc}"
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over fork and exec, so a child of a big test process
    # would report the parent's size; VmHWM is this process's own peak resident set.
    with open("/proc/self/status") as f:
        peak_kib = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    print(json.dumps([outcome, peak_kib / 1024]))
    """
)


def _load_in_subprocess(tmp_path: Path, source: Path, env: dict) -> tuple[str, float]:
    """``(outcome, peak RSS in MiB)`` of a load in a fresh interpreter whose cache, temp, home and working
    folders all lie in ``tmp_path`` (and stay empty but for the cache)."""
    folders = {name: tmp_path / name for name in ("cache", "tmp", "home", "cwd")}
    for folder in folders.values():
        folder.mkdir()
    paths = {"CIFARKIT_DATA_DIR": str(folders["cache"]), "TMPDIR": str(folders["tmp"]), "HOME": str(folders["home"])}
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(source)],
        env={**os.environ, **paths, **env},
        cwd=folders["cwd"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert [p for name in ("tmp", "home", "cwd") for p in folders[name].iterdir()] == []
    return tuple(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.fixture(scope="module")
def bombs(tmp_path_factory):
    """1 GiB zero members (a few MiB on disk each) beside 10 small images, built once for the module."""
    folder = tmp_path_factory.mktemp("bombs")
    tar = tar_with_zeros(folder / "bomb.tar.gz", _images(), "d/b/zeros.png", GIB)
    gz_liar = folder / "gzip-trailer-lies.tar.gz"
    gz_liar.write_bytes(tar.read_bytes()[:-4] + (1000).to_bytes(4, "little"))  # claims 1000 bytes uncompressed
    return {
        "zip": zip_with_zeros(folder / "bomb.zip", _images(), "d/a/zeros.png", GIB),
        "zip-liar": patch_zip_sizes(  # its headers claim 1000 bytes; it inflates to 1 GiB
            zip_with_zeros(folder / "liar.zip", _images(), "d/a/liar.png", GIB), "d/a/liar.png", 1000
        ),
        "tar": tar,
        "gz-liar": gz_liar,
        "cifar": tar_with_zeros(folder / "cifar-bomb.tar.gz", [], "cifar-10-batches-py/data_batch_1", GIB),
    }


TOTAL = r"^DataError: Archive .* holds more than the total cap of 512\.0 MiB uncompressed \({}.*max_total_bytes= or \$CIFARKIT_MAX"
BOMB_CASES = {  # bomb, environment, outcome, peak RSS limit (MiB); every bomb inflates to 1024 MiB
    "zip-member-1gib": (
        "zip",
        {},
        r"^10/0/0 loaded; 1 skipped: .*::d/a/zeros\.png: TooLarge: 1\.0 GiB uncompressed, over the per-image cap of 64\.0 MiB",
        200,
    ),
    "tar-gz-member-1gib-streamed-past": (
        "tar",
        {},
        r"^10/0/0 loaded; 1 skipped: .*::d/b/zeros\.png: TooLarge: 1\.0 GiB uncompressed",
        200,
    ),
    "zip-member-inflates-past-header": (
        "zip-liar",
        {},
        r"^10/0/0 loaded; 1 skipped: .*::d/a/liar\.png: BadZipFile: Bad CRC-32",
        200,
    ),
    # The trailer's lie costs one in-memory decompression attempt up to its 256 MiB budget, then it is streamed.
    "tar-gz-trailer-lies": ("gz-liar", {}, r"^10/0/0 loaded; 1 skipped: .*::d/b/zeros\.png: TooLarge: 1\.0 GiB", 400),
    "zip-over-total-cap": (
        "zip",
        {"CIFARKIT_MAX_TOTAL_BYTES": "512MiB"},
        TOTAL.format(r"its 11 members declare 1\.0 GiB"),
        200,
    ),
    "tar-gz-over-total-cap": (
        "tar",
        {"CIFARKIT_MAX_TOTAL_BYTES": "512MiB"},
        TOTAL.format(r"member 'd/b/zeros\.png' is 1\.0 GiB"),
        200,
    ),
    "cifar-batch-1gib": (
        "cifar",
        {},
        r"^DataError: .*data_batch_1 is 1\.0 GiB, more than a CIFAR-10 batch file can be",
        200,
    ),
}


@pytest.mark.parametrize("name", sorted(BOMB_CASES))
def test_bomb_in_bounded_memory(name, bombs, tmp_path):
    bomb, env, expected, limit_mib = BOMB_CASES[name]
    outcome, peak_mib = _load_in_subprocess(tmp_path, bombs[bomb], env)
    assert re.search(expected, outcome, re.S), outcome
    assert peak_mib < limit_mib, f"peak RSS {peak_mib:.0f} MiB"
