"""``TrainConfig``: every setting of a training run, with its default and its check, in one place.

Named recipes (:mod:`cifarkit.training.recipes`) are partial configs on top of
these defaults. Learning rate: ``lr`` is the rate at ``base_batch_size``; with
``lr_scaling="linear"`` a run at another batch size uses
``lr * batch_size / base_batch_size`` (Goyal et al. 2017), and
:meth:`TrainConfig.peak_lr` gives the rate used.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field, fields

from cifarkit.wording import agree

OPTIMIZERS = ("sgd", "adamw", "muon")
MUON_KEYS = ("muon_lr", "muon_momentum", "muon_min_filters")  # settings read only under optimizer="muon"
WEIGHT_DECAY_MODES = ("l2", "decoupled")
SCHEDULES = ("step", "cosine", "onecycle", "constant")
LR_SCALINGS = ("linear", "none")
PAD_MODES = ("reflect", "zero")
DEVICES = ("auto", "cpu", "gpu")
MIXED_PRECISIONS = ("auto", "off", "bf16", "fp16")
COMPILES = ("auto", "off", "on")
CHANNELS_LAST = ("auto", "off", "on")
PIPELINES = ("auto", "numpy", "torch")
CLASS_WEIGHTS = ("none", "balanced")


@dataclass
class TrainConfig:
    """Everything that decides a training run, with defaults (each setting is explained beside it)."""

    # ---- model
    model: str = "resnet20"  # registered model name (cifarkit.models.list_models())
    model_options: dict = field(default_factory=dict)  # extra keyword arguments of the model builder
    whiten_init: bool = False  # initialize the model's whitening layer from the training data (fastnet)
    freeze_whitening: bool = False  # keep the whitening kernel at its data-derived value (airbench); needs whiten_init
    whiten_bias_epochs: int = (
        0  # train the whitening bias this many epochs, then freeze it (airbench: 3); 0 = throughout
    )
    # added to each patch-covariance eigenvalue before the whitening filter divides by its square root
    # (airbench: 5e-4); small values amplify high-frequency directions, which makes the model noise-sensitive
    whiten_eps: float = 5e-4
    # a saved .keras model or .weights.h5 whose layers are copied in by name where shapes agree
    # (a backbone to fine-tune; a head for another class count starts fresh). Empty trains from scratch.
    pretrained: str = ""
    # ---- ImageNet backbones (cifarkit.models.list_backbones(); the CIFAR models ignore these three settings)
    # "imagenet" (Keras' download, cached in ~/.keras/models; without network the run trains from scratch and
    # says so), a local .h5 / .weights.h5 / .keras file of the backbone network, or "none" (from scratch)
    backbone_weights: str = "imagenet"
    freeze_epochs: int = 3  # with weights: the first epochs train only the new head, the backbone frozen
    finetune_lr_factor: float = 0.1  # once the backbone is unfrozen, every learning rate is multiplied by this
    # ---- optimization
    epochs: int = 30  # passes over the training split
    batch_size: int = 128  # training images per step
    lr: float = 0.1  # learning rate at base_batch_size (the schedule's peak)
    base_batch_size: int = 128  # batch size at which lr is given
    lr_scaling: str = "linear"  # "linear": lr * batch_size / base_batch_size; "none": lr as is
    optimizer: str = "sgd"  # "sgd" or "adamw" (torch.optim), or "muon" (cifarkit.training.optim.MuonSGD)
    momentum: float = 0.9  # SGD momentum (AdamW: beta1)
    # "muon": the convolution kernels take orthogonalized momentum steps at muon_lr times the schedule's factor
    # (the rest: SGD as above); airbench94_muon's values at its batch of 2,000
    muon_lr: float = 0.24
    muon_momentum: float = 0.6
    # kernels with fewer output filters than this keep SGD under "muon" (0: every kernel takes Muon)
    muon_min_filters: int = 0
    nesterov: bool = True  # Nesterov momentum (SGD only)
    weight_decay: float = 5e-4
    # "l2" adds weight_decay * w to the gradient (through momentum, as in the papers); "decoupled" shrinks
    # the weights by lr_t * weight_decay each step outside the gradient (Loshchilov & Hutter)
    weight_decay_mode: str = "l2"
    # "step" (x gamma at each milestone), "cosine" / "onecycle" (half cosine / linear to final_lr_factor), "constant"
    schedule: str = "cosine"
    milestones: tuple = (0.5, 0.75)  # fractions of training at which "step" multiplies by gamma
    gamma: float = 0.1
    warmup_epochs: float = 1.0  # linear warmup (may be fractional; cut to the length of training)
    warmup_start_factor: float = 0.0  # the warmup starts at this fraction of the peak lr
    final_lr_factor: float = 0.0  # where cosine and onecycle end, as a fraction of the peak lr
    label_smoothing: float = 0.0
    # lr multiplier of batch-norm shifts and of the whitening bias, their decay per step unchanged (airbench: 64)
    bn_bias_lr_scale: float = 1.0
    # every this many steps pull the weights toward a slow average (airbench's lookahead); 0 = off
    lookahead_every: int = 0
    class_weight: str = "none"  # "balanced": loss weights n / (classes * n_class), for imbalanced data
    # ---- augmentation (cifarkit.training.augment)
    crop: int = 4  # pad pixels per side for random crops (0 = off)
    pad_mode: str = "reflect"  # "reflect" or "zero" padding for crops
    flip: bool = True  # random horizontal flips
    alternate_flip: bool = False  # airbench's flips: one random decision per image, reversed every other epoch
    cutout: int = 0  # cutout square side in pixels (0 = off)
    mixup: float = 0.0  # mixup Beta alpha (0 = off)
    cutmix: float = 0.0  # CutMix Beta alpha (0 = off)
    # progressive resizing (cifarkit.training.progressive): the first progressive_epochs epochs train on the
    # augmented images downscaled to progressive_size x progressive_size (0 = off); later epochs at full size
    progressive_size: int = 0
    progressive_epochs: int = 0
    # ---- reproducibility and hardware
    seed: int = 0  # seeds Python, numpy, torch, Keras and the input pipeline
    deterministic: bool = False  # deterministic kernels: a run and its resumption agree to the last bit
    device: str = "auto"  # "auto" (CUDA when available), "cpu" or "gpu"
    # "auto": bf16 autocast on GPU and on CPUs with native bf16 units (AMX, AVX512-BF16), float32 elsewhere;
    # "off", "bf16", "fp16" (GPU only). The weights stay float32. ImageNet backbones stay float32 on CPU under
    # "auto" (bf16 measured slower for them, precision.CPU_FLOAT32_BACKBONES).
    mixed_precision: str = "auto"
    compile: str = "auto"  # torch.compile the model: "on", "off" or "auto" (GPU, models in loop.AUTO_COMPILE_MODELS)
    # store convolution kernels so that the OIHW weights PyTorch sees are channels-last, matching the
    # channels-last kernels (cifarkit.training.precision.to_channels_last): "auto" (GPU, and CPU under bf16), "on", "off"
    channels_last: str = "auto"
    # input pipeline: "numpy" (cifarkit.training.augment, host memory), "torch" (augment_torch: the training
    # set on the device, augmentation as tensor ops; no mixup/cutmix), "auto": torch on GPU, numpy on CPU
    # and for runs with mixup or cutmix. The two draw different random streams: a run resumes on its own.
    pipeline: str = "auto"
    # ---- evaluation
    eval_batch_size: int = 512
    # benchmarks only: record test accuracy per epoch as test_acc_monitor (never used for a decision)
    eval_test_every_epoch: bool = False

    def __post_init__(self):
        self.milestones = tuple(float(m) for m in self.milestones)
        self.model_options = dict(self.model_options or {})
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first invalid setting."""
        validate_config(self)

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
    def from_dict(cls, d: dict) -> TrainConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError``."""
        _check_keys(d)
        return cls(**d)

    def replace(self, **changes) -> TrainConfig:
        """A copy with some settings changed (validated)."""
        _check_keys(changes)
        return dataclasses.replace(self, **changes)


# --------------------------------------------------------------------------- checks
def validate_config(cfg: TrainConfig) -> None:
    """Raise ``ValueError`` naming the first invalid setting of ``cfg``."""
    _check_types(cfg)
    _check_ranges(cfg)
    _check_combinations(cfg)


def _check_types(cfg: TrainConfig) -> None:
    for name, choices in (
        ("optimizer", OPTIMIZERS),
        ("weight_decay_mode", WEIGHT_DECAY_MODES),
        ("schedule", SCHEDULES),
        ("lr_scaling", LR_SCALINGS),
        ("pad_mode", PAD_MODES),
        ("device", DEVICES),
        ("mixed_precision", MIXED_PRECISIONS),
        ("compile", COMPILES),
        ("channels_last", CHANNELS_LAST),
        ("pipeline", PIPELINES),
        ("class_weight", CLASS_WEIGHTS),
    ):
        _check_choice(name, getattr(cfg, name), choices)
    if not isinstance(cfg.pretrained, str):
        raise ValueError(f"pretrained must be a file path or empty, got {cfg.pretrained!r}.")
    if not isinstance(cfg.backbone_weights, str) or not (
        cfg.backbone_weights.strip().lower() in ("", "none", "imagenet")
        or cfg.backbone_weights.strip().lower().endswith((".h5", ".keras"))
    ):
        raise ValueError(
            f"backbone_weights must be 'imagenet', 'none' or the path of a .h5, .weights.h5 or .keras file, "
            f"got {cfg.backbone_weights!r}."
        )
    if not isinstance(cfg.model, str) or not cfg.model:
        raise ValueError(f"model must be a model name, got {cfg.model!r}.")
    for name in (
        "whiten_init",
        "freeze_whitening",
        "flip",
        "alternate_flip",
        "deterministic",
        "eval_test_every_epoch",
        "nesterov",
    ):
        if not isinstance(getattr(cfg, name), bool):
            raise ValueError(f"{name} must be true or false, got {getattr(cfg, name)!r}.")


def _check_ranges(cfg: TrainConfig) -> None:
    for name in ("epochs", "batch_size", "base_batch_size", "eval_batch_size"):
        _check_int(name, getattr(cfg, name), minimum=1)
    for name in (
        "crop",
        "cutout",
        "seed",
        "whiten_bias_epochs",
        "lookahead_every",
        "freeze_epochs",
        "progressive_size",
        "progressive_epochs",
        "muon_min_filters",
    ):
        _check_int(name, getattr(cfg, name), minimum=0)
    for name in ("lr", "momentum", "weight_decay", "gamma", "warmup_epochs", "mixup", "cutmix", "bn_bias_lr_scale"):
        _check_number(name, getattr(cfg, name), minimum=0.0)
    _check_number("muon_lr", cfg.muon_lr, minimum=0.0)
    _check_number("muon_momentum", cfg.muon_momentum, minimum=0.0, maximum=0.999)
    for name in ("warmup_start_factor", "final_lr_factor", "label_smoothing"):
        _check_number(name, getattr(cfg, name), minimum=0.0, maximum=1.0)
    if cfg.lr <= 0:
        raise ValueError(f"lr must be positive, got {cfg.lr!r}.")
    if cfg.momentum >= 1.0:
        raise ValueError(f"momentum must be below 1, got {cfg.momentum!r}.")
    if any(not 0.0 < m < 1.0 for m in cfg.milestones) or list(cfg.milestones) != sorted(cfg.milestones):
        raise ValueError(
            f"milestones must be increasing fractions of training strictly between 0 and 1, "
            f"e.g. (0.5, 0.75); got {cfg.milestones!r}."
        )
    _check_number("whiten_eps", cfg.whiten_eps, minimum=0.0)
    if cfg.whiten_eps <= 0:
        raise ValueError(f"whiten_eps must be positive (airbench uses 5e-4), got {cfg.whiten_eps!r}.")
    _check_number("finetune_lr_factor", cfg.finetune_lr_factor, minimum=0.0, maximum=1.0)
    if cfg.finetune_lr_factor <= 0:
        raise ValueError(
            f"finetune_lr_factor must be in (0, 1] (1 keeps the learning rate when the backbone is unfrozen), "
            f"got {cfg.finetune_lr_factor!r}."
        )
    if cfg.bn_bias_lr_scale <= 0:
        raise ValueError(
            f"bn_bias_lr_scale must be positive (1 = same lr as the weights), got {cfg.bn_bias_lr_scale!r}."
        )


def _check_combinations(cfg: TrainConfig) -> None:
    if (cfg.freeze_whitening or cfg.whiten_bias_epochs) and not cfg.whiten_init:
        raise ValueError(
            "freeze_whitening and whiten_bias_epochs act on fastnet's whitening layer and need whiten_init=True "
            "(model='fastnet'); drop them or set whiten_init=True."
        )
    if cfg.alternate_flip is True and cfg.flip is False:
        raise ValueError("alternate_flip=True needs flip=True; set flip=True or alternate_flip=False.")
    if bool(cfg.progressive_size) != bool(cfg.progressive_epochs):
        raise ValueError(
            f"progressive_size and progressive_epochs go together (got progressive_size={cfg.progressive_size}, "
            f"progressive_epochs={cfg.progressive_epochs}): set both (e.g. progressive_size=24, "
            "progressive_epochs=1) or both to 0."
        )
    if cfg.progressive_epochs >= cfg.epochs:
        raise ValueError(
            f"progressive_epochs={cfg.progressive_epochs} must be below epochs={cfg.epochs}: the last epochs train "
            "at full size, the size the model is evaluated at. Lower progressive_epochs or raise epochs."
        )
    if cfg.pipeline == "torch" and (cfg.mixup or cfg.cutmix):
        raise ValueError(
            "pipeline='torch' does not implement mixup or cutmix; set pipeline='numpy' (or 'auto', which picks "
            "it for such runs), or turn mixup and cutmix off."
        )
    if cfg.optimizer != "muon":
        stray = [f"{n}={getattr(cfg, n)!r}" for n in MUON_KEYS if getattr(cfg, n) != getattr(TrainConfig, n)]
        if stray:
            raise ValueError(
                f"{', '.join(stray)} {agree(len(stray), 'acts', 'act')} only with optimizer='muon' (got "
                f"optimizer={cfg.optimizer!r}); set optimizer='muon' or leave them at their defaults."
            )
    if cfg.nesterov and cfg.optimizer == "sgd" and cfg.momentum == 0:
        raise ValueError("nesterov=True needs momentum > 0; set nesterov=False or a momentum such as 0.9.")


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


def default_settings() -> dict:
    """Every setting's default, JSON-shaped (tuples as lists), as :meth:`TrainConfig.to_dict` writes them."""
    out = {}
    for f in fields(TrainConfig):
        value = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        out[f.name] = json.loads(json.dumps(list(value) if isinstance(value, tuple) else value))
    return out


def _check_keys(d: dict) -> None:
    unknown = sorted(set(d) - set(config_keys()))
    if unknown:
        raise ValueError(
            f"Unknown training setting(s) {', '.join(map(repr, unknown))}. Valid settings: {', '.join(config_keys())}."
        )


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
