"""How long each notebook of a run will take on this machine, estimated before it starts.

:func:`estimate_run` counts the images of every split (:mod:`cifarkit.report.estimate_data`: from the
source's listing, nothing decoded), measures this machine (:mod:`cifarkit.report.estimate_probe`: a
few real training steps of every model the run trains, inference, a matrix product and a fixed CPU
workload, in a short-lived process) and turns both into seconds per notebook
(:mod:`cifarkit.report.estimate_model`). The runner prints the table before the first notebook and
records it in the manifest (``time_plan``, and ``planned_seconds`` beside each notebook's
``execute_seconds``); :mod:`cifarkit.report.estimate_budget` plans a ``--budget`` with it.

How each notebook is estimated (details and constants in :mod:`cifarkit.report.estimate_model`):

- every notebook: kernel start, imports, figures and tables, a calibrated constant per notebook (not
  scaled: a single-threaded yardstick put a machine at 2.9x the reference where its notebooks started as
  fast; see :data:`~cifarkit.report.estimate_model.NOTEBOOK_FIXED_S`); the measured import of Keras and PyTorch for the notebooks
  that train or load a CNN; decoding the data, for the first notebook that loads it (from the listing
  pass and the measured decode time of a few of its images; nothing when the decode cache has it).
- a training run (``train()``): model build and the first step's warm-up (measured), then per epoch
  ``floor(train / batch) * batch / training rate + validation / inference rate`` plus a checkpoint.
- ``01_explore_data``: PCA and t-SNE from calibrated ``a + b * n`` laws, statistics per image.
- ``02_tune``: ``N_TRIALS`` training runs of ``EPOCHS`` epochs each, one after the other, shortened by the
  pruner as :func:`~cifarkit.report.estimate_model.expected_trial_epochs` assumes (a trial that completes
  predicts the validation split once more, :func:`~cifarkit.report.estimate_model.expected_trial_completes`);
  with ``TIMEOUT`` no trial starts after it (the running one finishes), whichever comes first. The recipe's
  own first trial (``BASELINE_FIRST``) runs at the recipe's measured speed, each sampled one at its own: the
  probe times each batch size and width the space offers, and the start-up trials' choices are known before the
  run (the sampler is reseeded per trial, :func:`~cifarkit.analysis.tuning.storage.preview_startup_trials`); a
  trial TPE proposes from earlier results counts at the space's average.
- ``03_train``: one training run, then the test split twice (``train()`` and the notebook's interval).
  Timed with the recipe's settings, or, when 02 runs first and 03 takes its settings if they win, as the mixture
  of the recipe's speed and the sampled trials' average by the chance that 02's settings win
  (:func:`~cifarkit.report.estimate_model.tuned_apply_chance`: ``n / (n + 1)`` for ``n`` sampled trials; a
  ``--budget`` plans with the slower of the two instead); just before 03 starts the runner times it again with the
  settings 02 chose, or settles it on the recipe's speed (:func:`retime_tuned_training`), and re-estimates 03
  and what follows.
- ``04_evaluate``: forward passes over test and validation, the flipped test split (TTA), the clean and
  every corrupted copy (corruptions x severities) of ``CORRUPTION_SAMPLES`` images, making those copies, and
  the bootstrap of the per-class ROC AUC and average precision (test images x classes x ``N_BOOT``).
- ``05_baselines``: the fit and prediction times of ``benchmarks/results/baselines.json`` (45,000
  images on a 2-core Xeon) scaled to this run's sizes by each method's complexity and by the measured
  time of a small sample of the baselines' operations; then 03's CNN over validation and test.
- ``06_architectures_and_ensembles``: 03's model and every architecture over validation and test plus an
  inference timing pass, and each architecture's training run.
- ``07_cross_validation``: the folds its auto rule (or ``CV_FOLDS``) gives, each a training run on the other
  folds less the validation carve, then its held-out fold and carve predicted, and the bootstrap of the pooled
  AUC (all images x classes x ``N_BOOT``), and every method of ``BASELINES`` fitted and predicting in every
  fold (05's per-method costs); nothing but the notebook's start when it will not cross-validate.

The other bootstrap intervals, McNemar tests and ensembles cost well under a second and are left out.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from cifarkit.report import profiles
from cifarkit.report.estimate_model import (
    REFERENCE,
    TINY_RATES,
    Context,
    Machine,
    NotebookEstimate,
    architectures,
    cv_fold_sizes,
    cv_folds,
    estimate_notebooks,
    expected_rates,
    format_architectures,
    mean_sampled_factors,
    reserve_seconds,
    undecided_range,
)
from cifarkit.report.key_results import seconds_text
from cifarkit.wording import agree

__all__ = [
    "Context",
    "Machine",
    "NotebookEstimate",
    "TimePlan",
    "architectures",
    "effective_parameters",
    "estimate_notebooks",
    "estimate_run",
    "format_architectures",
    "plan_time",
    "replan_rest",
    "retime_lines",
    "retime_tuned_training",
    "training_jobs",
]

#: A run whose training images add up to fewer than this is not probed (see estimate_run).
TINY_IMAGES = 20_000
PROBE_TIMEOUT_S = 600


# ------------------------------------------------------------------ parameters
def effective_parameters(spec: profiles.NotebookSpec, params: dict) -> dict:
    """A notebook's parameters as its kernel sees them: its declared defaults, then ``params``."""
    from cifarkit.report.plan import notebook_parameters

    out = {}
    for name, info in notebook_parameters(spec).items():
        try:
            out[name] = ast.literal_eval(info["default"])
        except (ValueError, SyntaxError, TypeError):
            out[name] = info["default"]
    out.update(params)
    return out


