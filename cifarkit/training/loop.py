"""Train a cifarkit model: a PyTorch training loop over a Keras model, checkpointed after every epoch.

What a run writes to ``out_dir``: ``checkpoint.pt`` (see
:mod:`cifarkit.training.checkpoint`), ``history.json``/``history.csv`` (one
row per epoch), ``model.keras`` (the final model) and ``metrics.json`` (final
validation and test results, timings, hardware, config, data provenance); and
``nan_checkpoint.pt`` only if the loss diverged.

History columns: ``train_loss_aug``/``train_acc_aug`` are measured on the
augmented batches while the weights change; ``val_loss``/``val_acc`` on the
validation split (held out from the training data) after each epoch; ``lr`` is
the epoch's last rate. The test split is evaluated once, at the end, and used
for no choice (``eval_test_every_epoch`` adds ``test_acc_monitor`` per epoch for
benchmarks; nothing reads it during training).

On a CUDA device the defaults (``"auto"`` settings) train with the training set
resident on the GPU and augmented there (:mod:`cifarkit.training.augment_torch`),
bf16 autocast, channels-last convolution weights and ``torch.compile``; see
:mod:`cifarkit.training.precision`. A CPU run uses the numpy pipeline and none
of the GPU settings.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from cifarkit import backend
from cifarkit.files import atomic_write_json, read_json, replace_file
from cifarkit.provenance import hardware_info, peak_rss_mib
from cifarkit.training import checkpoint as ckpt
from cifarkit.training.augment import Augment, TrainPipeline
from cifarkit.training.config import TrainConfig
from cifarkit.training.inference import evaluate_model
from cifarkit.training.optim import (
    Lookahead,
    TrainStep,
    balanced_class_weights,
    freeze_groups_after,
    freeze_whitening_kernel,
    make_optimizer,
)
from cifarkit.training.precision import (
    autocast_dtype,
    choose_device,
    cuda_settings,
    dynamo_friendly_signatures,
    relay_kernels,
)
from cifarkit.training.progressive import ProgressiveResize, check_progressive
from cifarkit.training.schedule import lr_schedule_values
from cifarkit.training.transfer import (
    apply_phase,
    phase_plan,
    split_backbone_groups,
    trainable_params_per_phase,
    transfer_weights,
)

#: Images used to initialize fastnet's whitening layer (airbench uses 5000).
WHITENING_SAMPLE = 5000


#: A run of more epochs than this prints a line for only some of them (see :func:`progress_epoch`).
PROGRESS_ALL_EPOCHS = 30
PROGRESS_EDGE = 3  # the first and last epochs printed whatever the run's length
PROGRESS_LINES = 20  # about this many lines in between


def progress_epoch(epoch: int, epochs: int) -> int:
    """Whether ``train(progress=True)`` prints a line for ``epoch`` of ``epochs``: 0 no, 1 yes, 2 yes with a note.

    Up to :data:`PROGRESS_ALL_EPOCHS` epochs every epoch gets its line. A longer run (a paper recipe's 164
    epochs printed 2.5 pages of a report) prints the first and last :data:`PROGRESS_EDGE` epochs and every
    k-th epoch between them (k makes about :data:`PROGRESS_LINES` lines); the last of the first epochs says so
    (2). The loop also prints an epoch whose learning rate changed more than twofold since the epoch before
    (a step of the schedule, a steep warm-up) or whose phase changed.
    Every epoch is in ``history.csv`` and in the report's curves either way.
    """
    if epochs <= PROGRESS_ALL_EPOCHS or epoch > epochs - PROGRESS_EDGE:
        return 1
    if epoch < PROGRESS_EDGE:
        return 1
    if epoch == PROGRESS_EDGE:
        return 2
    return int(epoch % progress_stride(epochs) == 0)


def progress_stride(epochs: int) -> int:
    """The k of :func:`progress_epoch`: every k-th epoch of a long run gets a line."""
    return max(2, -(-epochs // PROGRESS_LINES))


class TrainingDivergedError(RuntimeError):
    """The training loss became NaN or infinite."""


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        model: the trained Keras model (final weights).
        history: one dict per epoch (see the module docstring for the columns).
        metrics: the content of ``metrics.json``.
        out_dir: the run folder.
        paths: file name -> path of what the run wrote (checkpoint, history, model, metrics).
    """

    model: object
    history: list
    metrics: dict
    out_dir: Path
    paths: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- building a run
