"""The study book's own text: the run it reads (:class:`StudyRun`), the executive summary and the limitations.

Every sentence here is computed from the run's numbers (``manifest.json`` and
``metrics/NN_name.json``) by a stated rule: an interval above zero is "beyond noise",
an interval that reaches chance level does not show a model better than guessing, and
so on. The per-notebook conclusions that :mod:`cifarkit.report.key_results` already
draws are reused, not restated. Everything that comes from data or parameters is
escaped with :func:`cifarkit.escape.html`. The Methods section is in
:mod:`cifarkit.report.book_methods`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from cifarkit import escape, files, run_folder
from cifarkit.analysis.corruptions import group_corruption_cells
from cifarkit.analysis.verdicts import chance_level
from cifarkit.report import key_results, profiles
from cifarkit.report.key_results import _num, ci_points, ci_text, pct, points
from cifarkit.report.references import Citations
from cifarkit.report.render import format_seconds
from cifarkit.wording import agree, plural

NAMES = [spec.name for spec in profiles.NOTEBOOKS]
TITLES = {spec.name: spec.title for spec in profiles.NOTEBOOKS}
#: Notebooks a run leaves out unless its profile asks for them (07_cross_validation): absent, they are not missing.
OPTIONAL = {spec.name for spec in profiles.NOTEBOOKS if spec.optional}


class NotARunError(ValueError):
    """The folder holds no run of the study (no readable ``manifest.json``)."""


@dataclass
class StudyRun:
    """A run folder as the book reads it: the manifest, each notebook's metrics (``{}`` when missing)."""

    run_dir: Path
    manifest: dict
    metrics: dict[str, dict]
    cites: Citations = field(default_factory=Citations)

    @classmethod
    def load(cls, run_dir) -> StudyRun:
        run_dir = Path(run_dir)
        manifest = files.read_json(run_dir / run_folder.MANIFEST)
        if not run_dir.is_dir() or not isinstance(manifest, dict) or "notebooks" not in manifest:
            raise NotARunError(
                f"{run_dir} is not a run folder of the study: it holds no readable {run_folder.MANIFEST} "
                "(run_all.py writes one into every run, e.g. reports/<run-id>/)."
            )
        return cls(run_dir, manifest, {name: run_folder.read_metrics(run_dir, name) for name in NAMES})

    def m(self, name: str) -> dict:
        return self.metrics.get(name) or {}

    def entry(self, name: str) -> dict:
        entry = (self.manifest.get("notebooks") or {}).get(name)
        return entry if isinstance(entry, dict) else {}

    def status(self, name: str) -> str:
        return str(self.entry(name).get("status") or "not run")

    def left_out(self) -> list[str]:
        """Notebooks the run left out on purpose and did not run: optional ones (07_cross_validation) and those its
        profile skips (``skip`` in ``params/<profile>.yaml``)."""
        try:
            skipped = set(profiles.load_profile(str(self.manifest.get("profile"))).skip)
        except (ValueError, OSError, TypeError):
            skipped = set()
        return [n for n in NAMES if (n in OPTIONAL or n in skipped) and not self.m(n) and self.status(n) == "not run"]

    def expected(self) -> list[str]:
        """The notebooks this run should hold: every notebook but those it left out on purpose (:meth:`left_out`)."""
        left_out = self.left_out()
        return [n for n in NAMES if n not in left_out]

    def missing(self) -> list[tuple[str, str]]:
        """``[(name, why), ...]`` for every expected notebook (:meth:`expected`) that recorded no metrics."""
        out = []
        for name in self.expected():
            if self.m(name):
                continue
            entry, status = self.entry(name), self.status(name)
            if status == "not run":
                why = "not run: no entry in the manifest"
            else:
                error = str(entry.get("error") or "").strip().splitlines()
                why = status + (f": {error[0][:200]}" if error else "")
                if status == "ok":
                    why = "ran, but recorded no metrics file"
            out.append((name, why))
        return out

    def data(self) -> dict:
        """The data record the notebooks wrote (source, counts, split), from the first that has one."""
        return next((self.m(n)["data"] for n in NAMES if isinstance(self.m(n).get("data"), dict)), {})

    def param(self, key: str, default=None):
        """A notebook parameter as the run set it (training's first, then any notebook's)."""
        for name in [run_folder.TRAIN, *NAMES]:
            params = self.entry(name).get("parameters") or {}
            if key in params:
                return params[key]
        return default

    def train_facts(self) -> dict:
        """``models/<folder>/metrics.json`` of 03's model: precision, device, threads (``{}`` when absent)."""
        m3 = self.m(run_folder.TRAIN)
        folders = [Path(str(m3.get("model_path") or "")).parent.name, str(m3.get("model") or "")]
        for folder in filter(None, folders):
            facts = files.read_json(run_folder.model_dir(self.run_dir, folder) / "metrics.json")
            if isinstance(facts, dict):
                return facts
        return {}

    def num_classes(self) -> int | None:
        names = self.m(run_folder.EXPLORE).get("class_names") or self.data().get("class_names") or []
        return len(names) or None


