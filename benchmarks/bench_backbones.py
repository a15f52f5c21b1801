r"""Training speed of the ImageNet backbones (``BACKBONE``) on this machine, per phase and precision.

Usage:
    python benchmarks/bench_backbones.py [--backbones mobilenet_v2 efficientnet_b0 resnet50]
        [--precisions off bf16] [--data-formats channels_last] [--size 96] [--batch 32]
        [--train-images 320] [--project-train 800] [--project-val 100] [--no-record] [--out PATH]

For every backbone, precision (``mixed_precision``: ``off`` is float32, ``bf16`` autocast) and layout,
one fresh Python process runs the real ``cifarkit.training.train()`` on synthetic images (4 classes) at
``--size`` px: ``--train-images`` training images (10 steps of 32 by default; 40 validation images) for 4 epochs with
``freeze_epochs=2``, from a local weights file (the backbone built with ``weights=None``, its batch-norm
statistics set by a few forward passes over the images, and saved: pretrained mode, batch norms in
inference mode, the same cost as ImageNet weights; the machine has no network). Epoch 1 and 3 include the warm-up of their phase (the first forward, then the first backward
through the backbone), so the rates are epoch 2 (frozen: only the head trains) and epoch 4
(fine-tune: everything trains), as ``train()`` records them (``images_per_sec``: training images over
the epoch's training seconds, augmentation included; ``eval_seconds``: the validation pass).

From those it projects, for ``--project-train`` training and ``--project-val`` validation images
(the domain profile's ~1,000 images at 96 px: 800 and 100), the seconds of one frozen and one
fine-tune epoch (training plus validation pass). The projection is arithmetic on the measured rates,
labelled as such. The machine is shared: the load average before and after every measurement is
recorded beside it. Results are printed and, unless ``--no-record``, written to
``benchmarks/results/backbones.json``. A measurement script, not a timed test.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

OUTPUT = HERE / "results" / "backbones.json"
EPOCHS, FREEZE = 4, 2


def measure_one(backbone: str, precision: str, data_format: str, size: int, batch: int, train_images: int) -> dict:
    """One configuration, in this process: the real train() for EPOCHS epochs, FREEZE of them frozen."""
    from cifarkit import backend
    from cifarkit.data import load_dataset
    from cifarkit.data.source_spec import SYNTHETIC_CLASSES
    from cifarkit.models import build_backbone, count_params
    from cifarkit.training import resolve_recipe, train
    from cifarkit.training.precision import autocast_dtype

    torch = backend.torch()
    per_class = max(1, round(train_images / SYNTHETIC_CLASSES / 0.8))  # synthetic:N splits each class 80/10/10
    ds = load_dataset(f"synthetic:{per_class}", image_size=size, progress=False)
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / f"{backbone}.weights.h5"
        fmt = None if data_format == "default" else data_format
        built = build_backbone(backbone, input_shape=ds.input_shape, num_classes=ds.num_classes, data_format=fmt)
        data_format = built.info["data_format"]
        # Random weights with the batch norms' initial statistics (mean 0, variance 1) make a deep network in
        # inference mode blow up (ResNet50's activations overflow): a few forward passes in training mode give
        # the statistics of these images first, as real pretrained weights have statistics of their own.
        with torch.no_grad():
            for i in range(0, min(len(ds.x_train), 8 * batch), batch):
                built.model(torch.from_numpy(ds.x_train[i : i + batch]), training=True)
        built.model.get_layer("backbone").save_weights(weights)
        params = count_params(built.model)
        del built
        config = resolve_recipe(
            "default",
            model=backbone,
            epochs=EPOCHS,
            batch_size=batch,
            freeze_epochs=FREEZE,
            backbone_weights=str(weights),
            mixed_precision=precision,
            device="cpu",
            model_options={} if data_format == "default" else {"data_format": data_format},
        )
        load_before = os.getloadavg()[0]
        start = time.perf_counter()
        result = train(ds, config, Path(tmp) / "run", resume=False, progress=False)
        wall = time.perf_counter() - start
        load_after = os.getloadavg()[0]
    h = result.history
    frozen, finetune = h[FREEZE - 1], h[EPOCHS - 1]
    n_val = len(ds.x_val)
    eval_rate = n_val / ((frozen["eval_seconds"] + finetune["eval_seconds"]) / 2)
    amp = autocast_dtype(config, "cpu")
    return {
        "backbone": backbone,
        "mixed_precision": precision,
        "autocast": str(amp).replace("torch.", "") if amp is not None else "float32",
        "data_format": data_format,
        "image_size": size,
        "batch_size": batch,
        "params": params,
        "trainable_params": result.metrics["backbone"]["trainable_params"],
        "n_train": len(ds.x_train),
        "n_val": n_val,
        "steps_per_epoch": result.metrics["steps_per_epoch"],
        "frozen_img_per_s": round(frozen["images_per_sec"], 1),
        "finetune_img_per_s": round(finetune["images_per_sec"], 1),
        "frozen_epoch_train_s": round(frozen["epoch_seconds"], 2),
        "finetune_epoch_train_s": round(finetune["epoch_seconds"], 2),
        "first_epoch_train_s": round(h[0]["epoch_seconds"], 2),
        "first_finetune_epoch_train_s": round(h[FREEZE]["epoch_seconds"], 2),
        "eval_img_per_s": round(eval_rate, 1),
        "train_wall_s": round(wall, 1),
        "torch_threads": torch.get_num_threads(),
        "load_average_before_after": [round(load_before, 2), round(load_after, 2)],
    }


def project(row: dict, n_train: int, n_val: int, batch: int) -> dict:
    """Seconds of one epoch on ``n_train`` training (whole batches) and ``n_val`` validation images."""
    images = (n_train // batch) * batch
    val = n_val / row["eval_img_per_s"]
    return {
        "frozen_epoch_s": round(images / row["frozen_img_per_s"] + val, 1),
        "finetune_epoch_s": round(images / row["finetune_img_per_s"] + val, 1),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backbones", nargs="+", default=["mobilenet_v2", "efficientnet_b0", "resnet50"])
    p.add_argument("--precisions", nargs="+", default=["off", "bf16"], choices=["off", "bf16", "auto"])
    p.add_argument("--data-formats", nargs="+", default=["default"], help="default: the backbone's own default")
    p.add_argument("--size", type=int, default=96)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--train-images", type=int, default=320)
    p.add_argument("--project-train", type=int, default=800)
    p.add_argument("--project-val", type=int, default=100)
    p.add_argument("--no-record", action="store_true")
    p.add_argument("--out", default=str(OUTPUT))
    p.add_argument("--one", help=argparse.SUPPRESS)  # internal: one configuration as JSON, in this process
    args = p.parse_args(argv)
    if args.one:
        spec = json.loads(args.one)
        print("BENCH-RESULT " + json.dumps(measure_one(**spec)), flush=True)
        return 0

    from cifarkit.provenance import command_line, hardware_info, package_versions

    rows = []
    t0 = time.perf_counter()
    for backbone in args.backbones:
        for precision in args.precisions:
            for fmt in args.data_formats:
                spec = dict(
                    backbone=backbone,
                    precision=precision,
                    data_format=fmt,
                    size=args.size,
                    batch=args.batch,
                    train_images=args.train_images,
                )
                cmd = [sys.executable, str(Path(__file__).resolve()), "--one", json.dumps(spec)]
                out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
                line = next((x for x in out.stdout.splitlines() if x.startswith("BENCH-RESULT ")), None)
                if out.returncode != 0 or line is None:
                    print(f"{backbone} {precision} {fmt}: FAILED\n{out.stderr[-2000:]}", file=sys.stderr)
                    rows.append({**spec, "error": out.stderr[-2000:]})
                    continue
                row = json.loads(line[len("BENCH-RESULT ") :])
                row["projected"] = project(row, args.project_train, args.project_val, args.batch)
                rows.append(row)
                print(
                    f"{backbone:18s} {row['autocast']:8s} {fmt:14s} frozen {row['frozen_img_per_s']:7.1f} img/s, "
                    f"fine-tune {row['finetune_img_per_s']:6.1f} img/s, eval {row['eval_img_per_s']:6.1f} img/s; "
                    f"projected epoch on {args.project_train}+{args.project_val} images: frozen "
                    f"{row['projected']['frozen_epoch_s']:.0f} s, fine-tune {row['projected']['finetune_epoch_s']:.0f} s "
                    f"(load {row['load_average_before_after'][0]:.1f} -> {row['load_average_before_after'][1]:.1f})",
                    flush=True,
                )
    record = {
        "what": (
            f"real train() of ImageNet backbones at {args.size} px, batch {args.batch}, {EPOCHS} epochs "
            f"({FREEZE} frozen) on {args.train_images} synthetic training images; rates of the second epoch of "
            "each phase (warm); projected epochs are measured rates applied to the given image counts"
        ),
        "command": command_line(__file__, argv),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": hardware_info(),
        "versions": package_versions(),
        "projection": {"train_images": args.project_train, "val_images": args.project_val},
        "total_seconds": round(time.perf_counter() - t0, 1),
        "rows": rows,
        "notes": "The machine is shared with other work; the load average before and after each row is recorded "
        "beside it (2 cores: a load above 2 means the run competed for them).",
    }
    if not args.no_record:
        from cifarkit.files import atomic_write_json

        atomic_write_json(Path(args.out), record)
        print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    from cifarkit.signals import EXIT_CODE, stop_on_sigterm

    stop_on_sigterm(EXIT_CODE)  # kill PID ends the run as ^C does: its temp folders are removed
    raise SystemExit(main())
