"""`make test` starts the longest test files first (tests/conftest.py's LONGEST_FIRST); these checks keep that true."""

import subprocess

from conftest import LONGEST_FIRST, REPO


def test_every_file_named_longest_first_exists():
    missing = [name for name in LONGEST_FIRST if not (REPO / "tests" / name).is_file()]
    assert not missing, f"LONGEST_FIRST names test files that are gone (renamed?): {missing}"
    assert len(set(LONGEST_FIRST)) == len(LONGEST_FIRST)


def test_make_test_keeps_the_collection_order():
    """Without --no-loadscope-reorder xdist sorts the files by test count and undoes the order.

    `make -n` prints each target's commands with the Makefile's variables expanded, so this reads what make runs.
    """
    for target in ("test", "test-fast"):
        printed = subprocess.run(
            ["make", "-n", "-C", str(REPO), target, "VENV=.venv"], capture_output=True, text=True, check=True
        ).stdout
        pytest_lines = [line for line in printed.splitlines() if " -m pytest " in line]
        assert len(pytest_lines) == 1, printed
        assert "--dist loadfile" in pytest_lines[0] and "--no-loadscope-reorder" in pytest_lines[0], pytest_lines[0]


def test_the_collection_starts_with_the_longest_files(request):
    collected = [item.path.name for item in request.session.items]
    present = [name for name in LONGEST_FIRST if name in collected]
    firsts = list(dict.fromkeys(collected))[: len(present)]
    assert firsts == present