def p(text: str, lead: str = "") -> str:
    return "<p>" + (f"<b>{escape.html(lead)}</b> " if lead else "") + text + "</p>"


def kv_table(rows, cls: str = "kv") -> str:
    """``(label, HTML value)`` rows; labels are escaped here, values are trusted (escaped by the caller)."""
    body = "".join(f"<tr><th>{escape.html(k)}</th><td>{v}</td></tr>" for k, v in rows)
    return f'<table class="{cls}">{body}</table>'


def _says(name: str, metrics: dict) -> list[str]:
    """key_results' conclusions for a notebook (a bare ``<`` in "p < 0.001" made an entity)."""
    return [re.sub(r"<(?=[\s\d=])", "&lt;", s) for s in key_results.key_results(name, metrics)[1]]


def headline_text(run: StudyRun) -> str:
    """``25.00% (95% CI 6.25 to 43.75%)``: the trained model's test accuracy, or a note that it is missing."""
    m3 = run.m(run_folder.TRAIN)
    if _num(m3.get("test_acc")) is None:
        return "no test accuracy (03_train recorded none)"
    return pct(m3["test_acc"]) + ci_text(m3.get("test_acc_ci"))


def cross_validated_text(run: StudyRun) -> str:
    """``99.50% (95% CI 99.17 to 99.78%) over all 1,797 images, 5 folds``: 07's pooled out-of-fold accuracy, or ``""``."""
    m7 = run.m(run_folder.CROSS_VALIDATION)
    pooled = m7.get("pooled") or {}
    if not (m7.get("cross_validation") or {}).get("ran") or _num(pooled.get("accuracy")) is None:
        return ""
    return (
        pct(pooled["accuracy"])
        + ci_text(pooled.get("accuracy_ci"))
        + f" over all {m7.get('n_images', 0):,} images, {m7.get('k', '?')} folds"
    )


def _n_test(run: StudyRun):
    return (run.m(run_folder.TRAIN).get("data") or {}).get("counts", {}).get("test") or run.m(run_folder.EVALUATE).get(
        "n_test"
    )


# ------------------------------------------------------------------ executive summary
def _headline(run: StudyRun) -> str:
    m3 = run.m(run_folder.TRAIN)
    if _num(m3.get("test_acc")) is None:
        return p(f"03_train recorded no results ({escape.html(run.status(run_folder.TRAIN))}).", "Headline.")
    n = _n_test(run)
    text = (
        f"{escape.html(m3.get('model', 'the model'))} (recipe {escape.html(m3.get('recipe', '-'))}, "
        f"{plural(m3.get('epochs_run', '?'), 'epoch')}) reaches <b>{headline_text(run)}</b> test accuracy"
        + (f" on {n:,} test images" if isinstance(n, int) else "")
        + f"; validation accuracy {pct(m3.get('val_acc'))}."
    )
    seeds = run.m(run_folder.ARCHITECTURES).get("seeds") or m3.get("seeds") or {}  # 06 trains the extra seeds
    if _num(seeds.get("mean")) is not None:
        text += (
            f" Over {seeds.get('n', '?')} training seeds: {pct(seeds['mean'])} ± "
            f"{100 * (_num(seeds.get('sd')) or 0):.2f} points (mean ± sd)."
        )
    ci, k = m3.get("test_acc_ci") or [None, None], run.num_classes()
    if k and _num(ci[0]) is not None:
        chance = 1 / k
        if ci[0] <= chance:
            text += (
                f" The interval reaches chance level ({pct(chance)} for {k} classes): this run does not show "
                "that the model is better than guessing."
            )
        else:
            text += f" The whole interval lies above chance level ({pct(chance)} for {k} classes)."
    return p(text, "Headline.")


