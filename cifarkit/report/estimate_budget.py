"""``--budget MINUTES``: settings that fit a run into a time budget on this machine.

:func:`plan_budget` starts from the profile's settings and the measured estimate
(:mod:`cifarkit.report.estimate`). When they fit, nothing changes. Otherwise it turns the knobs below
down, one after the other in this order, each only as far as needed (the largest setting that fits,
found by bisection on the same cost model), and stops as soon as the run fits:

1. ``02_tune`` ``N_TRIALS`` (down to 2, the recipe's own settings and one sampled trial): fewer trials
   only make the search coarser, and 03 keeps the recipe's settings unless tuning beats them.
2. the analyses' sample sizes: ``01_explore_data`` ``TSNE_SAMPLES`` (down to 500), ``04_evaluate``
   ``CORRUPTION_SAMPLES`` (down to 200), ``05_baselines`` ``MAX_TRAIN`` (down to 2,000 per method):
   they widen intervals, they do not change what is learned.
3. ``06_architectures_and_ensembles``: the epochs of each compared architecture, capped (down to 1).
4. ``03_train`` ``EPOCHS`` (down to 1): the study's main model keeps its epochs longer than the others.
   06's members that train 03's model again (the same model and recipe for as many epochs: its other seeds)
   are not compared architectures: they keep 03's epochs and move with this knob, not with the one before.
   A seed trained for fewer epochs than 03's model is another model; the seed spread and the ensemble of
   equal members that 06 reports would be gone (a quick ``--budget 7`` run of 2026-12-04 trained 03 for 3
   epochs and its seed for 1).
5. ``DATA_SUBSET`` of every notebook, capped (down to 20 images per class and split, the smoke level):
   less data changes every result, so it goes last.

The last knob turned usually frees more time than was missing (one epoch of 03's model and its seeds is a
big step): what it frees goes back to the knobs turned before it, the latest first, each again as far as fits
(a standard ``--budget 118`` on the AVX-512 EPYC, 2026-12-05, cut 04's corruption sample to 200 images and the
baselines to 2,000 training images, then 03's epochs from 10 to 9, and planned 107.6 of its 117 min). So no
setting of the plan could go one step up and still fit.

While 02's tuned settings may still apply to 03 (they do when they beat the recipe's), the planner takes 03, and
the notebooks that predict with its model, at the slower of the recipe's speed and a tuned trial's expected one,
not at the expectation the run prints: a plan at the expected speed would overrun wherever the slower settings
won. 02 may still pick a slower corner of its space than that (a wider model); then 03's re-timing finds the rest
over the budget and the runner plans again, before 03 starts, with :data:`KNOBS_AFTER_02` only
(:func:`~cifarkit.report.estimate.replan_rest`): 03's epochs with its seeds', and the later notebooks' samples.

The budget is the run's wall time from the estimate on, not only the notebooks' execution: what measuring
this machine took (known when the planner runs), the re-timing of 03 when 02's tuned settings may apply to
it, and rendering the reports (HTML, PDF when Chromium prints them, the study book) are set aside first
(:func:`~cifarkit.report.estimate_model.reserve_seconds`); the notebooks get the rest, and ``run_all.py`` plans
them into all but :data:`MARGIN` (10%) of it: a machine may run slower than its minute of measuring showed (the
AVX2 EPYC's standard run under ``--budget 60`` ran its notebooks 6% slower than planned and took 63.6 min). The
margin is given up where keeping it would lower ``DATA_SUBSET`` or leave no plan at all while the plan without it
needs neither. A budget the run does not fit even with every knob at
its minimum is refused with the time that minimum needs. Without ``--budget`` nothing here runs: a profile's settings stay the same on every
machine, so runs stay comparable.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

from cifarkit.report.estimate_model import (
    Context,
    architectures,
    estimate_notebooks,
    format_architectures,
    seeds_of_main_model,
    undecided_range,
)

TUNE, EXPLORE, TRAIN, EVALUATE, BASELINES, ARCHS = (
    "02_tune",
    "01_explore_data",
    "03_train",
    "04_evaluate",
    "05_baselines",
    "06_architectures_and_ensembles",
)


@dataclass(frozen=True)
class Knob:
    """One setting the planner may lower: where, how far, and why it is turned at this point."""

    notebook: str  # a notebook name, or "*" for every notebook that declares the parameter
    parameter: str
    minimum: int
    why: str


KNOBS: tuple[Knob, ...] = (
    Knob(TUNE, "N_TRIALS", 2, "tuning trials go first: fewer only make the search coarser"),
    Knob(EXPLORE, "TSNE_SAMPLES", 500, "a smaller t-SNE sample only thins the plot"),
    Knob(EVALUATE, "CORRUPTION_SAMPLES", 200, "fewer corrupted images only widen those accuracies' noise"),
    Knob(BASELINES, "MAX_TRAIN", 2000, "the baselines are references, not the study's model"),
    Knob(ARCHS, "ARCHITECTURES", 1, "the compared architectures before the main model"),
    Knob(TRAIN, "EPOCHS", 1, "the main model's epochs and its seeds' in 06, after everything else that can shrink"),
    Knob("*", "DATA_SUBSET", 20, "less data changes every result, so it goes last"),
)


#: What a plan may still lower once 02 has run and 03 is about to start (:func:`plan_budget`'s ``knobs`` when
#: 03's re-timing finds the rest over the budget): 03's epochs with its seeds' in 06, and the later notebooks'
#: samples and architectures; not the data, which 01 and 02 have used and 04-06 must share with them.
KNOBS_AFTER_02: tuple[Knob, ...] = tuple(
    k for k in KNOBS if k.notebook in (TRAIN, EVALUATE, BASELINES, ARCHS) and k.parameter != "DATA_SUBSET"
)


class _State:
    """Effective parameters of the planned notebooks and the resolved jobs, changed knob by knob."""

    def __init__(self, nb: dict, ctx: Context):
        self.nb = copy.deepcopy(nb)
        self.ctx = copy.copy(ctx)
        self.ctx.machine = copy.copy(ctx.machine)
        self.ctx.machine.resolved = copy.deepcopy(ctx.machine.resolved)
        # 03 at the slower of its two possible speeds while 02's settings may apply to it (Machine.undecided_rate)
        self.ctx.machine.plan_slower = True
        archs = architectures(nb.get(ARCHS, {}).get("ARCHITECTURES", ""))
        self.seeds = seeds_of_main_model(nb, self.ctx.machine.resolved)
        self.base_archs = {
            f"06:{i}": self.ctx.machine.resolved[f"06:{i}"]["epochs"]
            for i in range(len(archs))
            if f"06:{i}" not in self.seeds
        }
        self.base_subsets = {n: int(p.get("DATA_SUBSET") or 0) for n, p in nb.items() if "DATA_SUBSET" in p}

    def total(self) -> float:
        return sum(e.seconds for e in estimate_notebooks(self.nb, self.ctx).values())

    def floor(self, knob: Knob) -> int:
        """How far the knob may go: its minimum; for 03's epochs at least one more than the epochs that
        progressive resizing reduces (``train()`` trains the last ones at full size)."""
        if knob.notebook == TRAIN and knob.parameter == "EPOCHS" and TRAIN in self.nb:
            reduced = int((self.nb[TRAIN].get("OVERRIDES") or {}).get("progressive_epochs") or 0)
            return max(knob.minimum, reduced + 1)
        return knob.minimum

    def lower_to_floor(self, knobs) -> None:
        """Every knob of ``knobs`` that is in this run and above its floor set to its floor."""
        for knob in knobs:
            start = self.current(knob)
            if start is not None and start > self.floor(knob):
                self.set(knob, self.floor(knob))

    def current(self, knob: Knob) -> int | None:
        """The knob's value now (None: not in this run); 0-means-all parameters as the number they mean."""
        sizes = self.ctx.counts
        if knob.parameter == "DATA_SUBSET":
            subsets = [int(p.get("DATA_SUBSET") or 0) for p in self.nb.values() if "DATA_SUBSET" in p]
            big = sizes.largest_class()
            return max((s or big) for s in subsets) if subsets else None
        if knob.notebook not in self.nb:
            return None
        p = self.nb[knob.notebook]
        if knob.parameter == "ARCHITECTURES":
            return max((self.ctx.machine.resolved[jid]["epochs"] for jid in self.base_archs), default=None)
        if knob.parameter == "EPOCHS":
            return self.ctx.machine.resolved["03"]["epochs"]
        value = int(p.get(knob.parameter) or 0)
        if knob.parameter == "CORRUPTION_SAMPLES":
            return min(value or 10**9, self.ctx.sizes(p)[2])
        if knob.parameter == "MAX_TRAIN":
            return min(value or 10**9, self.ctx.sizes(p)[0])
        return value

    def set(self, knob: Knob, value: int) -> None:
        if knob.parameter == "DATA_SUBSET":
            for name, subset in self.base_subsets.items():
                self.nb[name]["DATA_SUBSET"] = min(subset or value, value)
        elif knob.parameter == "ARCHITECTURES":
            self._set_archs({jid: min(epochs, value) for jid, epochs in self.base_archs.items()})
        elif knob.parameter == "EPOCHS":
            self.ctx.machine.resolved["03"]["epochs"] = value
            self.nb[TRAIN]["EPOCHS"] = value
            self._set_archs(dict.fromkeys(self.seeds, value))
        else:
            self.nb[knob.notebook][knob.parameter] = value

    def _set_archs(self, epochs: dict) -> None:
        """06's ``ARCHITECTURES`` with the epochs of the members in ``epochs`` (job id -> epochs) changed."""
        if not epochs:
            return
        new = []
        for i, (model, recipe, old, rest) in enumerate(architectures(self.nb[ARCHS]["ARCHITECTURES"])):
            jid = f"06:{i}"
            if jid in epochs:
                self.ctx.machine.resolved[jid]["epochs"] = epochs[jid]
            new.append((model, recipe, epochs.get(jid, old), rest))
        self.nb[ARCHS]["ARCHITECTURES"] = format_architectures(new)