def training_jobs(nb: dict[str, dict]) -> dict[str, dict]:
    """The training runs of the planned notebooks (``nb``: name -> effective parameters), by job id:
    ``02`` (one tuning trial), ``03``, ``06:<i>`` (the i-th architecture), ``07`` (one cross-validation fold)."""
    jobs = {}
    if "02_tune" in nb:
        p = nb["02_tune"]
        jobs["02"] = {"model": p["MODEL"], "recipe": p["RECIPE"], "settings": {"epochs": p["EPOCHS"]}}
        if p.get("SPACE"):
            jobs["02"]["space"] = str(p["SPACE"])  # trials are drawn from it: the probe times its speed choices
            # what the seeded sampler draws first is known before the run (estimate_probe.sampled_draws)
            jobs["02"]["tuning"] = {
                "seed": int(p.get("SEED", 0)),
                "n_trials": int(p.get("N_TRIALS", 0)),
                "baseline_first": bool(p.get("BASELINE_FIRST", True)),
            }
    if "03_train" in nb:
        p = nb["03_train"]
        settings = dict(p.get("OVERRIDES") or {})
        settings.update(epochs=p.get("EPOCHS") or None, batch_size=p.get("BATCH_SIZE") or None)
        jobs["03"] = {"model": p["MODEL"], "recipe": p["RECIPE"], "settings": settings}
    if "06_architectures_and_ensembles" in nb:
        for i, (model, recipe, epochs, _) in enumerate(
            architectures(nb["06_architectures_and_ensembles"]["ARCHITECTURES"])
        ):
            jobs[f"06:{i}"] = {"model": model, "recipe": recipe, "settings": {"epochs": epochs or None}}
    if "07_cross_validation" in nb:
        p = nb["07_cross_validation"]
        settings = dict(p.get("OVERRIDES") or {})
        settings.update(epochs=p.get("EPOCHS") or None, batch_size=p.get("BATCH_SIZE") or None)
        jobs["07"] = {"model": p["MODEL"], "recipe": p["RECIPE"], "settings": settings}
    return jobs


def _recipe_guess(job: dict) -> dict:
    """Epochs and batch size from the recipe table, without importing the models (tiny runs only)."""
    from cifarkit.training.config import TrainConfig
    from cifarkit.training.recipes import RECIPES

    name = job["recipe"]
    if name == "paper":  # each model's own paper recipe (DenseNets: Huang et al.'s); the registry knows which
        from cifarkit.models import model_info

        name = model_info(job["model"]).get("paper_recipe") or name
    recipe = RECIPES.get(name, {})
    s = job.get("settings") or {}
    return {
        "model": job["model"],
        "epochs": int(s.get("epochs") or recipe.get("epochs", TrainConfig.epochs)),
        "batch_size": int(s.get("batch_size") or recipe.get("batch_size", TrainConfig.batch_size)),
    }