def _baselines(run: StudyRun) -> str:
    m5 = run.m(run_folder.BASELINES)
    best, cnn = m5.get("best_baseline") or {}, m5.get("cnn") or {}
    if not best:
        return ""
    base = next((b for b in m5.get("baselines") or [] if b.get("name") == best.get("name")), {})
    text = (
        f"The best non-CNN baseline, {escape.html(best.get('title') or best.get('name'))}, reaches "
        f"{pct(best.get('test_acc'))}{ci_text(base.get('test_acc_ci'))}"
    )
    if _num(cnn.get("test_acc")) is not None and _num(best.get("test_acc")) is not None:
        p_text = ((m5.get("mcnemar") or {}).get(best.get("name")) or {}).get("p_text")
        diff = cnn["test_acc"] - best["test_acc"]
        level = not round(100 * diff, 2)  # a gap that prints as 0.00 points
        gap = "level with it" if level else f"{abs(100 * diff):.2f} points {'above' if diff > 0 else 'below'} it"
        text += f"; the CNN is {gap}" + (f" (McNemar {escape.html(p_text)})" if p_text else "")
    return p(text + ". " + " ".join(_says(run_folder.BASELINES, m5)), "Baselines.")


def _cross_validation(run: StudyRun) -> str:
    m7 = run.m(run_folder.CROSS_VALIDATION)
    cv = m7.get("cross_validation") or {}
    if not cv:
        return ""
    if not cv.get("ran"):
        return p(f"07_cross_validation did not run: {escape.html(cv.get('reason') or '-')}.", "Cross-validation.")
    pooled, summary = m7.get("pooled") or {}, m7.get("fold_summary") or {}
    acc, auc = summary.get("accuracy") or {}, summary.get("roc_auc") or {}
    text = (
        f"{m7.get('k', '?')}-fold cross-validation over all {m7.get('n_images', 0):,} labelled images"
        + (" (whole groups per fold)" if m7.get("grouped") else "")
        + f": pooled out-of-fold accuracy <b>{pct(pooled.get('accuracy'))}{ci_text(pooled.get('accuracy_ci'))}</b>"
    )
    if _num(acc.get("sd")) is not None:
        text += f", {pct(acc.get('mean'))} ± {100 * acc['sd']:.2f} points per fold (mean ± sd)"
    if _num(pooled.get("roc_auc")) is not None:
        ci = pooled.get("roc_auc_ci") or [None, None]
        text += f"; pooled ROC AUC {pooled['roc_auc']:.3f}" + (
            f" (95% CI {ci[0]:.3f} to {ci[1]:.3f})" if _num(ci[0]) is not None and _num(ci[1]) is not None else ""
        )
        if _num(auc.get("sd")) is not None:
            text += f", {auc['mean']:.3f} ± {auc['sd']:.3f} per fold"
    return p(text + ". " + " ".join(_says(run_folder.CROSS_VALIDATION, m7)), "Cross-validation.")


def _tuning(run: StudyRun) -> str:
    m2, m3 = run.m(run_folder.TUNE), run.m(run_folder.TRAIN)
    signal = m2.get("tuning_signal") or (m3.get("tuned_params") or {}).get("signal") or {}
    if not m2 and not signal:
        return ""
    counts = m2.get("counts") or {}
    text = (
        f"The search ran {counts.get('complete', 0)} complete and {plural(counts.get('pruned', 0), 'pruned trial')}: "
        f"best validation accuracy {pct(m2.get('best_value'))} against {pct(m2.get('baseline_value'))} "
        "with the recipe's own settings"
    )
    if _num(signal.get("margin")) is not None:
        text += (
            f", a margin of {points(signal['margin'])}{ci_points(signal.get('ci'))} "
            f"on {signal.get('n_val', '?')} validation images"
        )
    text += ". " + " ".join(_says(run_folder.TUNE, m2))
    applied = bool((m3.get("tuned_params") or {}).get("applied"))
    if m3 and applied != bool(signal.get("reliable")):  # the rule above did not decide what 03_train did
        text += (
            " 03_train nevertheless applied the tuned settings."
            if applied
            else " 03_train nevertheless trained with the recipe's own settings."
        )
    return p(text, "Tuning against noise.")


