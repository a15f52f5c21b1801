r"""Where fastnet's epochs go: one change to the ``fast`` recipe at a time, at a fixed epoch count (issue #15).

Usage:
    python benchmarks/bench_epoch_recipe.py [--epochs 8] [--variants base,altflip,...] [--seeds 0]
    python benchmarks/bench_epoch_recipe.py --summarize      # only re-read the recorded runs and print the table
    python benchmarks/bench_epoch_recipe.py --variants w150altflip --train-on all   # the refit on all 50,000

Each variant is one run of ``benchmarks/bench_time_to_accuracy.py`` (the standard profile's data: the shared
CIFAR-10 JPEG, 45,000 training images, the seeded 5,000-image validation carve, 10,000 test images; bf16
autocast where the CPU has bf16 units) with the recipe's epochs set to ``--epochs`` and one ``--set``
override. Every run is written to ``benchmarks/results/epoch_recipe/<variant>_s<seed>.json`` with its own
command, machine and date; the summary (``summary.json`` there) lists validation accuracy (what a choice
may be made on), test accuracy (reported, never chosen on), test accuracy with flip TTA, training seconds
and images per second.

One seed per variant gives a screen, not a verdict: the 5,000 validation images alone make a 95% interval of
about +-0.85 points at 89%, and at 8 epochs seeds move test accuracy by sd ~0.4 points (0.17 at 18 epochs). A variant that looks better is run
with more seeds (``--seeds 0,1,2``) before anything is concluded.

``--train-on all`` trains a variant chosen on the carve once more on all 50,000 training images (no validation
carve: airbench's protocol and ``bench_peer.py``'s), recorded as ``<variant>+all_s<seed>.json``; those runs
have test accuracy only, and nothing is chosen on them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from cifarkit.analysis.stats import mean_of_present  # noqa: E402  (after the sys.path lines)

OUT_DIR = HERE / "results" / "epoch_recipe"

#: variant -> the ``--set`` overrides of bench_time_to_accuracy (empty: the recipe as it is).
VARIANTS: dict[str, list[str]] = {
    "base": [],
    "altflip": ["alternate_flip=true"],  # airbench's alternating flips
    "bs128": ["batch_size=128"],  # twice the steps per epoch (lr scaled linearly)
    "bs512": ["batch_size=512"],  # half the steps per epoch (lr scaled linearly)
    "bs1024": ["batch_size=1024"],  # airbench94's batch: a quarter of the steps (its lr per step)
    "lr1.0": ["lr=1.0"],  # 2/3 of the recipe's peak lr
    "lr2.0": ["lr=2.0"],  # 4/3 of it
    "w125": ['model_options={"width_multiplier": 1.25}'],  # blocks 80/320/320: ~1.5x the operations
    "w150": ['model_options={"width_multiplier": 1.5}'],  # blocks 96/384/384: ~2.2x the operations
    "w200": ['model_options={"width_multiplier": 2.0}'],  # blocks 128/512/512: ~3.8x the operations
    "ls0.1": ["label_smoothing=0.1"],  # half the recipe's (airbench's) 0.2
    "flr0": ["final_lr_factor=0.0"],  # the linear decay ends at zero instead of 0.07x
    "warm1": ["warmup_epochs=1"],  # a 1-epoch ramp instead of 23% of the steps (1.84 epochs at 8)
    "conv3": ['model_options={"convs_per_block": 3}'],  # airbench96's residual third conv: ~1.36x the operations
    "la0": ["lookahead_every=0"],  # no lookahead (the recipe's weight averaging) at all
    "weps5e-4": ["whiten_eps=0.0005"],  # airbench's whitening eps instead of the recipe's 0.5
    # width 1.5 (the best three-seed mean at 8 epochs) with one more change
    "w150conv3": ['model_options={"width_multiplier": 1.5, "convs_per_block": 3}'],  # ~2.9x the operations
    "w150altflip": ['model_options={"width_multiplier": 1.5}', "alternate_flip=true"],
}


ALL_SUFFIX = "+all"  # runs trained on all training images (--train-on all)


def summarize(directory: Path = OUT_DIR) -> dict:
    """Read every recorded run in ``directory`` and group it by variant: per-seed rows and means."""
    runs = []
    for path in sorted(directory.glob("*_s*.json")):
        data = json.loads(path.read_text())
        variant, _, seed = path.stem.rpartition("_s")
        final = data["final"]
        runs.append(
            {
                "variant": variant,
                "seed": int(seed),
                "file": path.name,
                "command": data["command"],
                "date": data["date"],
                "cpu": data["machine"].get("cpu"),
                "precision": data.get("training_precision"),
                "epochs": len(data["curve"]),
                "val_acc": final["val_acc"],
                "test_acc": final["test_acc"],
                "test_acc_flip_tta": final["test_acc_flip_tta"],
                "train_seconds": final["train_seconds"],
                "median_img_per_s": statistics.median(r["images_per_sec"] for r in data["curve"]),
                "train_images": data["data"]["counts"].get("train"),
                "val_acc_gaussian_noise_sev5": (data["val_acc_gaussian_noise"] or {}).get("5"),
            }
        )
    variants = {}
    for row in runs:
        variants.setdefault(row["variant"], []).append(row)
    table = []
    for variant, rows in variants.items():
        mean = {k: mean_of_present(r[k] for r in rows) for k in ("val_acc", "test_acc", "train_seconds")}
        table.append(
            {
                "variant": variant,
                "overrides": VARIANTS.get(variant.removesuffix(ALL_SUFFIX)),
                "train_images": rows[0]["train_images"],
                "seeds": [r["seed"] for r in rows],
                **{f"mean_{k}": round(v, 5) if v is not None else None for k, v in mean.items()},
                "sd_test_acc": round(statistics.stdev(r["test_acc"] for r in rows), 5) if len(rows) > 1 else None,
            }
        )
    return {"runs": runs, "variants": table}


def print_table(summary: dict) -> None:
    print(f"{'variant':<15} {'seeds':<8} {'val':>7} {'test':>7} {'sd':>6} {'train s':>8}")
    for v in summary["variants"]:
        sd = f"{100 * v['sd_test_acc']:.2f}" if v["sd_test_acc"] is not None else "-"
        val = f"{v['mean_val_acc']:>7.2%}" if v["mean_val_acc"] is not None else f"{'-':>7}"
        print(
            f"{v['variant']:<15} {','.join(map(str, v['seeds'])):<8} {val} "
            f"{v['mean_test_acc']:>7.2%} {sd:>6} {v['mean_train_seconds']:>8.0f}"
        )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--variants", default="base,altflip,bs128,w125", help=f"comma-separated, from {sorted(VARIANTS)}")
    p.add_argument("--seeds", default="0", help="comma-separated training seeds")
    p.add_argument("--summarize", action="store_true", help="only summarize the runs already recorded")
    p.add_argument(
        "--train-on",
        choices=("carve", "all"),
        default="carve",
        help="carve: 45,000 images and the 5,000-image validation carve (choices are made here); "
        "all: all 50,000 training images, no validation (the refit of a variant already chosen)",
    )
    p.add_argument("--out-dir", default=str(OUT_DIR))
    args = p.parse_args(argv)
    out_dir = Path(args.out_dir)
    if not args.summarize:
        names = [v.strip() for v in args.variants.split(",") if v.strip()]
        unknown = [v for v in names if v not in VARIANTS]
        if unknown:
            p.error(f"unknown variant(s) {unknown}; choose from {sorted(VARIANTS)}")
        import bench_time_to_accuracy as tta  # a sibling script (this folder is on sys.path)

        for seed in (int(s) for s in args.seeds.split(",")):
            for name in names:
                stem = name + (ALL_SUFFIX if args.train_on == "all" else "")
                argv_run = ["--epochs", str(args.epochs), "--seed", str(seed)]
                if args.train_on == "all":
                    argv_run += ["--val-fraction", "0"]
                argv_run += ["--output", str(out_dir / f"{stem}_s{seed}.json")]
                for override in VARIANTS[name]:
                    argv_run += ["--set", override]
                print(f"== {stem}, seed {seed}", flush=True)
                tta.main(argv_run)
    summary = summarize(out_dir)
    if not summary["runs"]:
        p.error(
            f"no recorded runs in {out_dir} (files named VARIANT_sSEED.json); "
            "train some first, e.g. --variants base --seeds 0, or point --out-dir at a folder that has them"
        )
    summary.update(
        benchmark="epoch_recipe",
        command="python "
        + " ".join([f"benchmarks/{Path(__file__).name}"] + (argv if argv is not None else sys.argv[1:])),
        run_commands=sorted({r["command"] for r in summary["runs"]}),  # each run's own command, as recorded
        date=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        note="choices on validation accuracy only; test accuracy reported, never chosen on",
    )
    from cifarkit import files

    files.atomic_write_json(out_dir / "summary.json", summary)
    print_table(summary)
    return 0


if __name__ == "__main__":
    from cifarkit.signals import EXIT_CODE, stop_on_sigterm

    stop_on_sigterm(EXIT_CODE)  # kill PID ends the run as ^C does: its temp folders are removed
    raise SystemExit(main())
