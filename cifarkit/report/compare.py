"""Run-to-run comparison: two or more runs of the study scored image by image on the same test images.

``python -m cifarkit compare RUN_A RUN_B [RUN_C ...] [--out DIR]`` reads each run's
manifest, its ``03_train`` and ``04_evaluate`` metrics and the test predictions that
``04_evaluate`` stored (:func:`cifarkit.run_folder.load_predictions`), and writes
``index.html``, ``compare.pdf`` and ``compare.json`` (every number) into
``<parent of RUN_A>/compare-<idA>-vs-<idB>/`` unless ``--out`` names a folder.

The report says what differs between the runs (profile, data, notebook parameters,
training settings, versions, hardware, git commit), puts their headline metrics side
by side with the difference in test accuracy and its paired-bootstrap interval,
gives McNemar's test for every pair, the per-class F1 deltas and the learning
curves overlaid, and closes with a verdict computed from those numbers.

Runs are refused, with the reason, when their test images differ (the fingerprints
stored with the predictions disagree), when a run stored no predictions, when a
folder is not a run, or when fewer than two runs are given.
"""

from __future__ import annotations

import math
from itertools import combinations
from pathlib import Path

import numpy as np

from cifarkit import files, run_folder
from cifarkit.files import read_json
from cifarkit.provenance import now_iso
from cifarkit.report.compare_diff import diff_phrases, parameter_diff, parameters

#: The paired bootstrap's resamples when no run recorded ``N_BOOT`` (the notebooks' own default).
DEFAULT_N_BOOT = 2000
#: Parameters that decide which test images a run scores.
TEST_IMAGE_PARAMETERS = (
    "DATA",
    "DATA_SUBSET",
    "IMAGE_SIZE",
    "SEED",
    "VAL_FRACTION",
    "TEST_FRACTION",
    "CLASS_NAMES",
    "GROUP_BY",
    "LABELS",
)
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


class CompareError(ValueError):
    """Runs that cannot be compared; the message says why and what to do."""


# ------------------------------------------------------------------ reading the runs
def _not_a_run(path: Path, why: str) -> CompareError:
    return CompareError(
        f"{path} is not a run folder: {why}. Pass folders that run_all.py made, e.g. reports/20260101-120000-standard."
    )


def load_run(path, letter: str = "A") -> dict:
    """One run's manifest, metrics and stored test predictions; :class:`CompareError` when it cannot be compared."""
    path = Path(path)
    if not path.exists():
        raise _not_a_run(path, "it does not exist")
    if not path.is_dir():
        raise _not_a_run(path, "it is a file")
    manifest = read_json(path / run_folder.MANIFEST)
    if not (path / run_folder.MANIFEST).is_file():
        raise _not_a_run(path, f"it holds no {run_folder.MANIFEST}")
    if not isinstance(manifest, dict) or not isinstance(manifest.get("notebooks", {}), dict):
        raise _not_a_run(path, f"its {run_folder.MANIFEST} is not a run's manifest (unreadable or not an object)")
    try:
        predictions = run_folder.load_predictions(path)
    except FileNotFoundError as exc:
        raise CompareError(str(exc)) from None
    except (OSError, ValueError, KeyError) as exc:
        raise CompareError(
            f"The stored test predictions of {path} cannot be read ({type(exc).__name__}: {exc}). "
            f"Run 04_evaluate again in that run (python run_all.py --resume {path} --only 04)."
        ) from None
    return {
        "letter": letter,
        "dir": path,
        "run_id": str(manifest.get("run_id") or path.name),
        "manifest": manifest,
        "train": run_folder.read_metrics(path, run_folder.TRAIN),
        "evaluate": run_folder.read_metrics(path, run_folder.EVALUATE),
        "predictions": predictions,
    }


def bootstrap_settings(manifest: dict) -> dict:
    """``n_boot`` and ``seed`` of the paired bootstrap, as the run's notebooks used them (04 first)."""
    params = parameters(manifest)
    order = [run_folder.EVALUATE, run_folder.TRAIN] + sorted(params)
    n_boot = seed = None
    for name in order:
        p = params.get(name) or {}
        if n_boot is None and isinstance(p.get("N_BOOT"), int):
            n_boot = p["N_BOOT"]
        if seed is None and isinstance(p.get("SEED"), int):
            seed = p["SEED"]
    return {
        "n_boot": n_boot if n_boot is not None else DEFAULT_N_BOOT,
        "seed": seed if seed is not None else 0,
        "n_boot_from": "the manifest's N_BOOT" if n_boot is not None else f"the default ({DEFAULT_N_BOOT})",
    }