def run_probe(request: dict) -> dict:
    """Run :mod:`cifarkit.report.estimate_probe` in a new Python process and return its answer."""
    env = dict(os.environ)
    env.setdefault("KERAS_BACKEND", "torch")
    out = subprocess.run(
        [sys.executable, "-m", "cifarkit.report.estimate_probe"],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=PROBE_TIMEOUT_S,
        env=env,
        cwd=str(Path(__file__).resolve().parents[2]),
    )
    for line in reversed(out.stdout.splitlines()):
        if line.startswith("PROBE-RESULT "):
            return json.loads(line[len("PROBE-RESULT ") :])
    tail = (out.stderr or out.stdout).strip().splitlines()[-1:] or ["no output"]
    raise RuntimeError(f"the speed probe failed (exit {out.returncode}): {tail[0][:300]}")


def _speed_key(job: dict) -> str:
    return json.dumps(
        {k: job[k] for k in ("model", "recipe")} | {"s": _speed_settings(job.get("settings"))}, sort_keys=True
    )


def measure_machine(jobs: dict, image_size: int, num_classes: int, *, tuned_to_03: bool = False) -> Machine:
    """Probe every distinct job once (its largest training split) and resolve every job's epochs; a tuning
    job's search space is timed with the job that stands for it. ``tuned_to_03``: see :func:`expected_rates`."""
    key_of = {jid: _speed_key(job) for jid, job in jobs.items()}
    distinct: dict[str, str] = {}  # speed key -> the job that stands for it (its largest training split)
    for jid, job in jobs.items():
        best = distinct.get(key_of[jid])
        if best is None or job.get("n_train", 0) > jobs[best].get("n_train", 0):
            distinct[key_of[jid]] = jid
    asked = {jid: dict(job) for jid, job in jobs.items()}
    for jid, job in jobs.items():
        if job.get("space"):
            asked[distinct[key_of[jid]]]["space"] = job["space"]
            if job.get("tuning"):  # the tuning's own split decides which batch sizes its space offers
                asked[distinct[key_of[jid]]]["tuning"] = {**job["tuning"], "n_train": job.get("n_train")}
    request = {"jobs": asked, "probe": list(distinct.values()), "image_size": image_size, "num_classes": num_classes}
    answer = run_probe(request)
    rates = {jid: answer["rates"][distinct[key_of[jid]]] for jid in jobs}
    space_speed = {
        jid: answer["space_speed"][distinct[key_of[jid]]]
        for jid, job in jobs.items()
        if job.get("space") and distinct[key_of[jid]] in answer.get("space_speed", {})
    }
    gflops = max(answer["matmul_gflops"], 1e-3)
    machine = Machine(
        measured=True,
        cpu_factor=max(answer["cpu_workload_s"] / REFERENCE["cpu_workload_s"], 0.1),
        parallel_factor=max(REFERENCE["matmul_gflops"] / gflops, 0.05),
        baseline_factor=max(answer["baseline_workload_s"] / REFERENCE["baseline_workload_s"], 0.05),
        forest_factor=max(answer["forest_workload_s"] / REFERENCE["forest_workload_s"], 0.05),
        torch_import_s=answer["torch_import_s"],
        resolved=answer["resolved"],
        rates=rates,
        probe=answer,
        space_speed=space_speed,
    )
    expected_rates(machine, tuned_to_03)
    return machine


def tuned_may_apply(nb: dict[str, dict], jobs: dict) -> bool:
    """Whether 02's tuned settings may change 03's speed, which the start cannot know: 02 runs in this plan
    and tunes 03's model and recipe, 03 takes them when they win (``TUNED_PARAMS`` auto) and sets no speed
    setting of its own (an explicit batch size or width would stay)."""
    if "02" not in jobs or "03" not in jobs or not jobs["02"].get("space"):
        return False
    p2, p3 = nb["02_tune"], nb["03_train"]
    return (
        str(p3.get("TUNED_PARAMS") or "auto") == "auto"
        and (p2["MODEL"], p2["RECIPE"]) == (p3["MODEL"], p3["RECIPE"])
        and not _speed_settings(jobs["03"].get("settings"))
    )


def _speed_settings(settings: dict | None) -> dict:
    """Of a job's ``settings``, those that change its speed per image (not its epochs)."""
    return {k: v for k, v in (settings or {}).items() if k != "epochs" and v not in (None, 0, "")}


