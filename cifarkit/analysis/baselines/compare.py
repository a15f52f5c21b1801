"""The baselines beside the run's CNNs: the same splits, McNemar's test on the same test images, a verdict."""

from __future__ import annotations

import math
import time
from pathlib import Path

from cifarkit import escape, run_folder
from cifarkit.analysis.baselines.methods import _accuracy


def check_same_data(recorded: dict, ds) -> None:
    """Raise ``ValueError`` unless the data recorded by the training notebook has the splits of ``ds``."""
    if not recorded:
        return
    mismatch = []
    if recorded.get("counts") and dict(recorded["counts"]) != ds.counts():
        mismatch.append(f"split sizes {recorded['counts']} vs {ds.counts()}")
    if recorded.get("seed") is not None and ds.seed is not None and recorded["seed"] != ds.seed:
        mismatch.append(f"seed {recorded['seed']} vs {ds.seed}")
    if recorded.get("class_names") and len(recorded["class_names"]) != ds.num_classes:
        mismatch.append(f"{len(recorded['class_names'])} vs {ds.num_classes} classes")
    if recorded.get("source_sha256") and ds.source_sha256 and recorded["source_sha256"] != ds.source_sha256:
        mismatch.append("data checksum")
    for key in ("group_by", "labels_from"):
        if key in recorded and (recorded.get(key) or None) != (getattr(ds, key, None) or None):
            mismatch.append(f"{key} {recorded.get(key)!r} vs {getattr(ds, key, None)!r}")
    if mismatch:
        raise ValueError(
            "The CNN was trained on other splits than the baselines would use (" + "; ".join(mismatch) + "). "
            "Give this notebook the same DATA, DATA_SUBSET, VAL_FRACTION, SEED, GROUP_BY and LABELS as 03_train."
        )


def evaluate_cnns(cnns: list[dict], ds, *, n_boot: int = 2000, seed: int = 0, progress=print) -> list[dict]:
    """Load each CNN and score it on the validation and test splits of ``ds``.

    Returns:
        The dicts of ``cnns`` with ``val_acc``, ``test_acc``, ``test_acc_ci``,
        ``ci_level``, ``predict_seconds`` (test split), ``train_images_used``
        and the arrays ``val_pred`` and ``test_pred`` added.
    """
    from cifarkit.analysis.stats import accuracy_ci
    from cifarkit.training import predict_logits

    say = progress or (lambda *a: None)
    out = []
    for c in cnns:
        path = Path(c["model_path"])
        if not path.is_file():
            raise FileNotFoundError(
                f"The model of {c['name']!r} ({c['source']}) is missing: {path}. Run {c['source']} again."
            )
        model = run_folder.load_model(path)
        val_pred = predict_logits(model, ds.x_val).argmax(axis=1) if len(ds.y_val) else None
        t0 = time.perf_counter()
        test_pred = predict_logits(model, ds.x_test).argmax(axis=1)
        predict_s = time.perf_counter() - t0
        ci = accuracy_ci(ds.y_test, test_pred, n_boot=n_boot, seed=seed)
        res = dict(
            c,
            val_acc=_accuracy(ds.y_val, val_pred) if val_pred is not None else c["recorded"].get("val_acc"),
            test_acc=ci["accuracy"],
            test_acc_ci=[ci["ci_low"], ci["ci_high"]],
            ci_level=ci["level"],
            predict_seconds=round(predict_s, 6),
            train_images_used=int(len(ds.y_train)),
            val_pred=val_pred,
            test_pred=test_pred,
        )
        say(f"{res['name']}: val {res['val_acc']:.3f}, test {res['test_acc']:.3f}; predict {predict_s:.1f} s")
        out.append(res)
    return out


def best_by_validation(cnns: list[dict]) -> dict:
    """The CNN with the highest validation accuracy (the first one on ties or without validation data)."""
    if not cnns:
        raise ValueError("No CNN to compare with. Run 03_train first.")
    scored = [c for c in cnns if c.get("val_acc") is not None and not math.isnan(c["val_acc"])]
    return max(scored, key=lambda c: c["val_acc"]) if scored else cnns[0]


def compare_with_cnn(baselines: list[dict], cnn: dict, y_test) -> dict:
    """McNemar's test of every baseline against ``cnn`` on the test split.

    Returns:
        ``{baseline name: {"b", "c", "statistic", "p_value", "method", "p_text"}}``
        where ``b`` counts test images the CNN gets right and the baseline wrong,
        ``c`` the reverse.
    """
    from cifarkit.analysis.stats import format_p, mcnemar

    out = {}
    for r in baselines:
        m = mcnemar(y_test, cnn["test_pred"], r["test_pred"])
        m["p_text"] = format_p(m["p_value"])
        out[r["name"]] = m
    return out


def cnn_beats_all(baselines: list[dict], cnn: dict, tests: dict, alpha: float = 0.001) -> bool:
    """True when ``cnn``'s test accuracy is above every baseline's and McNemar's p is below ``alpha`` for each."""
    return all(cnn["test_acc"] > r["test_acc"] and tests[r["name"]]["p_value"] < alpha for r in baselines)


def _epochs(n) -> str:
    return f"{n} epoch" + ("" if n == 1 else "s")


