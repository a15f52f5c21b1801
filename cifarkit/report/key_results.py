"""The key-results box that opens every report: headline numbers with intervals, and what follows from them.

Everything here is computed from what the notebook recorded (``metrics/NN_name.json``)
when the report is rendered, so the box can never disagree with the notebook's own
numbers. Each sentence of conclusion is chosen by a rule on those numbers (an
interval that excludes zero, accuracy at chance, a pruned trial count...), never
written by hand. Values from data or parameters are escaped.
"""

from __future__ import annotations

import math

from cifarkit import escape, run_folder
from cifarkit.analysis.ensembles import DEGENERATE_WEIGHT
from cifarkit.data import split_record
from cifarkit.wording import agree, plural


def _num(value) -> float | None:
    return (
        float(value)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        else None
    )


def pct(value, digits: int = 2) -> str:
    v = _num(value)
    return "-" if v is None else f"{100 * v:.{digits}f}%"


def points(value, digits: int = 2) -> str:
    """A difference of accuracies in percentage points, signed."""
    v = _num(value)
    return "-" if v is None else f"{100 * v:+.{digits}f} points"


def seconds_text(seconds: float) -> str:
    """A duration for a reader: ``0.3 s`` (not ``0 s``), ``45 s``, ``138.4 min`` (not ``8305 s``), ``5.2 h``,
    ``4.1 days``. The one duration format of the reports and of the printed time estimates."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 3 * 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h" if seconds < 3 * 86400 else f"{seconds / 86400:.1f} days"


def ci_text(ci, digits: int = 2) -> str:
    if not ci or len(ci) != 2 or _num(ci[0]) is None or _num(ci[1]) is None:
        return ""
    return f" (95% CI {100 * ci[0]:.{digits}f} to {100 * ci[1]:.{digits}f}%)"


def ci_points(ci, digits: int = 2) -> str:
    if not ci or len(ci) != 2 or _num(ci[0]) is None or _num(ci[1]) is None:
        return ""
    return f" (95% CI {100 * ci[0]:+.{digits}f} to {100 * ci[1]:+.{digits}f})"


def _counts(metrics: dict) -> dict:
    return ((metrics.get("data") or {}).get("counts")) or {}


# --------------------------------------------------------------------------- one function per notebook
def _explore(m: dict) -> tuple[list, list]:
    counts = m.get("counts") or {}
    per_split = {s: sum((counts.get(s) or {}).values()) for s in ("train", "val", "test")}
    rows = [
        (
            "Images",
            f"{m.get('total_images', 0):,} in {m.get('num_classes', '?')} classes: "
            f"{per_split['train']:,} training, {per_split['val']:,} validation, {per_split['test']:,} test",
        ),
        (
            "Class balance",
            f"largest / smallest class {m['class_imbalance_ratio']:.2f}"
            if _num(m.get("class_imbalance_ratio"))
            else "-",
        ),
        ("Unreadable or skipped files", f"{m.get('skipped_files', 0):,}"),
    ]
    across = ((m.get("duplicates") or {}).get("across")) or {}
    leak = int(across.get("train-test", 0) or 0) + int(across.get("val-test", 0) or 0)
    rows.append(("Exact duplicates across splits", ", ".join(f"{k}: {v}" for k, v in across.items()) or "-"))
    says = []
    if leak:
        says.append(
            f"{plural(leak, 'test image')} also {agree(leak, 'appears', 'appear')} in the training or validation split: test accuracies are "
            "optimistic by up to that many images."
        )
    else:
        says.append("No test image duplicates a training or validation image exactly.")
    _explore_groups(m, rows, says)
    ratio = _num(m.get("class_imbalance_ratio"))
    if ratio is not None and ratio >= 1.5:
        says.append(
            f"The classes are imbalanced (ratio {ratio:.1f}): read balanced accuracy and per-class recall, "
            "not accuracy alone."
        )
    return rows, says


def _explore_groups(m: dict, rows: list, says: list) -> None:
    """Rows and conclusions on grouped splits and near duplicates across splits (when 01 recorded them)."""
    groups = m.get("groups") or {}
    if groups.get("grouped"):
        per = groups.get("per_split") or {}
        sizes = ", ".join(f"{v:,} {split_record.SPLIT_WORDS.get(k, k)}" for k, v in per.items())
        total = sum(v for v in per.values() if isinstance(v, int))
        rows.append(("Groups", f"{plural(f'{total:,}', 'group')} by {escape.html(groups.get('source', '?'))}: {sizes}"))
        straddle = int(groups.get("straddling", 0) or 0)
        if straddle:
            says.append(
                f"{plural(straddle, 'group')} {agree(straddle, 'has', 'have')} images in more than one split: see the Groups section."
            )
        else:
            says.append("No group has images in more than one split.")
    near = m.get("near_duplicates") or {}
    if near.get("pairs"):
        images = near.get("images") or {}
        across = ", ".join(f"{k}: {v:,}" for k, v in images.items())
        rows.append((f"Near duplicates across splits (hash distance <= {near.get('max_distance', '?')})", across))
        leak = int(images.get("train-test", 0) or 0) + int(images.get("val-test", 0) or 0)
        if leak:
            says.append(
                f"Up to {plural(leak, 'test image')} {agree(leak, 'has', 'have')} a near duplicate in the training or validation split: test "
                "accuracy may be optimistic; look at the closest pairs in this report."
            )


def _tune(m: dict) -> tuple[list, list]:
    counts = m.get("counts") or {}
    rows = [
        (
            "Best validation accuracy",
            f"{pct(m.get('best_value'))} (trial {m.get('best_trial', '-')}, "
            f"{plural(m.get('epochs_per_trial', '?'), 'epoch')} per trial)",
        ),
        ("The recipe's own settings", pct(m.get("baseline_value"))),
        (
            "Trials",
            f"{counts.get('complete', 0)} complete, {counts.get('pruned', 0)} pruned, {counts.get('failed', 0)} failed",
        ),
    ]
    if _num(m.get("pruning_saved_fraction")) is not None:
        rows.append(("Epochs saved by pruning", pct(m["pruning_saved_fraction"], 0)))
    signal = m.get("tuning_signal") or {}
    says = []
    if signal.get("margin") is not None:
        rows.append(
            (
                "Margin over the recipe",
                points(signal["margin"])
                + ci_points(signal.get("ci"))
                + f" on {signal.get('n_val', '?'):,} validation images",
            )
        )
        if signal.get("reliable"):
            says.append("Tuning beat the recipe's settings by more than the validation noise; 03_train applies them.")
        else:
            says.append(
                "The study found no reliable improvement: the margin lies within the validation noise, "
                "so 03_train keeps the recipe's settings."
            )
    elif m.get("best_value") is None:
        says.append("No trial completed, so there is nothing to apply.")
    return rows, says


def _train(m: dict) -> tuple[list, list]:
    cfg = m.get("config") or {}
    n_test = _counts(m).get("test")
    rows = [
        (
            "Test accuracy",
            pct(m.get("test_acc")) + ci_text(m.get("test_acc_ci")) + (f" on {n_test:,} test images" if n_test else ""),
        ),
        ("Validation accuracy", pct(m.get("val_acc"))),
        (
            "Model",
            f"{escape.html(m.get('model', '-'))}, recipe {escape.html(m.get('recipe', '-'))}, "
            f"{plural(m.get('epochs_run', '?'), 'epoch')}, batch {cfg.get('batch_size', '?')}",
        ),
        (
            "Training time",
            f"{seconds_text(m['train_seconds'])} at {m.get('median_images_per_s', 0):,.0f} images/s"
            if _num(m.get("train_seconds")) is not None
            else "-",
        ),
    ]
    if m.get("seeds"):
        s = m["seeds"]
        rows.insert(
            1,
            (
                "Over seeds",
                f"{pct(s.get('mean'))} ± {100 * s.get('sd', 0):.2f} points (mean ± sd of {s.get('n')} seeds)",
            ),
        )
    says = []
    history = m.get("history") or []
    vals = [_num(r.get("val_acc")) for r in history if _num(r.get("val_acc")) is not None]
    if len(vals) >= 3 and vals[-1] >= max(vals[:-1]):
        says.append("Validation accuracy was still at its best in the last epoch: more epochs would likely help.")
    elif len(vals) >= 3 and max(vals) - vals[-1] > 0.02:
        says.append(
            f"Validation accuracy peaked at {pct(max(vals))} and ended {points(vals[-1] - max(vals))} "
            "below it: the run overfits at the end."
        )
    tuned = m.get("tuned_params") or {}
    if tuned.get("applied"):
        says.append("Trained with the settings tuned in 02_tune.")
    elif tuned.get("note"):
        says.append("Trained with the recipe's own settings; tuned settings: " + escape.html(tuned["note"]) + ".")
    return rows, says


def _evaluate(m: dict) -> tuple[list, list]:
    n = m.get("n_test")
    rows = [
        ("Test accuracy", pct(m.get("test_acc")) + ci_text(m.get("test_acc_ci")) + (f" on {n:,} images" if n else "")),
        (
            "Macro F1 / balanced accuracy",
            f"{m['macro_f1']:.3f} / {pct(m.get('balanced_acc'))}" if _num(m.get("macro_f1")) is not None else "-",
        ),
        (
            "Calibration (ECE)",
            f"{m['ece_before']:.3f} before, {m['ece_after']:.3f} after temperature scaling"
            if _num(m.get("ece_before")) is not None and _num(m.get("ece_after")) is not None
            else "-",
        ),
    ]
    says = []
    if m.get("tta") and _num(m.get("tta_gain")) is not None:
        rows.append(("Flip test-time augmentation", points(m["tta_gain"]) + ci_points(m.get("tta_gain_ci"))))
        ci = m.get("tta_gain_ci") or [None, None]
        if _num(ci[0]) is not None and ci[0] > 0:
            says.append("Flip TTA improves accuracy beyond noise.")
        elif _num(ci[1]) is not None and ci[1] < 0:
            says.append("Flip TTA lowers accuracy beyond noise.")
        else:
            says.append("Flip TTA changes accuracy within noise.")
    if _num(m.get("robustness_mean_acc")) is not None:
        rows.append(
            (
                "Mean accuracy under corruptions",
                f"{pct(m['robustness_mean_acc'])} on {m.get('robustness_n', '?')} images",
            )
        )
    classes = m.get("per_class") or {}
    if isinstance(classes, dict) and classes:
        worst = min(classes.items(), key=lambda kv: (kv[1] or {}).get("f1", 1.0))
        says.append(f"The hardest class is {escape.html(worst[0])} (F1 {(worst[1] or {}).get('f1', 0):.3f}).")
    decision_rows, decision_says = _decisions(m)
    return rows + decision_rows, says + decision_says


def _auc_text(value, ci) -> str:
    if _num(value) is None:
        return "-"
    if not ci or len(ci) != 2 or _num(ci[0]) is None or _num(ci[1]) is None:
        return f"{value:.3f}"
    return f"{value:.3f} (95% CI {ci[0]:.3f} to {ci[1]:.3f})"


def _rate(rate: dict) -> str:
    rate = rate or {}
    return pct(rate.get("value"), 1) + ci_text(rate.get("ci"), 1)


def _decisions(m: dict) -> tuple[list, list]:
    """04's ROC AUC and the operating point chosen on validation (``decisions.operating_points``)."""
    rows, says = [], []
    op = m.get("operating_point") or {}
    aucs, cis = m.get("roc_auc") or {}, m.get("roc_auc_ci") or {}
    positive = op.get("positive_class")
    if positive is not None and len(aucs) == 2:
        rows.append((f"ROC AUC ({positive} positive)", _auc_text(aucs.get(positive), cis.get(positive))))
    elif _num(m.get("roc_auc_macro")) is not None:
        text = _auc_text(m["roc_auc_macro"], m.get("roc_auc_macro_ci")) + f" over {len(aucs)} classes, one-vs-rest"
        if positive is not None:
            text += f"; {escape.html(positive)} against the rest {_auc_text(aucs.get(positive), cis.get(positive))}"
        rows.append(("ROC AUC (macro average)", text))
    if not op.get("per_class"):
        return rows, says
    rule = escape.html(op.get("rule", "-"))
    if positive is not None:
        chosen = op.get("chosen_on") == "validation"
        threshold = _num(op.get("threshold"))
        where = (
            f"threshold {threshold:.4g} chosen on {op.get('n_val', '?'):,} validation images by {rule}"
            if chosen
            else "default decision (argmax" + (f", threshold {threshold:.4g}" if threshold is not None else "") + ")"
        )
        rows.append((f"Operating point ({positive} positive)", where))
        test = op.get("test") or {}
        rows.append(
            ("Test sensitivity / specificity", f"{_rate(test.get('sensitivity'))} / {_rate(test.get('specificity'))}")
        )
        rows.append(
            (
                f"Test PPV / NPV (prevalence {pct(test.get('prevalence'), 1)})",
                f"{_rate(test.get('ppv'))} / {_rate(test.get('npv'))}",
            )
        )
        at = test.get("at_prevalence") or {}
        if _num(at.get("prevalence")) is not None:
            rows.append(
                (
                    f"PPV / NPV at prevalence {pct(at['prevalence'], 2)}",
                    f"{pct(at.get('ppv'), 1)}{ci_text(at.get('ppv_ci'), 1)} / {pct(at.get('npv'), 1)}"
                    f"{ci_text(at.get('npv_ci'), 1)}",
                )
            )
        kind, _, target = str(op.get("rule", "")).partition(">=")
        value = (test.get(kind) or {}).get("value")
        ci = (test.get(kind) or {}).get("ci") or [None, None]
        if chosen and target and _num(value) is not None:
            goal, name = float(target), {"ppv": "PPV", "npv": "NPV"}.get(kind, kind)
            if _num(ci[1]) is not None and ci[1] < goal:
                says.append(f"On test the {name} falls short of the {goal:g} it was chosen for, beyond noise.")
            elif value < goal:
                says.append(f"On test the {name} is below the {goal:g} it was chosen for, within noise.")
            else:
                says.append(f"On test the {name} meets the {goal:g} it was chosen for on validation.")
    else:
        per = op.get("per_class") or {}
        macro = op.get("macro") or {}
        rows.append(
            (
                "Operating points (one-vs-rest)",
                f"one threshold per class chosen on {op.get('n_val', 0):,} validation images by {rule}"
                if op.get("n_val")
                else "default decision (argmax), no validation split",
            )
        )
        rows.append(
            (
                f"Mean test sensitivity / specificity over {len(per)} classes",
                f"{pct(macro.get('sensitivity'), 1)} / {pct(macro.get('specificity'), 1)}",
            )
        )
        rows.append(
            (
                f"Mean test PPV / NPV over {len(per)} classes",
                f"{pct(macro.get('ppv'), 1)} / {pct(macro.get('npv'), 1)}",
            )
        )
        sens = {k: ((v or {}).get("test") or {}).get("sensitivity") or {} for k, v in per.items()}
        sens = {k: v for k, v in sens.items() if _num(v.get("value")) is not None}
        if sens:
            low = min(sens, key=lambda k: sens[k]["value"])
            rows.append(("Lowest test sensitivity", f"{escape.html(low)}: {_rate(sens[low])}"))
    if op.get("n_val") == 0:
        says.append("There is no validation split, so the default decision is scored instead of the rule.")
    elif any((e or {}).get("constraint_met") is False for e in (op.get("per_class") or {}).values()):
        says.append(f"No threshold met {rule} on validation for every class; the closest one was used.")
    return rows, says