def minimum_seconds(nb: dict, ctx: Context, knobs: tuple[Knob, ...] = KNOBS) -> float:
    """The estimate with every knob of ``knobs`` at its minimum: the shortest run the planner can offer."""
    state = _State(nb, ctx)
    state.lower_to_floor(knobs)
    return state.total()


#: The share of the notebooks' time a ``--budget`` plan leaves unplanned, for a machine that runs slower than
#: its probe measured: the AVX2 EPYC's standard run under ``--budget 60`` (2026-12-06) executed its notebooks 6%
#: slower than planned and took 63.6 min; re-timed estimates on record were up to 12% under the actual.
MARGIN = 0.10


class _DoesNotFit(Exception):
    """The run does not fit even with every knob at its minimum: the time it needs then, and with the profile's."""

    def __init__(self, total: float, before: float, state: _State):
        super().__init__(total)
        self.total, self.before, self.state = total, before, state


def plan_budget(
    nb: dict,
    ctx: Context,
    budget_minutes: float,
    reserve: dict | None = None,
    knobs: tuple[Knob, ...] = KNOBS,
    margin: float = 0.0,
) -> tuple[dict, dict]:
    """The settings that fit ``budget_minutes``; see the module docstring for the rules.

    Args:
        nb: notebook name -> effective parameters (in run order).
        ctx: the estimate's context (data counts, measured machine).
        budget_minutes: the budget.
        reserve: seconds set aside for what is not a notebook's execution
            (:func:`~cifarkit.report.estimate_model.reserve_seconds`);
            None: nothing (the budget is the notebooks' execution alone).
        knobs: the settings it may lower, in its order (:data:`KNOBS`; :data:`KNOBS_AFTER_02` once 02 has run).
        margin: the share of the notebooks' time left unplanned (``run_all.py --budget`` passes :data:`MARGIN`).
            It is dropped where keeping it would lower ``DATA_SUBSET`` or make the budget impossible while the
            plan without it needs neither: the margin is worth less than the data (``margin_seconds`` is then 0
            and ``margin_dropped`` True).

    Returns:
        ``(plan, estimates)``: ``{"minutes", "reserve", "margin_seconds", "margin_dropped", "notebooks_seconds",
        "before_seconds", "after_seconds", "expected_seconds", "slower_03", "changes": [{notebook, parameter, from,
        to, why}], "overrides": {notebook: {parameter: value}}, "epochs"}`` and the estimate per notebook with the
        planned settings. ``notebooks_seconds`` is the budget less the reserve; the plan fits ``before_seconds`` /
        ``after_seconds`` into it less ``margin_seconds``. With ``slower_03`` (02's settings may apply to 03) they
        take 03 at the slower of the recipe's speed and a tuned trial's; ``expected_seconds`` and the estimates are
        the expectation the run prints, 03 weighed by the chance that 02's settings win
        (:meth:`~cifarkit.report.estimate_model.Machine.undecided_rate`).

    Raises:
        ValueError: the run does not fit even with every knob at its minimum (the message gives that time).
    """
    if not (isinstance(budget_minutes, (int, float)) and math.isfinite(budget_minutes) and budget_minutes > 0):
        raise ValueError(f"--budget must be a positive number of minutes; received {budget_minutes!r}.")
    reserve = dict(reserve or {})
    set_aside = sum(reserve.values())
    limit = 60.0 * budget_minutes - set_aside
    margin_s = round(max(0.0, margin) * max(0.0, limit), 1)
    dropped, failed = False, None
    try:
        fitted = _fit(nb, ctx, limit - margin_s, knobs)
    except _DoesNotFit as exc:
        fitted, failed = None, exc
    if margin_s and (fitted is None or _cuts_data(fitted)):  # the margin costs the data or the run: plan without it
        try:  # where that avoids both
            alone = _fit(nb, ctx, limit, knobs)
        except _DoesNotFit as exc:
            raise _refusal(budget_minutes, reserve, exc, knobs) from None
        if fitted is None or not _cuts_data(alone):
            fitted, margin_s, dropped = alone, 0.0, True
    if fitted is None:
        raise _refusal(budget_minutes, reserve, failed, knobs) from None
    state, before, total, changes = fitted
    plan = {
        "minutes": budget_minutes,
        "reserve": reserve,
        "margin_seconds": margin_s,
        "margin_dropped": dropped,
        "notebooks_seconds": round(limit, 1),
        "before_seconds": round(before, 1),
        "after_seconds": round(total, 1),
        "changes": changes,
        "overrides": _overrides(nb, state.nb),
        # the epochs each training job runs with the planned settings: a re-estimate during the run (03 re-timed
        # with 02's settings) must start from these, not from the profile's epochs the probe resolved
        "epochs": {jid: job["epochs"] for jid, job in state.ctx.machine.resolved.items()},
        "slower_03": "03" in state.ctx.machine.undecided,
    }
    state.ctx.machine.plan_slower = False  # what the run prints and records: the expected times
    estimates = estimate_notebooks(state.nb, state.ctx)
    plan["expected_seconds"] = round(sum(e.seconds for e in estimates.values()), 1)
    span = undecided_range(state.nb, state.ctx)  # whatever 02 picks for 03 (None: nothing undecided)
    plan["expected_range_seconds"] = [round(v, 1) for v in span] if span else None
    plan["tuned_chance"] = state.ctx.machine.tuned_chance
    plan["sampled_trials"] = state.ctx.machine.sampled_trials
    return plan, estimates


