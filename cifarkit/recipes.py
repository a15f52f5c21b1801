"""Training recipes: every knob of a run, with its default, in one place.

A run is described by one :class:`TrainConfig`. Named recipes in
:data:`RECIPES` are partial configs taken from the papers they reproduce;
:func:`resolve_recipe` starts from the dataclass defaults, applies a recipe,
then the caller's overrides, and validates the result::

    config = resolve_recipe("paper", model="resnet56", epochs=30)

Recipes:
    ``paper``: He et al. 2016 ("Deep Residual Learning", section 4.2): SGD,
        momentum 0.9, L2 weight decay 1e-4, batch 128, lr 0.1 divided by 10 at
        50% and 75% of 164 epochs (32k and 48k of 64k iterations), 4-pixel zero
        padding + random crop and horizontal flip. For ``resnet110`` (and
        deeper) the paper warms up at lr 0.01 for ~400 iterations; here the
        first epoch ramps linearly from 0.01 to 0.1. With a ``densenet*``
        model, ``paper`` resolves to ``paper_densenet``.
    ``paper_densenet``: Huang et al. 2017 (DenseNet, section 4.2): SGD with
        Nesterov momentum 0.9, weight decay 1e-4, batch 64, lr 0.1 divided by
        10 at 50% and 75% of 300 epochs, the same crop + flip.
    ``fast``: time-to-accuracy for ``fastnet``, after Keller Jordan's
        airbench94: SGD with Nesterov momentum 0.85, lr 1.5 per 1024 images
        and L2 weight decay 1.33e-3 (airbench's summed-loss lr 11.5/kilostep
        and decay 0.0153 per 1024 images, rewritten for a mean-reduced loss;
        the decay per step is fixed relative to lr, i.e. "decoupled" in
        airbench's sense), label smoothing 0.2, lr ramp from 0.2x to 1x over
        the first 23% of steps then linear decay to 0.07x, 2-pixel
        reflect-padded translation + flip, whitening initialization of the
        first layer, 18 epochs (airbench: 10 on a GPU; on the 2-core CPU with
        bf16 autocast 18 epochs took 725 s, inside the 15-minute moonshot of
        issue #3 with room for a slower run). Batch 256 instead of
        airbench's 1024 (lr scaled linearly to 0.375): on the 2-core CPU
        fastnet trains faster per image at batch 256 (float32: ~330 img/s
        against ~250 at 1024; bf16: ~790 against ~620, ``TrainStep`` alone),
        and in a 3-epoch check on 7,000 CIFAR-10 JPEG training images (bf16)
        batch 256 reached 64.8% validation accuracy, 512 59.5% and 1024 46.8%. As in
        airbench, the whitening kernel stays frozen at its data-derived
        initialization and its bias trains for 3 epochs, batch-norm shifts
        train at 64x the lr (``bn_bias_lr_scale``), and lookahead every 5
        steps pulls the weights toward a slow average that the model ends at
        (``lookahead_every``). Not included: airbench's test-time
        augmentation (04_evaluate reports flip TTA separately) and its
        alternating flips (``alternate_flip``; in a 6-epoch check on 20,000
        training images they gave 83.6% validation accuracy against 84.2%
        for random flips).
    ``default``: a sensible start for any model: SGD with Nesterov momentum
        0.9, lr 0.1 at batch 128, weight decay 5e-4, one warmup epoch then
        cosine decay to zero over 30 epochs, 4-pixel reflect crop + flip.

Learning rate: ``lr`` is the rate at ``base_batch_size``. With
``lr_scaling="linear"`` (the default) a run at another batch size uses
``lr * batch_size / base_batch_size`` (Goyal et al. 2017); the recipes set
``base_batch_size`` to their own batch size, so changing only ``batch_size``
keeps the recipe's rate per image. :meth:`TrainConfig.peak_lr` gives the rate used.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field, fields

OPTIMIZERS = ("sgd", "adamw")
WEIGHT_DECAY_MODES = ("l2", "decoupled")
SCHEDULES = ("step", "cosine", "onecycle", "constant")
LR_SCALINGS = ("linear", "none")
PAD_MODES = ("reflect", "zero")
DEVICES = ("auto", "cpu", "gpu")
MIXED_PRECISIONS = ("auto", "off", "bf16", "fp16")
COMPILES = ("auto", "off", "on")
CLASS_WEIGHTS = ("none", "balanced")


@dataclass
class TrainConfig:
    """Everything that decides a training run, with defaults.

    Model:
        model: registered model name (``cifarkit.models.list_models()``).
        model_options: extra keyword arguments for the model builder.
        whiten_init: initialize the first convolution from the training data
            (fastnet only; ``cifarkit.models.fastnet.init_whitening``).
        freeze_whitening: keep the whitening kernel at its data-derived
            initialization (airbench trains only its bias). Needs ``whiten_init``.
        whiten_bias_epochs: train the whitening layer's bias for this many
            epochs, then freeze it (airbench: 3); 0 trains it throughout.
        whiten_eps: added to each patch-covariance eigenvalue before the
            whitening filter divides by its square root (airbench: 5e-4). Small
            values amplify the low-variance, high-frequency patch directions, which
            makes the model sensitive to pixel noise (see the README's noise
            sensitivity note); larger values whiten less.
        pretrained: path to a saved Keras model (``.keras``) or weights file
            (``.weights.h5``) whose layers are copied into the new model by
            name where the shapes agree (a backbone for fine-tuning; the
            classifier head of another class count stays freshly initialized).
            Empty trains from scratch. Nothing is downloaded.

    Optimization:
        epochs: passes over the training split.
        batch_size: training images per step.
        lr: learning rate at ``base_batch_size`` (peak rate of the schedule).
        base_batch_size: batch size at which ``lr`` is given.
        lr_scaling: ``"linear"`` scales lr by ``batch_size / base_batch_size``; ``"none"`` uses it as is.
        optimizer: ``"sgd"`` or ``"adamw"`` (``torch.optim``).
        momentum: SGD momentum (AdamW: beta1).
        nesterov: Nesterov momentum (SGD only).
        weight_decay: decay coefficient.
        weight_decay_mode: ``"l2"`` adds ``weight_decay * w`` to the gradient
            (it then goes through momentum, as in the papers); ``"decoupled"``
            shrinks weights by ``lr_t * weight_decay`` every step outside the
            gradient (Loshchilov & Hutter; AdamW's rule, applied to SGD too).
        schedule: ``"step"`` (multiply by ``gamma`` at each milestone),
            ``"cosine"`` (to ``final_lr_factor * lr``), ``"onecycle"`` (linear
            decay to ``final_lr_factor * lr`` after warmup) or ``"constant"``.
        milestones: fractions of training at which ``step`` multiplies by ``gamma``.
        gamma: factor of each step.
        warmup_epochs: linear warmup length in epochs (may be fractional; cut to the length of training).
        warmup_start_factor: the warmup starts at this fraction of the peak lr.
        final_lr_factor: where ``cosine`` and ``onecycle`` end, as a fraction of the peak lr.
        label_smoothing: label smoothing of the cross-entropy loss.
        bn_bias_lr_scale: multiplies the learning rate of batch-norm shifts
            (``beta``) and of the whitening bias, keeping their weight decay per
            step unchanged (airbench's ``bias_scaler``: 64).
        lookahead_every: every this many steps, pull the weights (and batch-norm
            statistics) toward a slow exponential average and copy it back
            (Zhang et al. 2019's lookahead as airbench uses it: the average's
            decay is ``0.95**k * (step / total_steps)**3``); the model ends at
            the average. 0 = off.
        class_weight: ``"none"`` or ``"balanced"``: weight each class's loss by
            ``n_train / (num_classes * n_train_of_class)`` (scikit-learn's
            "balanced"), for imbalanced data.

    Augmentation (``cifarkit.pipeline``):
        crop: pad pixels per side for random crops (0 = off).
        pad_mode: ``"reflect"`` or ``"zero"`` padding for crops.
        flip: random horizontal flips.
        alternate_flip: airbench's alternating flips (with ``flip``): one
            random decision per image, reversed every other epoch, so each
            image is seen both ways every two epochs.
        cutout: cutout square side in pixels (0 = off).
        mixup: mixup Beta alpha (0 = off).
        cutmix: CutMix Beta alpha (0 = off).

    Reproducibility and hardware:
        seed: seeds Python, numpy, torch, Keras and the input pipeline.
        deterministic: deterministic kernels (``torch.use_deterministic_algorithms``),
            so that two runs on the same machine and thread count (or a run and
            its resumption) agree to the last bit.
        device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"gpu"``.
        mixed_precision: ``"auto"`` (bf16 autocast on GPU, and on CPUs with
            native bf16 units, AMX or AVX512-BF16, see
            ``cifarkit.backend.cpu_native_bf16``; float32 elsewhere), ``"off"``,
            ``"bf16"``, ``"fp16"`` (GPU only). The weights stay float32.
        compile: ``torch.compile`` the model: ``"auto"`` (on GPU only), ``"on"`` or ``"off"``.

    Evaluation:
        eval_batch_size: batch size for validation and test passes.
        eval_test_every_epoch: also record test accuracy per epoch as
            ``test_acc_monitor`` for time-to-accuracy curves in benchmarks.
            Never used for any decision; off by default.
    """

    model: str = "resnet20"
    model_options: dict = field(default_factory=dict)
    whiten_init: bool = False
    freeze_whitening: bool = False
    whiten_bias_epochs: int = 0
    whiten_eps: float = 5e-4
    pretrained: str = ""
    epochs: int = 30
    batch_size: int = 128
    lr: float = 0.1
    base_batch_size: int = 128
    lr_scaling: str = "linear"
    optimizer: str = "sgd"
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    weight_decay_mode: str = "l2"
    schedule: str = "cosine"
    milestones: tuple = (0.5, 0.75)
    gamma: float = 0.1
    warmup_epochs: float = 1.0
    warmup_start_factor: float = 0.0
    final_lr_factor: float = 0.0
    label_smoothing: float = 0.0
    bn_bias_lr_scale: float = 1.0
    lookahead_every: int = 0
    class_weight: str = "none"
    crop: int = 4
    pad_mode: str = "reflect"
    flip: bool = True
    alternate_flip: bool = False
    cutout: int = 0
    mixup: float = 0.0
    cutmix: float = 0.0
    seed: int = 0
    deterministic: bool = False
    device: str = "auto"
    mixed_precision: str = "auto"
    compile: str = "auto"
    eval_batch_size: int = 512
    eval_test_every_epoch: bool = False

    def __post_init__(self):
        self.milestones = tuple(float(m) for m in self.milestones)
        self.model_options = dict(self.model_options or {})
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first invalid setting."""
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        _check_choice("weight_decay_mode", self.weight_decay_mode, WEIGHT_DECAY_MODES)
        _check_choice("schedule", self.schedule, SCHEDULES)
        _check_choice("lr_scaling", self.lr_scaling, LR_SCALINGS)
        _check_choice("pad_mode", self.pad_mode, PAD_MODES)
        _check_choice("device", self.device, DEVICES)
        _check_choice("mixed_precision", self.mixed_precision, MIXED_PRECISIONS)
        _check_choice("compile", self.compile, COMPILES)
        _check_choice("class_weight", self.class_weight, CLASS_WEIGHTS)
        if not isinstance(self.pretrained, str):
            raise ValueError(f"pretrained must be a file path or empty, got {self.pretrained!r}.")
        if not isinstance(self.model, str) or not self.model:
            raise ValueError(f"model must be a model name, got {self.model!r}.")
        for name in ("epochs", "batch_size", "base_batch_size", "eval_batch_size"):
            _check_int(name, getattr(self, name), minimum=1)
        for name in ("crop", "cutout", "seed", "whiten_bias_epochs", "lookahead_every"):
            _check_int(name, getattr(self, name), minimum=0)
        for name in ("lr", "momentum", "weight_decay", "gamma", "warmup_epochs", "mixup", "cutmix", "bn_bias_lr_scale"):
            _check_number(name, getattr(self, name), minimum=0.0)
        for name in ("warmup_start_factor", "final_lr_factor", "label_smoothing"):
            _check_number(name, getattr(self, name), minimum=0.0, maximum=1.0)
        if self.lr <= 0:
            raise ValueError(f"lr must be positive, got {self.lr!r}.")
        if self.momentum >= 1.0:
            raise ValueError(f"momentum must be below 1, got {self.momentum!r}.")
        if any(not 0.0 < m < 1.0 for m in self.milestones) or list(self.milestones) != sorted(self.milestones):
            raise ValueError(
                f"milestones must be increasing fractions of training strictly between 0 and 1, "
                f"e.g. (0.5, 0.75); got {self.milestones!r}."
            )
        if (self.freeze_whitening or self.whiten_bias_epochs) and not self.whiten_init:
            raise ValueError(
                "freeze_whitening and whiten_bias_epochs act on fastnet's whitening layer and need whiten_init=True "
                "(model='fastnet'); drop them or set whiten_init=True."
            )
        _check_number("whiten_eps", self.whiten_eps, minimum=0.0)
        if self.whiten_eps <= 0:
            raise ValueError(f"whiten_eps must be positive (airbench uses 5e-4), got {self.whiten_eps!r}.")
        if self.bn_bias_lr_scale <= 0:
            raise ValueError(f"bn_bias_lr_scale must be positive (1 = same lr as the weights), got {self.bn_bias_lr_scale!r}.")
        if self.alternate_flip is True and self.flip is False:
            raise ValueError("alternate_flip=True needs flip=True; set flip=True or alternate_flip=False.")
        for name in ("whiten_init", "freeze_whitening", "flip", "alternate_flip", "deterministic", "eval_test_every_epoch", "nesterov"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}.")
        if self.nesterov and self.optimizer == "sgd" and self.momentum == 0:
            raise ValueError("nesterov=True needs momentum > 0; set nesterov=False or a momentum such as 0.9.")

    def peak_lr(self) -> float:
        """Learning rate at the top of the schedule, after batch-size scaling."""
        if self.lr_scaling == "linear":
            return self.lr * self.batch_size / self.base_batch_size
        return self.lr

    def to_dict(self) -> dict:
        """JSON-serializable dict of every setting (tuples become lists)."""
        d = dataclasses.asdict(self)
        d["milestones"] = list(self.milestones)
        return json.loads(json.dumps(d))

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError``."""
        _check_keys(d)
        return cls(**d)

    def replace(self, **changes) -> "TrainConfig":
        """A copy with some settings changed (validated)."""
        _check_keys(changes)
        return dataclasses.replace(self, **changes)


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}.")


def _check_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")


def _check_number(name, value, minimum=None, maximum=None):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}.")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}.")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value!r}.")


def config_keys() -> list[str]:
    """Names of every setting of :class:`TrainConfig`."""
    return [f.name for f in fields(TrainConfig)]


def _check_keys(d: dict) -> None:
    unknown = sorted(set(d) - set(config_keys()))
    if unknown:
        raise ValueError(
            f"Unknown training setting(s) {', '.join(map(repr, unknown))}. "
            f"Valid settings: {', '.join(config_keys())}."
        )


#: Named recipes: settings that differ from the TrainConfig defaults. See the module docstring for sources.
# He et al. 2016, CIFAR-10 ResNets: SGD 0.9, wd 1e-4, lr 0.1 /10 at 50% and 75% of 164 epochs, batch 128.
_PAPER = dict(
    epochs=164,
    batch_size=128,
    base_batch_size=128,
    lr=0.1,
    optimizer="sgd",
    momentum=0.9,
    nesterov=False,
    weight_decay=1e-4,
    weight_decay_mode="l2",
    schedule="step",
    milestones=(0.5, 0.75),
    gamma=0.1,
    warmup_epochs=0.0,
    crop=4,
    pad_mode="zero",
    flip=True,
)

RECIPES: dict[str, dict] = {
    "default": dict(
        epochs=30,
        batch_size=128,
        base_batch_size=128,
        lr=0.1,
        optimizer="sgd",
        momentum=0.9,
        nesterov=True,
        weight_decay=5e-4,
        weight_decay_mode="l2",
        schedule="cosine",
        warmup_epochs=1.0,
        crop=4,
        pad_mode="reflect",
        flip=True,
    ),
    "paper": dict(_PAPER),
    # Huang et al. 2017: He et al.'s schedule with Nesterov momentum, 300 epochs, batch 64.
    "paper_densenet": dict(
        _PAPER,
        model="densenet_bc_100",
        epochs=300,
        batch_size=64,
        base_batch_size=64,
        nesterov=True,
    ),
    "fast": dict(
        model="fastnet",
        whiten_init=True,
        freeze_whitening=True,
        whiten_bias_epochs=3,
        bn_bias_lr_scale=64.0,
        lookahead_every=5,
        epochs=18,
        batch_size=256,
        base_batch_size=1024,
        lr=1.5,
        optimizer="sgd",
        momentum=0.85,
        nesterov=True,
        weight_decay=1.33e-3,
        weight_decay_mode="l2",
        schedule="onecycle",
        warmup_start_factor=0.2,
        final_lr_factor=0.07,
        label_smoothing=0.2,
        crop=2,
        pad_mode="reflect",
        flip=True,
    ),
}

#: Recipes whose warmup is a fraction of training (airbench: 23% of the steps): unless
#: ``warmup_epochs`` is overridden, it is that fraction of the run's ``epochs``.
_WARMUP_FRACTION = {"fast": 0.23}

#: Models the ``paper`` recipe warms up for, as He et al. did for ResNet-110.
_PAPER_WARMUP_MODELS = ("resnet110", "resnet1202")


def list_recipes() -> list[str]:
    """Names of the recipes, sorted."""
    return sorted(RECIPES)


def resolve_recipe(name: str = "default", **overrides) -> TrainConfig:
    """Build the :class:`TrainConfig` of a named recipe, with overrides applied last.

    ``paper`` with a ``densenet*`` model resolves to ``paper_densenet``; with
    ``resnet110`` it adds the paper's warmup (one epoch from 0.1x). Recipes
    that name a model (``fast`` -> fastnet) use it unless ``model`` is
    overridden; ``whiten_init`` from a recipe is dropped for models other
    than fastnet (asking for it explicitly with another model is an error).
    ``fast`` warms up over 23% of training (``warmup_epochs`` is derived
    from ``epochs`` unless given).

    Args:
        name: a key of :data:`RECIPES`.
        **overrides: any :class:`TrainConfig` field.

    Raises:
        ValueError: unknown recipe, unknown setting or invalid value; the
            message lists the valid names.
    """
    if name not in RECIPES:
        raise ValueError(f"Unknown recipe {name!r}. Known recipes: {', '.join(list_recipes())}.")
    _check_keys(overrides)
    model = overrides.get("model", RECIPES[name].get("model", TrainConfig.model))
    if name == "paper" and str(model).startswith("densenet"):
        name = "paper_densenet"
    settings = dict(RECIPES[name])
    if name == "paper" and model in _PAPER_WARMUP_MODELS:
        settings.update(warmup_epochs=1.0, warmup_start_factor=0.1)
    if not str(model).startswith("fastnet") and "whiten_init" not in overrides:
        settings.pop("whiten_init", None)
    if name in _WARMUP_FRACTION and "warmup_epochs" not in overrides:
        epochs = overrides.get("epochs", settings.get("epochs", TrainConfig.epochs))
        settings["warmup_epochs"] = _WARMUP_FRACTION[name] * epochs
    settings.update(overrides)
    if not settings.get("whiten_init"):
        for key in ("freeze_whitening", "whiten_bias_epochs"):
            if key not in overrides:
                settings.pop(key, None)
    if settings.get("whiten_init") and not str(settings.get("model", TrainConfig.model)).startswith("fastnet"):
        raise ValueError(
            f"whiten_init=True needs the fastnet model (it initializes fastnet's whitening layer); "
            f"got model {settings.get('model')!r}. Drop whiten_init or use model='fastnet'."
        )
    return TrainConfig(**settings)


def parse_override(text: str) -> tuple[str, object]:
    """Parse one ``key=value`` string (from ``--set``) into a typed setting.

    The value is converted to the field's type: ints, floats (``1e-4`` works),
    booleans (``true``/``false``/``1``/``0``/``yes``/``no``), strings, a
    comma-separated or bracketed list for ``milestones``, and JSON for
    ``model_options``.

    Raises:
        ValueError: no ``=``, an unknown key, or a value of the wrong type.
    """
    if "=" not in text:
        raise ValueError(f"Expected key=value, got {text!r} (e.g. --set label_smoothing=0.1).")
    key, raw = (s.strip() for s in text.split("=", 1))
    _check_keys({key: None})
    default = {f.name: f for f in fields(TrainConfig)}[key]
    example = TrainConfig.__dataclass_fields__[key].default
    if default.default_factory is not dataclasses.MISSING:
        example = default.default_factory()
    try:
        if isinstance(example, bool):
            low = raw.lower()
            if low not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
                raise ValueError
            value = low in ("true", "1", "yes", "on")
        elif isinstance(example, int):
            value = int(raw)
        elif isinstance(example, float):
            value = float(raw)
        elif isinstance(example, tuple):
            value = tuple(float(v) for v in raw.strip("[]()").split(",") if v.strip())
        elif isinstance(example, dict):
            value = json.loads(raw)
            if not isinstance(value, dict):
                raise ValueError
        else:
            value = raw
    except ValueError:
        kind = type(example).__name__
        raise ValueError(f"Setting {key!r} needs a {kind} value, got {raw!r}.") from None
    return key, value
