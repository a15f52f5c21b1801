"""`make test` starts the longest test files first (tests/conftest.py's LONGEST_FIRST); these checks keep that true."""

import re

from conftest import LONGEST_FIRST, REPO


def test_every_file_named_longest_first_exists():
    missing = [name for name in LONGEST_FIRST if not (REPO / "tests" / name).is_file()]
    assert not missing, f"LONGEST_FIRST names test files that are gone (renamed?): {missing}"
    assert len(set(LONGEST_FIRST)) == len(LONGEST_FIRST)


def test_make_test_keeps_the_collection_order():
    """Without --no-loadscope-reorder xdist sorts the files by test count and undoes the order."""
    makefile = (REPO / "Makefile").read_text()
    for target in ("test", "test-fast"):
        recipe = re.search(rf"^{target}:.*\n\t(.+)$", makefile, re.MULTILINE)
        assert recipe, f"no `{target}` target in the Makefile"
        assert "--dist loadfile" in recipe.group(1) and "--no-loadscope-reorder" in recipe.group(1), recipe.group(1)


def test_the_collection_starts_with_the_longest_files(request):
    collected = [item.path.name for item in request.session.items]
    present = [name for name in LONGEST_FIRST if name in collected]
    firsts = list(dict.fromkeys(collected))[: len(present)]
    assert firsts == present
