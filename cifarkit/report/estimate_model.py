"""The cost model of the run's time estimate: seconds per notebook from image counts and measured speeds.

:mod:`cifarkit.report.estimate` gathers the inputs (the data's image counts, the speeds the probe
measured) and this module turns them into seconds; :mod:`cifarkit.report.estimate_budget` calls the
same formulas for every setting it tries.

What is measured on this machine and used as it is: training and inference images per second of every
model (at its batch size and precision), model build and first-step warm-up, the import of Keras and
PyTorch, the listing pass over the data and the decode time per image. What is a constant, calibrated on
the machine named in :data:`REFERENCE` and scaled by a yardstick the probe measures here:

- ``Machine.cpu_factor`` (a single-threaded CPU workload): saving and loading models, bootstrap resampling.
  Not each notebook's fixed part (kernel start, imports, figures) nor a training run's and a tuning trial's
  (checkpoints, Optuna's bookkeeping): those stay at the reference's seconds (:data:`NOTEBOOK_FIXED_S` and
  :data:`EPOCH_FIXED_S` say why);
- ``Machine.parallel_factor`` (a float32 matrix product on every core): t-SNE, PCA, image statistics,
  corruptions, numeric work that also suffers most when other processes compete for the cores;
- ``Machine.baseline_factor`` (a small sample of the baselines' own operations against the Xeon of
  ``benchmarks/results/baselines.json``): the non-CNN baselines.

Without a probe (tiny runs) the factors are 1 and the training rates :data:`TINY_RATES`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from cifarkit.wording import plural

#: The machine the constants below were calibrated on, and its yardsticks as estimate_probe measures them:
#: the single-threaded CPU workload (Python-bound work: checkpoints, bookkeeping, resampling) and the float32 matmul
#: on both cores (multi-threaded numeric work: t-SNE, PCA, corruptions; it also shows other processes
#: competing for the cores, which slow such work most).
REFERENCE = {
    "machine": "AMD EPYC, 2 cores with avx512_bf16, quiet (load average about 1), 2026-12-01",
    "cpu_workload_s": 0.039,
    "matmul_gflops": 256.0,
    "torch_import_s": 2.8,
    # estimate_probe.baseline_workloads()["baseline_workload_s"] on the 2-core Xeon the baseline times come from
    # (benchmarks/results/baselines.json): not measured there but inferred from the AVX2 EPYC, which ran the
    # same tables 1.225x (quick) and 1.261x (standard) the Xeon's time and this workload in 0.787 and 0.742 s
    # right after them (baselines_quick_epyc_avx2.json, baselines_epyc_avx2.json, 2026-12-02): 0.642 and 0.588.
    "baseline_workload_s": 0.61,
    # estimate_probe.baseline_workloads()' eight random-forest trees on that Xeon, inferred the same way from three
    # standard tables on the AVX2 EPYC (bench_baselines.py, 2026-12-06 10:45-10:55 UTC): its random forest took
    # 110.9, 116.4 and 117.2 s (1.490, 1.564 and 1.575x the Xeon's 74.4 s) and the trees, timed right after each,
    # 0.260 (best of six), 0.284 and 0.234 s (best of four; baselines_epyc_avx2_20261206.json and _run2.json hold
    # the last two): the mean of 0.175, 0.181 and 0.148. The trees' own timing scatters that much, minutes apart.
    "forest_workload_s": 0.168,
}
#: Seconds per notebook outside the modeled work (kernel start and shutdown, imports but Keras/PyTorch,
#: figures, tables, reading the data from the cache) on the reference machine, from smoke runs there.
#: Not scaled by ``cpu_factor``: on the float32-only AVX2 EPYC (2026-12-02) the yardstick's Python loop ran
#: 2.9x the reference's time, yet its notebooks started about as fast as the reference's constants say
#: (papermill's cell times of a quick ``--budget 10`` run there: 1.3-3.2 s outside the cells, 1.4-1.7 s of
#: imports, 3.8-5.0 s for the setup cell that imports Keras and PyTorch, 7.5-9.5 s in all, where 2.9 x 4.2 s
#: plus the probe's 5.5 s import was estimated); scaled, each start was estimated 7-9 s high (05: 57 s
#: estimated, 34 s actual). 01's constant includes its image grid, class counts and mean images (a smoke run
#: on that EPYC: 5.6 s against 3.9 estimated with 3.0).
NOTEBOOK_FIXED_S = {
    "01_explore_data": 4.0,
    "02_tune": 4.0,
    "03_train": 4.2,
    "04_evaluate": 4.6,
    "05_baselines": 4.0,
    "06_architectures_and_ensembles": 4.2,
    "07_cross_validation": 4.5,  # not calibrated there: 03's constant plus its two figures and tables
}
#: Seconds per test image, class and bootstrap resample for 04's AUC/AP intervals on the reference machine
#: (10,000 images x 10 classes x 2,000 resamples took 5.66 s, 2,000 x 10 x 500 took 0.27 s; 2026-12-01).
ROC_BOOTSTRAP_S = 2.8e-8
#: Notebooks that import Keras and PyTorch (to train or to load a CNN).
TORCH_NOTEBOOKS = (
    "02_tune",
    "03_train",
    "04_evaluate",
    "05_baselines",
    "06_architectures_and_ensembles",
    "07_cross_validation",
)
#: Checkpoint and history after every epoch, and saving the model and its metrics at the end of a run. Measured
#: in float32 quick-profile runs on the 2-core Xeon (cpu_factor 1.47, 2026-12-01): a 2-epoch tuning trial spent
#: 0.44 s in train() outside its epochs' training and validation passes (with the build and whitening), a
#: 4-epoch fastnet run 0.2 s besides its final test pass; the constants before (0.15 and 0.6, 1.8 s per 4-epoch
#: run there) had six tuning trials 5 s high. Not scaled by ``cpu_factor`` since 2026-12-05: the AVX-512 EPYC, whose
#: yardstick reads 2.97 (twice the Xeon's 1.47), spent 0.38 s in such a trial (bf16 quick run, afb85e5: its
#: metrics' total_seconds less its epochs' training and validation seconds) and 0.26 s between Optuna's trials;
#: scaled, these constants put 1.8 s on each of its six trials where 0.64 s was spent (02 estimated 41 s of
#: trials, 30 s taken).
EPOCH_FIXED_S = 0.05
RUN_FIXED_S = 0.2
TRIAL_FIXED_S = 0.3  # Optuna's bookkeeping of one trial in SQLite
BASELINE_FIXED_S = 0.15  # per baseline method whatever its data: building it, its bootstrap interval
LOAD_MODEL_S = 0.4  # keras.saving.load_model of a run's model
TSNE_S = (0.6, 0.0021)  # t-SNE on 50 principal components of n images: a + b * n seconds
PCA_S = (0.07, 0.00006)
#: Hashing for duplicates and near duplicates, channel statistics, histograms, mean images, per image, in the
#: reference's terms: the AVX2 EPYC's quick run (2026-12-02) took 3.5 s for 15,000 images there, at its
#: parallel_factor of 1.35 (the constant before, 60e-6, modeled 1.2 s of it).
EXPLORE_PER_IMAGE_S = 170e-6
#: The 15 x 5 CIFAR-10-C corruptions of one 32x32 image, all cells together
#: (benchmarks/results/corruptions_speed.json: 96.9 s for 10,000 images, AMD EPYC, 2026-12-01).
CORRUPT_ALL_PER_IMAGE_S = 0.0097
OFFICIAL_CIFAR_LOAD_S = 4.0  # reading the five pickled batches of the official archive
#: 05_baselines on the Xeon of benchmarks/results/baselines.json (45,000 training, 5,000 validation and
#: 10,000 test images, nothing else running, 2026-12-01 22:46 UTC): each method's fit (with its validation
#: choices) and test prediction seconds. (The constants before were taken beside other jobs, load average 3-5,
#: and were about 2.2x these: 05 of a quick run was estimated at 48.7 s and took 29.8.)
BASELINE_REFERENCE = {
    "n_train": 45000,
    "n_val": 5000,
    "n_test": 10000,
    "logreg": {"fit": 6.964, "predict": 0.142},
    "knn": {"fit": 2.679, "predict": 0.940},
    "random_forest": {"fit": 73.961, "predict": 0.439, "n_estimators": 100},
    "hog_svm": {"fit": 26.148, "predict": 1.601, "epochs": 5, "alphas": 4},
}
#: The part of each method's reference fit that does not grow with the data (PCA to a fixed number of
#: components, the solver's setup, the validation choices' bookkeeping), from the same machine's quick-profile
#: sizes (benchmarks/results/baselines_quick.json: 5,000 images per split) against the reference: the fixed
#: part that makes the complexity law below reproduce both runs. The random forest needs none (its n log n
#: law alone is within 7% at 5,000 images).
BASELINE_FIXED_FIT_S = {"logreg": 2.5, "knn": 0.7, "random_forest": 0.0, "hog_svm": 0.8}
#: Without a probe (tiny data): training and inference images per second assumed for every model.
TINY_RATES = {"train_img_per_s": 150.0, "infer_img_per_s": 800.0, "first_step_extra_s": 0.5, "build_s": 0.3}
MEDIAN_STARTUP_TRIALS = 3  # cifarkit.analysis.tuning.storage.MEDIAN_STARTUP_TRIALS (not imported: Optuna)


def architectures(text: str) -> list[tuple[str, str, int, str]]:
    """``"resnet20:default:6, fastnet:fast:4:1"`` -> ``[(model, recipe, epochs, rest)]``: epochs 0 keeps the
    recipe's; ``rest`` is what follows the epochs (a seed, ``":1"``), kept as written."""
    out = []
    for item in [t.strip() for t in str(text or "").split(",") if t.strip()]:
        parts = item.split(":")
        recipe = parts[1] if len(parts) > 1 and parts[1] else "default"
        epochs = int(parts[2]) if len(parts) > 2 and parts[2] else 0
        out.append((parts[0], recipe, epochs, "".join(f":{x}" for x in parts[3:])))
    return out


