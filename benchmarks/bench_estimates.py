"""Benchmark: the run's time estimate against the time each notebook really took, quick profile.

Runs ``run_all.py --profile quick --data ../shared/datasets/cifar10-jpeg.tar.gz --no-pdf`` (with ``--pdf``,
PDFs too, as ``make report`` renders them) through :func:`cifarkit.report.runner.run_study`, the same code
path, then reads the run's manifest: each notebook's ``planned_seconds_at_start`` (the estimate printed
before the first notebook), its ``planned_seconds`` (the same, or the re-timing printed before 03 when 02's
tuned settings apply) and its ``execute_seconds``. Prints both and their ratio and writes ``benchmarks/results/estimates_quick.json``
with the command, machine, date, load average, the data's sha256, the probe's measured rates and
the per-notebook figures.

Usage:
    python benchmarks/bench_estimates.py [--data PATH] [--profile quick] [--only 01 03] [--budget MIN]
                                         [--out DIR] [--output PATH] [--precision off] [--pdf]
                                         [-p NAME VALUE ...]
    python benchmarks/bench_estimates.py --from-run reports/RUN_ID --output PATH
    python benchmarks/bench_estimates.py --summary

``--summary`` prints, from every ``benchmarks/results/estimates_*.json``, the README's table of how far each
recorded run's estimate was from its actual time (nothing runs).

``-p NAME VALUE`` sets a notebook parameter as ``run_all.py``'s does (``-p SEED 1``: another draw of the
study's splits, samples and 02's trials; ``-p 03.EPOCHS 3``: one notebook's); the record keeps them.

``--from-run`` records a run that ``run_all.py`` has already finished (a long profile run by hand) from its
manifest alone: the run's own command, start and duration, nothing run again; the load average around it
was not seen by this script and is recorded as unknown.

The whole quick study takes 10-25 minutes on a 2-core CPU; ``--only 01 03`` checks the script in a
few. On a machine shared with other work both columns move with the load: the estimate measures the
machine as it is when the run starts.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "datasets" / "cifar10-jpeg.tar.gz"
DEFAULT_OUTPUT = ROOT / "benchmarks" / "results" / "estimates_quick.json"


RESULTS = ROOT / "benchmarks" / "results"
SUMMARY_HEADER = [
    "| date | machine | precision | run | estimate at the start / actual execution | range printed at the start "
    "| after 03's re-timing | wall, HTML and PDF | code (* uncommitted changes) | record |",
    "|---|---|---|---|---|---|---|---|---|---|",
]


def _machine(record: dict) -> str:
    """The CPU a record ran on, with what decides its speed: AVX-512 with bf16 units or AVX2 only."""
    m = record.get("machine") or {}
    cpu = (m.get("cpu") or "unknown CPU").replace("(R)", "").replace(" Processor", "")
    rates = ((record.get("probe") or {}).get("rates") or {}).values()
    bf16_under_auto = record.get("precision") == "auto" and any(r.get("precision") == "bfloat16" for r in rates)
    flags = (m.get("cpu_flags") or "").split()
    if "EPYC" in cpu:  # the two EPYCs these runs had: told apart by their flags (or by auto choosing bf16)
        cpu += " (AVX-512)" if "avx512f" in flags or bf16_under_auto else " (AVX2)"
    cap = next(iter((m.get("isa_limits") or {}).values()), None)  # the first of backend.ISA_LIMIT_VARS set
    return f"{m.get('cpu_count', '?')}-core {cpu}" + (f", libraries capped at {cap.upper()}" if cap else "")


def _precision(record: dict) -> str:
    rates = ((record.get("probe") or {}).get("rates") or {}).get("03") or {}
    return rates.get("precision") or {"off": "float32"}.get(record.get("precision"), "?")


def _signed_percent(estimate: float, actual: float) -> str:
    return f"{100 * (estimate / actual - 1):+.0f}%"


def summary_rows(results: Path = RESULTS) -> list[str]:
    """The README's table rows, oldest first: every recorded run with an estimate made at its start."""
    records = []
    for path in sorted(results.glob("estimates_*.json")):
        r = json.loads(path.read_text())
        if r.get("run_ok") and r.get("planned_at_start_total_s") and r.get("actual_total_s"):
            # when the run started (a run recorded afterwards says so), else when its record was written
            records.append(((r.get("run") or {}).get("started_at") or r["date"], path.name, r))
    rows = []
    for when, name, r in sorted(records):
        actual = r["actual_total_s"]
        budget = (r.get("budget") or {}).get("minutes")
        run = f"`{r['profile']}`" + (f" `--budget {budget:g}`" if budget is not None else "")
        run += "".join(f" `-p {name} {value}`" for name, value in (r.get("params") or {}).items())
        run += f" `--only {' '.join(r['only'])}`" if r.get("only") else ""
        after = _signed_percent(r["planned_total_s"], actual) if r.get("retimed") else "not re-timed"
        wall = f"{r['wall_s'] / 60:.1f} min" if r.get("wall_s") and r.get("pdf") else "-"
        span = r.get("range_at_start_s")  # recorded since 2026-12-06; the actual inside it or not
        within = (
            f"{span[0]:,.0f}-{span[1]:,.0f} s ({'inside' if span[0] <= actual <= span[1] else 'outside'})"
            if span
            else "-"
        )
        rows.append(
            f"| {when[:10]} | {_machine(r)} | {_precision(r)} | {run} "
            f"| **{_signed_percent(r['planned_at_start_total_s'], actual)}** "
            f"({r['planned_at_start_total_s']:,.0f} s / {actual:,.0f} s) | {within} | {after} | {wall} "
            f"| {(r.get('git') or {}).get('commit', '?')[:7]}{'*' if (r.get('git') or {}).get('dirty') else ''} "
            f"| `{name}` |"
        )
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="data source (default: the shared CIFAR-10 JPEG)")
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--only", nargs="+", default=None, metavar="NOTEBOOK", help="run only these notebooks")
    parser.add_argument("--budget", type=float, default=None, metavar="MINUTES", help="plan the run to fit MINUTES")
    parser.add_argument("--out", default=None, help="folder for the run (default: a temporary folder, removed)")
    parser.add_argument(
        "--precision", choices=["auto", "off", "bf16", "fp16"], default=None, help="as run_all.py's (off = float32)"
    )
    parser.add_argument("--output", default=str(DEFAULT_OUTPUT), help="where to write the JSON results")
    parser.add_argument(
        "--from-run", default=None, metavar="RUN_DIR", help="record a finished run_all.py run from its manifest"
    )
    parser.add_argument(
        "--pdf",
        action="store_true",
        help="render the PDFs too, as `make report` does (the wall time then includes them)",
    )
    parser.add_argument(
        "-p",
        "--param",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="set a notebook parameter as run_all.py -p does, e.g. -p SEED 1 (NOTEBOOK.NAME: that notebook's only)",
    )
    parser.add_argument(
        "--summary", action="store_true", help="print the README's table of every recorded run, and stop"
    )
    args = parser.parse_args(argv)
    if args.summary:
        print("\n".join(SUMMARY_HEADER + summary_rows()))
        return 0

    sys.path.insert(0, str(ROOT))
    from cifarkit import files, provenance, secrets
    from cifarkit.report import plan, runner
    from cifarkit.training.precision import ENV_MIXED_PRECISION

    if args.precision is not None:  # what run_all.py --precision does: the kernels inherit it
        os.environ[ENV_MIXED_PRECISION] = args.precision

    params = {name: plan.parse_value(value) for name, value in args.param}
    if params and args.from_run:
        print("-p does not go with --from-run: the run's own parameters are in its manifest.")
        return 2
    try:
        overrides, per_notebook = plan.split_parameters(params)
    except ValueError as exc:
        print(exc)
        return 2
    if args.from_run:
        run_dir = Path(args.from_run)
        if not (run_dir / "manifest.json").is_file():
            print(f"No run manifest in {run_dir}: pass a run folder of run_all.py (reports/RUN_ID).")
            return 2
        manifest = runner.load_manifest(run_dir)
        source = manifest.get("data") or {}
        data = source.get("path") or source.get("source")  # the source as the run named it (synthetic:N)
        run = {
            "command": manifest.get("command"),
            "started_at": manifest.get("started_at"),
            "finished_at": manifest.get("finished_at"),
            "ok": manifest.get("status") == "ok",
            "wall": float(manifest.get("duration_seconds") or 0.0),
            "load": None,  # not seen: the run did not start here
            "pdf": bool((manifest.get("renderers") or {}).get("pdf")),
            "sha256": source.get("sha256"),  # the run's own record of its data
        }
    else:
        data = Path(args.data).resolve()
        if not data.exists():
            print(f"Data not found: {data}. Pass --data PATH (the shared archive lives in ../shared/datasets/).")
            return 2
        load_start = [round(v, 2) for v in os.getloadavg()]
        with tempfile.TemporaryDirectory(prefix="bench-estimates-") as tmp:
            out = Path(args.out) if args.out else Path(tmp)
            started = time.perf_counter()
            try:
                result = runner.run_study(
                    args.profile,
                    data=str(data),
                    out=out,
                    only=args.only,
                    pdf=args.pdf,
                    budget=args.budget,
                    overrides=overrides,
                    notebook_overrides=per_notebook,
                )
            except ValueError as exc:  # what run_all.py refuses (a parameter no notebook declares, ...): nothing ran
                print(exc)
                return 2
            wall = time.perf_counter() - started
            manifest = runner.load_manifest(result.run_dir)
        # an archive's own checksum; a folder's is the fingerprint the run recorded
        sha256 = files.file_sha256(data) if data.is_file() else (manifest.get("data") or {}).get("sha256")
        run = {"ok": result.ok, "wall": wall, "load": load_start, "pdf": args.pdf, "sha256": sha256}
    wall = run["wall"]
    rows = []
    for name, entry in manifest["notebooks"].items():
        planned, actual = entry.get("planned_seconds"), entry.get("execute_seconds")
        # a notebook re-timed before it started (03 and what follows it, once 02's tuned settings apply)
        at_start = entry.get("planned_seconds_at_start", planned)
        rows.append(
            {
                "notebook": name,
                "status": entry.get("status"),
                "planned_at_start_s": at_start,
                "planned_s": planned,
                "actual_s": actual,
                "ratio_at_start": round(actual / at_start, 2) if at_start and actual else None,
                "ratio": round(actual / planned, 2) if planned and actual else None,
            }
        )
    start_total = sum(r["planned_at_start_s"] or 0 for r in rows)
    planned_total = sum(r["planned_s"] or 0 for r in rows)
    actual_total = sum(r["actual_s"] or 0 for r in rows)
    print()
    print(f"{'notebook':<32}{'at start s':>11}{'planned s':>10}{'actual s':>10}{'actual/planned':>16}")
    for r in rows:
        ratio = f"{r['ratio']:.2f}" if r["ratio"] is not None else "-"
        print(
            f"{r['notebook']:<32}{r['planned_at_start_s'] or 0:>11.1f}{r['planned_s'] or 0:>10.1f}"
            f"{r['actual_s'] or 0:>10.1f}{ratio:>16}"
        )
    total_ratio = actual_total / planned_total if planned_total else None
    start_ratio = actual_total / start_total if start_total else None
    print(
        f"{'total':<32}{start_total:>11.1f}{planned_total:>10.1f}{actual_total:>10.1f}"
        f"{f'{total_ratio:.2f}' if total_ratio else '-':>16}"
    )
    print(f"wall time of the whole run (probe, notebooks, HTML{' and PDF' if run['pdf'] else ''}): {wall / 60:.1f} min")
    time_plan = manifest.get("time_plan") or {}
    span = time_plan.get("total_range_seconds")  # 03 at the fastest and slowest settings 02 may pick
    if start_ratio:
        print(f"actual / the estimate printed at the start: {start_ratio:.2f}")
    else:  # the run printed why (a note before the first notebook); nothing to compare
        print("no estimate was made for this run (see the run's note); only the actual times are recorded")
    if span:
        inside = "inside" if span[0] <= actual_total <= span[1] else "outside"
        print(
            f"the range printed at the start: {span[0]:,.0f}-{span[1]:,.0f} s; the actual {actual_total:,.0f} s is {inside} it"
        )
    record = {
        "benchmark": "estimates",
        "command": provenance.command_line(__file__, argv),  # a -p STORAGE URL's password masked
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            **(manifest.get("hardware") if args.from_run else provenance.hardware_info()),
            "load_average_at_start": run["load"],
            "load_average_at_end": None if args.from_run else [round(v, 2) for v in os.getloadavg()],
        },
        "versions": manifest.get("versions") if args.from_run else provenance.package_versions(),
        "git": manifest.get("git") if args.from_run else provenance.git_info(),
        "data": {"path": str(data), "sha256": run["sha256"]},
        "profile": manifest.get("profile", args.profile),
        "precision": manifest.get("precision") if args.from_run else args.precision or "auto",
        "only": args.only,
        "params": secrets.mask_values(params),
        "budget": time_plan.get("budget"),
        "run_ok": run["ok"],
        "probe": time_plan.get("probe"),
        "seconds_to_estimate": time_plan.get("seconds_to_estimate"),
        "notebooks": rows,
        "retimed": time_plan.get("retimed") or [],
        "planned_at_start_total_s": round(start_total, 1),
        "range_at_start_s": span,
        "actual_over_planned_at_start": round(start_ratio, 2) if start_ratio else None,
        "planned_total_s": round(planned_total, 1),
        "actual_total_s": round(actual_total, 1),
        "actual_over_planned": round(total_ratio, 2) if total_ratio else None,
        "wall_s": round(wall, 1),
        "pdf": run["pdf"],
        "note": "planned and actual are execute_seconds only (rendering excluded); wall_s is the whole run_study call "
        "(probe, notebooks, HTML, and PDF with --pdf); a shared machine's load moves every column",
    }
    if args.from_run:  # what the run itself recorded about how it ran
        record["run"] = {k: run[k] for k in ("command", "started_at", "finished_at")} | {"folder": str(run_dir)}
        record["note"] = (
            "recorded with --from-run from a finished run's manifest: wall_s is its duration_seconds (from the "
            "estimate to the end); planned and actual are execute_seconds only; the load around it was not seen"
        )
    files.atomic_write_json(Path(args.output), record)
    print(f"wrote {os.path.relpath(args.output, ROOT)}")
    return 0 if run["ok"] else 1


if __name__ == "__main__":
    from cifarkit.signals import EXIT_CODE, stop_on_sigterm

    stop_on_sigterm(EXIT_CODE)  # kill PID ends the run as ^C does: its temp folders are removed
    sys.exit(main())