def _build_model(dataset, config: TrainConfig, resume_backbone: dict | None = None):
    """The run's model, the data's channel means, and for an ImageNet backbone what its build knows about
    the weights (``BackboneBuild.info``; None for a CIFAR model). A resumed backbone run is rebuilt as its
    checkpoint recorded it (same architecture and batch-norm mode, no weights fetched: the checkpoint has them)."""
    from cifarkit.models import build_backbone, build_model, model_info

    backend.keras().utils.set_random_seed(config.seed)
    mean, std = dataset.channel_stats()
    mean, std = tuple(float(m) for m in mean), tuple(float(s) for s in std)
    shape, classes = tuple(dataset.input_shape), int(dataset.num_classes)
    info = None
    if model_info(config.model).get("kind") == "backbone":
        options = dict(config.model_options)
        if "weights" in options:
            raise ValueError(
                "Set a backbone's weights with backbone_weights (BACKBONE_WEIGHTS), not model_options['weights']."
            )
        if resume_backbone:
            options.setdefault("data_format", resume_backbone.get("data_format"))
            built = build_backbone(
                config.model,
                input_shape=shape,
                num_classes=classes,
                weights=None,
                bn_inference=bool(resume_backbone.get("bn_inference")),
                **options,
            )
            info = dict(resume_backbone)
        else:
            built = build_backbone(
                config.model,
                input_shape=shape,
                num_classes=classes,
                weights=config.backbone_weights,
                bn_inference=True if config.pretrained else None,
                **options,
            )
            info = built.info
        model = built.model
    else:
        weights = config.backbone_weights.strip().lower()
        if weights not in ("", "none", "imagenet"):
            raise ValueError(
                f"backbone_weights={config.backbone_weights!r} applies to the ImageNet backbones "
                f"(cifarkit.models.list_backbones()), not to {config.model!r}; for the saved weights of a "
                "cifarkit model use pretrained (PRETRAINED)."
            )
        model = build_model(
            config.model, input_shape=shape, num_classes=classes, mean=mean, std=std, **config.model_options
        )
    model.train()
    freeze_whitening_kernel(model, config)
    return model, mean, info


def _build_pipeline(dataset, config: TrainConfig, mean, device: str = "cpu"):
    """The run's input pipeline: numpy's :class:`TrainPipeline`, or the device pipeline (``config.pipeline``)."""
    from cifarkit.training.augment_torch import DevicePipeline, choose_pipeline

    augment = Augment(
        crop=config.crop,
        pad_mode=config.pad_mode,
        flip=config.flip,
        alternate_flip=config.alternate_flip,
        cutout=config.cutout,
        cutout_fill=tuple(255.0 * m for m in mean),
        mixup=config.mixup,
        cutmix=config.cutmix,
    )
    cls, where = TrainPipeline, {}
    if choose_pipeline(config.pipeline, device, augment) == "torch":
        cls, where = DevicePipeline, {"device": device}
    return cls(
        dataset.x_train,
        dataset.y_train,
        config.batch_size,
        num_classes=int(dataset.num_classes),
        augment=augment,
        shuffle=True,
        drop_last=True,
        seed=config.seed,
        **where,
    )


#: Models ``compile="auto"`` compiles on a GPU: none yet. Traced on CPU (torch 2.13, Keras 3.15), fastnet and the
#: ResNets are one graph without breaks since 2026-12-05 (before, Keras' ``GlobalMaxPooling2D`` and ``Rescaling``
#: broke fastnet's graph, and ``keras.ops.pad`` in ``ZeroPadShortcut`` recompiled the ResNets at every step; see
#: ``models.layers.GlobalMaxPool`` and ``Rescale``). On the CPU compiling did not pay for training
#: (``benchmarks/README.md``); no GPU has measured it. A model joins this list once ``benchmarks/gpu_check.py``
#: shows that it pays there.
AUTO_COMPILE_MODELS: frozenset = frozenset()


