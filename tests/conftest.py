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
    return runner.run_study("smoke", data=SMOKE_DATA, out=out, log=lambda *a: _SMOKE_STUDY_LOG.append(" ".join(a)))


@pytest.fixture(scope="session")
def smoke_study_log(smoke_study):
    """What the smoke study printed, a line per call of its log (the estimate, progress, the summary)."""
    return list(_SMOKE_STUDY_LOG)


SMOKE_DATA = "synthetic:40"
_SMOKE_STUDY_LOG: list[str] = []


def load_script(path: Path, name: str):
    """A script of ``benchmarks/`` imported as a module under ``name`` (it is not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def require_tool(tool: str) -> str:
    """The path of ``chromium`` (as the renderer finds it), ``chromedriver`` or a poppler tool; skip without it,
    fail on CI (``CIFARKIT_REQUIRE_SERVICES=1``)."""
    import shutil

    from cifarkit.report import render

    path = render.find_chromium() if tool == "chromium" else shutil.which(tool)
    if path:
        return path
    message = f"{tool} is not installed (apt-get install chromium chromium-driver poppler-utils)"
    if os.environ.get("CIFARKIT_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{message}, and CIFARKIT_REQUIRE_SERVICES=1 requires it")
    pytest.skip(message)


@pytest.fixture(scope="module")
def chromium_driver(tmp_path_factory):
    """A real headless Chromium driven by Selenium through the Debian chromedriver (no download)."""
    chromium, chromedriver = require_tool("chromium"), require_tool("chromedriver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    from cifarkit.report.render import CHROMIUM_FLAGS

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in (
        *CHROMIUM_FLAGS,
        "--window-size=1280,1400",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    yield driver
    driver.quit()
