"""Shared test fixtures.

Every test gets its own data cache (``CIFARKIT_DATA_DIR`` in a temp dir), so no test
reads or writes the user's cache. Tests on real images use the shared CIFAR-10 JPEG
archive beside the checkout and skip, with the reason, when it is absent.
"""

import os
import pickle
import signal
import time
from pathlib import Path

import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
# Under pytest-xdist (`make test`: one worker per core) each worker, and the kernels and scripts it starts, gets
# its share of the cores, so that workers do not oversubscribe them (set before anything imports PyTorch).
if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
    os.environ.setdefault(
        "OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])))
    )

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
    """The whole study in the smoke profile on tiny synthetic data, run once and shared by the notebook tests.

    Under pytest-xdist (``make test`` runs ``pytest -n auto``) the first worker that needs it runs it while
    holding a lock in the test run's shared temp folder, and the others read its result from there.
    """
    from cifarkit.files import atomic_write_bytes

    run_uid = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    try:
        import fcntl
    except ImportError:  # not POSIX: each worker runs its own
        fcntl = None
    if not run_uid or fcntl is None:
        return _run_smoke_study(tmp_path_factory)
    shared = tmp_path_factory.getbasetemp().parent / f"smoke-study-{run_uid}"
    shared.mkdir(exist_ok=True)
    done = shared / "result.pickle"
    with open(shared / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done.is_file():
            result, log = pickle.loads(done.read_bytes())
            _SMOKE_STUDY_LOG[:] = log
            return result
        result = _run_smoke_study(tmp_path_factory)
        atomic_write_bytes(done, pickle.dumps((result, list(_SMOKE_STUDY_LOG))))
        return result


def _run_smoke_study(tmp_path_factory):
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


def readme_table_rows(table: list[str]) -> list[str]:
    """Check that README.md holds ``table`` (a script's ``--summary``: header lines, then rows) line for line, with no
    row after it that the script did not print; returns the table's rows (its lines after the two header lines)."""
    readme = (REPO / "README.md").read_text().splitlines()
    start = readme.index(table[0])
    assert readme[start : start + len(table)] == table
    assert not readme[start + len(table)].startswith("|")  # no row the records do not hold
    return table[2:]


def assert_resumes_to_the_same_numbers(dataset, config, out: Path, timing_keys) -> None:
    """Train ``config`` (3 epochs, deterministic) whole, and again cut after epoch 2's checkpoint and restarted in
    the same folder: the history without ``timing_keys`` and the test loss must be the same."""
    from cifarkit.training import train

    full = train(dataset, config, out / "full", progress=False)

    class Interrupted(Exception):
        pass

    def stop_after_two(record):
        if record["epoch"] == 2:
            raise Interrupted  # after the epoch's checkpoint: as a kill between epochs

    with pytest.raises(Interrupted):
        train(dataset, config, out / "cut", progress=False, callbacks=[stop_after_two])
    again = train(dataset, config, out / "cut", progress=False)

    def strip(history):
        return [{k: v for k, v in row.items() if k not in timing_keys} for row in history]

    assert len(again.history) == 3 and strip(again.history) == strip(full.history)
    assert again.metrics["test_loss"] == full.metrics["test_loss"]


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


def signal_when(proc, ready, signum=signal.SIGTERM, *, what: str, within: float = 120, settle: float = 0.0):
    """Wait until ``ready()`` holds (polled), then send ``signum`` to the child ``proc`` and wait for it to end.

    Fails when the child ends first or ``what`` does not come ``within`` seconds; ``settle``: seconds to wait
    between ``ready()`` and the signal. The child is killed whatever goes wrong. Returns ``communicate()``'s
    ``(stdout, stderr)``.
    """
    try:
        deadline = time.monotonic() + within
        while not ready():
            assert proc.poll() is None, f"the child ended before {what}"
            assert time.monotonic() < deadline, f"{what} did not come within {within:g} s"
            time.sleep(0.05)
        time.sleep(settle)
        assert proc.poll() is None, f"the child ended before the signal, after {what}"
        proc.send_signal(signum)
        return proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


# The test files that take longest, longest first (seconds of test time per file under `make test`, from
# `pytest -n 2 --junitxml` on the 2-core AVX2 EPYC, 2026-12-06, 1,482 s in all). `make test` hands whole files to
# the workers (`--dist loadfile`) in collection order, with xdist's reordering by test count turned off
# (`--no-loadscope-reorder`): by count, files with many quick cases went first and the few-case, minutes-long
# ones last, where one worker could run them alone while the other sat idle. Longest first (in that run with
# test_user_folder.py second, before the times below were known), the two workers ended within seconds of each
# other (760 s of wall time for 741 s, half the summed test time). The first two files start one on each worker;
# only the first needs the shared smoke study, so neither waits on a lock.
LONGEST_FIRST = (
    "test_estimate.py",  # 299 s: the shared smoke study, then its probe and budget cases
    "test_hostile_run.py",  # 255 s
    "test_user_folder.py",  # 147 s: a study of its own on a user's folder
    "test_compare.py",  # 99 s: three runs of 03 and 04
    "test_cross_validation.py",  # 92 s
    "test_augment_torch.py",  # 80 s
    "test_train.py",  # 65 s
    "test_tune.py",  # 64 s
    "test_bench_peer.py",  # 56 s
    "test_notebooks.py",  # 51 s
    "test_runner.py",  # 40 s
    "test_dashboard.py",  # 38 s
    "test_study_book.py",  # 31 s
    "test_backbones.py",  # 31 s
    "test_models.py",  # 31 s
    "test_gpu_check.py",  # 27 s
    "test_render.py",  # 19 s
)


def pytest_collection_modifyitems(config, items):
    """Put the longest files first (a stable sort: every other file, and the cases in each file, keep their order)."""
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))
