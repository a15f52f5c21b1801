"""Benchmark: how fastnet's whitening stem decides its robustness to pixel noise.

Trains fastnet with the ``fast`` recipe on a per-class subset of the training split for a
few epochs, once per variant of the first layer (whitening frozen / trained / absent, and
several ``whiten_eps``), and measures accuracy on the **validation** images, clean and with
CIFAR-10-C's Gaussian noise at severities 1, 3 and 5 (std 0.04, 0.08, 0.10;
``cifarkit.analysis.corruptions.corrupt_c``; results before 2026-12-01 label them 1-3). The test
split is not read: this check exists to choose a setting.

Usage:
    python benchmarks/bench_whitening_noise.py [--data PATH] [--per-class N] [--epochs E]
        [--variants frozen trained none eps5e-3 eps5e-2 eps0.5] [--output PATH]

Writes ``benchmarks/results/whitening_noise.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_DATA = ROOT.parent / "shared" / "datasets" / "cifar10-jpeg.tar.gz"
DEFAULT_OUTPUT = ROOT / "benchmarks" / "results" / "whitening_noise.json"

#: variant name -> TrainConfig overrides on top of the ``fast`` recipe
VARIANTS = {
    "frozen": {},
    "trained": {"freeze_whitening": False, "whiten_bias_epochs": 0},
    "none": {"whiten_init": False},
    "eps5e-3": {"whiten_eps": 5e-3},
    "eps5e-2": {"whiten_eps": 5e-2},
    "eps0.5": {"whiten_eps": 0.5},
}
SEVERITIES = (1, 3, 5)  # CIFAR-10-C severities


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(DEFAULT_DATA))
    p.add_argument(
        "--per-class",
        type=int,
        default=2000,
        help="at most this many images per class in each split (DATA_SUBSET of the profiles); 2000 keeps all 5,000 validation images",
    )
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--output", default=str(DEFAULT_OUTPUT))
    args = p.parse_args(argv)

    import numpy as np

    from cifarkit import files, provenance
    from cifarkit.analysis.corruptions import PARAMETERS, corrupt_c
    from cifarkit.data import load_study_data
    from cifarkit.training import predict_logits, resolve_recipe, train

    ds = load_study_data(args.data, image_size=32, subset=args.per_class, val_fraction=0.1, seed=0, progress=False)
    y_val = np.asarray(ds.y_val).ravel()
    noisy = {sev: corrupt_c(ds.x_val, "gaussian_noise", sev, seed=0) for sev in SEVERITIES}
    rows = []
    print(
        f"{'variant':>9} {'clean':>7} " + " ".join(f"{'noise ' + str(s):>8}" for s in SEVERITIES) + f" {'train s':>8}"
    )
    for name in args.variants:
        config = resolve_recipe("fast", epochs=args.epochs, device="cpu", seed=args.seed, **VARIANTS[name])
        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            res = train(ds, config, Path(tmp) / "run", progress=False, resume=False)
        wall = time.perf_counter() - start
        accuracy = {
            str(sev): float((predict_logits(res.model, x).argmax(1) == y_val).mean()) for sev, x in noisy.items()
        }
        row = {
            "variant": name,
            "overrides": VARIANTS[name],
            "val_acc": res.metrics["val_acc"],
            "val_acc_gaussian_noise": accuracy,
            "train_seconds": round(res.metrics["train_seconds"], 1),
            "wall_seconds": round(wall, 1),
        }
        rows.append(row)
        print(
            f"{name:>9} {row['val_acc']:>7.2%} "
            + " ".join(f"{accuracy[str(s)]:>8.2%}" for s in SEVERITIES)
            + f" {row['train_seconds']:>8.0f}",
            flush=True,
        )
    result = {
        "benchmark": "whitening_noise",
        "command": "python benchmarks/bench_whitening_noise.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": provenance.hardware_info(),
        "git": provenance.git_info(),
        "load_average_at_end": os.getloadavg(),
        "data": {
            "source": str(args.data),
            "sha256": ds.source_sha256,
            "counts": ds.counts(),
            "evaluated_on": "validation split (clean and with Gaussian noise, CIFAR-10-C severities 1/3/5, cifarkit.analysis.corruptions.corrupt_c, seed 0)",
        },
        "recipe": "fast",
        "epochs": args.epochs,
        "seed": args.seed,
        "noise_std_per_severity": {str(s): PARAMETERS["gaussian_noise"][s]["std"] for s in SEVERITIES},
        "variants": rows,
    }
    out = files.atomic_write_json(Path(args.output), result)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    from cifarkit.signals import EXIT_CODE, stop_on_sigterm

    stop_on_sigterm(EXIT_CODE)  # kill PID ends the run as ^C does: its temp folders are removed
    raise SystemExit(main())
