"""benchmarks/README.md's table of the time estimate on the AVX-512 EPYC states what each run's JSON recorded."""

from __future__ import annotations

import json
import re

import pytest
from conftest import REPO, load_script, readme_table_rows


def _estimate_rows() -> list[tuple[str, list[str]]]:
    """The rows that name a bench_estimates command with its output JSON and the table's six cells."""
    text = (REPO / "benchmarks" / "README.md").read_text()
    rows = []
    for line in text.splitlines():
        found = re.search(r"benchmarks/results/(estimates_[^`\s]+\.json)", line)
        if line.startswith("| ") and "bench_estimates.py" in line and found:
            rows.append((found.group(1), [c.strip().replace("*", "") for c in line.split("|")[1:-1]]))
    return rows


def test_the_estimate_table_holds_the_recorded_runs():
    """Each row's estimate at the start, after 03's re-timing, actual execution, their ratio and the wall time are
    the JSON's, and the JSON ran the command the row names (with the budget it names)."""
    rows = _estimate_rows()
    assert len(rows) >= 3, rows
    for name, cells in rows:
        record = json.loads((REPO / "benchmarks" / "results" / name).read_text())
        # a run written elsewhere and copied in says so, and the row names the command as it ran
        ran_to = record.get("renamed", {"from": f"benchmarks/results/{name}"})["from"]
        assert record.get("renamed", {"to": f"benchmarks/results/{name}"})["to"] == f"benchmarks/results/{name}"
        assert f"--output {ran_to}" in record["command"] and f"--output {ran_to}" in cells[0], name
        assert record["run_ok"] is True, name
        budget = record["budget"]
        # a run recorded afterwards (--from-run) ran run_all.py's command, which its record keeps
        ran = " ".join([record["command"], (record.get("run") or {}).get("command") or ""])
        assert ("--budget" in cells[0]) == (budget is not None), name
        if budget is not None:
            assert f"--budget {budget['minutes']:g}" in ran and f"--budget {budget['minutes']:g}" in cells[0]
        assert cells[1] == f"{record['planned_at_start_total_s']:.1f} s", name
        assert cells[2] == f"{record['planned_total_s']:.1f} s", name
        assert cells[3] == f"{record['actual_total_s']:.1f} s", name
        # the ratio cell is estimate / actual (above 1: estimated high), at the start and after the re-timing
        start = record["planned_at_start_total_s"] / record["actual_total_s"]
        after = record["planned_total_s"] / record["actual_total_s"]
        assert cells[4].startswith(f"{start:.2f} ({after:.2f} after"), name
        assert cells[5] == f"{record['wall_s'] / 60:.1f} min", name
        assert sum(nb["actual_s"] for nb in record["notebooks"]) == pytest.approx(record["actual_total_s"], abs=0.2)


def test_the_readme_table_is_what_the_summary_prints_from_the_records(tmp_path):
    """README.md's table of how close the estimates came is ``bench_estimates.py --summary``'s output, row for row,
    and the summary's figures are the records' (checked on a hand-made record)."""
    bench = load_script(REPO / "benchmarks" / "bench_estimates.py", "bench_estimates")
    rows = readme_table_rows(bench.SUMMARY_HEADER + bench.summary_rows())
    # every record but estimates_quick.json, made before a run recorded the estimate printed at its start
    records = {p.name for p in (REPO / "benchmarks" / "results").glob("estimates_*.json")}
    assert {row.split("`")[-2] for row in rows} == records - {"estimates_quick.json"}

    record = {
        "run_ok": True,
        "date": "2026-12-09T10:00:00+00:00",
        "run": {"started_at": "2026-12-08T23:50:00+0000"},
        "profile": "quick",
        "precision": "auto",
        "budget": {"minutes": 10.0},
        "machine": {"cpu": "AMD EPYC", "cpu_count": 2, "cpu_flags": "avx2 fma"},
        "probe": {"rates": {"03": {"precision": "float32"}}},
        "git": {"commit": "abcdef0123", "dirty": True},
        "planned_at_start_total_s": 600.0,
        "planned_total_s": 450.0,
        "actual_total_s": 500.0,
        "retimed": ["03_train"],
        "wall_s": 555.0,
        "pdf": True,
    }
    (tmp_path / "estimates_x.json").write_text(json.dumps(record))
    (tmp_path / "estimates_failed.json").write_text(json.dumps(record | {"run_ok": False}))
    assert bench.summary_rows(tmp_path) == [
        "| 2026-12-08 | 2-core AMD EPYC (AVX2) | float32 | `quick` `--budget 10` | **+20%** (600 s / 500 s) | - | -10% "
        "| 9.2 min | abcdef0* | `estimates_x.json` |"
    ]
    # since the estimate prints a range while 02 may change 03: the range and whether the actual fell in it
    (tmp_path / "estimates_x.json").write_text(json.dumps(record | {"range_at_start_s": [450.0, 520.0]}))
    assert "| **+20%** (600 s / 500 s) | 450-520 s (inside) | -10% |" in bench.summary_rows(tmp_path)[0]
    (tmp_path / "estimates_x.json").write_text(json.dumps(record | {"range_at_start_s": [510.0, 1200.0]}))
    assert "| 510-1,200 s (outside) |" in bench.summary_rows(tmp_path)[0]
    # a run whose libraries were capped (ONEDNN_MAX_CPU_ISA, ...) is not the CPU's speed: the row says so
    capped = record | {"machine": record["machine"] | {"isa_limits": {"ONEDNN_MAX_CPU_ISA": "avx2"}}}
    (tmp_path / "estimates_x.json").write_text(json.dumps(capped))
    assert "| 2-core AMD EPYC (AVX2), libraries capped at AVX2 | float32 |" in bench.summary_rows(tmp_path)[0]
