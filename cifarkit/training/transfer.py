"""Fine-tuning: copy a saved model's layers into a freshly built one, and the two phases of an ImageNet backbone.

:func:`transfer_weights` (``pretrained=``) copies a saved cifarkit model's layers by name; it downloads
nothing. The backbone models of :mod:`cifarkit.models.backbones` (``backbone_weights=``) train in two
phases (:class:`PhasePlan`): the new head alone with the backbone frozen for ``freeze_epochs``, then the
whole network at ``finetune_lr_factor`` (0.1) times the scheduled learning rate with the backbone's batch
norms kept in inference mode, as Keras' transfer-learning guide does it.
"""

from __future__ import annotations

import math
import zipfile
from dataclasses import dataclass
from pathlib import Path

from cifarkit import backend
from cifarkit.training.config import TrainConfig

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _check_model_file(path: Path) -> None:
    """Raise a ValueError naming ``path`` unless it is a ``.keras`` archive (a zip), or a ``.weights.h5`` file or a
    legacy ``.h5`` model (HDF5). Keras reads anything else as a legacy TensorFlow file and fails with "No module
    named 'tensorflow'"."""
    with path.open("rb") as f:
        head = f.read(8)
    label = ".weights.h5" if path.name.endswith(".weights.h5") else path.suffix
    if path.suffix == ".h5":
        ok, kind = head == _HDF5_SIGNATURE, "an HDF5 file"
    elif path.suffix == ".keras":
        ok, kind = zipfile.is_zipfile(path), "a zip archive"
    else:
        raise ValueError(
            "Pretrained weights must be a .keras model or a .weights.h5 file (what model.save() and "
            f"model.save_weights() write), or a legacy .h5 model; got {path}."
        )
    if not ok:
        raise ValueError(
            f"{path} is not {kind}, as a Keras {label} file is: damaged, or another format renamed. Save the model "
            "again with Keras 3 (model.save or model.save_weights), or leave pretrained empty to train from scratch."
        )


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
        ValueError: the file is no Keras model or weights file (damaged, renamed, another suffix), or it shares no
            layer with ``model`` (another architecture).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"Pretrained weights not found: {path}. Give the path of a .keras model or .weights.h5 file on this "
            "machine (cifarkit downloads nothing), or leave pretrained empty to train from scratch."
        )
    _check_model_file(path)
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
    return {
        "path": str(path.resolve()),
        "layers_copied": len(copied),
        "layers_skipped": skipped,
        "weights_copied": n_weights,
    }


# --------------------------------------------------------------------------- ImageNet backbones: two phases
PHASE_SCRATCH = "scratch"  # no weights to keep: every layer trains from the first epoch, batch norms too
PHASE_FROZEN = "frozen"  # the backbone frozen, only the new head trains
PHASE_FINETUNE = "fine-tune"  # everything trains at finetune_lr_factor x the rate, batch norms in inference mode


@dataclass
class PhasePlan:
    """How a backbone model trains: head only for ``frozen_epochs``, then all of it at ``lr_factor`` x the rate.

    ``pretrained`` is False for a backbone trained from scratch (no weights, or the ImageNet download
    failed): one phase, ``"scratch"``, and ``FREEZE_EPOCHS`` does not apply (a random backbone is not
    worth freezing).
    """

    pretrained: bool
    frozen_epochs: int
    lr_factor: float
    bn_inference: bool

    def phase(self, epoch: int) -> str:
        """The phase of epoch ``epoch`` (1-based)."""
        if not self.pretrained:
            return PHASE_SCRATCH
        return PHASE_FROZEN if epoch <= self.frozen_epochs else PHASE_FINETUNE

    def lr_multiplier(self, epoch: int) -> float:
        return self.lr_factor if self.phase(epoch) == PHASE_FINETUNE else 1.0

    def describe(self, epochs: int) -> str:
        """One sentence for a report: which epochs train what, at which rate."""
        if not self.pretrained:
            which = "the one epoch trains" if epochs == 1 else f"all {epochs} epochs train"
            return f"{which} every layer from scratch (batch norms learn their statistics)"
        frozen = min(self.frozen_epochs, epochs)
        parts = []
        if frozen:
            parts.append(f"{_epochs(1, frozen)} train only the new head (backbone frozen)")
        if epochs > frozen:
            parts.append(
                f"{_epochs(frozen + 1, epochs)} fine-tune the whole network at {self.lr_factor:g} x the "
                "scheduled learning rate, batch norms kept in inference mode"
            )
        return "; ".join(parts)


def _epochs(first: int, last: int) -> str:
    return f"epoch {first}" if first == last else f"epochs {first}-{last}"