def _ensembles(run: StudyRun) -> str:
    m6 = run.m(run_folder.ARCHITECTURES)
    ens = m6.get("ensembles") or {}
    if not ens:
        return ""
    method = ens.get("best_method")
    acc = ((ens.get("methods") or {}).get(method) or {}).get("test_acc")
    text = (
        f"Of {len(ens.get('members') or [])} models, the {escape.html(method)} vote (chosen on validation) "
        f"reaches {pct(acc)}, {points(m6.get('ensemble_gain'))}{ci_points(m6.get('ensemble_gain_ci'))} over "
        f"the best single model ({escape.html(ens.get('best_member', '-'))}). "
    )
    return p(text + " ".join(_says(run_folder.ARCHITECTURES, m6)), "Ensembles.")


def _count(n) -> str:
    """``1,480`` for a whole number, ``?`` where there is none."""
    return f"{n:,}" if isinstance(n, int) and not isinstance(n, bool) else "?"


def _clean_at_chance(run: StudyRun) -> bool:
    """Whether 04's model is at chance level on the clean images its corruptions were measured on."""
    m4 = run.m(run_folder.EVALUATE)
    clean, n, k = _num(m4.get("robustness_clean_acc")), m4.get("robustness_n"), run.num_classes()
    return bool(clean is not None and k and isinstance(n, int) and chance_level(clean, k, n))


def _grouped_cells(cells: list[str], most: int | None = None) -> str:
    """04's cells at chance grouped by corruption, escaped, ``; ``-separated; past ``most`` corruptions the rest
    are counted."""
    groups = group_corruption_cells(cells)
    more = len(groups[most:]) if most is not None else 0
    return "; ".join(escape.html(g) for g in groups[:most]) + (
        f"; and {plural(more, 'more corruption')}" if more else ""
    )


def _robustness(run: StudyRun) -> str:
    m4 = run.m(run_folder.EVALUATE)
    if _num(m4.get("robustness_mean_acc")) is None:
        return ""
    total = sum(len(v) for v in (m4.get("robustness") or {}).values() if isinstance(v, dict))
    at_chance = m4.get("corruptions_at_chance") or []
    text = (
        f"Mean accuracy over the corruptions is {pct(m4['robustness_mean_acc'])} against "
        f"{pct(m4.get('robustness_clean_acc'))} on the same {_count(m4.get('robustness_n'))} clean test images. "
    )
    if _clean_at_chance(run):
        text += "The model is at chance level on the clean images already, so this says nothing about its robustness."
    elif at_chance:
        verb = agree(len(at_chance), "brings", "bring")
        shown = _grouped_cells(at_chance, most=4)
        text += f"{len(at_chance)} of {total} corruption settings {verb} it to chance level: {shown}."
    else:
        text += f"None of the {total} corruption settings brings it to chance level."
    return p(text, "Robustness.")


def _budget_plan(run: StudyRun) -> dict:
    """The ``--budget`` plan the run followed (``{}`` without one, or when it changed nothing), with ``replan``: what
    was lowered later, once 02 had picked settings that made 03 slower than planned (the runner's re-plan)."""
    time_plan = run.manifest.get("time_plan") or {}
    budget = time_plan.get("budget") or {}
    later = [c for r in time_plan.get("retimed") or [] for c in (r.get("budget_replan") or {}).get("changes") or []]
    if not (budget.get("changes") or later):
        return {}
    return {**budget, "changes": list(budget.get("changes") or []), "replan": later}


