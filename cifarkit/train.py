"""Train a cifarkit model: a PyTorch training loop over a Keras model.

Why a torch loop: under the torch backend a Keras model is a
``torch.nn.Module``, so a plain loop (``zero_grad``, forward,
``F.cross_entropy``, ``backward``, a ``torch.optim`` step with foreach
kernels) trains it with nothing between the model and PyTorch, and gives full
control of checkpoints and RNG states. Measured on the project's 2-core CPU
(``benchmarks/results/throughput.json``), this step (:class:`TrainStep`) runs
at 93% of an identical raw PyTorch net for fastnet and 89% for resnet20 at
batch 256 (``benchmarks/results/backend.json`` compares ``model.fit``
variants). So :func:`train` requires ``KERAS_BACKEND=torch`` (the project
default, see :mod:`cifarkit.backend`).

What a run writes to ``out_dir``:
    ``checkpoint.pt``   after every epoch (atomically): weights with
                        batch-norm moving statistics and seed states, optimizer
                        state, schedule position, every RNG state (Python,
                        numpy, torch, input pipeline), history and config.
    ``history.json``/``history.csv``  one row per epoch (atomically).
    ``model.keras``     the final model (loads with ``keras.saving.load_model``
                        once ``cifarkit.models`` is imported).
    ``metrics.json``    final validation and test results, timings, hardware,
                        config, dataset provenance and library versions.
    ``nan_checkpoint.pt`` only if the loss diverged: the last good state.

History columns: ``train_loss_aug``/``train_acc_aug`` are measured on the
augmented training batches while the weights change (not a clean pass over the
training set); ``val_loss``/``val_acc`` on the validation split (held out from
the training data) at the end of the epoch; ``lr`` is the rate of the epoch's
last step. The test split is evaluated once, at the end, and is never used for
any choice. ``eval_test_every_epoch=True`` (benchmarks only) adds
``test_acc_monitor``/``test_loss_monitor`` per epoch for time-to-accuracy
curves; nothing reads them during training.

Devices: ``device="auto"`` uses CUDA when ``torch.cuda.is_available()``. Keras'
torch backend itself places variables on CUDA whenever it is available
(``keras.src.backend.torch.core.DEFAULT_DEVICE``, overridable with
``KERAS_TORCH_DEVICE``); :func:`train` builds and runs the model inside
``keras.device(...)`` so that ``device="cpu"`` keeps everything on the CPU even
on a GPU machine. On GPU: bf16 autocast (``mixed_precision``) and
``torch.compile`` (``compile``), with a warning and a fallback to eager mode
if compilation fails. On a CPU with native bf16 units (Intel AMX or
AVX512-BF16) ``mixed_precision="auto"`` also autocasts to bf16: on the
project's 2-core Xeon (AMX) a fastnet training step runs ~3x faster than in
float32, resnet20 ~1.7x (``benchmarks/bench_throughput.py``).

Reproducibility: ``config.seed`` seeds Python, numpy, torch and Keras
(``keras.utils.set_random_seed``) and the pipeline's own generator.
``deterministic=True`` also calls ``torch.use_deterministic_algorithms(True)``
(and sets ``CUBLAS_WORKSPACE_CONFIG`` on CUDA). The CPU thread count is left
alone: measured on the project's 2-core machine (torch 2.13, 2 threads),
repeated runs of simple_cnn and resnet20 in separate processes gave the same
losses to the last bit, and a run resumed after SIGKILL matches the
uninterrupted run exactly (``tests/test_train.py``). Results do change with
the number of threads (oneDNN splits its reductions by thread), so the thread
count is stored in the checkpoint and a deterministic run resumed with another
count warns.
"""

from __future__ import annotations

import contextlib
import dataclasses
import csv
import io
import json
import math
import os
import platform
import random
import resource
import sys
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from cifarkit import backend
from cifarkit.pipeline import Augment, TrainPipeline
from cifarkit.recipes import TrainConfig

CHECKPOINT_NAME = "checkpoint.pt"
NAN_CHECKPOINT_NAME = "nan_checkpoint.pt"
MODEL_NAME = "model.keras"
METRICS_NAME = "metrics.json"
HISTORY_JSON = "history.json"
HISTORY_CSV = "history.csv"
CHECKPOINT_FORMAT = 1
#: Settings that may differ between a checkpoint and the run resuming it (they change no result).
RESUME_IGNORED_KEYS = ("eval_batch_size",)
#: Images used to initialize fastnet's whitening layer (airbench uses 5000).
WHITENING_SAMPLE = 5000


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


# --------------------------------------------------------------------------- helpers


def _torch():
    if backend.name() != "torch":
        raise RuntimeError(
            f"cifarkit.train needs the PyTorch backend of Keras, but KERAS_BACKEND is {backend.name()!r}. "
            "Unset KERAS_BACKEND or set KERAS_BACKEND=torch before Python starts."
        )
    import torch

    return torch


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _atomic_write_json(path: Path, obj) -> None:
    _atomic_write_bytes(path, (json.dumps(obj, indent=2, default=_json_default) + "\n").encode())


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    return str(o)