# ------------------------------------------------------------------ the run
ASSUMPTIONS = (
    "execution only: rendering the HTML and PDF reports comes on top",
    "image counts come from the source's listing; files found unreadable when decoding are not known yet",
    "tuning: pruning as expected_trial_epochs() assumes (median: after 3 full trials, half the trials stop "
    "after their first epoch; halving/hyperband: a third go on at each rung); no trial starts after TIMEOUT, "
    "the one running then finishes",
    "tuning: the recipe's own trial at its measured speed, every sampled trial at the search space's expected "
    "speed (each batch size and width of the space timed briefly; a trial's time per image taken as the "
    "product of its choices' ratios, averaged over the space as Optuna's first random trials draw it)",
    "03, when it would take 02's tuned settings: at start timed as the mixture of the recipe's speed and a "
    "sampled trial's by the chance n/(n+1) that one of 02's n sampled trials beats the recipe (--budget plans "
    "with the slower of the two); before 03 starts, re-timed with the settings 02 chose, or settled on the "
    "recipe's speed",
    "baselines: benchmarks/results/baselines.json (45,000 images, 2-core Xeon) scaled by each method's "
    "complexity and by a small sample of the baselines' operations timed here (PCA, logistic regression, "
    "kNN, random-forest trees, SGD); the random forest by its trees alone; each method's own speed ratio "
    "between machines varies around these",
)