def _fit(nb: dict, ctx: Context, limit: float, knobs: tuple[Knob, ...]) -> tuple[_State, float, float, list]:
    """``(state, before, total, changes)``: the knobs turned, in their order, until the run fits ``limit`` seconds,
    and what the last cut freed given back; raises :class:`_DoesNotFit` when it fits nowhere."""
    state = _State(nb, ctx)
    before = state.total()
    changes, turned = [], []  # the changes and their knobs, in the order turned
    total = before
    for knob in knobs:
        if total <= limit:
            break
        start, floor = state.current(knob), state.floor(knob)
        if start is None or start <= floor:
            continue
        state.set(knob, floor)
        # not enough even at the minimum: keep it there, turn the next knob
        value = floor if state.total() > limit else _largest_fitting(state, knob, floor, start, limit)
        state.set(knob, value)
        total = state.total()
        changes.append(
            {"notebook": knob.notebook, "parameter": knob.parameter, "from": start, "to": value, "why": knob.why}
        )
        turned.append(knob)
    if total > limit:
        raise _DoesNotFit(total, before, state)
    # give back what the last cut freed to the knobs cut before it, the latest first
    for change, knob in reversed(list(zip(changes, turned))[:-1]):
        change["to"] = _largest_fitting(state, knob, change["to"], change["from"], limit)
        state.set(knob, change["to"])
    for change, knob in zip(changes, turned):  # a plain setting given back whole keeps the value it was given as
        plain = knob.parameter not in ("EPOCHS", "ARCHITECTURES", "DATA_SUBSET")  # (0 for "all" stays 0)
        if plain and change["to"] == change["from"] and knob.parameter in nb.get(knob.notebook, {}):
            state.nb[knob.notebook][knob.parameter] = nb[knob.notebook][knob.parameter]
    changes = [c for c in changes if c["to"] != c["from"]]
    return state, before, state.total(), changes