def _compiled_forward(model, config: TrainConfig, device: str):
    auto = config.compile == "auto" and device != "cpu" and config.model in AUTO_COMPILE_MODELS
    if config.compile == "on" or auto:
        try:
            dynamo_friendly_signatures(model)
            return backend.torch().compile(model)
        except Exception as e:  # noqa: BLE001 - any failure means: run eagerly
            warnings.warn(
                f"torch.compile failed ({type(e).__name__}: {e}); training without compilation.", stacklevel=2
            )
    return model


class _Run:
    """State of one training run: the model, optimizer, input pipeline and bookkeeping."""

    def __init__(self, dataset, config: TrainConfig, out_dir: Path, progress: bool):
        self.torch = backend.torch()
        self.dataset = dataset
        self.config = config
        self.out_dir = out_dir
        self.progress = progress
        self.device = choose_device(config)
        self.autocast_dtype = autocast_dtype(config, self.device)
        self.history: list[dict] = []
        self.epoch = 0
        self.global_step = 0
        self.train_seconds = 0.0
        self.elapsed_before = 0.0
        self.t_start = time.perf_counter()
        self.resume_backbone = None  # the checkpoint's backbone record when resuming
        self.backbone = None  # BackboneBuild.info of an ImageNet backbone, else None
        self.phases = None  # its PhasePlan
        self.lr_factor = 1.0  # the phase's learning-rate multiplier

    def build(self):
        cfg = self.config
        self.model, self.mean, self.backbone = _build_model(self.dataset, cfg, self.resume_backbone)
        self.progressive = ProgressiveResize(self.model, cfg.progressive_size, cfg.progressive_epochs)
        self.progressive.check_model(int(self.dataset.input_shape[-1]), self.device)
        self.channels_last = relay_kernels(self.model, cfg, self.device, self.autocast_dtype)
        self.optimizer = make_optimizer(self.model, cfg)
        if self.backbone is not None:
            from cifarkit.models.backbones import backbone_of

            split_backbone_groups(self.optimizer, backbone_of(self.model))
            self.phases = phase_plan(cfg, self.backbone)
            self.backbone["trainable_params"] = trainable_params_per_phase(self.model, self.phases)
        self.lookahead = None
        self.pipeline = _build_pipeline(self.dataset, cfg, self.mean, self.device)
        self.steps_per_epoch = len(self.pipeline)
        self.lrs = lr_schedule_values(cfg, self.steps_per_epoch)
        self.step = TrainStep(
            self.model,
            self.optimizer,
            cfg,
            self.device,
            forward=_compiled_forward(self.model, cfg, self.device),
            autocast_dtype=self.autocast_dtype,
        )
        self.class_weights = None
        if cfg.class_weight == "balanced":
            self.class_weights = balanced_class_weights(self.dataset.y_train, int(self.dataset.num_classes))
            self.step.class_weights = self.torch.tensor(
                self.class_weights, dtype=self.torch.float32, device=self.device
            )
        self.transfer = transfer_weights(self.model, cfg.pretrained) if cfg.pretrained else None

    def whiten(self):
        from cifarkit.models import init_whitening, model_info

        rng = np.random.default_rng(self.config.seed)
        n = len(self.dataset.x_train)
        idx = np.sort(rng.choice(n, size=min(WHITENING_SAMPLE, n), replace=False))
        init_whitening(
            self.model,
            self.dataset.x_train[idx],
            eps=self.config.whiten_eps,
            layer_name=model_info(self.config.model)["whitening_layer"],
        )

    def start_lookahead(self):
        """Begin the lookahead average from the current variables (after whitening or loading)."""
        if self.config.lookahead_every and self.lookahead is None:
            total = self.steps_per_epoch * self.config.epochs
            self.lookahead = Lookahead(self.model, self.config.lookahead_every, total)

    def state(self) -> dict:
        """The checkpoint state (``checkpoint.run_state``), with a backbone's record so a resumption rebuilds it alike."""
        state = ckpt.run_state(self)
        if self.backbone is not None:
            state["backbone"] = dict(self.backbone)
        return state

    def save_checkpoint(self) -> dict:
        state = self.state()
        ckpt.save_torch(state, self.out_dir / ckpt.CHECKPOINT_NAME)
        return state

    def enter_phase(self, epoch: int) -> str | None:
        """Freeze or unfreeze a backbone for ``epoch`` and set the phase's learning-rate factor."""
        if self.phases is None:
            return None
        phase = self.phases.phase(epoch)
        apply_phase(self.model, self.optimizer, self.phases, phase)
        self.lr_factor = self.phases.lr_multiplier(epoch)
        return phase

    # ---- one epoch
    def run_epoch(self) -> dict:
        epoch = self.epoch + 1
        freeze_groups_after(self.optimizer, epoch)
        phase = self.enter_phase(epoch)
        start = time.perf_counter()
        with self.progressive.during(epoch):
            loss_sum, correct, seen, lr = self._train_batches(epoch)
        if self.lookahead is not None and epoch == self.config.epochs:
            self.lookahead.finish()  # the model ends at the slow average
        if self.device != "cpu":
            self.torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        self.train_seconds += seconds
        evaluated = self._evaluate_epoch()
        record = {
            "epoch": epoch,
            "train_loss_aug": loss_sum / seen,
            "train_acc_aug": correct / seen,
            "val_loss": evaluated.pop("val_loss"),
            "val_acc": evaluated.pop("val_acc"),
            "lr": lr,
            "epoch_seconds": seconds,
            "images_per_sec": seen / seconds,
        }
        if phase is not None:
            record["phase"] = phase
        if self.progressive.epochs:
            side = self.progressive.size if self.progressive.applies(epoch) else int(self.dataset.input_shape[0])
            record["image_size"] = side
        val = evaluated.pop("_val_text")
        record.update(evaluated)  # test monitor (benchmarks only) and eval_seconds
        shown = progress_epoch(epoch, self.config.epochs) if self.progress else 0
        if self.progress and not shown and self.history:  # a jump of the lr (> 2x) or a new phase gets its line
            before = self.history[-1]
            shown = int(before.get("phase") != record.get("phase") or not 0.5 <= lr / max(before["lr"], 1e-12) <= 2)
        if shown:  # a line per epoch (of a long run, some epochs): readable in a console and in a report
            what = f" ({phase}{f', lr x{self.lr_factor:g}' if self.lr_factor != 1 else ''})" if phase else ""
            print(
                f"epoch {epoch}/{self.config.epochs}{what}: loss {record['train_loss_aug']:.4f}, "
                f"acc (augmented) {record['train_acc_aug']:.3f}, {val}; {seconds:.1f} s, "
                f"{record['images_per_sec']:,.0f} img/s",
                flush=True,
            )
        if shown == 2:
            print(
                f"(from here a line every {progress_stride(self.config.epochs)} epochs, where the learning rate "
                f"changes more than twofold and for the last {PROGRESS_EDGE}; every epoch is in history.csv)",
                flush=True,
            )
        self.epoch = epoch
        self.history.append(record)
        return record

    def _train_batches(self, epoch: int):
        torch = self.torch
        loss_sum, correct, seen, lr = 0.0, 0, 0, 0.0
        reduce = self.progressive.applies(epoch)
        for batch, (xb, yb) in enumerate(self.pipeline.epoch(epoch - 1), start=1):
            lr = float(self.lrs[self.global_step]) * self.lr_factor
            if isinstance(xb, torch.Tensor):  # the device pipeline's batches are on the device already
                x, y = xb, yb
            else:
                x = torch.from_numpy(xb).to(self.device, non_blocking=True)
                y = torch.from_numpy(yb).to(self.device, non_blocking=True)
            if reduce:
                x = self.progressive(x)
            loss, logits = self.step(x, y, lr)
            loss_value = float(loss.detach())
            if not math.isfinite(loss_value):
                self.diverged(epoch, batch, lr, loss_value)
            hard = y if y.ndim == 1 else y.argmax(1)
            correct += int((logits.detach().argmax(1) == hard).sum())
            loss_sum += loss_value * len(xb)
            seen += len(xb)
            self.global_step += 1
            if self.lookahead is not None:
                self.lookahead.update(self.global_step)
        return loss_sum, correct, seen, lr

    def _evaluate_epoch(self) -> dict:
        start = time.perf_counter()
        val_loss, val_acc, _ = self.evaluate(self.dataset.x_val, self.dataset.y_val)
        out = {"val_loss": val_loss, "val_acc": val_acc}
        if self.config.eval_test_every_epoch:
            test_loss, test_acc, _ = self.evaluate(self.dataset.x_test, self.dataset.y_test)
            out.update(
                test_loss_monitor=test_loss, test_acc_monitor=test_acc, train_seconds_cumulative=self.train_seconds
            )
        out["eval_seconds"] = time.perf_counter() - start
        out["_val_text"] = (
            f"validation loss {val_loss:.4f}, accuracy {val_acc:.3f}" if val_loss is not None else "no validation split"
        )
        return out

    def evaluate(self, x, y):
        # In float32 even when training autocasts: recorded metrics then match what the saved model gives
        # anywhere (04_evaluate, keras.saving.load_model), whatever the machine's precision.
        return evaluate_model(self.model, x, y, self.config.eval_batch_size, device=self.device)

    def diverged(self, epoch: int, batch: int, lr: float, loss_value: float):
        path = self.out_dir / ckpt.NAN_CHECKPOINT_NAME
        state = dict(self.last_good)
        state["diverged_at"] = {
            "epoch": epoch,
            "batch": batch,
            "lr": lr,
            "loss": repr(loss_value),
            "global_step": self.global_step,
        }
        ckpt.save_torch(state, path)
        cfg = self.config
        suggestion = cfg.lr / 10
        last = f"end of epoch {self.last_good['epoch']}" if self.last_good["epoch"] else "the initial weights"
        raise TrainingDivergedError(
            f"Training diverged: the loss became {loss_value} at epoch {epoch}, batch {batch} of "
            f"{self.steps_per_epoch} (learning rate {lr:.4g}; base lr {cfg.lr:g} at batch {cfg.base_batch_size}, "
            f"batch size {cfg.batch_size}). The last good state ({last}) is saved in {path}. "
            f"Try a lower learning rate, e.g. --lr {suggestion:g} (lr={suggestion:g}), a longer warmup "
            f"(warmup_epochs), or check the data for corrupt images."
        )


