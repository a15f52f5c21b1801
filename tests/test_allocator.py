"""cifarkit.allocator: when glibc malloc's thresholds are set, and that setting them keeps freed memory for reuse."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import textwrap

import pytest

from cifarkit import allocator

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


@pytest.mark.parametrize(
    "environ, why",
    [
        ({"CIFARKIT_MALLOC": "default"}, "CIFARKIT_MALLOC=default"),
        ({"CIFARKIT_MALLOC": " Default "}, "CIFARKIT_MALLOC=default"),
        ({"MALLOC_TRIM_THRESHOLD_": "0"}, "set by the user (MALLOC_TRIM_THRESHOLD_)"),
        (
            {"MALLOC_MMAP_THRESHOLD_": "1", "GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"},
            "set by the user (MALLOC_MMAP_THRESHOLD_, GLIBC_TUNABLES)",
        ),
    ],
)
def test_the_thresholds_stay_where_the_user_decided(environ, why):
    assert allocator._decision(environ) == why


def test_other_tunables_and_tuned_leave_the_decision_to_the_platform():
    expected = None if GLIBC else "not glibc"
    assert allocator._decision({"GLIBC_TUNABLES": "glibc.rtld.optional_static_tls=512"}) == expected
    assert allocator._decision({"CIFARKIT_MALLOC": "tuned"}) == expected
    assert allocator._decision({}) == expected


def test_a_wrong_setting_says_what_is_allowed():
    with pytest.raises(ValueError, match=r"CIFARKIT_MALLOC must be 'tuned' or 'default', got 'fast'.*Unset it"):
        allocator._decision({"CIFARKIT_MALLOC": "fast"})


# A child process allocates 20 blocks of 8 MiB (below glibc's 32 MiB ceiling for the mmap threshold), frees them,
# and does so again five times: with the thresholds set the later rounds reuse the heap and barely page-fault
# (0 faults on the AVX-512 EPYC); with glibc's defaults the freed top of the heap is given back (its trim threshold
# is twice the grown mmap threshold) and faulted in again (about 51,000 faults of 4 KiB pages there).
_CHILD = textwrap.dedent(
    """
    import json, resource
    from cifarkit import allocator
    first = allocator.settings()
    state = allocator.tune()
    import numpy as np

    def cycle():
        blocks = [np.ones(2**20) for _ in range(20)]  # 8 MiB each, written
        del blocks

    cycle()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):
        cycle()
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    print(json.dumps({"first": first, "state": state, "faults": faults, "again": allocator.tune(), "settings": allocator.settings()}))
    """
)


def _child(mode: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    env["CIFARKIT_MALLOC"] = mode
    out = subprocess.run(
        [sys.executable, "-c", _CHILD], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not GLIBC, reason="the thresholds are glibc malloc's; this platform's C library is another")
def test_tuned_thresholds_keep_freed_blocks_for_the_next_round():
    tuned, default = _child("tuned"), _child("default")
    assert tuned["state"] == {
        "malloc": "tuned",
        "mmap_threshold": 32 * 2**20,
        "trim_threshold": 2**30,
    }
    assert tuned["again"] == tuned["state"] == tuned["settings"]
    assert tuned["first"] == default["first"] == {"malloc": "not set yet"}
    assert default["state"] == {"malloc": "default", "why": "CIFARKIT_MALLOC=default"}
    # 5 x 160 MiB written again is ~205,000 pages of 4 KiB
    assert default["faults"] > 20_000, default
    assert tuned["faults"] < default["faults"] / 10, (tuned, default)


def test_the_backend_sets_them_and_records_them():
    from cifarkit import backend

    backend.torch()
    recorded = backend.versions()["allocator"]
    assert recorded == allocator.settings() == allocator.tune()
    assert recorded["malloc"] in ("tuned", "default")
    if GLIBC and not any(k.startswith("MALLOC_") for k in os.environ) and "CIFARKIT_MALLOC" not in os.environ:
        assert recorded["malloc"] == "tuned"


@pytest.mark.parametrize(
    "state, line",
    [
        (
            {"malloc": "tuned", "mmap_threshold": 33554432, "trim_threshold": 1073741824},
            "malloc thresholds set (mmap 32 MiB, trim 1024 MiB)",
        ),
        (
            {"malloc": "default", "why": "CIFARKIT_MALLOC=default"},
            "malloc at the C library's defaults (CIFARKIT_MALLOC=default)",
        ),
        ({"malloc": "default"}, "malloc at the C library's defaults"),
        ({"malloc": "not set yet"}, ""),
        (None, ""),
    ],
)
def test_a_report_line_says_what_the_run_recorded(state, line):
    assert allocator.describe(state) == line