def check_comparable(runs: list[dict]) -> None:
    """Refuse runs that were not evaluated on the same test images, or one run given twice."""
    first = runs[0]
    for run in runs[1:]:
        if run["dir"].resolve() == first["dir"].resolve():
            raise CompareError(f"Run {run['dir']} is given twice. Compare two different runs.")
        fa, fb = first["predictions"]["fingerprint"], run["predictions"]["fingerprint"]
        same_labels = np.array_equal(first["predictions"]["y_true"], run["predictions"]["y_true"])
        if fa != fb or not same_labels:
            differ = _test_image_parameters_that_differ(first["manifest"], run["manifest"])
            because = f" Here {'; '.join(differ)}." if differ else ""
            raise CompareError(
                f"Run {run['run_id']} ({run['dir']}) was evaluated on other test images than run "
                f"{first['run_id']} ({first['dir']}): their test-image fingerprints differ ({fb[:12]} vs {fa[:12]}). "
                "A paired comparison needs the same test images, so the data, the subset (DATA_SUBSET), the image "
                f"size (IMAGE_SIZE) and the split seed (SEED) must match.{because}"
            )


def _test_image_parameters_that_differ(a: dict, b: dict) -> list[str]:
    pa, pb = parameters(a).get(run_folder.EVALUATE, {}), parameters(b).get(run_folder.EVALUATE, {})
    out = [
        f"{key} is {pa.get(key)!r} in one and {pb.get(key)!r} in the other"
        for key in TEST_IMAGE_PARAMETERS
        if pa.get(key) != pb.get(key)
    ]
    if (a.get("data") or {}).get("sha256") != (b.get("data") or {}).get("sha256"):
        out.append("the data files' sha256 differ")
    return out


# ------------------------------------------------------------------ the numbers
def _num(value):
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _ci(value):
    if isinstance(value, dict):
        value = [value.get("lo", value.get("low")), value.get("hi", value.get("high"))]
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(_num(v) is not None for v in value):
        return [float(value[0]), float(value[1])]
    return None


def headline(run: dict) -> dict:
    """The run's headline numbers: test accuracy with its CI (04, else 03, else the stored predictions),
    validation accuracy and training seconds (03), macro F1, balanced accuracy and ECE (04)."""
    ev, tr, pred = run["evaluate"], run["train"], run["predictions"]
    correct = pred["y_pred"] == pred["y_true"]
    test_acc = _num(ev.get("test_acc"))
    source = run_folder.EVALUATE
    if test_acc is None:
        test_acc, source = _num(tr.get("test_acc")), run_folder.TRAIN
    if test_acc is None:
        test_acc, source = float(correct.mean()), "stored predictions"
    return {
        "test_acc": test_acc,
        "test_acc_ci": _ci(ev.get("test_acc_ci")) or _ci(tr.get("test_acc_ci")),
        "test_acc_from": source,
        "test_acc_from_predictions": float(correct.mean()),
        "val_acc": _num(tr.get("val_acc")),
        "macro_f1": _num(ev.get("macro_f1")),
        "balanced_acc": _num(ev.get("balanced_acc")),
        "ece": _num(ev.get("ece_before")),
        "train_seconds": _num(tr.get("train_seconds")),
        "epochs": tr.get("epochs_run") if isinstance(tr.get("epochs_run"), int) else len(tr.get("history") or []),
        "model": tr.get("model") or ev.get("model") or run["manifest"].get("model"),
    }


def per_class_f1(run: dict, class_names: list[str]) -> list[float | None]:
    """F1 per class in the data's order: what 04 recorded, else computed from the stored predictions."""
    recorded = run["evaluate"].get("per_class")
    if isinstance(recorded, dict) and all(isinstance(recorded.get(c), dict) for c in class_names):
        values = [_num(recorded[c].get("f1")) for c in class_names]
        if all(v is not None for v in values):
            return values
    from sklearn.metrics import f1_score

    pred = run["predictions"]
    return [
        float(v)
        for v in f1_score(
            pred["y_true"], pred["y_pred"], labels=list(range(len(class_names))), average=None, zero_division=0
        )
    ]