def _check_dataset(dataset) -> None:
    needed = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test", "num_classes", "input_shape", "channel_stats")
    missing = [a for a in needed if not hasattr(dataset, a)]
    if missing:
        raise ValueError(
            f"train() needs a cifarkit.data.Dataset (from cifarkit.data.load_dataset); the object given "
            f"({type(dataset).__name__}) lacks {', '.join(missing)}."
        )
    if len(dataset.x_train) == 0:
        raise ValueError("The training split is empty; load more data or lower val_fraction/test_fraction.")


def _pipeline_state_for(run: _Run, state: dict, path: Path) -> dict:
    """``state``, checked against the input pipeline this run built (the checkpoint's pipeline state replaced if moot).

    With ``pipeline="auto"`` the pipeline follows the device (torch on CUDA,
    numpy on CPU), and a CUDA generator's stream differs from a CPU one's: an
    unfinished run continues only with the pipeline and kind of device it
    started on (a clear error otherwise). A finished run has nothing left to
    draw, so it reopens anywhere (a GPU run's results on a CPU machine).
    """
    saved = state.get("pipeline") or {}
    saved_kind = "torch" if saved.get("pipeline") == "torch" else "numpy"
    kind = getattr(run.pipeline, "kind", "numpy")
    saved_where = saved.get("device_type", "cpu") if saved_kind == "torch" else "host"
    where = run.pipeline.device.type if kind == "torch" else "host"
    if (saved_kind, saved_where) == (kind, where):
        return state
    if int(state.get("epoch", 0)) >= run.config.epochs or state.get("stopped_early"):
        return {**state, "pipeline": run.pipeline.state_dict()}
    raise ValueError(
        f"The checkpoint {path} was written by the {saved_kind} input pipeline ({saved_where}), but this run "
        f"(device {run.device!r}, pipeline={run.config.pipeline!r}) uses the {kind} pipeline ({where}), which "
        "draws other batches. Resume on the device the run started on, or start it over (resume=False)."
    )