def _cuts_data(fitted: tuple) -> bool:
    return any(c["parameter"] == "DATA_SUBSET" for c in fitted[3])


def _refusal(budget_minutes: float, reserve: dict, failed: _DoesNotFit, knobs) -> ValueError:
    """The error for a budget the run does not fit even with every knob at its minimum."""
    set_aside, state = sum(reserve.values()), failed.state
    minimums = ", ".join(
        f"{k.notebook[:2] + ' ' if k.notebook != '*' else ''}"
        + ("epochs per compared architecture" if k.parameter == "ARCHITECTURES" else k.parameter)
        + f" {state.current(k)}"
        for k in knobs
        if state.current(k) is not None
    )
    aside = f" besides {set_aside / 60:.1f} min for {_reserve_words(reserve)}" if set_aside else ""
    return ValueError(
        f"--budget {budget_minutes:g} min cannot be met on this machine: the selected notebooks need about "
        f"{failed.total / 60:.1f} min even at the planner's minimum settings ({minimums or 'nothing to lower'}; "
        f"estimated {failed.before / 60:.1f} min with the profile's settings){aside}. "
        f"Give --budget {math.ceil((failed.total + set_aside) / 60)} or more, or leave notebooks out with --skip."
    )


def _largest_fitting(state: _State, knob: Knob, low: int, high: int, limit: float) -> int:
    """The largest value in ``[low, high]`` with which the run fits ``limit`` (``low`` fits), found by bisection:
    the estimate grows with every knob. Leaves the knob at an arbitrary value; the caller sets it."""
    state.set(knob, high)
    if state.total() <= limit:
        return high
    while high - low > 1:
        mid = (low + high) // 2
        state.set(knob, mid)
        low, high = (mid, high) if state.total() <= limit else (low, mid)
    return low