def _baselines(m: dict) -> tuple[list, list]:
    best, cnn = m.get("best_baseline") or {}, m.get("cnn") or {}
    base = next((b for b in m.get("baselines") or [] if b.get("name") == best.get("name")), {})
    rows = [
        (
            "Best CNN",
            f"{escape.html(cnn.get('name', '-'))}: {pct(cnn.get('test_acc'))}{ci_text(cnn.get('test_acc_ci'))}",
        ),
        (
            "Best non-CNN baseline",
            f"{escape.html(best.get('title') or best.get('name') or '-')}: "
            f"{pct(best.get('test_acc'))}{ci_text(base.get('test_acc_ci'))}",
        ),
    ]
    if _num(cnn.get("test_acc")) is not None and _num(best.get("test_acc")) is not None:
        p = ((m.get("mcnemar") or {}).get(best.get("name")) or {}).get("p_text", "")
        rows.append(
            ("CNN minus best baseline", points(cnn["test_acc"] - best["test_acc"]) + (f" (McNemar {p})" if p else ""))
        )
    n_test = ((m.get("data") or {}).get("counts") or {}).get("test")
    on = f"On the {n_test:,} test images, the" if isinstance(n_test, int) else "The"
    says = [
        f"{on} CNN beats every baseline, each with McNemar's test at p &lt; 0.001."
        if m.get("all_cnn_beat_baselines_p001")
        else f"{on} CNN does not beat every baseline at p &lt; 0.001 (see the table)."
    ]
    return rows, says