def _atomic_torch_save(obj, path: Path) -> None:
    torch = _torch()
    buf = io.BytesIO()
    torch.save(obj, buf)
    _atomic_write_bytes(path, buf.getvalue())


def write_history(out_dir: Path, history: list) -> None:
    """Write ``history.json`` and ``history.csv`` atomically."""
    _atomic_write_json(out_dir / HISTORY_JSON, history)
    columns: list[str] = []
    for row in history:
        columns += [k for k in row if k not in columns]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: repr(v) if isinstance(v, float) else v for k, v in row.items()})
    _atomic_write_bytes(out_dir / HISTORY_CSV, text.getvalue().encode())


def lr_schedule_values(config: TrainConfig, steps_per_epoch: int) -> np.ndarray:
    """Learning rate of every training step (``epochs * steps_per_epoch`` values).

    The peak is ``config.peak_lr()``. A linear warmup over ``warmup_epochs``
    rises from ``warmup_start_factor`` of the peak to the peak at its last
    step; then ``step`` multiplies by ``gamma`` from each milestone (a fraction
    of all steps) on, ``cosine`` follows a half cosine to
    ``final_lr_factor`` of the peak, ``onecycle`` falls linearly to it, and
    ``constant`` stays at the peak. Warmup is cut to the length of training.
    """
    if steps_per_epoch < 1:
        raise ValueError(f"steps_per_epoch must be >= 1, got {steps_per_epoch}.")
    total = config.epochs * steps_per_epoch
    peak = config.peak_lr()
    steps = np.arange(total, dtype=np.float64)
    warm = min(int(round(config.warmup_epochs * steps_per_epoch)), total)
    factor = np.ones(total, dtype=np.float64)
    rest = total - warm
    t = (steps[warm:] - warm) / max(rest, 1)  # 0 at the first step after warmup, < 1 at the last
    final = config.final_lr_factor
    if config.schedule == "step":
        for m in config.milestones:
            factor[steps >= round(m * total)] *= config.gamma
    elif config.schedule == "cosine":
        factor[warm:] = final + (1.0 - final) * 0.5 * (1.0 + np.cos(np.pi * t))
    elif config.schedule == "onecycle":
        factor[warm:] = 1.0 - (1.0 - final) * t
    if warm:
        start = config.warmup_start_factor
        ramp = start + (1.0 - start) * (steps[:warm] + 1) / warm
        factor[:warm] = np.minimum(factor[:warm], ramp) if config.schedule == "step" else ramp
    return peak * factor


def _choose_device(config: TrainConfig) -> str:
    torch = _torch()
    if config.device == "cpu":
        return "cpu"
    if config.device == "gpu":
        if not torch.cuda.is_available():
            raise ValueError(
                "device='gpu' was requested but PyTorch sees no CUDA GPU "
                f"(torch {torch.__version__}, torch.cuda.is_available() is False). "
                "Use device='auto' or 'cpu', or install a CUDA build of PyTorch."
            )
        return "cuda"
    return "cuda" if torch.cuda.is_available() else "cpu"


def _autocast_dtype(config: TrainConfig, device: str):
    torch = _torch()
    mp = config.mixed_precision
    if mp == "off" or (mp == "auto" and device == "cpu" and not backend.cpu_native_bf16()):
        return None
    if mp == "fp16" and device == "cpu":
        raise ValueError("mixed_precision='fp16' needs a GPU; on CPU use 'bf16' or 'off'.")
    return torch.float16 if mp == "fp16" else torch.bfloat16


def _autocast(device: str, dtype):
    """``torch.autocast`` to ``dtype`` on the device's type, or a no-op for ``dtype=None``."""
    if dtype is None:
        return contextlib.nullcontext()
    return _torch().autocast(device_type=device.split(":")[0], dtype=dtype)


def _model_layers(model) -> list:
    """``model`` and every layer inside it, nested models included (as :func:`param_groups` walks them)."""
    return list(model._flatten_layers(include_self=True))


@contextlib.contextmanager
def _native_dtypes(layers_: list, dtype):
    """Let activations keep autocast's dtype from layer to layer.

    A Keras layer casts its floating inputs to its compute dtype (float32)
    before ``call``. Under ``torch.autocast`` to bf16 that turns every
    convolution's bf16 output back into float32, and the next convolution
    casts it to bf16 again: on the project's 2-core CPU these copies took a
    third of fastnet's bf16 step. Inside this context the layers take their
    inputs as they come (``Layer._convert_input_args``, Keras' own switch for
    it); weights stay float32 and autocast still decides each op's precision.
    A no-op for ``dtype=None``.
    """
    if dtype is None:
        yield
        return
    saved = [getattr(layer, "_convert_input_args", True) for layer in layers_]
    for layer in layers_:
        layer._convert_input_args = False
    try:
        yield
    finally:
        for layer, value in zip(layers_, saved):
            layer._convert_input_args = value