@dataclass
class TimePlan:
    """The estimate of a run: seconds per notebook, what they rest on, and a budget plan if one was asked."""

    estimates: dict[str, NotebookEstimate]
    machine: Machine
    counts: object
    seconds_to_estimate: float = 0.0
    budget: dict | None = None
    nb: dict = field(default_factory=dict, repr=False)  # notebook -> effective parameters
    ctx: Context | None = field(default=None, repr=False)
    retimed: list = field(default_factory=list)  # re-timings during the run (retime_tuned_training)
    reports_seconds: float | None = None  # rendering the reports (estimate_model.reserve_seconds), when known
    at_start: dict = field(default_factory=dict)  # notebook -> seconds first estimated, once a re-timing changed them
    # the total with 03 at the fastest and the slowest settings 02 may pick, while undecided (undecided_range)
    total_range: tuple[float, float] | None = None

    @property
    def total(self) -> float:
        return sum(e.seconds for e in self.estimates.values())

    def planned_seconds(self, name: str) -> float | None:
        e = self.estimates.get(name)
        return round(e.seconds, 1) if e else None

    def planned_at_start(self, name: str) -> float | None:
        """The seconds first estimated for ``name``, where a re-timing has changed them since (else None)."""
        seconds = self.at_start.get(name)
        return round(seconds, 1) if seconds is not None else None

    def rates_line(self) -> str:
        m = self.machine
        if not m.measured:
            return f"not measured: {m.note}"
        seen, parts = set(), []
        for r in m.rates.values():
            key = (r["model"], r["batch_size"], r["precision"])
            if key not in seen:
                seen.add(key)
                parts.append(speed_text(r))
        probe = m.probe.get("probe_seconds")
        return f"measured in {probe:.0f} s: " + "; ".join(parts) if parts else f"measured in {probe:.0f} s"

    def space_line(self) -> str | None:
        """How the tuning's search space was timed, when it was (None otherwise)."""
        space = self.machine.space_speed.get("02")
        if not space:
            return None
        choices = " and ".join(f"{k} {', '.join(v)}" for k, v in space["choices"].items())
        line = (
            f"a trial drawn from 02's search space ({choices}) is expected to take "
            f"{space['train_time_factor']:.2f}x the recipe's training time per image"
        )
        draws, n = space.get("draws") or [], self.machine.sampled_trials
        if draws and n:
            names = "/".join(space["choices"])
            known = ", ".join("/".join(str(d.get(k)) for k in space["choices"]) for d in draws[:n])
            mean = mean_sampled_factors(space, n)["train_time_factor"]
            k = min(len(draws), n)
            which = (
                {1: "the one sampled trial is", 2: "both sampled trials are"}.get(n, f"all {n} sampled trials are")
                if k == n
                else f"{k} of the {n} sampled trials are"
            )
            line += (
                f"; {which} known before the run ({names} {known}), so "
                f"{agree(n, 'it is', 'they are')} expected to take {mean:.2f}x{agree(n, '', ' on average')}"
            )
        if "03" in self.machine.undecided:
            line += (
                f"; 03 is timed with a chance of {self.machine.tuned_chance:.0%} that 02's settings win and apply "
                "to it (n/(n+1) for n trials sampled beside the recipe's)"
            )
            if self.budget is not None:
                line += ", and the budget is planned with the slower of the two speeds"
        return line

    def lines(self) -> list[str]:
        out = [f"time estimate on this machine ({self.rates_line()}):"]
        if self.space_line():
            out.append(f"  ({self.space_line()})")
        width = max(len(n) for n in self.estimates) if self.estimates else 10
        for e in self.estimates.values():
            out.append(f"  {e.name:{width}s} {seconds_text(e.seconds):>9s}  {e.how}".rstrip())
        reports = (
            f"about {seconds_text(self.reports_seconds)} more to render the reports"
            if self.reports_seconds
            else "rendering the reports comes on top"
        )
        # the total in seconds (comparable with the notebooks' lines) and in minutes, or hours once that long
        longer = seconds_text(self.total) if self.total >= 3 * 3600 else f"{self.total / 60:.1f} min"
        out.append(f"estimated total: {self.total:,.0f} s ({longer}) of execution; {reports}")
        if self.total_range is not None:
            low, high = self.total_range
            out.append(
                f"  between {low:,.0f} s and {high:,.0f} s ({low / 60:.1f}-{high / 60:.1f} min) by the settings 02 "
                "picks for 03: the recipe's, a sampled trial's or the search space's fastest or slowest corner "
                "(03 is timed again once 02 has picked)"
            )
        return out

    def to_dict(self) -> dict:
        m = self.machine
        return {
            "estimated_at": _now(),
            "seconds_to_estimate": round(self.seconds_to_estimate, 2),
            "total_seconds": round(self.total, 1),
            "total_range_seconds": [round(v, 1) for v in self.total_range] if self.total_range else None,
            "notebooks": {
                n: {"planned_seconds": round(e.seconds, 1), "parts": e.parts, "how": e.how}
                for n, e in self.estimates.items()
            },
            "probe": {
                "measured": m.measured,
                "note": m.note,
                "cpu_factor": round(m.cpu_factor, 3),
                "parallel_factor": round(m.parallel_factor, 3),
                "baseline_factor": round(m.baseline_factor, 3),
                "forest_factor": round(m.forest_factor, 3),
                "torch_import_s": m.torch_import_s,
                "resolved_jobs": m.resolved,
                "rates": m.rates,
                "space_speed": m.space_speed,  # 02's search space timed (estimate_probe.space_speed)
                "expected_rates": m.expected,  # rates derived from those (estimate_model.expected_rates)
                # what stands for a job's rate until the run decides (03): the tuned trial's time factors, the
                # chance they apply, and the rate the estimate used (the expected one, Machine.undecided_rate)
                "undecided_rates": {
                    jid: {**factors, "tuned_chance": round(m.tuned_chance, 4), "rate": m.undecided_rate(jid)}
                    for jid, factors in m.undecided.items()
                    if jid in m.rates
                },
                "raw": {k: v for k, v in m.probe.items() if k not in ("rates", "resolved", "space_speed")},
            },
            "data": self.counts.to_dict(),
            "reference": REFERENCE,
            "assumptions": list(ASSUMPTIONS),
            "budget": self.budget,
            "retimed": list(self.retimed),  # a copy: the manifest's record grows on its own
        }


def _now() -> str:
    from cifarkit import provenance

    return provenance.now_iso()


def _training_images(nb: dict, jobs: dict, resolved: dict) -> int:
    """Images the run's training sees in all (every trial of 02 at full length): the probe's threshold."""
    total = 0
    for jid, job in jobs.items():
        epochs = resolved[jid]["epochs"]
        trials = int(nb["02_tune"].get("N_TRIALS", 1)) if jid == "02" else 1
        trials = job.get("folds", trials) if jid == "07" else trials
        total += trials * epochs * job["n_train"]
    return total