def _architectures(m: dict) -> tuple[list, list]:
    rows = []
    for r in m.get("comparison") or []:
        rows.append(
            (
                f"{r.get('model')} ({plural(r.get('epochs', '?'), 'epoch')})",
                f"test {pct(r.get('test_acc'))}{ci_text([r.get('ci_low'), r.get('ci_high')])}, "
                f"validation {pct(r.get('val_acc'))}",
            )
        )
    seeds = m.get("seeds") or {}
    if _num(seeds.get("mean")) is not None:
        rows.insert(
            0,
            (
                f"{seeds.get('model')} over {seeds.get('n')} seeds",
                f"test {pct(seeds['mean'])} ± {100 * seeds.get('sd', 0):.2f} points (mean ± sd)",
            ),
        )
    ens = m.get("ensembles") or {}
    says = []
    if ens:
        method = ens.get("best_method")
        rows.append(
            (
                f"Ensemble ({method} vote, chosen on validation)",
                f"{pct((ens.get('methods') or {}).get(method, {}).get('test_acc'))}, "
                f"{points(m.get('ensemble_gain'))}{ci_points(m.get('ensemble_gain_ci'))} over the best member",
            )
        )
        ci = m.get("ensemble_gain_ci") or [None, None]
        if _num(ci[0]) is not None and ci[0] > 0:
            says.append("The ensemble beats its best member beyond noise.")
        elif _num(ci[1]) is not None and ci[1] < 0:
            says.append("The ensemble is worse than its best member: use the single model.")
        else:
            says.append("The ensemble's gain over its best member is within noise.")
        weights = ((ens.get("methods") or {}).get("weighted") or {}).get("weights") or []
        # 06 records whether the weighted vote is degenerate; metrics from before that field decide from the weights
        degenerate = ens.get("degenerate", bool(weights) and max(weights) >= DEGENERATE_WEIGHT)
        if degenerate and weights:
            says.append(f"The weighted vote is degenerate: one member carries {max(weights):.2f} of the weight.")
    return rows, says