def predict_logits(model, x: np.ndarray, batch_size: int = 512, *, device: str | None = None, autocast_dtype=None) -> np.ndarray:
    """Logits of ``model`` for uint8 (or float) NHWC images, in inference mode, without gradients.

    Returns:
        float32 ``(N, num_classes)``.
    """
    torch = _torch()
    device = device or _model_device(model)
    was_training = getattr(model, "training", False)
    model.eval()
    layers_ = _model_layers(model) if autocast_dtype is not None else []
    outs = []
    try:
        with torch.no_grad():
            for start in range(0, len(x), batch_size):
                xb = torch.from_numpy(np.ascontiguousarray(x[start : start + batch_size])).to(device, non_blocking=True)
                with _autocast(device, autocast_dtype), _native_dtypes(layers_, autocast_dtype):
                    logits = model(xb, training=False)
                outs.append(logits.float().cpu())
    finally:
        model.train(was_training)
    if not outs:
        return np.zeros((0, 0), dtype=np.float32)
    return torch.cat(outs).numpy()


def evaluate_model(model, x: np.ndarray, y: np.ndarray, batch_size: int = 512, **kwargs):
    """Mean cross-entropy, accuracy and logits of ``model`` on ``(x, y)``.

    Returns:
        ``(loss, accuracy, logits)``; loss and accuracy are None for an empty split.
    """
    torch = _torch()
    import torch.nn.functional as F

    if len(x) == 0:
        return None, None, np.zeros((0, 0), dtype=np.float32)
    logits = predict_logits(model, x, batch_size, **kwargs)
    labels = torch.from_numpy(np.asarray(y, dtype=np.int64))
    t = torch.from_numpy(logits)
    loss = float(F.cross_entropy(t, labels))
    acc = float((t.argmax(1) == labels).double().mean())
    return loss, acc, logits


def _model_device(model) -> str:
    for v in model.variables:
        return str(v.value.device)
    return "cpu"


def count_params(model) -> dict:
    """Trainable and total parameter counts (moving statistics count as non-trainable)."""
    trainable = int(sum(int(np.prod(v.shape)) for v in model.trainable_weights))
    total = int(sum(int(np.prod(v.shape)) for v in model.weights))
    return {"trainable": trainable, "total": total}


WHITEN_LAYER = "stem_conv"


def _whitening_layer(model, config: TrainConfig):
    """fastnet's whitening convolution when ``config`` initializes it, else None."""
    if not config.whiten_init:
        return None
    try:
        return model.get_layer(WHITEN_LAYER)
    except ValueError:
        return None


def param_groups(model, config: TrainConfig) -> list[dict]:
    """The trainable variables of ``model`` in ``torch.optim`` parameter groups.

    Group ``"weights"`` holds everything at the scheduled learning rate. With
    ``bn_bias_lr_scale != 1`` the batch-norm shifts (and fastnet's whitening
    bias) form group ``"biases"`` whose lr is scaled by it and whose L2
    coefficient is divided by it, so their decay per step stays
    ``lr * weight_decay``. With ``whiten_bias_epochs`` the whitening bias has
    its own group ``"whiten_bias"`` with ``until_epoch``, which
    :func:`freeze_groups_after` stops updating after that many epochs. Each
    group carries ``lr_scale`` (read by :class:`TrainStep`) and ``name``.
    """
    keras = backend.keras()
    l2 = config.weight_decay if config.weight_decay_mode == "l2" else 0.0
    scale = float(config.bn_bias_lr_scale)
    biases = set()
    if scale != 1.0:
        for layer in model._flatten_layers(include_self=False):
            if isinstance(layer, keras.layers.BatchNormalization) and layer.center and layer.beta.trainable:
                biases.add(id(layer.beta))
    whiten = _whitening_layer(model, config)
    whiten_bias = id(whiten.bias) if whiten is not None and whiten.use_bias and whiten.bias.trainable else None
    if whiten_bias is not None and scale != 1.0:
        biases.add(whiten_bias)
    groups = {"weights": [], "biases": [], "whiten_bias": []}
    for v in model.trainable_variables:
        if config.whiten_bias_epochs and id(v) == whiten_bias:
            groups["whiten_bias"].append(v.value)
        elif id(v) in biases:
            groups["biases"].append(v.value)
        else:
            groups["weights"].append(v.value)
    out = []
    for name, params in groups.items():
        if not params:
            continue
        group_scale = 1.0 if name == "weights" else scale
        group = {"params": params, "name": name, "lr_scale": group_scale, "weight_decay": l2 / group_scale}
        if name == "whiten_bias":
            group["until_epoch"] = int(config.whiten_bias_epochs)
        out.append(group)
    return out


def make_optimizer(model, config: TrainConfig):
    """The ``torch.optim`` optimizer of ``config`` over the model's trainable variables (see :func:`param_groups`)."""
    torch = _torch()
    groups = param_groups(model, config)
    lr = config.peak_lr()
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            groups, lr=lr, momentum=config.momentum, nesterov=config.nesterov and config.momentum > 0, foreach=True,
        )
    if config.weight_decay_mode == "decoupled":
        for g in groups:
            g["weight_decay"] = config.weight_decay / g["lr_scale"]
        return torch.optim.AdamW(groups, lr=lr, betas=(config.momentum, 0.999), foreach=True)
    return torch.optim.Adam(groups, lr=lr, betas=(config.momentum, 0.999), foreach=True)


def freeze_groups_after(optimizer, epoch: int) -> None:
    """Stop updating parameter groups whose ``until_epoch`` lies before ``epoch`` (1-based)."""
    for group in optimizer.param_groups:
        until = group.get("until_epoch")
        if until and epoch > until:
            group["lr_scale"] = 0.0