def estimate_run(plan, *, probe: bool | None = None, log=print) -> TimePlan:
    """Estimate every planned notebook (``plan``: ``[(spec, parameters)]`` from ``plan_run``).

    ``probe``: measure this machine (True), assume fixed rates (False) or measure unless the run is
    tiny (None: fewer than :data:`TINY_IMAGES` training images in all, where a probe would cost more
    than the training it measures; the smoke profile is such a run).
    """
    from cifarkit.report.estimate_data import count_images, decode_cached

    t0 = time.perf_counter()
    nb = {spec.name: effective_parameters(spec, params) for spec, params in plan}
    first = next(iter(nb.values()))
    counts = count_images(
        first.get("DATA") or None,
        val_fraction=float(first.get("VAL_FRACTION", 0.1)),
        labels=first.get("LABELS") or None,
        group_by=first.get("GROUP_BY") or None,
    )
    image_size = int(first.get("IMAGE_SIZE", 32))
    jobs = training_jobs(nb)
    owner = {"02": "02_tune", "03": "03_train", "07": "07_cross_validation"}
    for jid, job in jobs.items():
        job["n_train"] = counts.split_sizes(
            int(nb[owner.get(jid, "06_architectures_and_ensembles")].get("DATA_SUBSET") or 0)
        )[0]
    if "07" in jobs:  # a fold trains on the other folds less its validation carve
        p7 = nb["07_cross_validation"]
        sizes = counts.split_sizes(int(p7.get("DATA_SUBSET") or 0))
        k = cv_folds(p7, sizes)
        if k:
            jobs["07"].update(n_train=cv_fold_sizes(p7, sizes, k)[0], folds=k)
        else:
            del jobs["07"]  # the auto rule will not cross-validate: nothing to time
    guess = {jid: _recipe_guess(job) for jid, job in jobs.items()}
    images = _training_images(nb, jobs, guess)
    if probe is None:
        probe = images >= TINY_IMAGES
    if probe and jobs:
        models = ", ".join(sorted({j["model"] for j in jobs.values()}))
        log(f"measuring this machine for the time estimate: a few training steps of {models} ...")
        machine = measure_machine(jobs, image_size, counts.num_classes, tuned_to_03=tuned_may_apply(nb, jobs))
    else:
        note = (
            f"the run trains on {images:,} images in all, fewer than a probe would cost to measure; "
            f"fixed rates assumed ({TINY_RATES['train_img_per_s']:g} img/s training, "
            f"{TINY_RATES['infer_img_per_s']:g} inference)"
            if jobs
            else "no notebook of this run trains a model"
        )
        machine = Machine(measured=False, resolved=guess, note=note)

    def cached(key):
        return decode_cached(counts, image_size=key[0], val_fraction=key[2], seed=key[3], subset=key[1])

    ctx = Context(counts, machine, image_size=image_size, cached=cached)
    estimates = estimate_notebooks(nb, ctx)
    return TimePlan(estimates, machine, counts, seconds_to_estimate=time.perf_counter() - t0, nb=nb, ctx=ctx)


def plan_time(
    plan, *, budget: float | None = None, pdf: bool = False, log=print, needed_by: str | None = None
) -> tuple[TimePlan | None, dict]:
    """The run's time plan, and with ``budget`` (minutes) the per-notebook overrides that fit it (``pdf``: the
    run will print PDFs, which the budget sets time aside for; see :func:`estimate_model.reserve_seconds`).

    Without a budget an estimate that cannot be made costs the run nothing: a note says why and the
    plan is None. ``--budget`` needs the estimate, so there a failure (or a budget the run cannot
    meet, see :mod:`cifarkit.report.estimate_budget`) raises ``ValueError`` before anything runs; so does
    a failure when ``needed_by`` names another option that needs it (``"--estimate"``).
    """
    from cifarkit.report.estimate_budget import MARGIN, plan_budget

    needed_by = "--budget" if budget is not None else needed_by
    try:
        tp = estimate_run(plan, probe=True if budget is not None else None, log=log)
    except Exception as exc:  # noqa: BLE001 - an estimate never costs the run its notebooks
        message = " ".join(f"{type(exc).__name__}: {exc}".split())[:400]
        if needed_by is not None:
            raise ValueError(
                f"{needed_by} needs this machine's time estimate, which could not be made: {message}. "
                f"Put right what that names and run again; without {needed_by} run_all.py runs the profile's "
                "own settings and starts without an estimate."
            ) from None
        log(f"note: no time estimate for this run ({message})")
        return None, {}
    reserve = reserve_seconds(
        len(tp.estimates),
        measured_s=tp.seconds_to_estimate,
        pdf=pdf,
        retime="03" in tp.machine.undecided,  # 02's settings may apply to 03: it is timed again then
        torch_import_s=tp.machine.torch_import_s,
    )
    tp.reports_seconds = reserve["reports"]
    if budget is None:
        tp.total_range = undecided_range(tp.nb, tp.ctx)
        return tp, {}
    budget_plan, estimates = plan_budget(tp.nb, tp.ctx, budget, reserve, margin=MARGIN)
    tp.estimates = estimates
    tp.machine.tuned_chance = budget_plan["tuned_chance"]  # with the planned trial count, as printed
    tp.machine.sampled_trials = budget_plan["sampled_trials"]  # (the planner's last estimate set 03's factors)
    tp.budget = budget_plan
    tp.total_range = tuple(budget_plan["expected_range_seconds"] or ()) or None
    for jid, epochs in budget_plan["epochs"].items():  # the planned epochs (06's architectures, 03's EPOCHS)
        tp.machine.resolved[jid]["epochs"] = epochs
    return tp, budget_plan["overrides"]