def comparison_frame(baselines: list[dict], cnns: list[dict], tests: dict, best_cnn: str | None = None):
    """One row per model (CNNs first, then baselines by test accuracy), numeric columns.

    Columns: ``method``, ``kind`` ("CNN" or "baseline"), ``features``,
    ``train_images_used``, ``val_acc``, ``test_acc``, ``ci_low``, ``ci_high``,
    ``train_seconds``, ``predict_seconds``, ``mcnemar_b``, ``mcnemar_c``,
    ``p_value``, ``p_text``, ``best_cnn`` (bool).
    """
    import pandas as pd

    rows = []
    for c in cnns:
        epochs = f", {_epochs(c['epochs_run'])}" if c.get("epochs_run") is not None else ""
        rows.append(
            {
                "method": c["name"],
                "kind": "CNN",
                "features": f"raw pixels (learned features{epochs})",
                "train_images_used": c.get("train_images_used"),
                "val_acc": c.get("val_acc"),
                "test_acc": c["test_acc"],
                "ci_low": c["test_acc_ci"][0],
                "ci_high": c["test_acc_ci"][1],
                "train_seconds": c.get("train_seconds"),
                "predict_seconds": c.get("predict_seconds"),
                "mcnemar_b": None,
                "mcnemar_c": None,
                "p_value": None,
                "p_text": "",
                "best_cnn": c["name"] == best_cnn,
            }
        )
    for r in sorted(baselines, key=lambda r: -r["test_acc"]):
        t = tests.get(r["name"], {})
        rows.append(
            {
                "method": r["title"],
                "kind": "baseline",
                "features": r["features"],
                "train_images_used": r["train_images_used"],
                "val_acc": r["val_acc"],
                "test_acc": r["test_acc"],
                "ci_low": r["test_acc_ci"][0],
                "ci_high": r["test_acc_ci"][1],
                "train_seconds": r["train_seconds"],
                "predict_seconds": r["predict_seconds"],
                "mcnemar_b": t.get("b"),
                "mcnemar_c": t.get("c"),
                "p_value": t.get("p_value"),
                "p_text": t.get("p_text", ""),
                "best_cnn": False,
            }
        )
    return pd.DataFrame(rows)


def format_comparison(frame, train_available: int | None = None):
    """The comparison table as a reader sees it: percentages with their CI, seconds, McNemar's b, c and p."""
    import pandas as pd

    def pct(v):
        return "" if v is None or pd.isna(v) else f"{v:.1%}"

    def secs(v):
        return "" if v is None or pd.isna(v) else f"{v:.1f}"

    def integer(v):
        return "" if v is None or pd.isna(v) else f"{int(v):,}"

    def count(v):
        if v is None or pd.isna(v):
            return ""
        text = f"{int(v):,}"
        return f"{text} of {train_available:,}" if train_available and int(v) < train_available else text

    return pd.DataFrame(
        {
            "method": [m + (" (best CNN)" if b else "") for m, b in zip(frame["method"], frame["best_cnn"])],
            "features": frame["features"],
            "train images used": [count(v) for v in frame["train_images_used"]],
            "val acc": [pct(v) for v in frame["val_acc"]],
            "test acc (95% CI)": [
                f"{a:.1%} [{lo:.1%}, {hi:.1%}]"
                for a, lo, hi in zip(frame["test_acc"], frame["ci_low"], frame["ci_high"])
            ],
            "train s": [secs(v) for v in frame["train_seconds"]],
            "predict s": [secs(v) for v in frame["predict_seconds"]],
            "McNemar b (CNN right only)": [integer(v) for v in frame["mcnemar_b"]],
            "McNemar c (baseline right only)": [integer(v) for v in frame["mcnemar_c"]],
            "p": frame["p_text"],
        }
    )


def conclusion(
    baselines: list[dict], cnn: dict, tests: dict, *, num_classes: int, test_images: int, alpha: float = 0.001
) -> str:
    """A short paragraph (markdown) with the verdict, computed from the numbers."""
    best = max(baselines, key=lambda r: r["test_acc"])
    epochs = f" after {_epochs(cnn['epochs_run'])}" if cnn.get("epochs_run") is not None else ""
    gap = cnn["test_acc"] - best["test_acc"]
    lines = [
        f"On the {test_images:,} test images ({num_classes} classes, chance {1 / num_classes:.1%}), the best baseline is "
        f"**{best['title']}** ({best['features']}; {best['train_images_used']:,} training images) at "
        f"**{best['test_acc']:.1%}** [{best['test_acc_ci'][0]:.1%}, {best['test_acc_ci'][1]:.1%}], and the CNN "
        f"{escape.code(cnn['name'])}{epochs} reaches **{cnn['test_acc']:.1%}** [{cnn['test_acc_ci'][0]:.1%}, {cnn['test_acc_ci'][1]:.1%}]: "
        f"{abs(gap) * 100:.1f} percentage points {'above' if gap >= 0 else 'below'} it."
    ]
    beaten = [r for r in baselines if cnn["test_acc"] > r["test_acc"] and tests[r["name"]]["p_value"] < alpha]
    not_beaten = [r for r in baselines if r not in beaten]
    if not not_beaten:
        lines.append(
            f"The CNN beats every baseline, each with McNemar's test at p < {alpha:g}: on this data, "
            "learned convolutional features do better than the classic pipelines."
        )
    else:
        parts = []
        for r in not_beaten:
            t = tests[r["name"]]
            better = (
                "above"
                if r["test_acc"] > cnn["test_acc"]
                else ("level with" if r["test_acc"] == cnn["test_acc"] else "below")
            )
            parts.append(
                f"{r['title']} ({r['test_acc']:.1%}, {better} the CNN; b = {t['b']}, c = {t['c']}, {t['p_text']})"
            )
        lines.append(
            f"The CNN does **not** beat every baseline at p < {alpha:g}: " + "; ".join(parts) + ". "
            "A short training run, a small data set or an easy task can leave the classic pipelines level "
            "with the CNN; more epochs or data decide it."
        )
    return " ".join(lines)
