"""How fast is the training input pipeline on its own? Augmented images per second.

Usage:
    python benchmarks/bench_pipeline.py [--batch-size 256] [--images 50000] [--rounds 5]

Runs ``cifarkit.training.augment.TrainPipeline`` over CIFAR-sized uint8 arrays (random
pixels: the cost does not depend on content) with several augmentation
settings, without any model, and reports the best of ``--rounds`` timed passes
(this machine sometimes runs at half speed for tens of seconds). Each pass
draws batches until ``--images`` images are produced (shuffling, gathering and
augmenting included). The pipeline should run at least 5x faster than the
model it feeds trains (fastnet: ~300 img/s on the 2-core CPU). Results go to
``benchmarks/results/pipeline.json``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from datetime import datetime, timezone

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from cifarkit.training.augment import TrainPipeline  # noqa: E402

SETTINGS = {
    "none (shuffle + gather only)": dict(),
    "flip": dict(flip=True),
    "crop4 reflect": dict(crop=4, pad_mode="reflect"),
    "crop4 reflect + flip": dict(crop=4, pad_mode="reflect", flip=True),
    "crop4 zero + flip": dict(crop=4, pad_mode="zero", flip=True),
    "crop2 reflect + flip (fast recipe)": dict(crop=2, pad_mode="reflect", flip=True),
    "crop4 + flip + cutout16": dict(crop=4, flip=True, cutout=16),
    "crop4 + flip + mixup0.2": dict(crop=4, flip=True, mixup=0.2),
    "crop4 + flip + cutmix1.0": dict(crop=4, flip=True, cutmix=1.0),
}
HEADLINE = "crop4 reflect + flip"
FASTNET_TRAIN_IMG_S = (
    300  # measured training throughput of fastnet on the same machine (benchmarks/results/throughput.json)
)


def _machine() -> dict:
    from cifarkit.provenance import hardware_info

    info = hardware_info()
    return {
        "cpu": info.get("cpu"),
        "cores": info.get("cpu_count"),
        "platform": info.get("platform"),
        "python": platform.python_version(),
        "numpy": np.__version__,
    }


def measure(x, y, batch_size, options, images, rounds) -> float:
    pipe = TrainPipeline(x, y, batch_size, num_classes=10, seed=0, **options)
    best = 0.0
    for _ in range(rounds):
        produced = 0
        start = time.perf_counter()
        while produced < images:
            for xb, _ in pipe.epoch():
                produced += len(xb)
                if produced >= images:
                    break
        best = max(best, produced / (time.perf_counter() - start))
    return best


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--images", type=int, default=50_000, help="images per timed pass (and in the array)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", default=os.path.join(HERE, "results", "pipeline.json"))
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(args.images, 32, 32, 3), dtype=np.uint8)
    y = rng.integers(0, 10, size=args.images)
    results = {}
    for name, options in SETTINGS.items():
        ips = measure(x, y, args.batch_size, options, args.images, args.rounds)
        results[name] = round(ips)
        print(f"{name:38s} {ips:12,.0f} img/s")
    headline = results[HEADLINE]
    ratio = headline / FASTNET_TRAIN_IMG_S
    print(f"\n{HEADLINE} at batch {args.batch_size}: {headline:,} img/s = {ratio:.0f}x fastnet's training throughput")
    from cifarkit import provenance

    record = {
        "command": provenance.command_line(__file__, argv),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "machine": _machine(),
        "load_average_at_start": os.getloadavg()[0],
        "batch_size": args.batch_size,
        "images_per_pass": args.images,
        "timing": f"best of {args.rounds} passes",
        "data": "random uint8 images 32x32x3 (throughput does not depend on content)",
        "img_per_s": results,
        "headline": {"setting": HEADLINE, "img_per_s": headline, "x_fastnet_training": round(ratio, 1)},
    }
    from cifarkit.files import atomic_write_json

    atomic_write_json(args.out, record)  # temp file + rename: no half-written result on a crash
    print(f"wrote {os.path.relpath(args.out, ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