# ------------------------------------------------------------------ during the run
def retime_tuned_training(tp: TimePlan, nb: dict[str, dict], tuned: dict | None) -> dict | None:
    """Re-time 03's training with the settings 02 tuned, which 03 is about to apply, and re-estimate 03
    and the notebooks after it (they predict with 03's model).

    The estimate before the run cannot know whether 02's settings will win: it times 03 as the mixture of the
    recipe's speed and a trial's expected speed over the search space by
    :func:`~cifarkit.report.estimate_model.tuned_apply_chance` (a budget plans with the slower of the two). A
    tuned batch size or width changes the speed per image (in float32 on a 2-core Xeon fastnet trained at 481
    img/s at a tuned batch of 64 and width 0.75 against 330 at the recipe's 256).
    ``nb``: the effective parameters of the notebooks ``tp`` estimated (in run order, with any budget's
    overrides); ``tuned``: the settings 03 will merge under its own (``tuned_settings(...)["settings"]``), or
    None when 02's settings are not applied: then 03 is settled on the recipe's speed measured at the start.

    Returns the record of the re-timing (also appended to ``tp.retimed``), or None when nothing changes:
    the plan was not measured (a tiny run's fixed rates), or 03 was timed at the recipe's speed and the tuned
    settings leave its speed settings as they were (or are not applied).
    """
    from cifarkit.analysis.tuning.spaces import merge_settings

    m = tp.machine
    if not m.measured or "03_train" not in nb or tp.ctx is None or "03" not in m.rates:
        return None
    job = training_jobs({"03_train": nb["03_train"]})["03"]
    explicit = {k: v for k, v in job["settings"].items() if v not in (None, 0, "")}
    merged = merge_settings(tuned, explicit) if tuned is not None else explicit  # 03 merges tuned first, its own on top
    if _speed_settings(merged) == _speed_settings(explicit):
        if "03" not in m.undecided:
            return None
        why = (
            "02's tuned settings are not applied to 03_train"
            if tuned is None
            else "02's tuned settings leave 03_train's speed settings as they were"
        )
        m.undecided.pop("03")
        return _reestimate_from_03(
            tp, nb, m.rates["03"], m.resolved["03"], f"{why}: the recipe's speed measured at the start", {}, None
        )
    job["settings"] = merged
    job["n_train"] = tp.counts.split_sizes(int(nb["03_train"].get("DATA_SUBSET") or 0))[0]
    t0 = time.perf_counter()
    request = {
        "jobs": {"03": job},
        "probe": ["03"],
        "image_size": tp.ctx.image_size,
        "num_classes": tp.counts.num_classes,
        "yardsticks": False,
    }
    answer = run_probe(request)
    m.undecided.pop("03", None)
    return _reestimate_from_03(
        tp,
        nb,
        answer["rates"]["03"],
        answer["resolved"]["03"],
        "02's tuned settings apply to 03_train",
        _speed_settings(merged),
        time.perf_counter() - t0,
    )


