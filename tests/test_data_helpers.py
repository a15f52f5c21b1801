"""Helpers and fixtures shared by the ``tests/test_data*.py`` files (no tests here).

Fixtures are imported by name into each test module (``tests/conftest.py``
belongs to the whole project). Every test writes its data under ``tmp_path``
and every cache lives under ``tmp_path`` too, never in the user's cache.
"""

from __future__ import annotations

import contextlib
import http.server
import io
import os
import pickle
import socket
import tarfile
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SHARED_ARCHIVE = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "cifar10-jpeg.tar.gz"
SHARED_ARCHIVE_SHA256 = "b215d45e51121fd309686efffe2998e003a79756f22ad7671c80bc14564b4c2a"
requires_shared_archive = pytest.mark.skipif(
    not SHARED_ARCHIVE.is_file(),
    reason=f"shared CIFAR-10 JPEG archive not found at {SHARED_ARCHIVE} (../shared beside the checkout)",
)


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch):
    """Point $CIFARKIT_DATA_DIR at a fresh folder so no test touches the user's cache."""
    cache = tmp_path / "cifarkit-cache"
    monkeypatch.setenv("CIFARKIT_DATA_DIR", str(cache))
    return cache


def image_bytes(img: Image.Image, fmt: str, **save_args) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **save_args)
    return buf.getvalue()


def solid_png(colour, size=(32, 32)) -> bytes:
    return image_bytes(Image.new("RGB", size, tuple(colour)), "PNG")


def noise_png(seed: int, size=(32, 32)) -> bytes:
    """A PNG of random pixels, distinct for each seed (to tell images apart after loading)."""
    a = np.random.default_rng(seed).integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    return image_bytes(Image.fromarray(a), "PNG")


def write_files(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return root


def noise_folder(root: Path, counts: dict[str, int], prefix: str = "") -> Path:
    """``root/<prefix><class>/<i>.png`` of distinct noise images, ``counts[class]`` per class."""
    files, seed = {}, 0
    for cls, n in counts.items():
        for i in range(n):
            files[f"{prefix}{cls}/{i:04d}.png"] = noise_png(seed)
            seed += 1
    return write_files(root, files)


def write_tar(path: Path, members, mode: str = "w:gz") -> Path:
    """Write a tar from ``(name, bytes)`` files, ``(name, None)`` folders and ``(name, ("sym"|"hard", target))`` links."""
    with tarfile.open(path, mode) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif isinstance(data, tuple):
                info.type = tarfile.SYMTYPE if data[0] == "sym" else tarfile.LNKTYPE
                info.linkname = data[1]
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path


def write_zip(path: Path, members) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members:
            zf.writestr(zipfile.ZipInfo(name), data)
    return path


def official_batch(x: np.ndarray, y, label: bytes = b"batch") -> bytes:
    """One batch file as CIFAR-10 has it: uint8 rows of 1024 R, 1024 G, 1024 B values."""
    rows = np.ascontiguousarray(x.transpose(0, 3, 1, 2).reshape(len(x), 3072))
    return pickle.dumps(
        {b"batch_label": label, b"labels": [int(v) for v in y], b"data": rows, b"filenames": []}, protocol=2
    )


def official_meta(names) -> bytes:
    return pickle.dumps(
        {b"label_names": [n.encode() for n in names], b"num_cases_per_batch": 1, b"num_vis": 3072}, protocol=2
    )


class _System:
    """Pickles to ``os.system(command)``: what a malicious pickle does."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def poisoned_pickle(marker: Path) -> bytes:
    return pickle.dumps({b"data": _System(f"touch {marker}"), b"labels": []}, protocol=2)


class CountingServer:
    """A real HTTP server on 127.0.0.1 serving one payload at every path, counting requests."""

    def __init__(self, payload: bytes, status: int = 200):
        self.payload = payload
        self.status = status
        self.requests: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's naming
                server.requests.append(self.path)
                self.send_response(server.status)
                body = server.payload if server.status == 200 else b"not found"
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/cifar-10-python.tar.gz"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused)."""
    with contextlib.closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/cifar-10-python.tar.gz"