def _budget(run: StudyRun) -> str:
    from cifarkit.report.estimate_budget import describe_change

    budget = _budget_plan(run)
    if not budget:
        return ""
    minutes, before = budget.get("minutes"), budget.get("before_seconds")
    lowered = "; ".join(escape.html(describe_change(c)) for c in budget["changes"])
    later = "; ".join(escape.html(describe_change(c)) for c in budget["replan"])
    needed = f"about {before / 60:.0f} minutes there" if _num(before) else ""
    shown = escape.html(f"{minutes:g}" if _num(minutes) is not None else minutes)
    text = f"The run was planned to fit a budget of {shown} minutes on its machine"
    if lowered:  # the start's plan lowered settings
        text += (
            f" (the profile's own settings needed {needed})" if needed else ""
        ) + f", so these settings were lowered: {lowered}"
    else:  # the profile fit; only the re-plan after 02 lowered anything
        text += "; the profile's own settings fit it" + (f" ({needed})" if needed else "") + ", but"
    if later:
        text += (
            f"{'; and' if lowered else ''} once the tuning had picked settings that train the model slower than "
            f"planned, these were lowered before training: {later}"
        )
    text += ". Every number in this book comes from the lowered settings, not the profile's."
    if _num(budget.get("margin_seconds")):
        text += (
            f" The plan kept {format_seconds(budget['margin_seconds'])} of the budget unplanned in case the machine "
            "ran slower than measured."
        )
    return p(text + _budget_verdict(run), "Time budget.")


def _budget_verdict(run: StudyRun) -> str:
    """Whether the run kept its budget (:func:`~cifarkit.report.estimate_budget.budget_outcome`)."""
    from cifarkit.report.estimate_budget import budget_outcome

    kept = budget_outcome(run.manifest)
    if kept is None:
        return ""
    text = f" It took {format_seconds(kept['used_seconds'])}, measuring the machine included: "
    if kept["over_seconds"] <= 0:
        return text + "within the budget."
    return text + f"{format_seconds(kept['over_seconds'])} ({kept['over_text']}) over the budget."


def _cost(run: StudyRun) -> str:
    man = run.manifest
    timed = [(n, run.entry(n).get("execute_seconds")) for n in NAMES]
    timed = [(n, s) for n, s in timed if _num(s) is not None]
    total = (man.get("totals") or {}).get("execute_seconds") or sum(s for _, s in timed)
    text = (
        f"The run took {format_seconds(man['duration_seconds'])} in all, {format_seconds(total)} of it executing notebooks"
        if _num(man.get("duration_seconds")) is not None
        else f"The notebooks took {format_seconds(total)} to execute (the run's duration was not recorded)"
    )
    if timed:
        name, secs = max(timed, key=lambda t: t[1])
        text += f"; the longest step was {escape.html(name)} ({format_seconds(secs)})"
    train_s = run.m(run_folder.TRAIN).get("train_seconds")
    if _num(train_s) is not None:
        text += f"; training the model took {format_seconds(train_s)}"
    return p(text + ".", "Cost.")


def _missing(run: StudyRun) -> str:
    missing, expected = run.missing(), run.expected()
    skipped = [n for n in run.left_out() if n not in OPTIONAL]
    aside = (
        f" The profile {escape.html(run.manifest.get('profile'))} leaves out "
        + ", ".join(escape.html(n) for n in skipped)
        + f" (run with --only to add {agree(len(skipped), 'it', 'them')})."
        if skipped
        else ""
    )
    if not missing:
        return p(f"All {len(expected)} notebooks ran and recorded their results.{aside}", "Completeness.")
    items = "; ".join(f"{escape.html(n)} ({escape.html(why)})" for n, why in missing)
    return p(
        f"{len(missing)} of {len(expected)} notebooks recorded no results, so this book lacks them: {items}.{aside}",
        "Missing results.",
    )


def summary_html(run: StudyRun) -> str:
    """The executive summary's paragraphs (the heading is the caller's)."""
    parts = [
        _headline(run),
        _budget(run),
        _cross_validation(run),
        _baselines(run),
        _tuning(run),
        _ensembles(run),
        _robustness(run),
        _cost(run),
    ]
    return '<div class="summary">' + "".join(filter(None, parts)) + _missing(run) + "</div>"


