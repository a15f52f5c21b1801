"""The speed probe behind the run's time estimate: a few training steps of each model, on this machine.

:func:`cifarkit.report.estimate.estimate_run` starts this module in a short-lived Python process
(``python -m cifarkit.report.estimate_probe``, a JSON request on stdin, a JSON answer on stdout), so that
the runner never holds Keras and PyTorch (about 450 MB) for the whole run, and so that the probe runs
with the thread settings a notebook's kernel gets.

For each training job (a model with its recipe and settings) the probe resolves the
:class:`~cifarkit.training.TrainConfig` exactly as the notebook will (``resolve_recipe``), builds the
model, and times the real step of ``train()``: :class:`~cifarkit.training.optim.TrainStep` with
:func:`~cifarkit.training.optim.make_optimizer`, under the autocast dtype that training will use
(:func:`~cifarkit.training.precision.autocast_dtype`, bf16 on CPUs with native bf16 units), fed by the
real :class:`~cifarkit.training.augment.TrainPipeline` (so augmentation is in the rate), on random
images of the run's shape. As in ``benchmarks/bench_throughput.py`` the first (warm-up) step is timed
on its own and left out of the rate, which is the batch over the median step time (a step slowed by
another process on a shared machine does not move it). Where the recipe freezes fastnet's whitening bias after
``whiten_bias_epochs``, the step is timed once more frozen, as ``train()`` runs the later epochs
(``frozen_step_ratio``). Inference is timed as the notebooks run it: float32
``predict_logits`` in batches of 512. It also measures the import of Keras and PyTorch (every notebook
but the first pays it), a float32 matrix product (the yardstick the baseline constants are scaled by)
and a fixed CPU workload (the yardstick of the other calibrated constants).
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

#: Seconds of timed training steps per model (after the warm-up step); at least MIN_STEPS steps.
STEP_SECONDS = 3.0
MIN_STEPS = 5
MAX_STEPS = 40
#: Seconds of timed steps after the whitening bias is frozen (fastnet's ``fast`` recipes, after ``whiten_bias_epochs``):
#: the probe times that step too, as ``frozen_step_ratio``, its time over the trainable step's.
FROZEN_STEP_SECONDS = 1.5
#: Images per timed inference pass at 32x32 (fewer for larger images).
INFER_IMAGES = 1024
INFER_BATCH = 512  # predict_logits' batch
INFER_ROUNDS = 2  # timed inference passes; the faster counts (as the median step does for training)
MATMUL_N = 2048
#: The search space's other speed choices (batch sizes, widths) are timed shorter: their ratio to the job's own
#: rate is what counts, and the run should not wait for 3 s of each.
#: (The quick profile's probe took 39 s with 1.0 s and 2 steps per choice, against 20 s without the space.)
SPACE_STEP_SECONDS = 0.5
SPACE_MIN_STEPS = 1  # and inference: one timed pass of one batch (INFER_BATCH) after the warm-up batch
#: Settings of a search space that change the speed per image; all others (lr, dropout, augmentation) do not.
SPACE_SPEED_PARAMS = ("batch_size", "width_multiplier")


def cpu_workload_seconds(rounds: int = 3) -> float:
    """Seconds (best of ``rounds``) of a fixed mix of interpreter and numpy work, the CPU yardstick.

    Python-bound parts of a run outside training (checkpoints, Optuna's bookkeeping, bootstrap resampling)
    are scaled by it; a notebook's start is not (the AVX2 EPYC ran this loop 2.9x slower than the reference
    and started its notebooks as fast, see ``estimate_model.NOTEBOOK_FIXED_S``). :data:`cifarkit.report.estimate.REFERENCE` holds its time on
    the machine the constants were calibrated on.
    """
    rng = np.random.default_rng(0)
    data = rng.random(2_000_000).astype(np.float32)

    def work():
        total = 0
        for i in range(1_500_000):
            total += i % 7
        np.sort(data)
        np.exp(data).sum()
        return total

    work()
    return min(_seconds(work) for _ in range(rounds))


def baseline_workloads(rounds: int = 2) -> dict:
    """Seconds (best of ``rounds``, after one untimed pass) of a small sample of 05's own operations, the
    baselines' yardsticks, on 2,000 random 768-dimensional rows: ``baseline_workload_s``, all of it (a randomized
    PCA, a few logistic-regression iterations and a kNN query on its components, eight random-forest trees on
    both cores, three epochs of SGD), and ``forest_workload_s``, its eight trees alone.

    The trees get a yardstick of their own because the random forest is most of 05's time on the full data
    (111 of 157 s on the AVX2 EPYC, 2026-12-06) and its speed does not follow the rest's: that machine ran the
    forest 1.49x the Xeon's time the baseline times come from and logistic regression, kNN and the HOG SVM
    1.16-1.32x, while the whole workload put it at 0.82-1.08x. (The matrix product was the yardstick before: it
    put the AVX2 EPYC at 1.6x the Xeon, where the quick profile's baseline table took 1.05-1.3x.)"""
    import warnings

    from sklearn.decomposition import PCA
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression, SGDClassifier
    from sklearn.neighbors import KNeighborsClassifier

    rng = np.random.default_rng(0)
    x = rng.random((2000, 768), dtype=np.float32)
    y = rng.integers(0, 10, len(x))

    def forest():
        RandomForestClassifier(n_estimators=8, n_jobs=2, random_state=0).fit(x, y)

    def work() -> float:
        """The whole workload; returns the trees' seconds."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # a fixed amount of work, not a fit to keep
            z = PCA(64, svd_solver="randomized", random_state=0).fit_transform(x)
            LogisticRegression(max_iter=30).fit(z, y)
            KNeighborsClassifier(5).fit(z, y).predict(z[:500])
            trees = _seconds(forest)
            SGDClassifier(max_iter=3, tol=None, random_state=0).fit(x, y)
        return trees

    work()
    timed = []
    for _ in range(rounds):
        start = time.perf_counter()
        trees = work()
        timed.append((time.perf_counter() - start, trees))
    return {"baseline_workload_s": min(t for t, _ in timed), "forest_workload_s": min(f for _, f in timed)}


def matmul_gflops(n: int = MATMUL_N, rounds: int = 3) -> float:
    """float32 GFLOP/s of an ``n x n`` numpy matrix product, best of ``rounds`` (as ``bench_throughput`` does)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    a @ b
    best = min(_seconds(lambda: a @ b) for _ in range(rounds))
    return 2.0 * n**3 / best / 1e9


def time_yardsticks() -> dict:
    """The yardsticks once: the CPU workload, the matrix product, the baselines' workload and its trees."""
    return {
        "cpu_workload_s": round(cpu_workload_seconds(), 4),
        "matmul_gflops": round(matmul_gflops(), 1),
        **{k: round(v, 4) for k, v in baseline_workloads().items()},
    }


def best_yardsticks(timings: list[dict]) -> dict:
    """The best of each yardstick over its timings (the shortest time, the most GFLOP/s).

    The probe times them at its start and again at its end, 30-60 s apart in a quick run: each timing is best of a
    few rounds within a second or two, so another process's burst can halve one (on the AVX-512 EPYC the matrix
    product read 101 GFLOP/s and the baselines' workload 0.79 s at the start of a quick ``--budget 10`` run on
    2026-12-03, where 188-207 GFLOP/s and 0.50-0.67 s are its usual figures; 01, 04 and 05, whose non-training work
    they scale, then took 0.75-0.81 of their estimates). The training rates are timed over seconds each and
    stay as measured."""
    return {
        "cpu_workload_s": min(t["cpu_workload_s"] for t in timings),
        "matmul_gflops": max(t["matmul_gflops"] for t in timings),
        "baseline_workload_s": min(t["baseline_workload_s"] for t in timings),
        "forest_workload_s": min(t["forest_workload_s"] for t in timings),
    }


def _seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _config(job: dict):
    from cifarkit.training import resolve_recipe

    settings = {k: v for k, v in (job.get("settings") or {}).items() if v not in (None, 0, "")}
    settings["model"] = job["model"]
    return resolve_recipe(job["recipe"], **settings)


def resolve_job(job: dict, image_size: int | None = None) -> dict:
    """The epochs and batch size a job will train with, as ``train()`` gets them; with progressive resizing
    (``progressive_size``, ``progressive_epochs``) also ``reduced_epochs`` and ``reduced_cost``, a reduced
    epoch's training cost as a share of a full-size one: the pixel ratio ``(size / image_size) ** 2`` (fastnet
    measured 0.21 at 16 and 0.51 at 24 px of 32 on the AVX2 EPYC, under the ratio: the estimate stays high);
    with a whitening bias that ``train()`` freezes after ``whiten_bias_epochs`` also ``frozen_after``, that epoch
    count (the later epochs run at the probe's ``frozen_step_ratio``)."""
    config = _config(job)
    out = {"model": config.model, "epochs": int(config.epochs), "batch_size": int(config.batch_size)}
    if config.whiten_init and config.whiten_bias_epochs:
        out["frozen_after"] = int(config.whiten_bias_epochs)
    if config.progressive_size and image_size:
        out["reduced_epochs"] = int(config.progressive_epochs)
        out["reduced_cost"] = round(min(1.0, (config.progressive_size / int(image_size)) ** 2), 4)
    return out


def probe_model(
    job: dict,
    image_size: int,
    num_classes: int,
    *,
    step_seconds: float = STEP_SECONDS,
    min_steps: int = MIN_STEPS,
    infer: bool = True,
    infer_images: int = INFER_IMAGES,
    infer_rounds: int = INFER_ROUNDS,
    frozen: bool = True,
) -> dict:
    """Training and inference speed of one job on random images; see the module docstring.

    ``step_seconds``/``min_steps``: how long training steps are timed; ``infer=False`` leaves inference
    untimed (its rate is then None); ``infer_images``/``infer_rounds``: the timed inference passes (32x32).
    With ``frozen`` and a recipe that freezes a parameter group after some epochs (fastnet's whitening bias after
    ``whiten_bias_epochs``), the step is timed again with the group frozen as ``train()`` freezes it
    (:func:`~cifarkit.training.optim.freeze_groups_after`): ``frozen_step_ratio`` is its median time over the
    trainable step's (1.0 without such a group), which the estimate applies to the epochs after the freeze.
    """
    from cifarkit import backend
    from cifarkit.models import build_model
    from cifarkit.training.augment import Augment, TrainPipeline
    from cifarkit.training.inference import predict_logits
    from cifarkit.training.optim import (
        Lookahead,
        TrainStep,
        freeze_groups_after,
        freeze_whitening_kernel,
        make_optimizer,
    )
    from cifarkit.training.precision import autocast_dtype, choose_device, relay_kernels

    keras, torch = backend.keras(), backend.torch()
    config = _config(job)
    device = choose_device(config)
    amp = autocast_dtype(config, device)
    n_train = max(int(job.get("n_train") or config.batch_size), 1)
    batch = min(int(config.batch_size), n_train)  # a split smaller than a batch trains in one batch
    rng = np.random.default_rng(0)
    shape = (image_size, image_size, 3)
    pool = rng.integers(0, 256, size=(batch * 2,) + shape, dtype=np.uint8)
    labels = rng.integers(0, num_classes, size=batch * 2)
    t0 = time.perf_counter()
    keras.utils.set_random_seed(0)
    with keras.device(device):
        model = build_model(
            config.model,
            input_shape=shape,
            num_classes=num_classes,
            mean=(0.5,) * 3,
            std=(0.25,) * 3,
            **config.model_options,
        )
        model.train()
        relay_kernels(model, config, device, amp)  # the kernels' layout train() gives them
        freeze_whitening_kernel(model, config)
        optimizer = make_optimizer(model, config)
        step = TrainStep(model, optimizer, config, device, autocast_dtype=amp)
        lookahead = Lookahead(model, config.lookahead_every, 10_000) if config.lookahead_every else None
        augment = Augment(
            crop=config.crop,
            pad_mode=config.pad_mode,
            flip=config.flip,
            alternate_flip=config.alternate_flip,
            cutout=config.cutout,
            mixup=config.mixup,
            cutmix=config.cutmix,
        )
        pipeline = TrainPipeline(pool, labels, batch, num_classes=num_classes, augment=augment, seed=0)
        build_seconds = time.perf_counter() - t0

        def batches():
            epoch = 0
            while True:
                yield from pipeline.epoch(epoch)
                epoch += 1

        feed = batches()

        def one_step(i: int) -> int:
            xb, yb = next(feed)
            x = torch.from_numpy(xb).to(device)
            y = torch.from_numpy(yb).to(device)
            loss, _ = step(x, y, 0.01)  # a small rate keeps many steps finite; speed does not depend on it
            float(loss.detach())  # the loop reads the loss every step, which also waits for a GPU
            if lookahead is not None:
                lookahead.update(i)
            return len(xb)

        def timed_steps(seconds: float, first_index: int) -> tuple[list[float], int]:
            times, images, start = [], 0, time.perf_counter()
            while len(times) < min_steps or (time.perf_counter() - start < seconds and len(times) < MAX_STEPS):
                t = time.perf_counter()
                images = one_step(first_index + len(times))
                times.append(time.perf_counter() - t)
            return times, images

        start = time.perf_counter()
        one_step(1)
        first = time.perf_counter() - start
        times, images = timed_steps(step_seconds, 2)
        frozen_after = max((int(g.get("until_epoch") or 0) for g in optimizer.param_groups), default=0)
        frozen_ratio, frozen_times = 1.0, []
        if frozen and frozen_after:
            freeze_groups_after(optimizer, frozen_after + 1)
            one_step(len(times) + 2)  # untimed: the first step of the smaller graph
            frozen_times, _ = timed_steps(FROZEN_STEP_SECONDS, len(times) + 3)
            frozen_ratio = float(np.median(frozen_times)) / float(np.median(times))
        n_infer = max(64, min(infer_images, infer_images * 32 * 32 // (image_size * image_size)))
        x_inf = rng.integers(0, 256, size=(n_infer,) + shape, dtype=np.uint8) if infer else None
        # warm up on a whole inference batch: the first pass at a new batch shape pays oneDNN's setup, which a
        # 64-image warm-up left inside the timed pass (2-core Xeon, float32: ResNet-20 timed at 1,118 img/s with
        # the 64-image warm-up, 1,386 with this one, 1,613 over 10,000 images; fastnet 770 / 801 / 780)
        if infer:
            predict_logits(model, x_inf[:INFER_BATCH])
            infer_seconds = min(_seconds(lambda: predict_logits(model, x_inf)) for _ in range(infer_rounds))
    step_seconds = float(np.median(times))  # the median: one step slowed by another process does not count
    return {
        "model": config.model,
        "recipe": job["recipe"],
        "batch_size": batch,
        "device": device,
        "precision": str(amp).replace("torch.", "") if amp is not None else "float32",
        "train_img_per_s": round(images / step_seconds, 1),
        "steps_timed": len(times),
        "frozen_step_ratio": round(frozen_ratio, 4),
        "frozen_steps_timed": len(frozen_times),
        "first_step_extra_s": round(max(first - step_seconds, 0.0), 3),
        "build_s": round(build_seconds, 3),
        "infer_img_per_s": round(n_infer / max(infer_seconds, 1e-9), 1) if infer else None,
    }


def space_choices(dists: dict) -> dict:
    """The speed-changing choices (:data:`SPACE_SPEED_PARAMS`) among a search space's distributions as the tuning
    resolves them for this model and data size (:func:`_space_distributions`): ``{"batch_size": [...],
    "width_multiplier": [...]}`` (a parameter the space does not search, or searches on a continuous range, is left
    out; a single choice stays: every sampled trial takes it, as a batch size of 64 where the split is smaller than
    the recipe's batch)."""
    from optuna.distributions import CategoricalDistribution

    return {
        name: list(d.choices)
        for name, d in dists.items()
        if name in SPACE_SPEED_PARAMS and isinstance(d, CategoricalDistribution)
    }


def _space_distributions(job: dict, image_size: int) -> dict:
    """The Optuna distributions of ``job["space"]`` as the tuning resolves them on its own training split."""
    from cifarkit.analysis.tuning.spaces import resolve_space

    config = _config(job)
    n_train = (job.get("tuning") or {}).get("n_train") or job.get("n_train") or config.batch_size
    dists, _ = resolve_space(job["space"], config, n_train=max(int(n_train), 1), image_size=image_size)
    return dists


def sampled_draws(tuning: dict, dists: dict) -> tuple[list[dict], int]:
    """``(draws, sampled)``: the speed-changing choices of the tuning's sampled trials that are known before the run
    (its seeded start-up trials over ``dists``, :func:`~cifarkit.analysis.tuning.storage.preview_startup_trials`,
    less trial 0 when the recipe's own settings take it), and how many trials it samples in all (``N_TRIALS`` less
    that one). ``([], 0)`` when nothing is said of the tuning (``tuning``: seed, n_trials, baseline_first)."""
    from cifarkit.analysis.tuning.storage import preview_startup_trials

    n_trials = int(tuning.get("n_trials") or 0)
    if not n_trials:
        return [], 0
    first = int(bool(tuning.get("baseline_first", True)))
    drawn = preview_startup_trials(dists, seed=int(tuning.get("seed", 0)), n_trials=n_trials)[first:]
    speed = [name for name in dists if name in SPACE_SPEED_PARAMS]
    return [{name: d[name] for name in speed} for d in drawn], max(n_trials - first, 0)


def _with_choice(job: dict, name: str, value) -> dict:
    settings = dict(job.get("settings") or {})
    if name == "width_multiplier":
        settings["model_options"] = {**(settings.get("model_options") or {}), name: value}
    else:
        settings[name] = value
    return {**job, "settings": settings}


def space_speed(job: dict, rate: dict, image_size: int, num_classes: int) -> dict:
    """How fast a tuning trial drawn from ``job["space"]`` trains and predicts, relative to the job's own ``rate``.

    Each speed-changing choice is timed on its own (:data:`SPACE_STEP_SECONDS`), the others held at the
    job's values; a trial's time per image is taken as the job's times the product of its choices' ratios,
    so the expected time per image of a trial drawn uniformly is the job's times the product of each parameter's
    mean ratio. Returns ``{"train_time_factor", "infer_time_factor", "choices": {name: {value: {"train": ratio,
    "infer": ratio}}}}`` (factors above 1: slower than the job). With ``job["tuning"]`` (02's seed and trial
    counts) also ``draws``, the choices of the sampled trials known before the run (:func:`sampled_draws`),
    ``draw_factors``, each one's factors (:func:`draw_factors`), and ``sampled_trials``, how many the profile
    samples; the estimate times each known trial at its own factors and the rest at the space's
    (:func:`~cifarkit.report.estimate_model.sampled_factors`).
    """
    base_train, base_infer = rate["train_img_per_s"], rate["infer_img_per_s"]
    config = _config(job)
    current = {
        "batch_size": int(rate["batch_size"]),
        "width_multiplier": config.model_options.get("width_multiplier", 1.0),
    }
    train_factor = infer_factor = 1.0
    table = {}
    dists = _space_distributions(job, image_size)  # resolved once: its choices are timed, its first draws replayed
    for name, values in space_choices(dists).items():
        ratios = {}
        for value in values:
            if value == current.get(name):
                ratios[value] = {"train": 1.0, "infer": 1.0}
                continue
            r = probe_model(
                _with_choice(job, name, value),
                image_size,
                num_classes,
                step_seconds=SPACE_STEP_SECONDS,
                min_steps=SPACE_MIN_STEPS,
                infer=name != "batch_size",  # predictions run in batches of 512 whatever the training batch
                infer_images=INFER_BATCH,
                infer_rounds=1,
                frozen=False,  # a ratio to the job's own rate: the freeze is the job's, timed there
            )
            ratios[value] = {
                "train": round(base_train / r["train_img_per_s"], 4),
                "infer": round(base_infer / r["infer_img_per_s"], 4) if r["infer_img_per_s"] else 1.0,
            }
        train_factor *= float(np.mean([v["train"] for v in ratios.values()]))
        infer_factor *= float(np.mean([v["infer"] for v in ratios.values()]))
        table[name] = {str(k): v for k, v in ratios.items()}
    out = {"train_time_factor": round(train_factor, 4), "infer_time_factor": round(infer_factor, 4), "choices": table}
    draws, sampled = sampled_draws(job.get("tuning") or {}, dists)
    if sampled:
        out.update(draws=draws, draw_factors=draw_factors(draws, table), sampled_trials=sampled)
    return out


def draw_factors(draws: list[dict], table: dict) -> list[dict]:
    """Each known draw's time factors ``{"train", "infer"}``: the product of its choices' ratios in ``table``
    (:func:`space_speed`'s ``choices``), as :func:`space_speed` takes the choices to combine."""

    def factor(draw: dict, kind: str) -> float:
        f = 1.0
        for name, value in draw.items():
            f *= table.get(name, {}).get(str(value), {}).get(kind, 1.0)
        return round(f, 4)

    return [{"train": factor(d, "train"), "infer": factor(d, "infer")} for d in draws]


def run_probe(request: dict) -> dict:
    """Answer one request: ``{"jobs": {id: job}, "probe": [ids to time], "image_size", "num_classes"}``;
    a job with a ``"space"`` (a search space's name: a tuning trial) also gets :func:`space_speed`;
    with ``"yardsticks": false`` (a re-timing during the run) the CPU workload, the matrix product and the
    baselines' workload are not timed; otherwise they are timed at the start and at the end, and the answer's
    figures are the best of both (:func:`best_yardsticks`), ``yardstick_timings`` both timings."""
    t_start = time.perf_counter()
    answer = {}
    yardsticks = request.get("yardsticks", True)
    if yardsticks:
        answer["yardstick_timings"] = [time_yardsticks()]
    t0 = time.perf_counter()
    from cifarkit import backend

    backend.torch()
    backend.keras()
    import cifarkit.models  # noqa: F401
    import cifarkit.training  # noqa: F401

    answer["torch_import_s"] = round(time.perf_counter() - t0, 3)
    answer["torch_threads"] = backend.torch().get_num_threads()
    jobs = request.get("jobs") or {}
    size, classes = int(request["image_size"]), int(request["num_classes"])
    answer["resolved"] = {jid: resolve_job(job, size) for jid, job in jobs.items()}
    answer["rates"] = {}
    answer["space_speed"] = {}
    for jid in request.get("probe") or []:
        answer["rates"][jid] = probe_model(jobs[jid], size, classes)
        if jobs[jid].get("space"):
            answer["space_speed"][jid] = space_speed(jobs[jid], answer["rates"][jid], size, classes)
    if yardsticks:  # timed again after the models: a moment's contention at the start does not decide them
        answer["yardstick_timings"].append(time_yardsticks())
        answer.update(best_yardsticks(answer["yardstick_timings"]))
    answer["probe_seconds"] = round(time.perf_counter() - t_start, 2)
    return answer


def main() -> int:
    request = json.loads(sys.stdin.read() or "{}")
    answer = run_probe(request)
    sys.stdout.write("\nPROBE-RESULT " + json.dumps(answer, allow_nan=False) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
