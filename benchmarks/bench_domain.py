r"""How long does the ``domain`` profile take on ~1,000 images at 96 px, and what does it measure?

Usage:
    python benchmarks/bench_domain.py [--out /tmp/domainrun] [--no-pdf] [--no-record] [--precision off] [--output F]

Builds a proxy for a small two-class collection from the shared CIFAR-10 JPEG archive
(``../shared/datasets/cifar10-jpeg.tar.gz``): the first 500 cat and the first 500 dog images of its
training folder (sorted names), written as JPEG files (the archive's own bytes) in class folders,
``<class>/g<NNNN>_<i>.jpg``, where every 5 consecutive images of a class share a made-up group
``gNNNN`` (numbered across both classes, so no group holds two classes). Then it runs, as a user
would::

    python run_all.py --profile domain --data PROXY --group-by 'g(\d+)_' --out OUT

and reads the run's manifest and metrics: the wall time of the command, the time per notebook, the
planned time, the cross-validated (07) and single-split (04) ROC AUC with their intervals, the
operating point pooled over the folds, whether 05's CNN beats the best baseline by McNemar's test on the test
split, and whether 07's CNN beats every cross-validated baseline on all images (McNemar, Holm-adjusted).
Everything is printed and, unless ``--no-record``, written to ``benchmarks/results/domain_profile.json``.
The images are CIFAR-10's 32x32 pictures, resized to 96x96 by the loader: the proxy stands for the
size and the cost of a small collection, not for the look of one (its accuracies are CIFAR cat-versus-dog
from 800 training images, a hard pair). This is a measurement script, not a timed test.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

ARCHIVE = ROOT.parent / "shared" / "datasets" / "cifar10-jpeg.tar.gz"
CLASSES = ("cat", "dog")
PER_CLASS = 500
GROUP_SIZE = 5
GROUP_BY = r"g(\d+)_"
OUTPUT = HERE / "results" / "domain_profile.json"


def build_proxy(root: Path, archive: Path = ARCHIVE, per_class: int = PER_CLASS) -> Path:
    """Write the proxy collection into ``root`` (kept when it is complete already); returns ``root``."""
    if all(len(list((root / c).glob("*.jpg"))) == per_class for c in CLASSES):
        return root
    if not archive.is_file():
        raise SystemExit(f"bench_domain.py: the shared archive {archive} is absent; it is needed to build the proxy.")
    wanted = {c: [] for c in CLASSES}
    with tarfile.open(archive, "r:gz") as tar:
        members = {m.name: m for m in tar.getmembers() if m.isfile()}
        for c in CLASSES:
            names = sorted(n for n in members if f"/train/{c}/" in n and n.lower().endswith(".jpg"))
            wanted[c] = names[:per_class]
        tmp = root.with_name(root.name + ".tmp")
        for c_index, c in enumerate(CLASSES):
            (tmp / c).mkdir(parents=True, exist_ok=True)
            for i, name in enumerate(wanted[c]):
                group = c_index * (per_class // GROUP_SIZE) + i // GROUP_SIZE
                data = tar.extractfile(members[name]).read()
                (tmp / c / f"g{group:04d}_{i % GROUP_SIZE}.jpg").write_bytes(data)
    if root.exists():
        import shutil

        shutil.rmtree(root)
    tmp.rename(root)
    return root


def _load(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def summarize(run_dir: Path, wall_seconds: float, command: list[str], load_before, load_after) -> dict:
    """The measured numbers of one run folder."""
    from cifarkit import provenance

    manifest = _load(run_dir / "manifest.json")
    m = {name: _load(run_dir / "metrics" / f"{name}.json") for name in ("03_train", "04_evaluate", "05_baselines")}
    m7 = _load(run_dir / "metrics" / "07_cross_validation.json")
    pooled, op7 = m7.get("pooled") or {}, m7.get("operating_point") or {}
    m4, m5 = m["04_evaluate"], m["05_baselines"]
    op4 = m4.get("operating_point") or {}
    positive = op4.get("positive_class")
    best = (m5.get("best_baseline") or {}).get("name")
    test = (m5.get("mcnemar") or {}).get(best) or {}

    def rates(r):
        return {
            k: {"value": (r.get(k) or {}).get("value"), "ci": (r.get(k) or {}).get("ci")}
            for k in ("sensitivity", "specificity", "ppv", "npv")
        }

    notebooks = manifest.get("notebooks") or {}
    return {
        "what": "python run_all.py --profile domain on a ~1,000-image, 2-class, grouped proxy collection at 96 px",
        "command": " ".join(command),
        "data": {
            "proxy": f"the first {PER_CLASS} cat and {PER_CLASS} dog images (sorted names) of the training folder of "
            f"{ARCHIVE.name} (CIFAR-10 re-encoded as JPEG, 32x32), {GROUP_SIZE} images per made-up group, resized "
            "to 96x96 by the loader",
            "images": (m7.get("n_images") or sum(((m4.get("data") or {}).get("counts") or {}).values()) or None),
            "counts": (m4.get("data") or {}).get("counts"),
            "groups": (m4.get("data") or {}).get("groups"),
        },
        "date": provenance.now_iso(),
        "machine": provenance.hardware_info(),
        "git": provenance.git_info(),
        "load_average_before_after": [load_before, load_after],
        "status": manifest.get("status"),
        "wall_seconds": round(wall_seconds, 1),
        "wall_minutes": round(wall_seconds / 60, 2),
        "planned_execute_seconds": (manifest.get("time_plan") or {}).get("total_seconds"),
        "notebooks": {
            name: {
                "status": e.get("status"),
                "execute_seconds": e.get("execute_seconds"),
                "planned_seconds": e.get("planned_seconds"),
                "render_seconds": e.get("render_seconds"),
            }
            for name, e in notebooks.items()
        },
        "totals": manifest.get("totals"),
        "cross_validation": {
            "k": m7.get("k"),
            "grouped": m7.get("grouped"),
            "reason": (m7.get("cross_validation") or {}).get("reason"),
            "notes": (m7.get("cross_validation") or {}).get("notes"),
            "accuracy": pooled.get("accuracy"),
            "accuracy_ci": pooled.get("accuracy_ci"),
            "accuracy_per_fold": (m7.get("fold_summary") or {}).get("accuracy"),
            "roc_auc": pooled.get("roc_auc"),
            "roc_auc_ci": pooled.get("roc_auc_ci"),
            "roc_auc_of": pooled.get("roc_auc_of"),
            "roc_auc_per_fold": (m7.get("fold_summary") or {}).get("roc_auc"),
            "operating_point": {
                "rule": op7.get("rule"),
                "positive_class": op7.get("positive_class"),
                "thresholds": op7.get("thresholds"),
                "pooled": rates(op7.get("pooled") or {}),
            },
        },
        "single_split": {
            "n_test": m4.get("n_test"),
            "test_acc": m4.get("test_acc"),
            "test_acc_ci": m4.get("test_acc_ci"),
            "roc_auc": (m4.get("roc_auc") or {}).get(positive) if positive else m4.get("roc_auc_macro"),
            "roc_auc_ci": (m4.get("roc_auc_ci") or {}).get(positive) if positive else m4.get("roc_auc_macro_ci"),
            "operating_point": {
                "rule": op4.get("rule"),
                "positive_class": positive,
                "threshold": op4.get("threshold"),
                "test": rates(op4.get("test") or {}),
            },
        },
        "cnn_vs_best_baseline": {
            "cnn": (m5.get("cnn") or {}).get("name"),
            "cnn_test_acc": (m5.get("cnn") or {}).get("test_acc"),
            "best_baseline": best,
            "best_baseline_test_acc": (m5.get("best_baseline") or {}).get("test_acc"),
            "mcnemar_p": test.get("p_value"),
            "mcnemar_b_c": [test.get("b"), test.get("c")],
            "cnn_better_at_p_0_05": bool(
                test.get("p_value") is not None
                and test["p_value"] < 0.05
                and (m5.get("cnn") or {}).get("test_acc", 0) > (m5.get("best_baseline") or {}).get("test_acc", 1)
            ),
        },
        "cnn_vs_baselines_out_of_fold": _out_of_fold(m7.get("baselines") or {}),
        "run_dir": str(run_dir),
    }


def _out_of_fold(base: dict) -> dict | None:
    """07's CNN against every cross-validated baseline on all images (McNemar, Holm-adjusted)."""
    if not base.get("baselines"):
        return None
    keep = ("accuracy", "accuracy_ci", "difference", "difference_ci", "b", "c", "p_value", "p_holm")
    return {
        "n": base.get("n"),
        "alpha": base.get("alpha"),
        "cnn_accuracy": (base.get("cnn") or {}).get("accuracy"),
        "cnn_accuracy_ci": (base.get("cnn") or {}).get("accuracy_ci"),
        "best_baseline": base.get("best_baseline"),
        "baselines": {r["name"]: {k: r.get(k) for k in keep} for r in base["baselines"]},
        "cnn_beats_all": base.get("cnn_beats_all"),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--proxy", default="/tmp/cifarkit-domain-proxy", help="where the proxy collection is written")
    p.add_argument("--out", default="/tmp/domainrun", help="run_all.py --out")
    p.add_argument(
        "--no-pdf", action="store_true", help="pass --no-pdf (trial runs only; the recorded run renders PDFs)"
    )
    p.add_argument("--no-record", action="store_true", help=f"print only, do not write {OUTPUT.relative_to(ROOT)}")
    p.add_argument(
        "--precision",
        choices=("auto", "off", "bf16"),
        default="auto",
        help="run_all.py --precision: off measures the float32 study on a machine with bf16 units",
    )
    p.add_argument("--output", default=str(OUTPUT), help="where the record goes")
    args = p.parse_args(argv)
    proxy = build_proxy(Path(args.proxy))
    out = Path(args.out)
    before = {p.name for p in out.iterdir()} if out.is_dir() else set()
    command = [sys.executable, "run_all.py", "--profile", "domain", "--data", str(proxy), "--group-by", GROUP_BY]
    command += ["--out", str(out)] + (["--no-pdf"] if args.no_pdf else [])
    command += ["--precision", args.precision] if args.precision != "auto" else []
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.run(command, cwd=ROOT)
    wall = time.perf_counter() - t0
    load_after = os.getloadavg()[0]
    runs = [p for p in out.iterdir() if p.is_dir() and p.name not in before]
    if len(runs) != 1:
        print(f"bench_domain.py: expected one new run folder in {out}, found {len(runs)}", file=sys.stderr)
        return 1
    shown = ["python"] + [str(a) for a in command[1:]]
    record = summarize(runs[0], wall, shown, round(load_before, 2), round(load_after, 2))
    record["returncode"] = proc.returncode
    record["pdf"] = not args.no_pdf
    record["precision"] = _load(runs[0] / "manifest.json").get("precision") or args.precision
    print(json.dumps(record, indent=1))
    if not args.no_record:
        from cifarkit.files import atomic_write_json

        atomic_write_json(Path(args.output), record)
        print(f"recorded in {args.output}")
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