def seeds_of_main_model(nb: dict, resolved: dict) -> set[str]:
    """06's members (job ids ``06:<i>``) that train 03's model again: the same model and recipe for the same
    number of epochs. 06 trains them with 03's recorded settings and a seed of their own
    (:func:`cifarkit.analysis.compare_architectures.train_member`) and its seed spread groups by the same
    three. Empty when the run does not train 03."""
    train, archs = nb.get("03_train"), nb.get("06_architectures_and_ensembles")
    if train is None or archs is None or "03" not in resolved:
        return set()
    main = (train["MODEL"], train["RECIPE"], resolved["03"]["epochs"])
    return {
        f"06:{i}"
        for i, (model, recipe, _, _) in enumerate(architectures(archs["ARCHITECTURES"]))
        if f"06:{i}" in resolved and (model, recipe, resolved[f"06:{i}"]["epochs"]) == main
    }


def format_architectures(archs) -> str:
    """The inverse of :func:`architectures`."""
    return ",".join(f"{m}:{r}:{e}{rest}" if e or rest else f"{m}:{r}" for m, r, e, rest in archs)


#: Seconds a run spends outside its notebooks' execution, measured on the 2-core AVX2 EPYC (quick profile,
#: ``--budget 10``, 2026-12-02; like a notebook's start, not scaled by the CPU yardstick): nbconvert's HTML of
#: one report (0.3-2.0 s, mean 0.86 over twelve), Chromium's PDF of one (1.1-3.5 s, mean 2.2 over six), the
#: study book, dashboards and the hand-over between notebooks (6 s without PDFs, 8 s with), and the probe that
#: re-times 03 beyond its import of PyTorch and Keras (12.5-16.5 s in five runs, 6.4-11.3 s beyond the import,
#: mean 8.1).
RENDER_HTML_S = 0.86
RENDER_PDF_S = 2.2
RUN_FINISH_S = {False: 6.0, True: 8.0}
RETIME_BEYOND_IMPORT_S = 8.0


