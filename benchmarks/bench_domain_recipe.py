r"""Which training settings suit the ``domain`` profile: a small collection at 96 px, trained from scratch.

Usage:
    python benchmarks/bench_domain_recipe.py [--work /tmp/domain-recipe] [--only catdog,digits] [--no-record]

Two small collections with a large scored split, so that a setting's effect is not lost in the noise of a
100-image test split:

- ``catdog``: the first 500 cat and 500 dog images (sorted names) of the shared CIFAR-10 JPEG archive's
  ``train`` folder for training (the study's seeded 10% validation carve comes out of them), and the first
  500 of each of its ``test`` folder for scoring (1,000 images);
- ``digits``: scikit-learn's bundled 1,797 digits, shuffled with seed 0, 1,000 for training (same carve)
  and 797 for scoring.

Both are loaded as the profile loads a folder (:func:`cifarkit.data.load_study_data`, 96x96). Each setting
trains fastnet with the ``default`` recipe, batch 32, balanced class weights, crop 12 and cutout 24 px, as
``params/domain.yaml`` does, and changes one thing: the whitening stem's stride, the epochs, the width, or
mirroring. The non-CNN baselines of 05 are fitted on the same splits for reference. Test accuracy (and with
flip TTA), validation accuracy and training seconds are printed and, unless ``--no-record``, written to
``benchmarks/results/domain_recipe.json`` with the machine and date. One seed per setting: differences of a
point or two on 1,000 scored images are within noise (a 95% interval is about +-2.8 points at 75%).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tarfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

ARCHIVE = ROOT.parent / "shared" / "datasets" / "cifar10-jpeg.tar.gz"
OUTPUT = HERE / "results" / "domain_recipe.json"

#: (name, settings) per data set; the first is the profile as it was before stem_stride, the third the profile now.
SETTINGS = {
    "catdog": [
        ("stride 1, 16 epochs (the profile before)", dict(epochs=16, stem_stride=1)),
        ("stride 2, 16 epochs", dict(epochs=16, stem_stride=2)),
        ("stride 2, 48 epochs (the profile now)", dict(epochs=48, stem_stride=2)),
        ("stride 2, 96 epochs", dict(epochs=96, stem_stride=2)),
        ("stride 2, 48 epochs, full width", dict(epochs=48, stem_stride=2, width=1.0)),
    ],
    "digits": [
        ("stride 1, 16 epochs (the profile before)", dict(epochs=16, stem_stride=1)),
        ("stride 2, 16 epochs", dict(epochs=16, stem_stride=2)),
        ("stride 2, 48 epochs (the profile now)", dict(epochs=48, stem_stride=2)),
        ("stride 2, 48 epochs, no flips (-p AUGMENT no-flip)", dict(epochs=48, stem_stride=2, flip=False)),
    ],
}


def write_catdog(root: Path, per_class: int = 500) -> Path:
    if all(len(list((root / s / c).glob("*.jpg"))) == per_class for s in ("train", "test") for c in ("cat", "dog")):
        return root
    if not ARCHIVE.is_file():
        raise SystemExit(f"bench_domain_recipe.py: the shared archive {ARCHIVE} is absent; it is needed for catdog.")
    tmp = root.with_name(root.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    with tarfile.open(ARCHIVE, "r:gz") as tar:
        members = {m.name: m for m in tar.getmembers() if m.isfile()}
        for split in ("train", "test"):
            for c in ("cat", "dog"):
                names = sorted(n for n in members if f"/{split}/{c}/" in n and n.lower().endswith(".jpg"))[:per_class]
                (tmp / split / c).mkdir(parents=True, exist_ok=True)
                for i, name in enumerate(names):
                    (tmp / split / c / f"{i:04d}.jpg").write_bytes(tar.extractfile(members[name]).read())
    shutil.rmtree(root, ignore_errors=True)
    tmp.rename(root)
    return root


def write_digits(root: Path, n_train: int = 1000) -> Path:
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    if sum(1 for _ in root.glob("*/*/*.png")) == len(digits.target):
        return root
    tmp = root.with_name(root.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    order = np.random.default_rng(0).permutation(len(digits.target))
    for rank, i in enumerate(order):
        folder = tmp / ("train" if rank < n_train else "test") / str(digits.target[i])
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.round(digits.images[i] * 255 / 16).astype(np.uint8)).save(folder / f"{i:04d}.png")
    shutil.rmtree(root, ignore_errors=True)
    tmp.rename(root)
    return root


def train_one(ds, settings: dict, out: Path) -> dict:
    from cifarkit.training import notebook_config, predict_logits, softmax, train

    overrides = {
        "model_options": {"width_multiplier": settings.get("width", 0.5), "stem_stride": settings["stem_stride"]},
        "crop": 12,
        "cutout": 24,
    }
    if settings.get("flip") is False:
        overrides["flip"] = False
    config = notebook_config(
        "fastnet", "default", epochs=settings["epochs"], batch_size=32, class_weight="balanced", overrides=overrides
    )
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    result = train(ds, config, out, resume=False, progress=False)
    seconds = time.perf_counter() - t0
    probs = softmax(predict_logits(result.model, ds.x_test))
    flipped = softmax(predict_logits(result.model, ds.x_test[:, :, ::-1]))
    return {
        "test_acc": round(float((probs.argmax(1) == ds.y_test).mean()), 4),
        "test_acc_flip_tta": round(float(((probs + flipped).argmax(1) == ds.y_test).mean()), 4),
        "val_acc": result.metrics.get("val_acc"),
        "train_seconds": round(seconds, 1),
        "epochs": settings["epochs"],
        "precision": result.metrics.get("mixed_precision"),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", default="/tmp/domain-recipe", help="where the two collections and the runs are written")
    p.add_argument("--only", default="catdog,digits", help="comma-separated: catdog, digits")
    p.add_argument("--no-record", action="store_true")
    args = p.parse_args(argv)
    import os

    from cifarkit import provenance
    from cifarkit.analysis.baselines import run_baselines
    from cifarkit.data import load_study_data
    from cifarkit.files import atomic_write_json

    work = Path(args.work)
    writers = {"catdog": write_catdog, "digits": write_digits}
    record = {
        "what": "fastnet settings for the domain profile on two small collections at 96 px, one seed each",
        "command": provenance.command_line(__file__, argv),
        "date": provenance.now_iso(),
        "machine": provenance.hardware_info(),
        "git": provenance.git_info(),
        "load_average_before": round(os.getloadavg()[0], 2),
        "data": {},
        "baselines": {},
        "settings": {},
    }
    for name in [n.strip() for n in args.only.split(",") if n.strip()]:
        folder = writers[name](work / name)
        ds = load_study_data(str(folder), image_size=96, val_fraction=0.1, seed=0)
        record["data"][name] = {
            "folder": str(folder),
            "counts": {"train": len(ds.y_train), "val": len(ds.y_val), "test": len(ds.y_test)},
            "classes": list(ds.class_names),
        }
        print(f"{name}: {len(ds.y_train)} training, {len(ds.y_val)} validation, {len(ds.y_test)} scored images")
        record["baselines"][name] = {
            r["name"]: {"val_acc": r["val_acc"], "test_acc": round(r["test_acc"], 4)}
            for r in run_baselines(ds, progress=None, n_boot=200)
        }
        print(f"  baselines (test): {record['baselines'][name]}")
        record["settings"][name] = {}
        for label, settings in SETTINGS[name]:
            r = train_one(ds, settings, work / "runs" / f"{name}-{len(record['settings'][name])}")
            record["settings"][name][label] = r
            print(
                f"  {label}: test {r['test_acc']:.2%} (flip TTA {r['test_acc_flip_tta']:.2%}), {r['train_seconds']} s"
            )
    record["load_average_after"] = round(os.getloadavg()[0], 2)
    if not args.no_record:
        atomic_write_json(OUTPUT, record)
        print(f"recorded in {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
