"""The headline numbers of a notebook's metrics, read whatever shape the notebook gave them, and their text.

Notebooks record their metrics freely (``metrics/NN_name.json``); the dashboards
read the few numbers that stand for a run from them, tolerant of absent keys and
of the different shapes a baseline table or a confidence interval may take.
"""

from __future__ import annotations


def _num(value):
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def headline_metrics(metrics: dict) -> dict:
    """The headline numbers of one notebook's metrics, each ``None`` when absent.

    Returns ``{"model", "epochs", "epochs_per_trial", "val_acc", "test_acc", "test_acc_ci", "macro_f1",
    "best_baseline", "best_value", "ensemble_gain"}``; ``best_baseline`` is ``(name or None, accuracy or None)``.
    ``epochs`` is what the notebook trained in all (``epochs_run``); a tuning study's trials each ran
    ``epochs_per_trial``.
    """
    m = metrics if isinstance(metrics, dict) else {}
    ci = m.get("test_acc_ci")
    if isinstance(ci, dict):
        ci = [ci.get("lo", ci.get("low")), ci.get("hi", ci.get("high"))]
    ci = [_num(v) for v in ci] if isinstance(ci, (list, tuple)) and len(ci) == 2 else None
    if ci and None in ci:
        ci = None
    return {
        "model": m.get("model") if isinstance(m.get("model"), str) else None,
        "epochs": m.get("epochs_run") if isinstance(m.get("epochs_run"), int) else None,
        "epochs_per_trial": m.get("epochs_per_trial") if isinstance(m.get("epochs_per_trial"), int) else None,
        "val_acc": _num(m.get("val_acc")),
        "test_acc": _num(m.get("test_acc")),
        "test_acc_ci": ci,
        "macro_f1": _num(m.get("macro_f1")),
        "best_baseline": _best_baseline(m),
        "best_value": _num(m.get("best_value")),
        "ensemble_gain": _num(m.get("ensemble_gain")),
    }


def _acc_of(value):
    if isinstance(value, dict):
        for key in ("test_acc", "accuracy", "acc", "val_acc"):
            if _num(value.get(key)) is not None:
                return _num(value[key])
        return None
    return _num(value)


def _best_baseline(m: dict):
    best, table = m.get("best_baseline"), m.get("baselines")
    rows = []  # (name, accuracy)
    if isinstance(table, dict):
        rows = [(str(k), _acc_of(v)) for k, v in table.items()]
    elif isinstance(table, list):
        rows = [
            (str(r.get("name") or r.get("model") or r.get("baseline") or "?"), _acc_of(r))
            for r in table
            if isinstance(r, dict)
        ]
    if isinstance(best, dict):
        name = best.get("name") or best.get("model") or best.get("baseline")
        return (str(name) if name else None, _acc_of(best))
    if isinstance(best, str):
        return (best, dict(rows).get(best))
    if _num(best) is not None:
        return (None, _num(best))
    scored = [r for r in rows if r[1] is not None]
    if scored:
        return max(scored, key=lambda r: r[1])
    return None


def fmt_acc(value) -> str:
    if value is None:
        return ""
    return f"{100 * value:.2f}%" if 0 <= value <= 1 else f"{value:.4g}"


def fmt_ci(ci) -> str:
    return f" [{fmt_acc(ci[0])}, {fmt_acc(ci[1])}]" if ci else ""


def fmt_value(value) -> str:
    return "" if value is None else f"{value:.4g}"


def fmt_gain(value) -> str:
    if value is None:
        return ""
    return f"{100 * value:+.2f} pp" if abs(value) <= 1 else f"{value:+.4g}"


def fmt_epochs(epochs: int) -> str:
    return f"{epochs} epoch{'s' if epochs != 1 else ''}"


# ---------------------------------------------------------------- labelled results of each notebook
def _ci_of(value):
    if isinstance(value, dict):
        value = [value.get("lo", value.get("low", value.get("ci_low"))), value.get("hi", value.get("high"))]
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(_num(v) is not None for v in value):
        return [float(value[0]), float(value[1])]
    return None


def _acc_ci(acc, ci) -> str:
    return fmt_acc(acc) + fmt_ci(ci) if acc is not None else ""


def model_text(name: str, metrics: dict) -> str:
    """The model a notebook trained with its epochs: ``simple_cnn (1 epoch)``, for a tuning study
    ``simple_cnn (1 epoch per trial)`` (its ``epochs_run`` sums every trial's epochs)."""
    h = headline_metrics(metrics)
    if not h["model"]:
        return ""
    if name.startswith("02") or h["epochs_per_trial"] is not None:
        per = h["epochs_per_trial"]
        return f"{h['model']} ({fmt_epochs(per)} per trial)" if per is not None else h["model"]
    return f"{h['model']} ({fmt_epochs(h['epochs'])})" if h["epochs"] is not None else h["model"]