def _cross_validation(m: dict) -> tuple[list, list]:
    """07's folds, the pooled out-of-fold accuracy and AUC with intervals, and the operating point pooled over folds."""
    cv = m.get("cross_validation") or {}
    if not cv.get("ran"):
        return [("Cross-validation", "not run: " + escape.html(cv.get("reason") or "-"))], []
    pooled, summary = m.get("pooled") or {}, m.get("fold_summary") or {}
    how = f"{m.get('k', '?')} folds of {m.get('n_images', 0):,} images, stratified by class" + (
        ", whole groups per fold" if m.get("grouped") else ""
    )
    how += "".join(f"; {escape.html(note)}" for note in cv.get("notes") or [])
    rows = [("Cross-validation", how)]
    rows.append(("Pooled out-of-fold accuracy", pct(pooled.get("accuracy")) + ci_text(pooled.get("accuracy_ci"))))
    acc = summary.get("accuracy") or {}
    if _num(acc.get("mean")) is not None and _num(acc.get("sd")) is not None:
        rows.append(("Accuracy per fold (mean ± sd)", f"{pct(acc['mean'])} ± {100 * acc['sd']:.2f} points"))
    rows.append(
        (
            "Pooled balanced accuracy",
            pct(pooled.get("balanced_accuracy")) + ci_text(pooled.get("balanced_accuracy_ci")),
        )
    )
    of = pooled.get("roc_auc_of")
    rows.append(
        (
            f"Pooled ROC AUC ({of} positive)" if of else "Pooled ROC AUC (macro average, one-vs-rest)",
            _auc_text(pooled.get("roc_auc"), pooled.get("roc_auc_ci")),
        )
    )
    auc = summary.get("roc_auc") or {}
    if _num(auc.get("mean")) is not None and _num(auc.get("sd")) is not None:
        rows.append(("ROC AUC per fold (mean ± sd)", f"{auc['mean']:.3f} ± {auc['sd']:.3f}"))
    op = m.get("operating_point") or {}
    rule = escape.html(op.get("rule", "-"))
    if op.get("positive_class") is not None and op.get("pooled"):
        r = op["pooled"]
        rows.append(
            (
                f"Operating point ({op['positive_class']} positive, {op.get('rule', '-')} on each fold's validation)",
                f"sensitivity {_rate(r.get('sensitivity'))} / specificity {_rate(r.get('specificity'))}",
            )
        )
        rows.append(
            (
                f"PPV / NPV, pooled (prevalence {pct(r.get('prevalence'), 1)})",
                f"{_rate(r.get('ppv'))} / {_rate(r.get('npv'))}",
            )
        )
    elif op.get("macro"):
        macro = op["macro"]
        rows.append(
            (
                f"Operating points (one-vs-rest, {op.get('rule', '-')} per fold), mean pooled sensitivity / specificity",
                f"{pct(macro.get('sensitivity'), 1)} / {pct(macro.get('specificity'), 1)} over "
                f"{len(op.get('per_class') or {})} classes",
            )
        )
    says = []
    ci, k = pooled.get("accuracy_ci") or [None, None], len((m.get("data") or {}).get("class_names") or []) or None
    if k and _num(ci[0]) is not None:
        chance = 1 / k
        says.append(
            f"The pooled accuracy's interval reaches chance level ({pct(chance)} for {k} classes): the procedure is "
            "not shown to be better than guessing."
            if ci[0] <= chance
            else f"The pooled accuracy's whole interval lies above chance level ({pct(chance)} for {k} classes)."
        )
    single = m.get("single_split") or {}
    other = single.get("test_acc_ci") or [None, None]
    if (
        _num(ci[0]) is not None
        and _num(ci[1]) is not None
        and _num(other[0]) is not None
        and _num(other[1]) is not None
    ):
        says.append(
            f"The pooled interval is {100 * (ci[1] - ci[0]):.1f} points wide against {100 * (other[1] - other[0]):.1f} "
            f"for the single test split of {escape.html(single.get('from', '?'))}."
        )
    if _num(auc.get("mean")) is not None and _num(pooled.get("roc_auc")) is not None:
        if auc["mean"] - pooled["roc_auc"] > 0.02:
            says.append(
                "The pooled AUC is below the folds' mean AUC: the fold models score on different scales, so the "
                "per-fold mean is the better estimate of one model's ranking."
            )
    if any(met is False for met in op.get("constraint_met") or []):
        says.append(f"In some folds no threshold met {rule} on the validation carve; the closest one was used.")
    _cv_baselines(m.get("baselines") or {}, rows, says)
    return rows, says