# --------------------------------------------------------------------------- train()
def _open_out_dir(out_dir: Path, config: TrainConfig, dataset, resume: bool):
    """The run's file paths and the checkpoint to resume from (None to start fresh; files of an old run removed)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = ckpt.run_paths(out_dir)
    state = None
    if resume and paths["checkpoint"].exists():
        state = ckpt.load_checkpoint(paths["checkpoint"])
        ckpt.check_resumable(state, config, dataset, paths["checkpoint"])
    elif not resume:
        for name in ("checkpoint", "metrics", "model"):
            paths[name].unlink(missing_ok=True)
        (out_dir / ckpt.NAN_CHECKPOINT_NAME).unlink(missing_ok=True)
    return paths, state


@contextlib.contextmanager
def _deterministic(config: TrainConfig, state: dict | None):
    """``torch.use_deterministic_algorithms`` for the run when asked for, restored afterwards."""
    torch = backend.torch()
    before = torch.are_deterministic_algorithms_enabled()
    if config.deterministic:
        torch.use_deterministic_algorithms(True)
        if torch.cuda.is_available():
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        if state is not None and state.get("torch_threads") not in (None, torch.get_num_threads()):
            warnings.warn(
                f"Resuming a deterministic run with {torch.get_num_threads()} CPU threads; the checkpoint was written "
                f"with {state['torch_threads']}. Results will not match an uninterrupted run bit for bit; "
                f"call torch.set_num_threads({state['torch_threads']}) first to reproduce them exactly.",
                stacklevel=2,
            )
    try:
        yield
    finally:
        if config.deterministic:
            torch.use_deterministic_algorithms(before)


def _train_epochs(run: _Run, paths: dict, state: dict | None, callbacks) -> bool:
    """Run the remaining epochs, checkpointing after each; True when a callback stopped training early."""
    run.last_good = ckpt.to_cpu(run.state())
    stopped = bool(state.get("stopped_early")) if state is not None else False
    while run.epoch < run.config.epochs and not stopped:
        record = run.run_epoch()
        run.last_good = run.save_checkpoint()
        ckpt.write_history(run.out_dir, run.history)
        for cb in callbacks or ():
            if cb(dict(record)) is True:
                stopped = True
        if stopped:
            run.last_good["stopped_early"] = True
            ckpt.save_torch(run.last_good, paths["checkpoint"])
    ckpt.write_history(run.out_dir, run.history)
    return stopped


def train(
    dataset,
    config: TrainConfig,
    out_dir,
    *,
    resume: bool = True,
    progress: bool = True,
    callbacks=None,
    run_info: dict | None = None,
) -> TrainResult:
    """Train ``config.model`` on ``dataset`` and write the run to ``out_dir``.

    Args:
        dataset: a :class:`cifarkit.data.Dataset` (uint8 NHWC splits).
        config: a :class:`~cifarkit.training.TrainConfig` (see ``resolve_recipe``).
        out_dir: run folder (created). See the module docstring for its files.
        resume: continue from ``out_dir/checkpoint.pt`` when it exists and was
            written with the same config and data; a finished run returns its
            final state at once. ``False`` starts over and overwrites the folder's files.
        progress: print one line per epoch (losses, accuracies, seconds, images per second); a run of more than
            :data:`PROGRESS_ALL_EPOCHS` epochs prints its first and last epochs and every k-th one
            (:func:`progress_epoch`).
        callbacks: callables called as ``cb(record)`` with each epoch's history
            row after the checkpoint is written; one returning ``True`` stops
            training after that epoch (``metrics["stopped_early"]``).
        run_info: extra JSON-serializable provenance stored as ``metrics["run_info"]``.

    Returns:
        A :class:`TrainResult`.

    Raises:
        ValueError: invalid config or data, or a checkpoint from another config.
        TrainingDivergedError: the loss became NaN or infinite.
    """
    t_start = time.perf_counter()
    backend.torch()
    if not isinstance(config, TrainConfig):
        raise ValueError(
            f"config must be a TrainConfig (see cifarkit.training.resolve_recipe), got {type(config).__name__}."
        )
    config.validate()
    _check_dataset(dataset)
    check_progressive(config, dataset.input_shape)
    out_dir = Path(out_dir)
    paths, state = _open_out_dir(out_dir, config, dataset, resume)
    run = _Run(dataset, config, out_dir, progress)
    run.t_start = t_start
    run.resume_backbone = state.get("backbone") if state is not None else None
    with _deterministic(config, state), cuda_settings(config, run.device), backend.keras().device(run.device):
        run.build()
        if state is not None:
            state = _pipeline_state_for(run, state, paths["checkpoint"])
            ckpt.restore_run(run, state)
        elif config.whiten_init and not config.pretrained:
            run.whiten()
        run.start_lookahead()
        finished = run.epoch >= config.epochs or (state is not None and state.get("stopped_early"))
        metrics = read_json(paths["metrics"]) if finished and paths["model"].exists() else None
        if isinstance(metrics, dict):
            return TrainResult(run.model, run.history, metrics, out_dir, paths)
        stopped = _train_epochs(run, paths, state, callbacks)
        metrics = _finish(run, paths, stopped, run_info)
    return TrainResult(run.model, run.history, metrics, out_dir, paths)


def _backbone_record(run: _Run) -> dict | None:
    """``metrics["backbone"]``: the backbone's weights record, its phases and trainable parameters per phase."""
    if run.backbone is None:
        return None
    phases = [r.get("phase") for r in run.history]
    plan = run.phases
    return {
        **run.backbone,
        "pretrained": plan.pretrained,
        "freeze_epochs": int(run.config.freeze_epochs),
        "frozen_epochs": phases.count("frozen"),
        "unfrozen_epochs": len(phases) - phases.count("frozen"),
        "finetune_lr_factor": plan.lr_factor if plan.pretrained else None,
        "phases": plan.describe(run.config.epochs),
    }


