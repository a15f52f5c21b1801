"""Shared test fixtures.

Every test gets its own data cache (``CIFARKIT_DATA_DIR`` in a temp dir), so no test
reads or writes the user's cache. Tests on real images use the shared CIFAR-10 JPEG
archive beside the checkout and skip, with the reason, when it is absent.
"""

import os
from pathlib import Path

import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")

REPO = Path(__file__).resolve().parents[1]
SHARED_ARCHIVE = REPO.parent / "shared" / "datasets" / "cifar10-jpeg.tar.gz"


@pytest.fixture(autouse=True)
def _isolated_data_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("CIFARKIT_DATA_DIR", str(tmp_path_factory.mktemp("cifarkit-cache")))


@pytest.fixture
def shared_archive():
    if not SHARED_ARCHIVE.is_file():
        pytest.skip(
            f"real-image test: {SHARED_ARCHIVE} is absent (CI and the dev machines have it beside the checkout)"
        )
    return SHARED_ARCHIVE


@pytest.fixture(scope="session")
def smoke_study(tmp_path_factory):
    """The whole study in the smoke profile on tiny synthetic data, run once and shared by the notebook tests."""
    from cifarkit.report import runner

    out = tmp_path_factory.mktemp("smoke-study")
    os.environ["CIFARKIT_DATA_DIR"] = str(tmp_path_factory.mktemp("smoke-cache"))
    return runner.run_study("smoke", data=SMOKE_DATA, out=out, log=lambda *a: None)


SMOKE_DATA = "synthetic:40"