def _cv_baselines(base: dict, rows: list, says: list) -> None:
    """07's CNN against the best cross-validated baseline, on every image (when 07 compared them)."""
    best = next((r for r in base.get("baselines") or [] if r.get("name") == base.get("best_baseline")), None)
    cnn = base.get("cnn") or {}
    if not best or _num(cnn.get("accuracy")) is None or _num(best.get("accuracy")) is None:
        return
    from cifarkit.analysis.stats import format_p

    rows.append(
        (
            f"CNN against the best baseline out of fold ({escape.html(best.get('title') or best.get('name'))})",
            f"{pct(cnn['accuracy'])} vs {pct(best['accuracy'])}: {points(cnn['accuracy'] - best['accuracy'])}"
            f"{ci_points(best.get('difference_ci'))}, McNemar {format_p(best.get('p_holm'))} (Holm)",
        )
    )
    alpha = base.get("alpha", 0.05)
    says.append(
        f"Out of fold, on all {base.get('n', 0):,} images, the CNN beats every non-CNN baseline at p &lt; {alpha:g} "
        "(McNemar, Holm-adjusted)."
        if base.get("cnn_beats_all")
        else f"Out of fold, on all {base.get('n', 0):,} images, the CNN does not beat every non-CNN baseline at "
        f"p &lt; {alpha:g} (McNemar, Holm-adjusted; see 07's table)."
    )