def _finish(run: _Run, paths: dict, stopped: bool, run_info: dict | None) -> dict:
    """Save the model, evaluate once on test, and write ``metrics.json``."""
    from cifarkit.models import count_params

    model_path = paths["model"]
    tmp = model_path.with_name(f".{model_path.stem}.tmp-{os.getpid()}.keras")
    run.model.save(tmp)
    replace_file(tmp, model_path)
    ds = run.dataset
    last = run.history[-1] if run.history else {}
    if "val_acc" in last:
        val_loss, val_acc = last["val_loss"], last["val_acc"]  # the final weights' validation pass
    else:
        val_loss, val_acc, _ = run.evaluate(ds.x_val, ds.y_val)
    test_loss, test_acc, _ = run.evaluate(ds.x_test, ds.y_test)
    ips = [r["images_per_sec"] for r in run.history]
    images = sum(r["images_per_sec"] * r["epoch_seconds"] for r in run.history)
    metrics = {
        "model": run.config.model,
        "epochs": run.epoch,
        "epochs_planned": run.config.epochs,
        "stopped_early": stopped,
        "val_loss": val_loss,
        "val_acc": val_acc,
        "test_loss": test_loss,
        "test_acc": test_acc,
        "final_train_loss_aug": last.get("train_loss_aug"),
        "final_train_acc_aug": last.get("train_acc_aug"),
        "train_seconds": run.train_seconds,
        "total_seconds": run.elapsed_before + (time.perf_counter() - run.t_start),
        "images_per_sec_mean": images / run.train_seconds if run.train_seconds else None,
        "images_per_sec_peak": max(ips) if ips else None,
        "steps_per_epoch": run.steps_per_epoch,
        "peak_lr": run.config.peak_lr(),
        "params": {"trainable": count_params(run.model, trainable_only=True), "total": count_params(run.model)},
        "peak_rss_mib": peak_rss_mib(),
        "device": run.device,
        "torch_threads": run.torch.get_num_threads(),
        "mixed_precision": str(run.autocast_dtype).replace("torch.", "") if run.autocast_dtype else "off",
        "compiled": run.step.compiled,
        "channels_last": run.channels_last,
        "input_pipeline": getattr(run.pipeline, "kind", "numpy"),
        "config": run.config.to_dict(),
        "dataset": ds.to_dict() if hasattr(ds, "to_dict") else {},
        "versions": backend.versions(),
        "machine": hardware_info(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "run_info": run_info or {},
        "class_weights": [float(w) for w in run.class_weights] if run.class_weights is not None else None,
        "pretrained": run.transfer or {"path": None, "note": "trained from scratch (no pretrained weights given)"},
        "backbone": _backbone_record(run),
        "notes": "test_* is evaluated once after training and used for no decision; train_*_aug is measured on augmented batches.",
    }
    atomic_write_json(paths["metrics"], metrics)
    return metrics