def _overrides(before: dict, after: dict) -> dict:
    """``{notebook: {parameter: new value}}`` for every parameter the plan changed."""
    out = {}
    for name, p in after.items():
        changed = {k: v for k, v in p.items() if before[name].get(k) != v}
        if changed:
            out[name] = changed
    return out


def _reserve_words(reserve: dict) -> str:
    words = {"measuring": "measuring this machine", "re_timing": "re-timing 03", "reports": "the reports"}
    return ", ".join(f"{words.get(k, k)} {v:.0f} s" for k, v in reserve.items() if v)


def budget_outcome(manifest: dict) -> dict | None:
    """Whether a finished run kept its ``--budget``: ``{"minutes", "used_seconds", "over_seconds", "over_share",
    "over_text"}`` (``over_seconds`` <= 0: kept; ``over_share``: that over the budget; ``over_text``: the share as
    the runner's summary and the study book write it, "under 1%" below one per cent). The budget counts measuring
    the machine (before the run's clock starts) and the run itself. None without a budget or a recorded duration,
    and for a run resumed in another session (its sessions are apart)."""
    time_plan = manifest.get("time_plan") or {}
    minutes = (time_plan.get("budget") or {}).get("minutes")
    took, probe = manifest.get("duration_seconds"), time_plan.get("seconds_to_estimate") or 0.0
    numbers = all(isinstance(v, (int, float)) and math.isfinite(v) for v in (minutes, took, probe))
    if not numbers or minutes <= 0 or manifest.get("resumed_at"):
        return None
    used = float(took) + float(probe)
    over = used - 60.0 * minutes
    share = over / (60.0 * minutes)
    return {
        "minutes": minutes,
        "used_seconds": round(used, 2),
        "over_seconds": round(over, 2),
        "over_share": share,
        # 18 s over 60 min printed as "(0%) over it" (the AVX2 EPYC, 2026-12-06); the book said "under 1%"
        "over_text": "under 1%" if share < 0.01 else f"{share:.0%}",
    }