_BUILDERS = {
    run_folder.EXPLORE: _explore,
    run_folder.TUNE: _tune,
    run_folder.TRAIN: _train,
    run_folder.EVALUATE: _evaluate,
    run_folder.BASELINES: _baselines,
    run_folder.ARCHITECTURES: _architectures,
    run_folder.CROSS_VALIDATION: _cross_validation,
}


def key_results(name: str, metrics: dict) -> tuple[list[tuple[str, str]], list[str]]:
    """``(rows, conclusions)`` for notebook ``name`` from what it recorded; empty when it recorded nothing.

    Rows are ``(label, value)``: labels are plain text, values already escaped HTML; conclusions are
    sentences of escaped HTML.
    """
    build = _BUILDERS.get(name)
    if build is None or not metrics:
        return [], []
    try:
        return build(metrics)
    except (KeyError, TypeError, ValueError, AttributeError):  # a metrics file of an older version
        return [], []


def key_results_html(name: str, metrics: dict) -> str:
    """The box as HTML (``""`` when there is nothing to show)."""
    rows, says = key_results(name, metrics)
    if not rows:
        return ""
    body = "".join(f"<tr><th>{escape.html(k)}</th><td>{v}</td></tr>" for k, v in rows)
    text = "".join(f"<li>{s}</li>" for s in says)
    return (
        '<section class="ck-key" id="ck-key"><h2>Key results</h2>'
        f'<table class="ck-kv">{body}</table>' + (f"<ul>{text}</ul>" if text else "") + "</section>"
    )