def reserve_seconds(n_notebooks: int, *, measured_s: float, pdf: bool, retime: bool, torch_import_s: float) -> dict:
    """Seconds a run spends besides its notebooks' execution: ``measuring`` (the estimate's own seconds, spent),
    ``re_timing`` (03's second probe when 02's settings may apply) and ``reports`` (HTML, PDF, the book). A
    ``--budget`` sets them aside before planning the notebooks; every printed estimate names the reports' part."""
    return {
        "measuring": round(measured_s, 1),
        "re_timing": round(torch_import_s + RETIME_BEYOND_IMPORT_S, 1) if retime else 0.0,
        "reports": round(n_notebooks * (RENDER_HTML_S + pdf * RENDER_PDF_S) + RUN_FINISH_S[bool(pdf)], 1),
    }


# ------------------------------------------------------------------ the machine
@dataclass
class Machine:
    """What the probe measured, or what is assumed without one."""

    measured: bool
    cpu_factor: float = 1.0  # single-threaded CPU workload time over the reference's (>1: slower)
    parallel_factor: float = 1.0  # the reference's float32 matmul speed over this machine's (>1: slower)
    baseline_factor: float = 1.0  # the baselines' workload time over the Xeon's the baseline times come from
    forest_factor: float = 1.0  # the same for its random-forest trees alone: the random forest's own factor
    torch_import_s: float = REFERENCE["torch_import_s"]
    resolved: dict = field(default_factory=dict)  # job id -> {"epochs", "batch_size"}
    rates: dict = field(default_factory=dict)  # job id -> probe_model's answer
    probe: dict = field(default_factory=dict)  # the probe's raw answer
    note: str = ""
    space_speed: dict = field(default_factory=dict)  # job id -> estimate_probe.space_speed's answer (02)
    # "02:space": a trial drawn from 02's search space; "02:draw<k>": its k-th sampled trial (expected_rates)
    expected: dict = field(default_factory=dict)
    # job id -> {"train_time_factor", "infer_time_factor"}: a job whose speed the run decides later, 03's while
    # 02's tuned settings may still apply to it (the factors: a sampled trial's time per image over the recipe's,
    # expected_rates; retime_tuned_training settles or re-times it). Until then its rate is undecided_rate's.
    undecided: dict = field(default_factory=dict)
    # the chance that 02's settings win and apply to 03 (tuned_apply_chance, set by 02's estimate from its trials)
    tuned_chance: float = 0.5
    # the trials 02 samples beside the recipe's, as its estimate plans them (set with tuned_chance)
    sampled_trials: int = 0
    # the budget planner's view of an undecided job: the slower of its two speeds, not the expected one
    plan_slower: bool = False
    # "fastest" or "slowest": an undecided job at the end of its range instead (undecided_range's bounds)
    bound: str | None = None

    def rate(self, job_id: str) -> dict:
        if job_id in self.undecided and job_id in self.rates:
            return self.undecided_rate(job_id)
        return self.rates.get(job_id) or self.expected.get(job_id) or TINY_RATES

    def undecided_rate(self, job_id: str) -> dict:
        """An undecided job's rate: its measured (recipe) rate with the time per image mixed with the tuned
        factors' by :attr:`tuned_chance` (the expectation the estimate prints), or with ``plan_slower`` the
        slower of the two for training and for inference (what ``--budget`` plans with: a plan then holds when the
        recipe's settings win and when 02's train at least as fast as its sampled trials' average; when 02 picks a
        slower corner of the space, such as a wider model, the runner plans the rest again after 03's re-timing),
        or with ``bound`` the fastest or slowest end of its range (:func:`undecided_range`)."""
        f = self.undecided[job_id]
        f_train, f_infer = f["train_time_factor"], f["infer_time_factor"]
        if self.bound is not None and "train_time_range" in f:  # the fastest or slowest settings 02 may pick
            end = 0 if self.bound == "fastest" else 1
            return scaled_rate(self.rates[job_id], f["train_time_range"][end], f["infer_time_range"][end])
        if self.plan_slower:
            return scaled_rate(self.rates[job_id], max(1.0, f_train), max(1.0, f_infer))
        p = self.tuned_chance
        return scaled_rate(self.rates[job_id], 1 - p + p * f_train, 1 - p + p * f_infer)