class Lookahead:
    """airbench's lookahead: a slow average of all float variables, copied back into the model.

    Every ``every`` steps, ``update(step)`` moves the average toward the
    current variables by ``1 - decay`` with ``decay = 0.95**every *
    (step / total_steps)**3`` and then sets the variables to the average
    (so early in training it follows the model; late it holds it back).
    ``finish()`` copies the average into the model at the end of training.
    Batch-norm moving statistics take part, as in airbench.
    """

    def __init__(self, model, every: int, total_steps: int):
        torch = _torch()
        self.every = int(every)
        self.total_steps = max(int(total_steps), 1)
        self.tensors = [v.value for v in model.variables if v.value.dtype.is_floating_point]
        with torch.no_grad():
            self.average = [t.detach().clone() for t in self.tensors]

    def update(self, step: int, decay: float | None = None) -> None:
        torch = _torch()
        if decay is None:
            if step % self.every:
                return
            decay = 0.95**self.every * (min(step, self.total_steps) / self.total_steps) ** 3
        with torch.no_grad():
            torch._foreach_lerp_(self.average, [t.detach() for t in self.tensors], 1.0 - decay)
            torch._foreach_copy_(self.tensors, self.average)

    def finish(self) -> None:
        self.update(self.total_steps, decay=1.0)

    def state_dict(self) -> list:
        return [t.detach().to("cpu", copy=True) for t in self.average]

    def load_state_dict(self, state: list) -> None:
        torch = _torch()
        if len(state) != len(self.average):
            raise ValueError("The checkpoint's lookahead average does not match the model's variables.")
        with torch.no_grad():
            for t, value in zip(self.average, state):
                t.copy_(value.to(t.device, t.dtype))


class TrainStep:
    """One optimization step of a Keras model with a ``torch.optim`` optimizer.

    ``step(x, y, lr)`` sets the learning rate, runs forward (under autocast
    when configured), cross-entropy with label smoothing (``y``: int labels or
    probability rows), backward and the optimizer step. A non-finite loss
    stops before ``backward``, so the weights stay as they were.

    Returns ``(loss, logits)`` as tensors (the loss as a 0-d float32 tensor).
    Benchmarks time this same object (``benchmarks/bench_throughput.py``).
    """

    def __init__(self, model, optimizer, config: TrainConfig, device: str = "cpu", forward=None, autocast_dtype=None):
        torch = _torch()
        self.torch = torch
        self.model = model
        self.forward = model if forward is None else forward
        self.optimizer = optimizer
        self.device = device
        self.label_smoothing = float(config.label_smoothing)
        self.autocast_dtype = autocast_dtype
        self.decoupled_sgd = config.weight_decay_mode == "decoupled" and config.optimizer == "sgd" and config.weight_decay > 0
        self.weight_decay = float(config.weight_decay)
        self.scaler = torch.amp.GradScaler("cuda") if autocast_dtype == torch.float16 else None
        self.compiled = self.forward is not model
        self._first_call = True
        self.class_weights = None  # a float32 tensor of per-class loss weights, or None
        self._layers = _model_layers(model) if autocast_dtype is not None else []

    def _forward(self, x):
        if not (self._first_call and self.compiled):
            return self.forward(x, training=True)
        # torch.compile fails lazily, at the first call: fall back to eager mode then.
        self._first_call = False
        try:
            return self.forward(x, training=True)
        except Exception as e:  # noqa: BLE001
            warnings.warn(f"torch.compile failed at the first step ({type(e).__name__}: {e}); training without compilation.")
            self.forward = self.model
            self.compiled = False
            self.optimizer.zero_grad(set_to_none=True)
            return self.model(x, training=True)

    def __call__(self, x, y, lr: float):
        torch = self.torch
        import torch.nn.functional as F

        for group in self.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        self.optimizer.zero_grad(set_to_none=True)
        with _autocast(self.device, self.autocast_dtype), _native_dtypes(self._layers, self.autocast_dtype):
            logits = self._forward(x)
        loss = F.cross_entropy(logits.float(), y, weight=self.class_weights, label_smoothing=self.label_smoothing)
        if not torch.isfinite(loss):
            return loss, logits
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
        else:
            loss.backward()
        if self.decoupled_sgd:
            with torch.no_grad():
                for group in self.optimizer.param_groups:
                    if group.get("lr_scale", 1.0) > 0:
                        torch._foreach_mul_(group["params"], 1.0 - lr * self.weight_decay)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        return loss, logits