def pair_tests(runs: list[dict], n_boot: int, seed: int) -> list[dict]:
    """Every pair (earlier, later): the paired-bootstrap CI of later minus earlier accuracy, and McNemar's test."""
    from cifarkit.analysis import stats

    y_true = runs[0]["predictions"]["y_true"]
    out = []
    for a, b in combinations(runs, 2):
        pa, pb = a["predictions"]["y_pred"], b["predictions"]["y_pred"]
        diff = stats.paired_difference_ci(y_true, pb, pa, n_boot=n_boot, seed=seed)
        mc = stats.mcnemar(y_true, pa, pb)
        out.append(
            {
                "a": a["letter"],
                "b": b["letter"],
                "a_run": a["run_id"],
                "b_run": b["run_id"],
                "difference": diff["difference"],
                "ci": [diff["ci_low"], diff["ci_high"]],
                "level": diff["level"],
                "n": diff["n"],
                "mcnemar": {**mc, "p_text": stats.format_p(mc["p_value"])},
                "both_right": int(np.sum((pa == y_true) & (pb == y_true))),
                "both_wrong": int(np.sum((pa != y_true) & (pb != y_true))),
            }
        )
    return out


def curves(run: dict) -> list[dict]:
    """The 03 history's validation accuracy and loss per epoch."""
    rows = []
    for i, r in enumerate(run["train"].get("history") or []):
        if isinstance(r, dict):
            epoch = r.get("epoch")
            rows.append(
                {
                    "epoch": int(epoch) if isinstance(epoch, (int, float)) else i + 1,
                    "val_acc": _num(r.get("val_acc")),
                    "val_loss": _num(r.get("val_loss")),
                }
            )
    return rows


def verdict(runs: list[dict], metrics: list[dict], pairs: list[dict], diff: dict, n_test: int) -> list[str]:
    """Sentences chosen by rules on the numbers (plain text; the page escapes them)."""
    from cifarkit.analysis import verdicts

    says = []
    for p in pairs:
        says.append(
            verdicts.gain(
                p["difference"],
                p["ci"],
                f"Run {p['b']} ({p['b_run']}), against run {p['a']} ({p['a_run']}),",
                of="test ",
            )
        )
        mc = p["mcnemar"]
        beyond = mc["p_value"] < 0.05
        says.append(
            f"McNemar's test on the {n_test} test images: {mc['b']} right only in {p['a']}, {mc['c']} right only in "
            f"{p['b']}, {mc['p_text']}: "
            + (
                "the two runs' errors differ beyond chance."
                if beyond
                else "a difference this size is consistent with chance."
            )
        )
    if len(runs) > 2:
        best = max(range(len(runs)), key=lambda i: metrics[i]["test_acc"])
        says.append(
            f"Highest test accuracy: run {runs[best]['letter']} ({runs[best]['run_id']}), "
            f"{100 * metrics[best]['test_acc']:.2f}%."
        )
    k = len(runs[0]["predictions"]["class_names"])
    at_chance = [(r, m) for r, m in zip(runs, metrics) if verdicts.chance_level(m["test_acc"], k, n_test)]
    if at_chance:
        who = " and ".join(f"{r['letter']} ({100 * m['test_acc']:.2f}%)" for r, m in at_chance)
        says.append(
            f"{'Runs' if len(at_chance) > 1 else 'Run'} {who} {'are' if len(at_chance) > 1 else 'is'} at chance "
            f"level on these {n_test} test images with {k} classes: differences involving "
            f"{'them' if len(at_chance) > 1 else 'it'} say little about the method."
        )
    changed = diff_phrases(diff)
    if changed:
        says.append("The runs differ in " + "; ".join(changed) + ".")
    else:
        says.append("The manifests record no difference in parameters, data, versions, hardware or commit.")
    return says