def scaled_rate(rate: dict, train_time_factor: float, infer_time_factor: float) -> dict:
    """``rate`` (a probe answer) with its time per image multiplied by the two factors."""
    out = dict(rate)
    out["train_img_per_s"] = round(rate["train_img_per_s"] / train_time_factor, 1)
    out["infer_img_per_s"] = round(rate["infer_img_per_s"] / infer_time_factor, 1)
    return out


def tuned_apply_chance(sampled_trials: int) -> float:
    """The chance, before the run, that 02's best settings beat the recipe's and 03 takes them: ``n / (n + 1)``
    for ``n`` trials sampled from the search space beside the recipe's own, which is the chance that the best of
    ``n + 1`` settings is not the recipe's when the recipe's are one more draw like the others. It leaves out 02's
    noise rule (settings that win by less than the validation noise are not applied), which lowers it, and a
    recipe better than a random draw, which lowers it too; a small tuning subset and few epochs, where a recipe
    made for the full data fares worst, raise it. It was set after the 17 quick runs recorded up to 2026-12-05
    (6 trials, 5 sampled: 0.83), in every one of which 02's settings won; before, the estimate took an even chance.
    0 with no sampled trial (the recipe's settings are the only ones tried)."""
    n = max(int(sampled_trials), 0)
    return n / (n + 1)


def sampled_factors(space: dict, sampled: int) -> list[tuple[float, float]]:
    """``(train, infer)`` time factors of each of 02's ``sampled`` trials (the recipe's own trial not counted),
    in order: a trial whose choices are known before the run (``space["draws"]``, the seeded sampler's start-up
    draws) at its own (``space["draw_factors"]``), the rest at the search space's average."""
    known = space.get("draw_factors") or []
    average = (space["train_time_factor"], space["infer_time_factor"])
    return [(known[k]["train"], known[k]["infer"]) if k < len(known) else average for k in range(max(sampled, 0))]


def mean_sampled_factors(space: dict, sampled: int) -> dict:
    """The mean of :func:`sampled_factors` over ``sampled`` trials (the space's average with none):
    ``{"train_time_factor", "infer_time_factor"}``, what 03 runs at when one of them wins."""
    factors = sampled_factors(space, sampled) or [(space["train_time_factor"], space["infer_time_factor"])]
    return {
        "train_time_factor": round(sum(f[0] for f in factors) / len(factors), 4),
        "infer_time_factor": round(sum(f[1] for f in factors) / len(factors), 4),
    }


def _corner(space: dict, pick) -> tuple[float, float]:
    """The (train, infer) time factors of the search space's corner that ``pick`` (min or max) chooses per setting:
    a trial's factor is the product of its choices' ratios (:func:`~cifarkit.report.estimate_probe.space_speed`)."""
    train = infer = 1.0
    for ratios in space["choices"].values():
        train *= pick(r["train"] for r in ratios.values())
        infer *= pick(r["infer"] for r in ratios.values())
    return train, infer


def undecided_factors(space: dict, sampled: int) -> dict:
    """What stands for 03 while 02's settings may apply to it: :func:`mean_sampled_factors`, and the range of the
    time factors 03 may end at (``train_time_range``, ``infer_time_range``: fastest, slowest): the recipe's own
    (1.0, its trial may win), each sampled trial known before the run at its own, any other at the search space's
    fastest and slowest corner (TPE may propose it)."""
    known = space.get("draw_factors") or []
    ends = [(1.0, 1.0)] + [(f["train"], f["infer"]) for f in known[: max(sampled, 0)]]
    if sampled > len(known) and space.get("choices"):
        ends += [_corner(space, min), _corner(space, max)]
    return {
        **mean_sampled_factors(space, sampled),
        "train_time_range": [round(min(e[0] for e in ends), 4), round(max(e[0] for e in ends), 4)],
        "infer_time_range": [round(min(e[1] for e in ends), 4), round(max(e[1] for e in ends), 4)],
    }


def expected_rates(machine: Machine, tuned_to_03: bool) -> None:
    """Derive the rates nobody measured directly: ``machine.expected["02:space"]``, a tuning trial drawn from
    the whole search space (the recipe's rate times the space's mean time ratios), ``"02:draw<k>"``, the k-th
    sampled trial where its choices are known before the run (:func:`sampled_factors`), and with ``tuned_to_03``
    (02's tuned settings may apply to 03) ``machine.undecided["03"]``, the mean factors of the profile's sampled
    trials (02's estimate sets them again for the trials it plans), which stand for 03 (see
    :meth:`Machine.undecided_rate`) until the runner settles it on its measured rate (``machine.rates["03"]``)
    or re-times it."""
    space = machine.space_speed.get("02")
    machine.expected.clear()
    machine.undecided.clear()
    if not space or "02" not in machine.rates:
        return
    recipe = machine.rates["02"]
    machine.expected["02:space"] = scaled_rate(recipe, space["train_time_factor"], space["infer_time_factor"])
    for k, f in enumerate(space.get("draw_factors") or []):
        machine.expected[f"02:draw{k}"] = scaled_rate(recipe, f["train"], f["infer"])
    if tuned_to_03 and "03" in machine.rates:
        machine.undecided["03"] = undecided_factors(space, int(space.get("sampled_trials") or 0))


