"""Tests of ``benchmarks/bench_compile_cpu.py``: the compiled/eager ratios on hand-made blocks, and the warm-up's
stop rule on a function that counts as Dynamo would (no compilation: the counters are set by hand)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import load_script

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    return load_script(REPO / "benchmarks" / "bench_compile_cpu.py", "bench_compile_cpu_under_test")


def test_compiled_over_eager_is_the_median_of_per_cycle_ratios(bench):
    results = {
        "keras": {"blocks": [100.0, 80.0, 120.0]},
        "keras_compiled": {"blocks": [110.0, 96.0, 120.0]},  # 1.1, 1.2, 1.0 -> median 1.1
        "torch": {"blocks": [200.0, 100.0, 150.0]},
        "torch_compiled": {"blocks": [190.0, 80.0, 150.0]},  # 0.95, 0.8, 1.0 -> median 0.95
    }
    r = bench.compiled_over_eager(results)
    assert r["keras"] == {"per_cycle": [1.1, 1.2, 1.0], "median": 1.1}
    assert r["torch"] == {"per_cycle": [0.95, 0.8, 1.0], "median": 0.95}


def test_warm_up_stops_once_a_call_compiles_no_new_graph(bench):
    from torch._dynamo.utils import counters

    graphs_after_call = iter([1, 2, 3, 3, 3, 3])  # new graphs at calls 1-3; call 4 adds none
    calls = []

    def fn():
        calls.append(1)
        counters["stats"]["unique_graphs"] = next(graphs_after_call)

    r = bench.warm_up(fn)
    assert r["steps"] == 4 and len(calls) == 4
    assert r["dynamo"]["unique_graphs"] == 3 and r["dynamo"]["graph_breaks"] == 0
    counters.clear()
