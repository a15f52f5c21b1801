"""Benchmark: how fast cifarkit generates the 15 CIFAR-10-C corruptions at 5 severities.

Times ``cifarkit.analysis.corruptions.corrupt_c`` on N CIFAR-10 test images (default 1,000:
``load_dataset(..., subset=100)`` of the shared JPEG archive, 100 per class), each
(corruption, severity) once after one small warm-up call, and prints images/s per corruption
and the time the whole protocol (15 x 5) would take on 2,000 and 10,000 images.
Writes ``benchmarks/results/corruptions_speed.json`` with the command, machine and date.

Usage:
    python benchmarks/bench_corruptions.py [--data PATH] [--n 1000] [--output PATH]
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "datasets" / "cifar10-jpeg.tar.gz"
DEFAULT_OUTPUT = ROOT / "benchmarks" / "results" / "corruptions_speed.json"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data", default=str(DEFAULT_DATA), help="dataset source for load_dataset (default: the shared JPEG archive)"
    )
    parser.add_argument("--n", type=int, default=1000, help="test images to corrupt (default 1000)")
    parser.add_argument("--output", default=str(DEFAULT_OUTPUT), help="where to write the JSON results")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(ROOT))
    import numpy as np

    from cifarkit.analysis import corruptions as cc
    from cifarkit.data import load_dataset
    from cifarkit.provenance import command_line, hardware_info, package_versions

    if not args.data.startswith("synthetic") and not Path(args.data).exists():
        print(
            f"Data not found: {args.data}. Pass --data PATH (the shared archive lives in ../shared/datasets/).",
            file=sys.stderr,
        )
        return 2
    t0 = time.perf_counter()
    ds = load_dataset(args.data, subset=max(1, math.ceil(args.n / 10)), progress=False)
    x, _ = ds.split("test")
    x = np.ascontiguousarray(x[: args.n])
    load_s = time.perf_counter() - t0
    print(f"{len(x)} test images {x.shape[1]}x{x.shape[2]} from {args.data} (loaded in {load_s:.1f} s)")

    for name in cc.CORRUPTIONS_C:  # warm-up: imports, frost photos, kernels
        cc.corrupt_c(x[:8], name, 1)

    per = {}
    header = f"{'corruption':<18}" + "".join(f"{'sev ' + str(s):>9}" for s in cc.SEVERITIES) + f"{'all 5':>10}"
    print("images/s per severity (one run each)")
    print(header)
    print("-" * len(header))
    total = 0.0
    for name in cc.CORRUPTIONS_C:
        secs = {}
        for s in cc.SEVERITIES:
            t = time.perf_counter()
            cc.corrupt_c(x, name, s, seed=0)
            secs[s] = time.perf_counter() - t
        spent = sum(secs.values())
        total += spent
        per[name] = {
            "seconds": {str(s): round(v, 4) for s, v in secs.items()},
            "images_per_s": {str(s): round(len(x) / v, 1) for s, v in secs.items()},
            "images_per_s_all_severities": round(5 * len(x) / spent, 1),
        }
        print(
            f"{name:<18}" + "".join(f"{len(x) / secs[s]:>9.0f}" for s in cc.SEVERITIES) + f"{5 * len(x) / spent:>10.0f}"
        )
    print("-" * len(header))
    per_image = total / len(x)
    print(
        f"15 x 5 on {len(x)} images: {total:.1f} s; extrapolated: {per_image * 2000:.0f} s on 2,000 images, "
        f"{per_image * 10000:.0f} s on 10,000 (the full CIFAR-10-C)"
    )

    record = {
        "benchmark": "corruptions_speed",
        "command": command_line(__file__, argv),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            **hardware_info(),
            "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "load_average_at_start": [round(v, 2) for v in os.getloadavg()],
        },
        "versions": package_versions(),
        "data": {"source": args.data, "images": len(x), "image_size": list(x.shape[1:3]), "load_s": round(load_s, 2)},
        "corruptions": per,
        "total_s": round(total, 2),
        "protocol_15x5_seconds_extrapolated": {
            "2000": round(per_image * 2000, 1),
            "10000": round(per_image * 10000, 1),
        },
        "notes": (
            "One timed call per (corruption, severity) on the whole batch, after a warm-up on 8 images; "
            "corrupt_c works in chunks of 2,048 images. glass_blur's shuffle is one vectorized gather per pass."
        ),
    }
    out = Path(args.output)
    from cifarkit.files import atomic_write_json

    atomic_write_json(out, record)  # a temp file beside it, then os.replace
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