# ------------------------------------------------------------------ limitations
def _limit_budget(run: StudyRun) -> str | None:
    budget = _budget_plan(run)
    if not budget:
        return None
    n = len(budget["changes"]) + len(budget["replan"])
    return (
        f"<b>Settings lowered to fit a time budget.</b> {plural(n, 'setting')} of the "
        f"profile {agree(n, 'was', 'were')} lowered (the executive summary lists them): "
        "fewer epochs, images or samples than the profile's give other, mostly lower or noisier, numbers."
    )


def _limit_subset(run: StudyRun) -> str | None:
    subset = run.param("DATA_SUBSET") or run.data().get("subset")
    if not subset:
        return None
    counts = run.data().get("counts") or {}
    shown = ", ".join(f"{counts[s]:,} {s}" for s in ("train", "val", "test") if isinstance(counts.get(s), int))
    return (
        f"<b>A subset of the data.</b> At most {subset} images per class and split were used "
        f"(DATA_SUBSET = {escape.html(subset)}; {shown} images), not the full data: accuracies are far below what "
        "the same model reaches on all of it."
    )


def _replication_reasons(row: dict) -> list[str]:
    """Why a recorded replication row is not a replication (epochs, recipe, data); empty when it is one.

    06 records the reasons as a list (``reasons``); runs recorded before that carry them only in
    ``comparison``, as ``"for reference only: <reason>; <reason>"``."""
    if isinstance(row.get("reasons"), list):
        return [str(r) for r in row["reasons"]]
    comparison = str(row.get("comparison") or "")
    if not comparison or comparison == "replication":
        return []
    return [r for r in comparison.removeprefix("for reference only: ").split("; ") if r]


def _limit_training(run: StudyRun) -> str | None:
    rows = [r for r in run.m(run_folder.ARCHITECTURES).get("replication") or [] if isinstance(r, dict)]
    short = [(r, _replication_reasons(r)) for r in rows]
    short = [(r, why) for r, why in short if why]
    if not short:
        return None
    items = "; ".join(f"{escape.html(r.get('model'))} ({escape.html('; '.join(why))})" for r, why in short)
    n = len(short)
    counted = "The published architecture trained" if len(rows) == 1 else f"{n} of {len(rows)} published architectures"
    return (
        f"<b>Training far shorter than the papers' recipes.</b> {counted} "
        f"{agree(n, 'is not a replication', 'are not replications')}: {items}. "
        f"{agree(n, 'Its published error is', 'Their published errors are')} for reference only."
    )


def _limit_seeds(run: StudyRun) -> str | None:
    m3 = run.m(run_folder.TRAIN)
    if not m3 or m3.get("seeds") or run.m(run_folder.ARCHITECTURES).get("seeds"):
        return None
    seed = (m3.get("config") or {}).get("seed", run.manifest.get("seed"))
    return (
        f"<b>One training seed.</b> The model was trained once (seed {escape.html(seed)}): the confidence "
        "interval covers the sampling of test images, not the spread between training runs."
    )


def _limit_test_size(run: StudyRun) -> str | None:
    ci, n = run.m(run_folder.TRAIN).get("test_acc_ci") or [None, None], _n_test(run)
    if _num(ci[0]) is None or _num(ci[1]) is None or 100 * (ci[1] - ci[0]) < 1:
        return None
    return (
        f"<b>A small test split.</b> The headline's 95% interval is {100 * (ci[1] - ci[0]):.2f} points wide"
        + (f" ({n:,} test images)" if isinstance(n, int) else "")
        + ": differences smaller than that between models are not resolved."
    )


def _limit_tuning(run: StudyRun) -> str | None:
    m2 = run.m(run_folder.TUNE)
    signal = m2.get("tuning_signal") or {}
    if not m2:
        return f"<b>No tuning.</b> 02_tune recorded no results ({escape.html(run.status(run_folder.TUNE))})."
    if signal.get("reliable") or _num(signal.get("margin")) is None:
        return None
    return (
        f"<b>No reliable tuning gain.</b> The best trial beat the recipe by {points(signal['margin'])}"
        f"{ci_points(signal.get('ci'))} on {signal.get('n_val', '?')} validation images: the interval includes "
        "zero, so the chosen settings are not shown to be better."
    )