def describe_change(change: dict) -> str:
    """One change of a budget's plan in words: ``03_train EPOCHS: 18 -> 10``."""
    where = "every notebook" if change["notebook"] == "*" else change["notebook"]
    what = (
        "epochs of each compared architecture (at most)"
        if change["parameter"] == "ARCHITECTURES"
        else change["parameter"]
    )
    return f"{where} {what}: {change['from']} -> {change['to']}"


def budget_lines(budget: dict) -> list[str]:
    """What ``--budget`` changes and why, for the log."""
    minutes = budget["minutes"]
    reserve = budget.get("reserve") or {}
    head = f"budget {minutes:g} min"
    if sum(reserve.values()):
        head += f" ({_reserve_words(reserve)}; {budget['notebooks_seconds'] / 60:.1f} min left for the notebooks)"
    if budget.get("margin_seconds"):
        head += (
            f", {budget['margin_seconds'] / 60:.1f} min of which stay unplanned in case this machine runs slower "
            "than measured"
        )
    elif budget.get("margin_dropped"):
        head += (
            ", all of it planned: time kept unplanned in case this machine runs slower than measured did not fit "
            "beside the profile's data"
        )
    if not budget["changes"]:
        return [
            f"{head}: the profile's settings fit (about {budget['before_seconds'] / 60:.1f} min here"
            f"{_slower_words(budget)}); nothing changes"
        ]
    out = [
        f"{head}: the profile's settings need about {budget['before_seconds'] / 60:.1f} min here; "
        "the plan changes, in the planner's order:"
    ]
    for c in budget["changes"]:
        out.append(f"  {describe_change(c)} ({c['why']})")
    out.append(f"planned: about {budget['after_seconds'] / 60:.1f} min of execution{_slower_words(budget)}")
    return out


def _slower_words(budget: dict) -> str:
    """The plan's note when it took 03 at its slower possible speed (02's settings may apply to it)."""
    if not budget.get("slower_03"):
        return ""
    return (
        ", taking 03 at the slower of the recipe's speed and 02's, since which applies is known only after 02; "
        f"about {budget['expected_seconds'] / 60:.1f} min expected"
    )