def _rng_state() -> dict:
    torch = _torch()
    np_state = np.random.get_state(legacy=False)
    state = {
        "python": random.getstate(),
        "numpy": {
            "bit_generator": np_state["bit_generator"],
            "key": [int(k) for k in np_state["state"]["key"]],
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch = _torch()
    random.setstate(state["python"])
    s = state["numpy"]
    np.random.set_state(
        {
            "bit_generator": s["bit_generator"],
            "state": {"key": np.asarray(s["key"], dtype=np.uint32), "pos": s["pos"]},
            "has_gauss": s["has_gauss"],
            "gauss": s["gauss"],
        }
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _dataset_fingerprint(dataset) -> dict:
    """Provenance fields that must match for a checkpoint to be resumed on this data."""
    info = dataset.to_dict() if hasattr(dataset, "to_dict") else {}
    keep = ("source", "source_sha256", "image_size", "class_names", "counts", "val_fraction", "test_fraction", "seed", "subset")
    fp = {k: info[k] for k in keep if k in info}
    fp["train_shape"] = list(dataset.x_train.shape)
    return json.loads(json.dumps(fp, default=_json_default))


def _default_values() -> list:
    out = []
    for f in dataclasses.fields(TrainConfig):
        if f.default is not dataclasses.MISSING:
            value = f.default
        else:
            value = f.default_factory()
        out.append(json.loads(json.dumps(list(value) if isinstance(value, tuple) else value)))
    return out


def balanced_class_weights(y: np.ndarray, num_classes: int) -> np.ndarray:
    """scikit-learn's "balanced" weights: ``n / (num_classes * count_k)``; a class absent from ``y`` gets weight 0."""
    counts = np.bincount(np.asarray(y, dtype=np.int64), minlength=num_classes).astype(np.float64)
    weights = np.zeros(num_classes)
    present = counts > 0
    weights[present] = counts.sum() / (num_classes * counts[present])
    return weights


def transfer_weights(model, path) -> dict:
    """Copy the weights of a saved model's layers into ``model`` by layer name where all shapes agree.

    Args:
        model: the freshly built Keras model.
        path: a ``.keras`` model file or a ``.weights.h5`` file of a model of the
            same architecture (a different class count is fine: the head is skipped).

    Returns:
        ``{"path", "layers_copied", "layers_skipped", "weights_copied"}``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file shares no layer with ``model`` (another architecture).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"Pretrained weights not found: {path}. Give the path of a .keras model or .weights.h5 file on this "
            "machine (cifarkit downloads nothing), or leave pretrained empty to train from scratch."
        )
    keras = backend.keras()
    import cifarkit.models  # noqa: F401  (registers the custom layers)

    if path.name.endswith(".weights.h5"):
        source = keras.models.clone_model(model)
        source.load_weights(str(path), skip_mismatch=True)
    else:
        source = keras.saving.load_model(str(path), compile=False)
    src_layers = {layer.name: layer for layer in source.layers}
    copied, skipped, n_weights = [], [], 0
    for layer in model.layers:
        src = src_layers.get(layer.name)
        if src is None or not layer.weights:
            continue
        new_w, old_w = layer.get_weights(), src.get_weights()
        if len(new_w) == len(old_w) and all(a.shape == b.shape for a, b in zip(new_w, old_w)):
            if type(layer).__name__ == "Preprocess":
                continue  # normalization comes from this data set's own statistics
            layer.set_weights(old_w)
            copied.append(layer.name)
            n_weights += sum(int(w.size) for w in old_w)
        else:
            skipped.append(layer.name)
    if not copied:
        raise ValueError(
            f"No layer of {path} matches the model {model.name!r} by name and shape; the file holds another "
            "architecture. Pretrained weights must come from the same registered model."
        )
    return {"path": str(path.resolve()), "layers_copied": len(copied), "layers_skipped": skipped, "weights_copied": n_weights}


def _diff_keys(a: dict, b: dict, ignore=()) -> list[str]:
    keys = sorted((set(a) | set(b)) - set(ignore))
    return [k for k in keys if a.get(k) != b.get(k)]


def load_checkpoint(path) -> dict:
    """Read a checkpoint written by :func:`train` (safe loading: tensors and plain Python values only)."""
    torch = _torch()
    return torch.load(Path(path), map_location="cpu", weights_only=True)


def _machine() -> dict:
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()}


def _peak_rss_mib() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024, 1)


# --------------------------------------------------------------------------- the run


class _Run:
    """State of one training run (the model, optimizer, pipeline and bookkeeping)."""

    def __init__(self, dataset, config: TrainConfig, out_dir: Path, progress: bool):
        self.torch = _torch()
        self.dataset = dataset
        self.config = config
        self.out_dir = out_dir
        self.progress = progress
        self.device = _choose_device(config)
        self.autocast_dtype = _autocast_dtype(config, self.device)
        self.history: list[dict] = []
        self.epoch = 0
        self.global_step = 0
        self.train_seconds = 0.0
        self.elapsed_before = 0.0

    # ---- setup
    def build(self):
        from cifarkit.models import build_model

        keras = backend.keras()
        keras.utils.set_random_seed(self.config.seed)
        mean, std = self.dataset.channel_stats()
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self.model = build_model(
            self.config.model,
            input_shape=tuple(self.dataset.input_shape),
            num_classes=int(self.dataset.num_classes),
            mean=self.mean,
            std=self.std,
            **self.config.model_options,
        )
        self.model.train()
        whiten = _whitening_layer(self.model, self.config)
        if whiten is not None and self.config.freeze_whitening:
            whiten.kernel.trainable = False
        self.optimizer = make_optimizer(self.model, self.config)
        self.lookahead = None
        self.pipeline = TrainPipeline(
            self.dataset.x_train,
            self.dataset.y_train,
            self.config.batch_size,
            num_classes=int(self.dataset.num_classes),
            augment=Augment(
                crop=self.config.crop,
                pad_mode=self.config.pad_mode,
                flip=self.config.flip,
                alternate_flip=self.config.alternate_flip,
                cutout=self.config.cutout,
                cutout_fill=tuple(255.0 * m for m in self.mean),
                mixup=self.config.mixup,
                cutmix=self.config.cutmix,
            ),
            shuffle=True,
            drop_last=True,
            seed=self.config.seed,
        )
        self.steps_per_epoch = len(self.pipeline)
        self.lrs = lr_schedule_values(self.config, self.steps_per_epoch)
        forward = self.model
        if self.config.compile == "on" or (self.config.compile == "auto" and self.device != "cpu"):
            try:
                forward = self.torch.compile(self.model)
            except Exception as e:  # noqa: BLE001 - any failure means: run eagerly
                warnings.warn(f"torch.compile failed ({type(e).__name__}: {e}); training without compilation.")
        self.step = TrainStep(self.model, self.optimizer, self.config, self.device, forward=forward, autocast_dtype=self.autocast_dtype)
        self.class_weights = None
        if self.config.class_weight == "balanced":
            self.class_weights = balanced_class_weights(self.dataset.y_train, int(self.dataset.num_classes))
            self.step.class_weights = self.torch.tensor(self.class_weights, dtype=self.torch.float32, device=self.device)
        self.transfer = None
        if self.config.pretrained:
            self.transfer = transfer_weights(self.model, self.config.pretrained)

    def whiten(self):
        from cifarkit.models import fastnet

        rng = np.random.default_rng(self.config.seed)
        n = len(self.dataset.x_train)
        idx = np.sort(rng.choice(n, size=min(WHITENING_SAMPLE, n), replace=False))
        fastnet.init_whitening(self.model, self.dataset.x_train[idx], eps=self.config.whiten_eps)

    def start_lookahead(self):
        """Begin the lookahead average from the current variables (after whitening or loading)."""
        if self.config.lookahead_every and self.lookahead is None:
            total = self.steps_per_epoch * self.config.epochs
            self.lookahead = Lookahead(self.model, self.config.lookahead_every, total)

    # ---- state
    def state_dict(self) -> dict:
        torch = self.torch
        return {
            "format": CHECKPOINT_FORMAT,
            "epoch": self.epoch,
            "global_step": self.global_step,
            "variables": [v.value.detach().to("cpu", copy=True) for v in self.model.variables],
            "variable_paths": [v.path for v in self.model.variables],
            "optimizer": _to_cpu(self.optimizer.state_dict()),
            "lookahead": self.lookahead.state_dict() if self.lookahead is not None else None,
            "scaler": self.step.scaler.state_dict() if self.step.scaler is not None else None,
            "rng": _rng_state(),
            "pipeline": self.pipeline.state_dict(),
            "history": [dict(r) for r in self.history],
            "config": self.config.to_dict(),
            "dataset": _dataset_fingerprint(self.dataset),
            "train_seconds": self.train_seconds,
            "elapsed_seconds": self.elapsed_before + (time.perf_counter() - self.t_start),
            "torch_version": str(torch.__version__),
            "torch_threads": torch.get_num_threads(),
        }

    def load_state_dict(self, state: dict) -> None:
        variables = self.model.variables
        if len(state["variables"]) != len(variables):
            raise ValueError(
                f"The checkpoint holds {len(state['variables'])} variables but model {self.config.model!r} has "
                f"{len(variables)}; it was written by another version of the model. Use another out_dir or resume=False."
            )
        for v, value in zip(variables, state["variables"]):
            if tuple(v.shape) != tuple(value.shape):
                raise ValueError(f"Checkpoint variable for {v.path} has shape {tuple(value.shape)}, the model wants {tuple(v.shape)}.")
            v.assign(value.numpy() if value.dtype != self.torch.bfloat16 else value.float().numpy())
        self.optimizer.load_state_dict(state["optimizer"])
        if self.config.lookahead_every:
            self.start_lookahead()
            if state.get("lookahead") is not None:
                self.lookahead.load_state_dict(state["lookahead"])
        if state.get("scaler") and self.step.scaler is not None:
            self.step.scaler.load_state_dict(state["scaler"])
        self.pipeline.load_state_dict(state["pipeline"])
        _set_rng_state(state["rng"])
        self.epoch = int(state["epoch"])
        self.global_step = int(state["global_step"])
        self.history = [dict(r) for r in state["history"]]
        self.train_seconds = float(state["train_seconds"])
        self.elapsed_before = float(state["elapsed_seconds"])

    def save_checkpoint(self) -> dict:
        state = self.state_dict()
        _atomic_torch_save(state, self.out_dir / CHECKPOINT_NAME)
        return state

    # ---- one epoch
    def run_epoch(self):
        torch = self.torch
        from tqdm.auto import tqdm

        cfg = self.config
        epoch = self.epoch + 1
        loss_sum = 0.0
        correct = 0
        seen = 0
        bar = tqdm(
            total=self.steps_per_epoch, desc=f"epoch {epoch}/{cfg.epochs}", unit="batch",
            disable=not self.progress, leave=True, dynamic_ncols=True,
        )
        freeze_groups_after(self.optimizer, epoch)
        start = time.perf_counter()
        for batch, (xb, yb) in enumerate(self.pipeline.epoch(epoch - 1), start=1):
            lr = float(self.lrs[self.global_step])
            x = torch.from_numpy(xb).to(self.device, non_blocking=True)
            y = torch.from_numpy(yb).to(self.device, non_blocking=True)
            loss, logits = self.step(x, y, lr)
            loss_value = float(loss.detach())
            if not math.isfinite(loss_value):
                bar.close()
                self.diverged(epoch, batch, lr, loss_value)
            n = len(xb)
            hard = y if y.ndim == 1 else y.argmax(1)
            correct += int((logits.detach().argmax(1) == hard).sum())
            loss_sum += loss_value * n
            seen += n
            self.global_step += 1
            if self.lookahead is not None:
                self.lookahead.update(self.global_step)
            bar.update(1)
            if batch % 10 == 0 or batch == self.steps_per_epoch:
                bar.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{correct / seen:.3f}", lr=f"{lr:.3g}")
        if self.lookahead is not None and epoch == cfg.epochs:
            self.lookahead.finish()  # the model ends at the slow average
        if self.device != "cpu":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        self.train_seconds += seconds
        eval_start = time.perf_counter()
        val_loss, val_acc, _ = self.evaluate(self.dataset.x_val, self.dataset.y_val)
        record = {
            "epoch": epoch,
            "train_loss_aug": loss_sum / seen,
            "train_acc_aug": correct / seen,
            "val_loss": val_loss,
            "val_acc": val_acc,
            "lr": lr,
            "epoch_seconds": seconds,
            "images_per_sec": seen / seconds,
        }
        if cfg.eval_test_every_epoch:
            test_loss, test_acc, _ = self.evaluate(self.dataset.x_test, self.dataset.y_test)
            record["test_loss_monitor"] = test_loss
            record["test_acc_monitor"] = test_acc
            record["train_seconds_cumulative"] = self.train_seconds
        record["eval_seconds"] = time.perf_counter() - eval_start
        val_text = f"val_loss {val_loss:.4f} val_acc {val_acc:.4f}" if val_loss is not None else "no validation split"
        bar.set_postfix_str(f"loss {record['train_loss_aug']:.4f} acc(aug) {record['train_acc_aug']:.3f} {val_text}")
        bar.close()
        self.epoch = epoch
        self.history.append(record)
        return record

    def evaluate(self, x, y):
        # In float32 even when training autocasts: recorded metrics then match what the saved model gives
        # anywhere (04_evaluate, keras.saving.load_model), whatever the machine's precision.
        return evaluate_model(self.model, x, y, self.config.eval_batch_size, device=self.device)

    def diverged(self, epoch: int, batch: int, lr: float, loss_value: float):
        path = self.out_dir / NAN_CHECKPOINT_NAME
        state = dict(self.last_good)
        state["diverged_at"] = {"epoch": epoch, "batch": batch, "lr": lr, "loss": repr(loss_value), "global_step": self.global_step}
        _atomic_torch_save(state, path)
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


def _to_cpu(obj):
    torch = _torch()
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to_cpu(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_to_cpu(v) for v in obj)
    return obj


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


def _check_resumable(state: dict, config: TrainConfig, dataset, path: Path) -> None:
    # settings added after a checkpoint was written take their defaults (they did not exist then)
    defaults = {f.name: v for f, v in zip(dataclasses.fields(TrainConfig), _default_values())}
    saved = {**{k: v for k, v in defaults.items() if k not in state.get("config", {})}, **state.get("config", {})}
    differ = _diff_keys(saved, config.to_dict(), ignore=RESUME_IGNORED_KEYS)
    if differ:
        details = "; ".join(f"{k}: checkpoint {saved.get(k)!r}, now {config.to_dict().get(k)!r}" for k in differ)
        raise ValueError(
            f"The checkpoint {path} was written with a different config ({details}). "
            "Use another out_dir for a new run, or resume=False to start this one over."
        )
    fp = _dataset_fingerprint(dataset)
    differ = _diff_keys(state.get("dataset", {}), fp)
    if differ:
        raise ValueError(
            f"The checkpoint {path} was written for different data (differs in {', '.join(differ)}). "
            "Use another out_dir for a new run, or resume=False to start this one over."
        )


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
        config: a :class:`~cifarkit.recipes.TrainConfig` (see ``resolve_recipe``).
        out_dir: run folder (created). See the module docstring for its files.
        resume: continue from ``out_dir/checkpoint.pt`` when it exists and was
            written with the same config and data; a finished run returns its
            final state at once. ``False`` starts over and overwrites the folder's files.
        progress: show a tqdm bar per epoch.
        callbacks: callables called as ``cb(record)`` with each epoch's history
            row after the checkpoint is written; one returning ``True`` stops
            training after that epoch (``metrics["stopped_early"]``).
        run_info: extra JSON-serializable provenance stored as ``metrics["run_info"]``
            (the CLI stores its command line there).

    Returns:
        A :class:`TrainResult`.

    Raises:
        ValueError: invalid config or data, or a checkpoint from another config.
        TrainingDivergedError: the loss became NaN or infinite.
    """
    torch = _torch()
    t_start = time.perf_counter()
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config must be a TrainConfig (see cifarkit.recipes.resolve_recipe), got {type(config).__name__}.")
    config.validate()
    _check_dataset(dataset)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "checkpoint": out_dir / CHECKPOINT_NAME,
        "history_json": out_dir / HISTORY_JSON,
        "history_csv": out_dir / HISTORY_CSV,
        "model": out_dir / MODEL_NAME,
        "metrics": out_dir / METRICS_NAME,
    }
    state = None
    if resume and paths["checkpoint"].exists():
        state = load_checkpoint(paths["checkpoint"])
        _check_resumable(state, config, dataset, paths["checkpoint"])
    elif not resume:
        for name in ("checkpoint", "metrics", "model"):
            paths[name].unlink(missing_ok=True)
        (out_dir / NAN_CHECKPOINT_NAME).unlink(missing_ok=True)

    deterministic_before = torch.are_deterministic_algorithms_enabled()
    if config.deterministic:
        torch.use_deterministic_algorithms(True)
        if torch.cuda.is_available():
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        if state is not None and state.get("torch_threads") not in (None, torch.get_num_threads()):
            warnings.warn(
                f"Resuming a deterministic run with {torch.get_num_threads()} CPU threads; the checkpoint was written "
                f"with {state['torch_threads']}. Results will not match an uninterrupted run bit for bit; "
                f"call torch.set_num_threads({state['torch_threads']}) first to reproduce them exactly."
            )
    keras = backend.keras()
    run = _Run(dataset, config, out_dir, progress)
    run.t_start = t_start
    try:
        with keras.device(run.device):
            run.build()
            if state is not None:
                run.load_state_dict(state)
            elif config.whiten_init and not config.pretrained:
                run.whiten()
            run.start_lookahead()
            finished = run.epoch >= config.epochs or (state is not None and state.get("stopped_early"))
            if finished and paths["metrics"].exists() and paths["model"].exists():
                with open(paths["metrics"]) as f:
                    metrics = json.load(f)
                return TrainResult(run.model, run.history, metrics, out_dir, paths)
            run.last_good = _to_cpu(run.state_dict())
            stopped = bool(state.get("stopped_early")) if state is not None else False
            while run.epoch < config.epochs and not stopped:
                record = run.run_epoch()
                run.last_good = run.save_checkpoint()
                write_history(out_dir, run.history)
                for cb in callbacks or ():
                    if cb(dict(record)) is True:
                        stopped = True
                if stopped:
                    run.last_good["stopped_early"] = True
                    _atomic_torch_save(run.last_good, paths["checkpoint"])
            write_history(out_dir, run.history)
            metrics = _finish(run, paths, stopped, run_info)
    finally:
        if config.deterministic:
            torch.use_deterministic_algorithms(deterministic_before)
    return TrainResult(run.model, run.history, metrics, out_dir, paths)


def _finish(run: _Run, paths: dict, stopped: bool, run_info: dict | None) -> dict:
    """Save the model, evaluate once on test, and write ``metrics.json``."""
    model_path = paths["model"]
    tmp = model_path.with_name(f".{model_path.stem}.tmp-{os.getpid()}.keras")
    run.model.save(tmp)
    os.replace(tmp, model_path)
    ds = run.dataset
    last = run.history[-1] if run.history else {}
    if "val_acc" in last:
        val_loss, val_acc = last["val_loss"], last["val_acc"]  # the final weights' validation pass
    else:
        val_loss, val_acc, _ = run.evaluate(ds.x_val, ds.y_val)
    test_loss, test_acc, _ = run.evaluate(ds.x_test, ds.y_test)
    ips = [r["images_per_sec"] for r in run.history]
    images = sum(r["images_per_sec"] * r["epoch_seconds"] for r in run.history)
    total_seconds = run.elapsed_before + (time.perf_counter() - run.t_start)
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
        "total_seconds": total_seconds,
        "images_per_sec_mean": images / run.train_seconds if run.train_seconds else None,
        "images_per_sec_peak": max(ips) if ips else None,
        "steps_per_epoch": run.steps_per_epoch,
        "peak_lr": run.config.peak_lr(),
        "params": count_params(run.model),
        "peak_rss_mib": _peak_rss_mib(),
        "device": run.device,
        "torch_threads": run.torch.get_num_threads(),
        "mixed_precision": str(run.autocast_dtype).replace("torch.", "") if run.autocast_dtype else "off",
        "compiled": run.step.compiled,
        "config": run.config.to_dict(),
        "dataset": ds.to_dict() if hasattr(ds, "to_dict") else {},
        "versions": backend.versions(),
        "machine": _machine(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "run_info": run_info or {},
        "class_weights": [float(w) for w in run.class_weights] if run.class_weights is not None else None,
        "pretrained": run.transfer or {"path": None, "note": "trained from scratch (no pretrained weights given)"},
        "notes": "test_* is evaluated once after training and used for no decision; train_*_aug is measured on augmented batches.",
    }
    _atomic_write_json(paths["metrics"], metrics)
    return metrics