def _limit_corruptions(run: StudyRun) -> str | None:
    at_chance = run.m(run_folder.EVALUATE).get("corruptions_at_chance") or []
    if not at_chance:
        return None
    if _clean_at_chance(run):
        return (
            "<b>Robustness not measured.</b> The model is at chance level on the clean images already, so the "
            f"{plural(len(at_chance), 'corruption setting')} at chance "
            f"{agree(len(at_chance), 'says', 'say')} nothing about corruptions."
        )
    return (
        f"<b>Corruptions that bring the model to chance.</b> {plural(len(at_chance), 'corruption setting')}: "
        + _grouped_cells(at_chance)
        + "."
    )


def _limit_mismatch(run: StudyRun) -> str | None:
    mismatch = run.m(run_folder.EVALUATE).get("data_mismatch") or []
    if not mismatch:
        return None
    return (
        f"<b>Training and evaluation data differ.</b> {plural(len(mismatch), 'setting')} {agree(len(mismatch), 'differs', 'differ')} between the model's "
        "training data and the data evaluated: " + "; ".join(escape.html(x) for x in mismatch) + "."
    )


def _limit_jpeg(run: StudyRun) -> str | None:
    formats = source_formats(run)
    source = str((run.manifest.get("data") or {}).get("source") or run.data().get("source") or "")
    named = any(word in source.lower() for word in ("jpeg", "jpg"))
    if formats:
        total, jpeg = sum(formats.values()), sum(v for k, v in formats.items() if k.upper() in ("JPEG", "JPG"))
        if not jpeg:
            return None
        return (
            f"<b>Lossy JPEG data.</b> The image formats 01_explore_data recorded list JPEG for {jpeg:,} of "
            f"{total:,} decoded images: compression artefacts are part of every image, so results may differ "
            "from the lossless original."
        )
    if named:
        return (
            f"<b>Possibly lossy JPEG data.</b> The source's name ({escape.html(Path(source).name)}) says JPEG; "
            "the run recorded no image formats (01_explore_data's format table) to confirm it."
        )
    return None


def source_formats(run: StudyRun) -> dict[str, int]:
    """The decoded images' file formats as 01_explore_data showed them (``{"JPEG": 1500}``), or ``{}``."""
    info = run.m(run_folder.EXPLORE).get("image_info") or run.data().get("image_info") or {}
    if isinstance(info.get("formats"), dict):
        return {str(k): int(v) for k, v in info["formats"].items()}
    nb = files.read_json(run.run_dir / f"{run_folder.EXPLORE}.ipynb") or {}
    for cell in nb.get("cells") or []:
        for out in cell.get("outputs") or []:
            text = (out.get("data") or {}).get("text/plain")
            lines = ("".join(text) if isinstance(text, list) else str(text or "")).splitlines()
            if lines and lines[0].strip() == "formats":
                rows = [ln.rsplit(None, 1) for ln in lines[1:] if len(ln.split()) >= 2]
                return {k.strip(): int(v) for k, v in rows if v.isdigit()}
    return {}


LIMITS = (
    _limit_budget,
    _limit_subset,
    _limit_training,
    _limit_seeds,
    _limit_test_size,
    _limit_tuning,
    _limit_corruptions,
    _limit_mismatch,
    _limit_jpeg,
)


def limitations_html(run: StudyRun) -> str:
    items = [text for rule in LIMITS if (text := rule(run))]
    for name, why in run.missing():
        items.append(f"<b>Missing notebook.</b> {escape.html(name)}: {escape.html(why)}.")
    description = run.manifest.get("profile_description")
    if description:
        items.insert(
            0,
            f"<b>The profile.</b> {escape.html(run.manifest.get('profile'))}: {escape.html(description)}",
        )
    if not items:
        return p("None of the checks found a limitation in this run.")
    return '<ol class="limits">' + "".join(f"<li>{t}</li>" for t in items) + "</ol>"


def json_text(value) -> str:
    return escape.html(json.dumps(value, default=str) if not isinstance(value, str) else value)