# ------------------------------------------------------------------ the cost model
def train_run_seconds(
    machine: Machine, job_id: str, batch: int, n_train: int, n_val: int, epochs: float, warmup: bool = True
) -> float:
    """One ``train()`` run: build, ``epochs`` epochs (steps, validation pass, checkpoint), save; with
    ``warmup`` the first step's extra time too (paid once per model and process: later runs of the same
    model in one notebook, such as tuning trials, find PyTorch's kernels ready). Epochs that progressive
    resizing reduces train at ``reduced_cost`` of a full-size epoch, and those after ``frozen_after`` at the
    probe's ``frozen_step_ratio`` (:func:`step_epochs`)."""
    r = machine.rate(job_id)
    batch = max(min(int(batch), n_train), 1)
    images = (n_train // batch) * batch if n_train >= batch else n_train
    steps = step_epochs(machine.resolved.get(job_id) or {}, r, epochs) * images / r["train_img_per_s"]
    per_epoch = n_val / r["infer_img_per_s"] + EPOCH_FIXED_S
    return r["build_s"] + warmup * r["first_step_extra_s"] + steps + epochs * per_epoch + RUN_FIXED_S


def step_epochs(job: dict, rate: dict, epochs: float) -> float:
    """``epochs`` counted in full-size trainable epochs, the unit of the probe's training rate: epoch ``t`` (from 0)
    costs ``reduced_cost`` while ``t < reduced_epochs`` (progressive resizing, ``estimate_probe.resolve_job``),
    times ``frozen_step_ratio`` (``rate``, the probe's) once ``t >= frozen_after`` (the whitening bias frozen);
    a fraction of an epoch (a pruned trial's expected epochs) counts pro rata."""
    reduced = float(job.get("reduced_epochs") or 0)
    reduced_cost = float(job.get("reduced_cost", 1.0))
    frozen_after = float(job.get("frozen_after") or 0)
    frozen_ratio = float(rate.get("frozen_step_ratio", 1.0)) if frozen_after else 1.0
    cuts = sorted({0.0, epochs, *(c for c in (reduced, frozen_after) if 0 < c < epochs)})
    total = 0.0
    for lo, hi in zip(cuts, cuts[1:]):
        total += (
            (hi - lo)
            * (reduced_cost if lo < reduced else 1.0)
            * (frozen_ratio if frozen_after and lo >= frozen_after else 1.0)
        )
    return total


def _pruning_assumption(pruner: str, epochs: int, trial_index: int) -> tuple[float, float]:
    """``(expected epochs, chance of running all of them)`` of a tuning trial: the estimate's one stated
    assumption about pruning, which :func:`expected_trial_epochs` and :func:`expected_trial_completes` read."""
    if pruner == "none" or trial_index == 0 or epochs <= 1:
        return float(epochs), 1.0
    if pruner == "median":
        return (float(epochs), 1.0) if trial_index < MEDIAN_STARTUP_TRIALS else (0.5 * epochs + 0.5, 0.5)
    total, rung, share = 1.0, 1, 1.0
    while rung < epochs:
        share /= 3
        total += share * (min(rung * 3, epochs) - rung)
        rung *= 3
    return total, share


def expected_trial_epochs(pruner: str, epochs: int, trial_index: int) -> float:
    """Epochs a tuning trial is expected to run: the estimate's stated assumption about pruning.

    ``none``, and the first trial of any pruner: all ``epochs``. ``median``: the first
    ``MEDIAN_STARTUP_TRIALS`` run fully; after them half the trials are below the median after
    their first epoch and stop there. ``halving``/``hyperband``: about a third of the trials go on
    at each rung (epochs 1, 3, 9, ...; reduction factor 3).
    """
    return _pruning_assumption(pruner, epochs, trial_index)[0]


def expected_trial_completes(pruner: str, epochs: int, trial_index: int) -> float:
    """The chance that a tuning trial runs all ``epochs`` under the assumption of :func:`expected_trial_epochs`.

    Only a complete trial predicts the validation split once more at its end (its predictions are kept for the
    paired comparison with the recipe's trial); a pruned one stops without. ``median``: the startup trials, then
    half; ``halving``/``hyperband``: the share that reaches the last rung.
    """
    return _pruning_assumption(pruner, epochs, trial_index)[1]


def tuning_seconds(trial_seconds, n_trials: int, timeout: float) -> tuple[float, int]:
    """``(seconds, trials)`` of a study whose i-th trial takes ``trial_seconds(i)``: trials start until
    ``n_trials`` ran or ``timeout`` seconds (0: none) have passed; the running trial finishes."""
    elapsed, trials = 0.0, 0
    while trials < n_trials and (not timeout or elapsed < timeout):
        elapsed += trial_seconds(trials)
        trials += 1
    return elapsed, trials


def baseline_seconds(
    method: str,
    sizes: tuple[int, int, int],
    options: dict,
    baseline_factor: float,
    image_size: int = 32,
    forest_factor: float | None = None,
) -> float:
    """One baseline's fit (with its validation choices) and test prediction, scaled from the reference.

    Complexity terms (``sizes``: training, validation and test images): logistic regression and the
    HOG SVM are linear in the images (the SVM's SGD also in its epochs and alphas); kNN is linear (PCA)
    plus ``train x queries`` (brute-force distances, calibrated on the reference's prediction); the random
    forest grows as ``trees x n log n``. Pixel work grows with the image area. A fixed part per method
    (:data:`BASELINE_FIXED_FIT_S`) does not grow. The random forest scales by ``forest_factor`` (its own
    yardstick, :attr:`Machine.forest_factor`) where one is given, the other methods by ``baseline_factor``.
    """
    n_train, n_val, n_test = sizes
    ref = BASELINE_REFERENCE
    rt, rv, rs = ref["n_train"], ref["n_val"], ref["n_test"]
    fixed = BASELINE_FIXED_FIT_S.get(method, 0.0)
    c = dict(ref[method] if method in ref else ref["random_forest"])
    c["fit"] -= fixed  # what grows with the data; the fixed part is added back at the end
    area = (image_size / 32) ** 2
    if method == "logreg":
        seconds = area * (c["fit"] * (n_train + n_val) / (rt + rv) + c["predict"] * n_test / rs)
    elif method == "knn":
        pair = c["predict"] / (rt * rs)
        linear = (c["fit"] - pair * rt * rv) / (rt + rv)
        seconds = area * linear * (n_train + n_val) + pair * n_train * (n_val + n_test)
    elif method == "random_forest":
        trees = options.get("n_estimators", c["n_estimators"]) / c["n_estimators"]
        grow = n_train * math.log2(max(n_train, 2)) / (rt * math.log2(rt))
        seconds = trees * math.sqrt(area) * (c["fit"] * grow + c["predict"] * n_test / rs)
    elif method == "hog_svm":
        per_image = 67e-6  # HOG + colour histograms of a 32x32 image, measured on the reference machine
        sgd = c["fit"] - per_image * (rt + rv)
        work = options.get("epochs", c["epochs"]) / c["epochs"] * len(options.get("alphas") or range(c["alphas"]))
        seconds = (
            area * per_image * (n_train + n_val) + sgd * n_train / rt * work / c["alphas"] + c["predict"] * n_test / rs
        )
    else:  # a method registered later: as slow per image as the random forest
        seconds = c["fit"] * (n_train + n_val + n_test) / (rt + rv + rs)
    factor = forest_factor if method == "random_forest" and forest_factor is not None else baseline_factor
    return (fixed + seconds) * factor


# ------------------------------------------------------------------ per notebook
@dataclass
class NotebookEstimate:
    name: str
    seconds: float
    parts: dict  # what the seconds are made of
    how: str  # one line for the table


@dataclass
class Context:
    """What the notebook formulas need: the data's counts, the machine, the resolved training jobs."""

    counts: object  # estimate_data.DataCounts
    machine: Machine
    image_size: int = 32
    loaded: dict = field(default_factory=dict)  # data key -> True once a notebook loaded (decoded) it
    cached: object = None  # callable(key) -> bool: the decode cache holds it already
    seeds: frozenset = frozenset()  # 06's jobs that train 03's model again (seeds_of_main_model)

    def sizes(self, p: dict) -> tuple[int, int, int]:
        return self.counts.split_sizes(int(p.get("DATA_SUBSET") or 0))

    def job(self, job_id: str) -> dict:
        return self.machine.resolved[job_id]

    def infer(self, job_id: str, images: float) -> float:
        return images / self.machine.rate(job_id)["infer_img_per_s"]

    def baseline(self, method: str, sizes: tuple[int, int, int], options: dict) -> float:
        """One baseline method on this machine (05's and 07's): its fixed start and :func:`baseline_seconds`
        scaled by the machine's baseline factors."""
        m = self.machine
        return m.cpu_factor * BASELINE_FIXED_S + baseline_seconds(
            method, sizes, options, m.baseline_factor, self.image_size, forest_factor=m.forest_factor
        )


def _load_seconds(ctx: Context, p: dict) -> float:
    """Decoding the data, for the first notebook that loads it with these options (0 when cached)."""
    key = (p.get("IMAGE_SIZE"), int(p.get("DATA_SUBSET") or 0), p.get("VAL_FRACTION"), p.get("SEED"))
    if key in ctx.loaded:
        return 0.0
    ctx.loaded[key] = True
    c = ctx.counts
    if c.kind == "cifar10":
        return OFFICIAL_CIFAR_LOAD_S * ctx.machine.cpu_factor
    if c.kind != "folder" or (ctx.cached and ctx.cached(key)):
        return 0.0
    return c.listing_seconds + sum(ctx.sizes(p)) * (c.decode_seconds_per_image or 0.0)


def _explore(ctx: Context, p: dict) -> tuple[dict, str]:
    from cifarkit.analysis.explore import class_quota

    n_train, n_val, n_test = ctx.sizes(p)
    f, area = ctx.machine.parallel_factor, (ctx.image_size / 32) ** 2
    train = ctx.counts.class_sizes("train", int(p.get("DATA_SUBSET") or 0))
    train = train[train > 0]  # the classes explore.sample_indices sees

    def sample(n):  # as many images as explore.sample_indices draws
        return int(class_quota(n, train).sum())

    pca, tsne = sample(p.get("PCA_SAMPLES", 5000)), sample(p.get("TSNE_SAMPLES", 2000))
    parts = {
        "statistics": f * area * EXPLORE_PER_IMAGE_S * (n_train + n_val + n_test),
        "pca": f * (PCA_S[0] + PCA_S[1] * pca * area) if pca else 0.0,
        "tsne": f * (TSNE_S[0] + TSNE_S[1] * tsne) if tsne else 0.0,
    }
    return parts, f"{n_train + n_val + n_test:,} images; PCA of {pca:,}, t-SNE of {tsne:,}"


def _tune(ctx: Context, p: dict) -> tuple[dict, str]:
    n_train, n_val, _ = ctx.sizes(p)
    job = ctx.job("02")
    epochs, pruner = int(job["epochs"]), str(p.get("PRUNER", "median"))
    baseline_first = bool(p.get("BASELINE_FIRST", True))

    expected = ctx.machine.expected

    def trial(i):
        e = expected_trial_epochs(pruner, epochs, i)
        # the recipe's own trial at its measured speed; a sampled trial at its own speed where its choices are
        # known before the run, else at the search space's average
        jid = "02" if (i == 0 and baseline_first) or "02:space" not in expected else "02:space"
        if jid != "02" and f"02:draw{i - int(baseline_first)}" in expected:
            jid = f"02:draw{i - int(baseline_first)}"
        run = train_run_seconds(ctx.machine, jid, job["batch_size"], n_train, n_val, e, warmup=i == 0)
        kept = expected_trial_completes(pruner, epochs, i) * ctx.infer(jid, n_val)  # a complete trial's predictions
        return run + kept + TRIAL_FIXED_S

    timeout = float(p.get("TIMEOUT") or 0)
    seconds, trials = tuning_seconds(trial, int(p.get("N_TRIALS", 0)), timeout)
    # 03, estimated next, weighs 02's settings by the chance that one of the sampled trials beats the recipe's,
    # and takes the speed of those trials on average while it is undecided
    ctx.machine.sampled_trials = max(trials - int(baseline_first), 0)
    ctx.machine.tuned_chance = tuned_apply_chance(ctx.machine.sampled_trials)
    space = ctx.machine.space_speed.get("02")
    if space and "03" in ctx.machine.undecided:
        ctx.machine.undecided["03"] = undecided_factors(space, ctx.machine.sampled_trials)
    bound = f"; TIMEOUT {timeout:g} s stops it" if timeout and trials < int(p.get("N_TRIALS", 0)) else ""
    how = f"{plural(trials, 'trial')} x {plural(epochs, 'epoch')} of {job['model']} on {n_train:,} images ({pruner} pruning){bound}"
    return {"trials": seconds, "trials_run": trials}, how


def _train(ctx: Context, p: dict) -> tuple[dict, str]:
    n_train, n_val, n_test = ctx.sizes(p)
    job = ctx.job("03")
    run = train_run_seconds(ctx.machine, "03", job["batch_size"], n_train, n_val, job["epochs"])
    how = f"{plural(job['epochs'], 'epoch')} of {job['model']} (batch {job['batch_size']}) on {n_train:,} images"
    return {"training": run, "test": ctx.infer("03", 2 * n_test)}, how


def corruption_cells() -> int:
    """Corruptions x severities of the evaluation's robustness table (CIFAR-10-C: 15 x 5)."""
    try:
        from cifarkit.analysis.corruptions_params import CORRUPTIONS_C, SEVERITIES
    except ImportError:
        return 75
    return len(CORRUPTIONS_C) * len(SEVERITIES)


def _evaluate(ctx: Context, p: dict) -> tuple[dict, str]:
    _, n_val, n_test = ctx.sizes(p)
    area = (ctx.image_size / 32) ** 2
    n_c = min(int(p.get("CORRUPTION_SAMPLES") or n_test), n_test)
    cells = corruption_cells()
    tta = n_test if p.get("TTA", True) else 0
    saliency = 2 * int(p.get("SALIENCY_EXAMPLES", 4))
    parts = {
        "load_model": ctx.machine.cpu_factor * LOAD_MODEL_S,
        "forward": ctx.infer("03", n_test + n_val + tta + (cells + 1) * n_c + 3 * saliency),
        "corrupt": ctx.machine.parallel_factor * area * CORRUPT_ALL_PER_IMAGE_S * cells / 75 * n_c,
        "roc_bootstrap": ctx.machine.cpu_factor
        * ROC_BOOTSTRAP_S
        * n_test
        * len(ctx.counts.class_names)
        * int(p.get("N_BOOT", 2000)),
    }
    return parts, f"{n_test:,} test images{' + flip TTA' if tta else ''}; {cells} corruption cells of {n_c:,}"


def _baselines(ctx: Context, p: dict) -> tuple[dict, str]:
    n_train, n_val, n_test = ctx.sizes(p)
    methods = [m.strip() for m in str(p.get("METHODS", "")).split(",") if m.strip()]
    caps = {m: p.get("MAX_TRAIN", 0) for m in methods} | dict(p.get("MAX_TRAIN_PER_METHOD") or {})
    options = p.get("METHOD_OPTIONS") or {}
    parts, sizes = {}, []
    for m in methods:
        n = min(int(caps.get(m) or n_train), n_train)
        sizes.append(n)
        parts[m] = ctx.baseline(m, (n, n_val, n_test), options.get(m) or {})
    parts["cnn"] = ctx.machine.cpu_factor * LOAD_MODEL_S + ctx.infer("03", n_val + n_test)
    # the caps as the methods get them (a budget's MAX_TRAIN, MAX_TRAIN_PER_METHOD), not the split's size
    return parts, f"{', '.join(methods)} on up to {max(sizes, default=n_train):,} training images"


def _architectures(ctx: Context, p: dict) -> tuple[dict, str]:
    n_train, n_val, n_test = ctx.sizes(p)
    timing = min(2048, n_test)
    parts = {"03_model": ctx.machine.cpu_factor * LOAD_MODEL_S + ctx.infer("03", n_val + n_test + timing)}
    labels, warm = [], set()
    for i, _ in enumerate(architectures(p.get("ARCHITECTURES", ""))):
        jid = f"06:{i}"
        job = ctx.job(jid)
        # a seed of 03's model trains with 03's settings (tuned ones included): at 03's speed and batch size
        speed = "03" if jid in ctx.seeds else jid
        batch = ctx.job(speed)["batch_size"]
        first = (job["model"], batch) not in warm  # a second seed of a model finds it warmed up
        warm.add((job["model"], batch))
        run = train_run_seconds(ctx.machine, speed, batch, n_train, n_val, job["epochs"], warmup=first)
        parts[f"{job['model']}#{i}"] = run + ctx.infer(speed, 2 * n_test + n_val + timing)
        labels.append(f"{job['model']} {job['epochs']} ep")
    return parts, f"{', '.join(labels) or 'no architecture'} on {n_train:,} images, beside 03's model"


def cv_folds(p: dict, sizes: tuple[int, int, int]) -> int:
    """The folds 07_cross_validation will train (0: it will not cross-validate), by the notebook's own rule
    (:func:`cifarkit.analysis.cross_validation.decide`; a class with too few groups may lower it at run time)."""
    from cifarkit.analysis.cross_validation import DEFAULT_FOLDS, auto_min_test_images

    folds = int(p.get("CV_FOLDS") or 0)
    if folds == 1:
        return 0
    if folds >= 2:
        return folds
    return DEFAULT_FOLDS if sizes[2] < auto_min_test_images() else 0


def cv_fold_sizes(p: dict, sizes: tuple[int, int, int], k: int) -> tuple[int, int, int]:
    """Training, validation-carve and held-out images of one fold when ``k`` folds cut all the images."""
    n = sum(sizes)
    rest = n - n // k
    carve = round(rest * float(p.get("VAL_FRACTION", 0.1)))
    return rest - carve, carve, n // k


def _cross_validation(ctx: Context, p: dict) -> tuple[dict, str]:
    sizes = ctx.sizes(p)
    k = cv_folds(p, sizes)
    if not k:
        return {}, f"auto rule: no cross-validation ({sizes[2]:,} test images)"
    n_train, n_val, n_held = cv_fold_sizes(p, sizes, k)
    job = ctx.job("07")
    parts = {}
    for i in range(k):  # one training run per fold; the second and later find the kernels warm
        run = train_run_seconds(ctx.machine, "07", job["batch_size"], n_train, n_val, job["epochs"], warmup=i == 0)
        parts[f"fold{i + 1}"] = run + ctx.infer("07", n_held + n_val)
    for m in [m.strip() for m in str(p.get("BASELINES", "")).split(",") if m.strip()]:  # every method in every fold
        parts[f"baseline_{m}"] = k * ctx.baseline(m, (n_train, n_val, n_held), {})
    parts["roc_bootstrap"] = (
        ctx.machine.cpu_factor * ROC_BOOTSTRAP_S * sum(sizes) * len(ctx.counts.class_names) * int(p.get("N_BOOT", 2000))
    )
    how = (
        f"{plural(k, 'fold')} x {plural(job['epochs'], 'epoch')} of {job['model']} (batch {job['batch_size']}) on {n_train:,} images each"
        + (", with the baselines" if str(p.get("BASELINES", "")).strip() else "")
    )
    return parts, how


FORMULAS = {
    "01_explore_data": _explore,
    "02_tune": _tune,
    "03_train": _train,
    "04_evaluate": _evaluate,
    "05_baselines": _baselines,
    "06_architectures_and_ensembles": _architectures,
    "07_cross_validation": _cross_validation,
}


def estimate_notebooks(nb: dict[str, dict], ctx: Context) -> dict[str, NotebookEstimate]:
    """Seconds per notebook (``nb``: name -> effective parameters, in run order)."""
    ctx.loaded = {}
    ctx.seeds = frozenset(seeds_of_main_model(nb, ctx.machine.resolved))
    out = {}
    for name, p in nb.items():
        parts = {"startup": NOTEBOOK_FIXED_S.get(name, 4.0)}  # not scaled: see NOTEBOOK_FIXED_S
        if name in TORCH_NOTEBOOKS:
            parts["torch_import"] = ctx.machine.torch_import_s
        parts["load_data"] = _load_seconds(ctx, p)
        how = ""
        if name in FORMULAS:
            work, how = FORMULAS[name](ctx, p)
            parts.update(work)
        seconds = sum(v for k, v in parts.items() if k != "trials_run")
        out[name] = NotebookEstimate(name, seconds, {k: round(v, 2) for k, v in parts.items()}, how)
    return out


def undecided_range(nb: dict[str, dict], ctx: Context) -> tuple[float, float] | None:
    """The total seconds of ``nb`` with 03 at the fastest and at the slowest settings 02 may pick
    (:func:`undecided_factors`' range; 04 and 06 predict with 03's model and train its seeds at its speed), while
    02's settings may still apply to 03; None once decided (or never undecided). The run's actual time falls in
    it whatever 02 picks, as far as the measured speeds hold; the expectation printed lies between."""
    m = ctx.machine
    if "train_time_range" not in m.undecided.get("03", {}):
        return None
    saved = m.bound
    try:
        ends = []
        for bound in ("fastest", "slowest"):
            m.bound = bound
            ends.append(sum(e.seconds for e in estimate_notebooks(nb, ctx).values()))
    finally:
        m.bound = saved
    return ends[0], ends[1]
