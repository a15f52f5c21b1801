"""Benchmark: the time estimate's speed probe against ``train()`` itself, on the same machine, alternated.

``run_all.py`` estimates a run from a probe (:func:`cifarkit.report.estimate.run_probe`: a few seconds of
training steps and two inference passes on random images, in a subprocess). This script alternates that probe
with a real ``train()`` of fastnet on the shared CIFAR-10 JPEG archive (``--subset`` images per class and split,
``--epochs`` epochs), each in a fresh subprocess as a notebook would be, and records the probe's training and
inference img/s beside each epoch's training img/s and its validation pass's img/s, and the ratio of the
trained speed (the epochs after the first) to the probe's.

Usage:
    python benchmarks/bench_probe_vs_train.py [--data PATH] [--settings recipe|tuned] [--precision auto|off]
                                              [--rounds 2] [--epochs 3] [--subset 500] [--output PATH]

``--settings tuned``: batch 64, width 0.75, the settings 02 chose in every quick run of 2026-12-05.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from cifarkit.signals import run_child  # noqa: E402  (the checkout's package, from the line above)

SETTINGS = {"recipe": {}, "tuned": {"batch_size": 64, "model_options": {"width_multiplier": 0.75}}}


def settings_for(name: str, precision: str) -> dict:
    out = json.loads(json.dumps(SETTINGS[name]))
    if precision == "off":
        out["mixed_precision"] = "off"
    return out


def probe(settings: dict, subset: int) -> dict:
    """One probe as ``run_all.py`` makes it (in a subprocess of its own)."""
    from cifarkit.report.estimate import run_probe

    job = {"model": "fastnet", "recipe": "fast", "settings": settings, "n_train": 10 * subset, "epochs": 1}
    answer = run_probe({"jobs": {"03": job}, "probe": ["03"], "image_size": 32, "num_classes": 10, "yardsticks": False})
    rate = answer["rates"]["03"]
    return {"train_img_per_s": rate["train_img_per_s"], "infer_img_per_s": rate["infer_img_per_s"]}


def train_once(data: str, settings: dict, subset: int, epochs: int) -> dict:
    """One ``train()`` in this process (the script calls itself with ``--train-child``)."""
    import tempfile

    from cifarkit.data import load_study_data
    from cifarkit.training import resolve_recipe, train

    ds = load_study_data(data, image_size=32, subset=subset, val_fraction=0.1, seed=0)
    config = resolve_recipe("fast", model="fastnet", epochs=epochs, seed=0, **settings)
    with tempfile.TemporaryDirectory() as out:
        result = train(ds, config, out, resume=False, progress=False)
    return {
        "precision": result.metrics.get("mixed_precision"),
        "train_img_per_s": [round(h["images_per_sec"], 1) for h in result.history],
        "val_img_per_s": [round(len(ds.x_val) / h["eval_seconds"], 1) for h in result.history],
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "datasets" / "cifar10-jpeg.tar.gz"))
    ap.add_argument("--settings", choices=sorted(SETTINGS), default="recipe")
    ap.add_argument("--precision", choices=["auto", "off"], default="auto")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--subset", type=int, default=500)
    ap.add_argument("--output", default=None, help="JSON to write (default: print only)")
    ap.add_argument("--train-child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    os.environ.setdefault("KERAS_BACKEND", "torch")
    settings = settings_for(args.settings, args.precision)
    if args.train_child:
        print(json.dumps(train_once(args.data, settings, args.subset, args.epochs)))
        return 0
    if not Path(args.data).exists():
        print(f"error: no data at {args.data}; give --data PATH (the shared CIFAR-10 JPEG archive)", file=sys.stderr)
        return 2
    rounds = []
    for i in range(args.rounds):
        p = probe(settings, args.subset)
        child = [sys.executable, __file__, "--train-child", "--data", args.data, "--settings", args.settings]
        child += ["--precision", args.precision, "--epochs", str(args.epochs), "--subset", str(args.subset)]
        t = json.loads(run_child(child, what="training child").strip().splitlines()[-1])
        later = t["train_img_per_s"][1:] or t["train_img_per_s"]
        row = {
            "probe": p,
            "train": t,
            "trained_over_probe": round(sum(later) / len(later) / p["train_img_per_s"], 3),
            "validation_over_probe_inference": round(
                sum(t["val_img_per_s"]) / len(t["val_img_per_s"]) / p["infer_img_per_s"], 3
            ),
        }
        rounds.append(row)
        print(
            f"round {i + 1}: probe {p['train_img_per_s']:.0f} img/s training, {p['infer_img_per_s']:.0f} inference; "
            f"train() {', '.join(f'{v:.0f}' for v in t['train_img_per_s'])} img/s per epoch, validation "
            f"{', '.join(f'{v:.0f}' for v in t['val_img_per_s'])}; trained/probe {row['trained_over_probe']:.2f}, "
            f"validation/probe {row['validation_over_probe_inference']:.2f}",
            flush=True,
        )
    if args.output:
        from cifarkit import files, provenance

        record = {
            "benchmark": "probe_vs_train",
            "command": provenance.command_line(__file__, argv),
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "machine": provenance.hardware_info(),
            "git": provenance.git_info(),
            "data": {"path": args.data, "sha256": files.file_sha256(args.data), "subset_per_class": args.subset},
            "settings": args.settings,
            "precision": args.precision,
            "epochs": args.epochs,
            "rounds": rounds,
        }
        files.atomic_write_json(Path(args.output), record)
        print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    from cifarkit.signals import EXIT_CODE, stop_on_sigterm

    stop_on_sigterm(EXIT_CODE)  # kill PID ends the run as ^C does: train()'s temp folder is removed
    raise SystemExit(main())