def compare_runs(run_dirs) -> dict:
    """Everything the report shows, as numbers: see :func:`write_comparison`."""
    run_dirs = [Path(d) for d in run_dirs]
    if len(run_dirs) < 2:
        raise CompareError(
            f"compare needs at least two runs; got {len(run_dirs)}. Example: python -m cifarkit compare "
            "reports/RUN_A reports/RUN_B"
        )
    if len(run_dirs) > len(LETTERS):
        raise CompareError(f"compare takes at most {len(LETTERS)} runs; got {len(run_dirs)}.")
    runs = [load_run(d, LETTERS[i]) for i, d in enumerate(run_dirs)]
    check_comparable(runs)
    boot = bootstrap_settings(runs[0]["manifest"])
    other_boot = {r["letter"]: bootstrap_settings(r["manifest"])["n_boot"] for r in runs[1:]}
    class_names = runs[0]["predictions"]["class_names"]
    n_test = int(len(runs[0]["predictions"]["y_true"]))
    metrics = [headline(r) for r in runs]
    f1 = [per_class_f1(r, class_names) for r in runs]
    pairs = pair_tests(runs, boot["n_boot"], boot["seed"])
    diff = parameter_diff(runs)
    per_class = [
        {
            "class": name,
            "f1": [f[i] for f in f1],
            "delta": [f[i] - f1[0][i] for f in f1[1:]],
        }
        for i, name in enumerate(class_names)
    ]
    return {
        "written_at": now_iso(),
        "runs": [
            {
                "letter": r["letter"],
                "run_id": r["run_id"],
                "dir": str(r["dir"].resolve()),
                "profile": r["manifest"].get("profile"),
                "model": m["model"],
                "epochs": m["epochs"],
                "started_at": r["manifest"].get("started_at"),
                "class_names": r["predictions"]["class_names"],
            }
            for r, m in zip(runs, metrics)
        ],
        "test_images": {"n": n_test, "fingerprint": runs[0]["predictions"]["fingerprint"], "classes": class_names},
        "bootstrap": {
            **boot,
            "level": 0.95,
            "note": (
                ""
                if all(v == boot["n_boot"] for v in other_boot.values())
                else f"the runs recorded different N_BOOT ({other_boot}); run A's {boot['n_boot']} is used"
            ),
        },
        "diff": diff,
        "metrics": metrics,
        "pairs": pairs,
        "per_class_f1": per_class,
        "per_class_delta_sums": [float(sum(row["delta"][j] for row in per_class)) for j in range(len(runs) - 1)],
        "curves": {r["letter"]: curves(r) for r in runs},
        "verdict": verdict(runs, metrics, pairs, diff, n_test),
    }


# ------------------------------------------------------------------ writing the report
def default_out_dir(run_dirs) -> Path:
    """``<parent of RUN_A>/compare-<idA>-vs-<idB>[-vs-<idC>...]`` (run folder names)."""
    run_dirs = [Path(d).resolve() for d in run_dirs]
    return run_dirs[0].parent / ("compare-" + "-vs-".join(d.name for d in run_dirs))


def write_comparison(run_dirs, out_dir=None, *, pdf: bool = True) -> dict:
    """Compare the runs and write ``index.html``, ``compare.pdf`` and ``compare.json`` into ``out_dir``.

    Returns:
        ``{"html", "pdf" (or None), "json", "pdf_skipped" (reason or None), "result"}``.

    Raises:
        CompareError: the runs cannot be compared (the message says why).
        UnsafeReportError: text from the data reached the page unescaped (never written).
    """
    from cifarkit.report import render, safety
    from cifarkit.report.compare_page import build_page

    result = compare_runs(run_dirs)
    out_dir = Path(out_dir) if out_dir else default_out_dir(run_dirs)
    if out_dir.exists() and not out_dir.is_dir():
        raise CompareError(f"The output folder {out_dir} (--out) is a file, not a folder. Give a folder.")
    page = build_page(result, out_dir)
    safety.check_html(page, allowed_scripts=[])
    result["pdf_skipped"] = None
    html_path = files.atomic_write_text(out_dir / "index.html", page)
    pdf_path = None
    if not pdf:
        result["pdf_skipped"] = "PDF not requested (--no-pdf)"
    else:
        try:
            pdf_path = render.render_pdf(html_path, out_dir / "compare.pdf")
        except render.ChromiumNotFound as exc:
            result["pdf_skipped"] = str(exc)
        except RuntimeError as exc:
            result["pdf_skipped"] = f"Chromium could not print the page: {exc}"
    if pdf_path is None:
        stale = out_dir / "compare.pdf"
        if stale.is_file():  # a PDF of an earlier comparison would no longer match the page
            stale.unlink()
    json_path = files.atomic_write_json(out_dir / "compare.json", result)
    _update_folder_index(out_dir.parent)
    return {
        "html": html_path,
        "pdf": pdf_path,
        "json": json_path,
        "pdf_skipped": result["pdf_skipped"],
        "result": result,
    }


def _update_folder_index(folder: Path) -> None:
    """List the new comparison in the folder's runs index, when the folder holds runs and the index is cifarkit's."""
    from cifarkit.report import dashboard

    if dashboard.find_runs(folder):
        dashboard.write_index(folder)