def replan_rest(tp: TimePlan, nb: dict[str, dict], seconds_left: float) -> dict:
    """Under ``--budget``, once 03 is re-timed with 02's settings: the settings of 03 and the notebooks after it
    that fit the ``seconds_left`` of the budget's time for the notebooks, lowered in the planner's order from
    :data:`~cifarkit.report.estimate_budget.KNOBS_AFTER_02` (the corruption sample, the baselines' training
    images, the compared architectures' epochs, then 03's epochs with its seeds' in 06; never the data, which 01
    and 02 have used). The start planned 03 at the slower of the recipe's speed and the sampled trials' average;
    02 may pick a slower corner of its search space (a wider model), and without this the run would overrun.

    ``nb``: the effective parameters of 03 and the notebooks after it, as planned. Re-estimates them in ``tp``
    and returns :func:`~cifarkit.report.estimate_budget.plan_budget`'s plan (``changes``, ``overrides``:
    ``{notebook: {parameter: value}}``, ``after_seconds``); raises ``ValueError`` when even their minimum
    settings need longer than ``seconds_left``."""
    from cifarkit.report.estimate_budget import KNOBS_AFTER_02, MARGIN, minimum_seconds, plan_budget

    least = minimum_seconds(nb, tp.ctx, KNOBS_AFTER_02)
    if least > seconds_left:
        raise ValueError(
            f"even their lowest settings need about {least / 60:.1f} min, {max(seconds_left, 0.0) / 60:.1f} min is left"
        )
    plan, estimates = plan_budget(nb, tp.ctx, seconds_left / 60.0, knobs=KNOBS_AFTER_02, margin=MARGIN)
    for jid, epochs in plan["epochs"].items():
        tp.machine.resolved[jid]["epochs"] = epochs
    for name, est in estimates.items():
        tp.at_start.setdefault(name, tp.estimates[name].seconds)
        tp.estimates[name] = est
    tp.nb = {n: ({**p, **plan["overrides"].get(n, {})} if n in nb else p) for n, p in tp.nb.items()}
    return plan


def _reestimate_from_03(tp, nb, rate, resolved, why, settings, seconds) -> dict:
    """Set 03's rate, re-estimate 03 and what follows, and record it (``seconds``: the probe's, None without one)."""
    before = {n: e.seconds for n, e in tp.estimates.items()}
    tp.machine.rates["03"] = rate
    tp.machine.resolved["03"] = resolved
    tp.nb = {n: p for n, p in nb.items() if n in tp.estimates}
    fresh = estimate_notebooks(tp.nb, tp.ctx)
    names = list(tp.nb)
    changed = {}
    for name in names[names.index("03_train") :]:
        tp.at_start.setdefault(name, before[name])
        tp.estimates[name] = fresh[name]
        changed[name] = {"before": round(before[name], 1), "after": round(fresh[name].seconds, 1)}
    record = {
        "at": _now(),
        "why": why,
        "settings": settings,
        "resolved": resolved,
        "rate": rate,
        "seconds_to_retime": round(seconds, 2) if seconds is not None else None,
        "notebooks": changed,
        "total_before": round(sum(before.values()), 1),
        "total_after": round(tp.total, 1),
    }
    tp.retimed.append(record)
    return record


def speed_text(r: dict) -> str:
    """One probe answer as the runner prints it: model, precision, batch, the training and inference rates, and
    the training rate after the whitening freeze where the probe timed it (``frozen_step_ratio``)."""
    ratio = float(r.get("frozen_step_ratio", 1.0))
    frozen = f" ({r['train_img_per_s'] / ratio:,.0f} after the whitening freeze)" if ratio != 1.0 else ""
    return (
        f"{r['model']} {r['precision']} batch {r['batch_size']}: {r['train_img_per_s']:,.0f} img/s training"
        f"{frozen}, {r['infer_img_per_s']:,.0f} inference"
    )


def retime_lines(record: dict) -> list[str]:
    """What the runner prints after a re-timing: the new rate, each notebook's new estimate, the total."""
    from cifarkit.analysis.plots import short  # the settings as 03's report writes them

    r = record["rate"]
    settings = ", ".join(f"{k} {short(v)}" for k, v in record["settings"].items() if k != "epochs")
    speed = speed_text(r)
    if record["seconds_to_retime"] is None:  # settled on the rate measured at the start: nothing was timed
        out = [f"{record['why']} ({speed})"]
    else:
        out = [
            f"{record['why']} ({settings}); re-timed on this machine in {record['seconds_to_retime']:.0f} s: {speed}"
        ]
    width = max(len(n) for n in record["notebooks"])
    for name, s in record["notebooks"].items():
        out.append(f"  {name:{width}s} {seconds_text(s['after']):>9s}  (estimated {seconds_text(s['before'])} before)")
    out.append(f"estimated total now: {record['total_after']:,.0f} s (before: {record['total_before']:,.0f} s)")
    return out
