"""Benchmark: the non-CNN baselines of notebook 05 with the standard profile's settings, on the full data.

Loads the shared CIFAR-10 JPEG archive with the study's splits
(``load_study_data(subset=0, seed=0)``: 45,000 train, 5,000 validation,
10,000 test images), runs :func:`cifarkit.analysis.baselines.run_baselines` with the
``05_baselines`` block of ``params/<profile>.yaml``, prints a table and writes
``benchmarks/results/baselines.json``.

Usage:
    python benchmarks/bench_baselines.py [--data PATH] [--profile standard] [--output PATH]
    python benchmarks/bench_baselines.py --profile quick --output benchmarks/results/baselines_quick.json

The profile's ``05_baselines`` block decides the data subset too (the quick profile: 500 images per class per
split); ``benchmarks/results/baselines.json`` holds the constants of the run's time estimate
(``cifarkit.report.estimate_model.BASELINE_REFERENCE``) and ``baselines_quick.json`` the check of their scaling; each record keeps the time estimate's yardsticks
measured right after its table (``baseline_workload_s`` scales the constants to another machine, ``forest_workload_s``
the random forest's).

Goal: the whole table within 20 minutes on a 2-core CPU (standard profile).
On a shared machine the measured time is an upper bound.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "datasets" / "cifar10-jpeg.tar.gz"
DEFAULT_OUTPUT = ROOT / "benchmarks" / "results" / "baselines.json"
GOAL_SECONDS = 20 * 60


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data", default=str(DEFAULT_DATA), help="archive or folder (default: the shared CIFAR-10 JPEG archive)"
    )
    parser.add_argument("--profile", default="standard", help="profile whose 05_baselines settings are used")
    parser.add_argument("--output", default=str(DEFAULT_OUTPUT), help="where to write the JSON results")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(ROOT))
    from cifarkit import files, provenance
    from cifarkit.analysis import baselines
    from cifarkit.data import load_study_data
    from cifarkit.report import estimate_probe, profiles

    data = Path(args.data).resolve()
    if not data.exists():
        print(
            f"Data not found: {data}. Pass --data PATH (the shared archive lives in ../shared/datasets/).",
            file=sys.stderr,
        )
        return 2
    params = profiles.load_profile(args.profile).parameters_for("05_baselines")
    methods = baselines.parse_methods(params.get("METHODS", baselines.DEFAULT_METHODS))
    max_train = {**{m: params.get("MAX_TRAIN", 0) for m in methods}, **(params.get("MAX_TRAIN_PER_METHOD") or {})}
    options = params.get("METHOD_OPTIONS") or {}
    seed = int(params.get("SEED", 0))

    load_avg_start = [round(v, 2) for v in os.getloadavg()]
    t0 = time.perf_counter()
    ds = load_study_data(
        str(data), image_size=32, subset=int(params.get("DATA_SUBSET", 0)), val_fraction=0.1, seed=seed, progress=False
    )
    load_s = time.perf_counter() - t0
    print(f"data: {ds!r}, loaded in {load_s:.1f} s")
    t1 = time.perf_counter()
    results = baselines.run_baselines(
        ds, methods, max_train=max_train, seed=seed, options=options, n_boot=int(params.get("N_BOOT", 2000))
    )
    total_s = time.perf_counter() - t1
    # the run estimate's yardsticks on this machine, right after the table: what scales these times elsewhere
    # (best of four rounds, as the probe's two timings of two rounds each give it)
    yardsticks = {
        **{k: round(v, 4) for k, v in estimate_probe.baseline_workloads(rounds=4).items()},
        "matmul_gflops": round(estimate_probe.matmul_gflops(), 1),
        "cpu_workload_s": round(estimate_probe.cpu_workload_seconds(), 4),
    }

    record = {
        "benchmark": "baselines",
        "command": provenance.command_line(__file__, argv),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            **provenance.hardware_info(),
            "load_average_at_start": load_avg_start,
            "load_average_at_end": [round(v, 2) for v in os.getloadavg()],
        },
        "versions": provenance.package_versions(),
        "git": provenance.git_info(),
        "data": {"path": str(data), **ds.to_dict()},
        "profile": args.profile,
        "settings": {"methods": methods, "max_train": max_train, "method_options": options, "seed": seed},
        "goal_seconds": GOAL_SECONDS,
        "load_seconds": round(load_s, 2),
        "total_seconds": round(total_s, 2),
        "meets_goal": total_s <= GOAL_SECONDS,
        "yardsticks": yardsticks,
        "results": [baselines.public_result(r) for r in results],
        "note": (
            "timed beside other work (load average above 1.5 at the start): an upper bound"
            if load_avg_start[0] > 1.5
            else "timed on a quiet machine (load average at most 1.5 at the start)"
        ),
    }
    header = f"{'method':<15}{'train images':>13}{'val acc':>9}{'test acc':>9}  {'95% CI':<16}{'train s':>9}{'predict s':>10}  chosen"
    print(header)
    print("-" * len(header))
    for r in results:
        lo, hi = r["test_acc_ci"]
        print(
            f"{r['name']:<15}{r['train_images_used']:>13,}{r['val_acc']:>9.4f}{r['test_acc']:>9.4f}  "
            f"[{lo:.3f}, {hi:.3f}]  {r['train_seconds']:>9.1f}{r['predict_seconds']:>10.1f}  {r['selected']}"
        )
    print(
        f"total {total_s:.0f} s ({total_s / 60:.1f} min) for the table; goal {GOAL_SECONDS / 60:.0f} min: "
        f"{'ok' if record['meets_goal'] else 'MISSED'}; load average {load_avg_start} -> {record['machine']['load_average_at_end']}"
    )
    files.atomic_write_json(Path(args.output), record)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