def phase_plan(config: TrainConfig, info: dict) -> PhasePlan:
    """The :class:`PhasePlan` of ``config`` for a backbone built with ``info`` (``BackboneBuild.info``)."""
    pretrained = info.get("weights") != "none" or bool(config.pretrained)
    return PhasePlan(
        pretrained=pretrained,
        frozen_epochs=int(config.freeze_epochs) if pretrained else 0,
        lr_factor=float(config.finetune_lr_factor) if pretrained else 1.0,
        bn_inference=bool(info.get("bn_inference")),
    )


def split_backbone_groups(optimizer, backbone) -> int:
    """Move the backbone's parameters out of each optimizer group into a twin group (``"<name>:backbone"``,
    same settings, ``backbone=True``) so that :func:`apply_phase` can stop their updates in the frozen phase
    (learning rate 0, and no decoupled weight decay: ``TrainStep`` skips groups whose ``lr_scale`` is 0).
    Call it on a fresh optimizer, before any step. Returns the number of parameters moved."""
    ids = {id(v.value) for v in backbone.weights}
    twins, moved = [], 0
    for group in optimizer.param_groups:
        mine = [p for p in group["params"] if id(p) in ids]
        if not mine:
            continue
        group["params"] = [p for p in group["params"] if id(p) not in ids]
        twin = {k: v for k, v in group.items() if k != "params"}
        twin.update(params=mine, name=f"{group.get('name', 'weights')}:backbone", backbone=True)
        twin["base_lr_scale"] = twin.get("lr_scale", 1.0)
        twins.append(twin)
        moved += len(mine)
    optimizer.param_groups[:] = [g for g in optimizer.param_groups if g["params"]]
    for twin in twins:
        optimizer.add_param_group(twin)
    return moved


def apply_phase(model, optimizer, plan: PhasePlan, phase: str) -> None:
    """Freeze or unfreeze the backbone of ``model`` for ``phase`` (idempotent; called at every epoch start).

    Frozen: the backbone is not trainable (no gradients are computed for it, its optimizer groups get
    learning rate 0). Fine-tune and scratch: it trains; with ``plan.bn_inference`` its batch norms stay
    non-trainable, which in Keras 3 keeps them in inference mode (moving statistics fixed).
    """
    from cifarkit.models.backbones import backbone_of, set_batch_norm_inference

    backbone = backbone_of(model)
    if backbone is None:
        return
    frozen = phase == PHASE_FROZEN
    backbone.trainable = not frozen
    if not frozen and plan.bn_inference:
        set_batch_norm_inference(backbone)
    if optimizer is not None:
        for group in optimizer.param_groups:
            if group.get("backbone"):
                group["lr_scale"] = 0.0 if frozen else group.get("base_lr_scale", 1.0)


def trainable_params_per_phase(model, plan: PhasePlan) -> dict:
    """Trainable scalars in each phase the plan uses, e.g. ``{"frozen": 3843, "fine-tune": 2_225_795}``."""
    from cifarkit.models.backbones import backbone_of

    backbone = backbone_of(model)
    inside = {id(v) for v in backbone.weights} if backbone is not None else set()
    trainable = [v for v in model.trainable_weights]
    total = sum(math.prod(int(d) for d in v.shape) for v in trainable)
    head = sum(math.prod(int(d) for d in v.shape) for v in trainable if id(v) not in inside)
    if not plan.pretrained:
        return {PHASE_SCRATCH: int(total)}
    return {PHASE_FROZEN: int(head), PHASE_FINETUNE: int(total)}


def backbone_settings(model: str, backbone: str, weights: str, freeze_epochs: int) -> tuple[str, dict]:
    """A notebook's ``MODEL``/``BACKBONE``/``BACKBONE_WEIGHTS``/``FREEZE_EPOCHS`` as ``(model name, settings)``.

    ``backbone`` other than ``"none"``/empty replaces ``model``; for a backbone model the settings carry
    ``backbone_weights`` (empty means ``"none"``) and ``freeze_epochs``, for a CIFAR model they are empty.

    Raises:
        ValueError: an unknown backbone name (the message lists the supported ones).
    """
    from cifarkit.models import list_backbones, model_info

    name = model
    if backbone and str(backbone).strip().lower() != "none":
        if backbone not in list_backbones():
            raise ValueError(
                f"Unknown BACKBONE {backbone!r}. Supported backbones: {', '.join(list_backbones())}, or none."
            )
        name = backbone
    if model_info(name).get("kind") != "backbone":
        return name, {}
    return name, {"backbone_weights": str(weights or "none"), "freeze_epochs": int(freeze_epochs)}