def result_lines(name: str, metrics: dict) -> list[tuple[str, str]]:
    """A notebook's headline numbers as ``(label, value)`` plain text, each label saying which split
    (validation or test) the number comes from. Empty when the notebook recorded nothing readable."""
    m = metrics if isinstance(metrics, dict) else {}
    h = headline_metrics(m)
    key = name[:2]
    lines: list[tuple[str, str]] = []
    if key == "01":
        counts = m.get("counts") if isinstance(m.get("counts"), dict) else {}
        sizes = {s: sum(v for v in (counts.get(s) or {}).values() if isinstance(v, int)) for s in counts}
        if sizes:
            split = ", ".join(f"{'validation' if s == 'val' else s} {n:,}" for s, n in sizes.items())
            lines.append(("images", f"{sum(sizes.values()):,} in {m.get('num_classes', '?')} classes ({split})"))
    elif key == "02":
        if h["best_value"] is not None:
            per = f", {fmt_epochs(h['epochs_per_trial'])} per trial" if h["epochs_per_trial"] is not None else ""
            trial = f"trial {m['best_trial']}" if isinstance(m.get("best_trial"), int) else "best trial"
            lines.append(("best validation accuracy", f"{fmt_acc(h['best_value'])} ({trial}{per})"))
        if _num(m.get("baseline_value")) is not None:
            lines.append(("recipe's settings, validation accuracy", fmt_acc(_num(m["baseline_value"]))))
    elif key == "05":
        bb = h["best_baseline"]
        if bb and bb[1] is not None:
            lines.append(("best baseline, test accuracy", " ".join(x for x in (bb[0] or "", fmt_acc(bb[1])) if x)))
        cnn = m.get("cnn") if isinstance(m.get("cnn"), dict) else {}
        if _num(cnn.get("test_acc")) is not None:
            acc = _acc_ci(_num(cnn["test_acc"]), _ci_of(cnn.get("test_acc_ci")))
            lines.append(("CNN, test accuracy", f"{cnn.get('name') or 'CNN'} {acc}"))
    elif key == "06":
        for row in m.get("comparison") or []:
            if isinstance(row, dict) and _num(row.get("test_acc")) is not None:
                epochs = f", {fmt_epochs(row['epochs'])}" if isinstance(row.get("epochs"), int) else ""
                ci = _ci_of([row.get("ci_low"), row.get("ci_high")])
                lines.append((f"{row.get('model', '?')}{epochs}, test accuracy", _acc_ci(_num(row["test_acc"]), ci)))
        if h["ensemble_gain"] is not None:
            method = (m.get("ensembles") or {}).get("best_method") if isinstance(m.get("ensembles"), dict) else None
            ci = _ci_of(m.get("ensemble_gain_ci"))
            gain = fmt_gain(h["ensemble_gain"]) + (f" [{fmt_gain(ci[0])}, {fmt_gain(ci[1])}]" if ci else "")
            what = (
                f"ensemble ({method} vote) gain over its best member"
                if method
                else "ensemble gain over the best member"
            )
            lines.append((f"{what}, test accuracy", gain))
    elif key == "07":
        cv = m.get("cross_validation") if isinstance(m.get("cross_validation"), dict) else {}
        pooled = m.get("pooled") if isinstance(m.get("pooled"), dict) else {}
        if cv and not cv.get("ran"):
            lines.append(("cross-validation", "not run"))
        elif _num(pooled.get("accuracy")) is not None:
            folds = f", {m['k']} folds" if isinstance(m.get("k"), int) else ""
            acc = _acc_ci(_num(pooled["accuracy"]), _ci_of(pooled.get("accuracy_ci")))
            lines.append((f"accuracy, pooled out-of-fold{folds}", acc))
            if _num(pooled.get("roc_auc")) is not None:
                ci = _ci_of(pooled.get("roc_auc_ci"))
                lines.append(
                    (
                        "ROC AUC, pooled out-of-fold",
                        f"{pooled['roc_auc']:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""),
                    )
                )
    if key in ("01", "02", "05", "06", "07"):
        return lines
    if h["val_acc"] is not None:
        after = f" after {fmt_epochs(h['epochs'])}" if h["epochs"] is not None else ""
        lines.append(("validation accuracy", fmt_acc(h["val_acc"]) + after))
    if h["test_acc"] is not None:
        lines.append(("test accuracy", _acc_ci(h["test_acc"], h["test_acc_ci"])))
    if h["macro_f1"] is not None:
        lines.append(("macro F1, test", f"{h['macro_f1']:.3f}"))
    if _num(m.get("balanced_acc")) is not None:
        lines.append(("balanced accuracy, test", fmt_acc(_num(m["balanced_acc"]))))
    if _num(m.get("ece_before")) is not None:
        after = (
            f", {_num(m['ece_after']):.3f} after temperature scaling" if _num(m.get("ece_after")) is not None else ""
        )
        lines.append(("ECE, test", f"{_num(m['ece_before']):.3f}{after}"))
    if h["best_baseline"] and h["best_baseline"][1] is not None:
        bb = h["best_baseline"]
        lines.append(("best baseline, test accuracy", " ".join(x for x in (bb[0] or "", fmt_acc(bb[1])) if x)))
    if h["best_value"] is not None:
        lines.append(("best validation accuracy", fmt_acc(h["best_value"])))
    if h["ensemble_gain"] is not None:
        lines.append(("ensemble gain, test accuracy", fmt_gain(h["ensemble_gain"])))
    return lines
