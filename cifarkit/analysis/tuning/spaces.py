"""Search spaces: which hyperparameters a study searches, and how trial parameters become training settings.

Spaces live in one registry, :data:`SPACES` (name -> :class:`SearchSpace`): a notebook parameter or
``--space`` picks one by name, :func:`register_space` adds more. A parameter is a
:class:`~cifarkit.training.TrainConfig` setting or a model option (passed through
``TrainConfig.model_options``); a model option the model does not accept is left out for that model.
``lr`` and ``weight_decay`` are searched on a log scale around the recipe's own value (``lr`` from
0.2x to 5x), since a good rate depends on the recipe's optimizer and batch size; sampled values are absolute.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cifarkit.training import TrainConfig, config_keys


class TuneError(ValueError):
    """Bad tuning input: unknown search space or pruner, unreachable storage, conflicting study."""


@dataclass(frozen=True)
class Param:
    """One searched hyperparameter.

    Attributes:
        name: a :class:`~cifarkit.training.TrainConfig` field, or a model option
            when ``model_option`` is true.
        kind: ``"float"``, ``"int"`` or ``"categorical"``.
        low, high: bounds of ``float``/``int`` parameters; with ``relative``
            they are multiples of the recipe's value of ``name``.
        log: sample on a log scale.
        step: grid step of ``int``/``float`` parameters (None: continuous).
        choices: values of a ``categorical`` parameter.
        relative: bounds are relative to the recipe's value; ``fallback``
            gives absolute bounds when that value is 0.
        fallback: absolute ``(low, high)`` used when the recipe's value is 0.
        model_option: passed to the model builder through ``TrainConfig.model_options``.
        help: what the parameter does, for tables.
    """

    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple = ()
    relative: bool = False
    fallback: tuple | None = None
    model_option: bool = False
    help: str = ""

    def distribution(self, base: TrainConfig, *, model_options: list[str], n_train: int, image_size: int):
        """The Optuna distribution of this parameter for a run, or a string saying why it is left out."""
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        if self.model_option and self.name not in model_options:
            return f"model {base.model!r} has no option {self.name!r}"
        if self.kind == "categorical":
            choices = tuple(self.choices)
            if self.name == "batch_size":
                choices = tuple(c for c in choices if c <= n_train)
                if not choices:
                    return f"the training split ({n_train} images) is smaller than every batch size {self.choices}"
            return CategoricalDistribution(choices)
        low, high = self.low, self.high
        if self.relative:
            ref = getattr(base, self.name)
            if ref > 0:
                low, high = low * ref, high * ref
            elif self.fallback:
                low, high = self.fallback
            else:
                return f"the recipe's {self.name} is 0"
        if self.kind == "int":
            if self.name == "cutout":
                high = min(int(high), image_size // 2)
            step = int(self.step or 1)
            high = low + (int(high) - int(low)) // step * step
            if high <= low:
                return f"no room for {self.name} at {image_size}x{image_size} pixels"
            return IntDistribution(int(low), int(high), log=self.log, step=step)
        return FloatDistribution(float(low), float(high), log=self.log, step=self.step)


@dataclass(frozen=True)
class SearchSpace:
    """A named list of :class:`Param`."""

    name: str
    description: str
    params: tuple


#: name -> search space; add more with :func:`register_space`.
SPACES: dict[str, SearchSpace] = {}

_LR = Param(
    "lr", "float", 0.2, 5.0, log=True, relative=True, help="base learning rate, 0.2x to 5x the recipe's (log scale)"
)
_WD = Param(
    "weight_decay",
    "float",
    0.1,
    10.0,
    log=True,
    relative=True,
    fallback=(1e-5, 1e-2),
    help="weight decay, 0.1x to 10x the recipe's (log scale)",
)
_BATCH = Param(
    "batch_size",
    "categorical",
    choices=(64, 128, 256, 512),
    help="batch size; the lr scales with it linearly unless the recipe says lr_scaling none",
)
_DROPOUT = Param("dropout", "float", 0.0, 0.5, model_option=True, help="dropout rate of the model")
_WIDTH = Param(
    "width_multiplier",
    "categorical",
    choices=(0.5, 0.75, 1.0, 1.25),
    model_option=True,
    help="scales every layer width of the model",
)
_CROP = Param("crop", "int", 0, 4, step=2, help="random-crop padding in pixels (augmentation strength)")
_CUTOUT = Param("cutout", "int", 0, 12, step=4, help="cutout square side in pixels (0 = off)")
_SMOOTH = Param("label_smoothing", "float", 0.0, 0.3, help="label smoothing of the loss")
_SCHEDULE = Param(
    "schedule", "categorical", choices=("cosine", "onecycle", "step"), help="learning-rate schedule after warmup"
)


def register_space(name: str, params, description: str = "") -> SearchSpace:
    """Add a search space to :data:`SPACES` under ``name``.

    Raises:
        ValueError: the name is taken, a parameter is neither a training
            setting nor a model option, or a name appears twice.
    """
    if name in SPACES:
        raise ValueError(f"Search space {name!r} is already registered; pick another name.")
    params = tuple(params)
    names = [p.name for p in params]
    if len(set(names)) != len(names):
        raise ValueError(f"Search space {name!r} lists a parameter twice: {names}.")
    for p in params:
        if p.kind not in ("float", "int", "categorical"):
            raise ValueError(f"Parameter {p.name!r} has kind {p.kind!r}; use float, int or categorical.")
        if not p.model_option and (
            p.name not in config_keys() or p.name in ("model", "model_options", "epochs", "seed")
        ):
            raise ValueError(
                f"Parameter {p.name!r} of search space {name!r} is not a searchable training setting; "
                f"use a TrainConfig field or set model_option=True for a model builder option."
            )
    space = SearchSpace(name, description, params)
    SPACES[name] = space
    return space


register_space(
    "default",
    (_LR, _WD, _BATCH, _DROPOUT, _WIDTH, _CROP, _CUTOUT, _SMOOTH, _SCHEDULE),
    "every knob: optimizer, batch size, model width and dropout, augmentation, label smoothing, schedule",
)
register_space(
    "optimizer",
    (_LR, _WD, _BATCH, _SCHEDULE),
    "learning rate, weight decay, batch size and schedule; the model stays as it is",
)
register_space(
    "regularization",
    (_WD, _DROPOUT, _CROP, _CUTOUT, _SMOOTH),
    "weight decay, dropout, augmentation strength and label smoothing",
)
register_space("lr", (_LR, _WD), "learning rate and weight decay only: the cheapest useful search")


def list_spaces() -> list[str]:
    """Names of the registered search spaces, sorted."""
    return sorted(SPACES)


def get_space(name: str) -> SearchSpace:
    """The search space registered as ``name``; unknown names raise :class:`TuneError` listing the known ones."""
    if name not in SPACES:
        raise TuneError(f"Unknown search space {name!r}. Known search spaces: {', '.join(list_spaces())}.")
    return SPACES[name]


def resolve_space(space: str, base: TrainConfig, *, n_train: int, image_size: int = 32) -> tuple[dict, dict]:
    """The Optuna distributions of a search space for one model, recipe and data size.

    Args:
        space: a name from :func:`list_spaces`.
        base: the recipe's config for the model (the centre of relative ranges).
        n_train: training images (batch sizes above it are dropped).
        image_size: image side (cutout stays at most half of it).

    Returns:
        ``(distributions, skipped)``: parameter name -> distribution, and
        parameter name -> why it is left out.
    """
    from cifarkit.models import model_info

    options = model_info(base.model)["options"]
    dists, skipped = {}, {}
    for p in get_space(space).params:
        d = p.distribution(base, model_options=options, n_train=n_train, image_size=image_size)
        if isinstance(d, str):
            skipped[p.name] = d
        else:
            dists[p.name] = d
    return dists, skipped


def describe_space(space: str, base: TrainConfig, *, n_train: int, image_size: int = 32) -> list[dict]:
    """One row per parameter of a search space: name, range, scale, recipe value, and why one is skipped."""
    from optuna.distributions import CategoricalDistribution

    dists, skipped = resolve_space(space, base, n_train=n_train, image_size=image_size)
    defaults = _builder_defaults(base.model)
    rows = []
    for p in get_space(space).params:
        current = base.model_options.get(p.name, defaults.get(p.name, "")) if p.model_option else getattr(base, p.name)
        row = {
            "parameter": p.name,
            "kind": "model option" if p.model_option else "training setting",
            "recipe value": current,
            "what it does": p.help,
        }
        d = dists.get(p.name)
        if d is None:
            row.update({"range": "", "scale": "", "searched": f"no: {skipped[p.name]}"})
        elif isinstance(d, CategoricalDistribution):
            row.update({"range": ", ".join(map(str, d.choices)), "scale": "choice", "searched": "yes"})
        else:
            step = f" step {d.step:g}" if d.step not in (None, 1) else ""
            row.update(
                {"range": f"{d.low:g} .. {d.high:g}{step}", "scale": "log" if d.log else "linear", "searched": "yes"}
            )
        rows.append(row)
    return rows


def _contains(dist, value) -> bool:
    from optuna.distributions import CategoricalDistribution

    if isinstance(dist, CategoricalDistribution):
        return value in dist.choices
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not dist.low <= value <= dist.high:
        return False
    if dist.step is not None:
        k = (value - dist.low) / dist.step
        return abs(k - round(k)) < 1e-9
    return True


def _builder_defaults(model: str) -> dict:
    """Default values of a model builder's keyword options (what a model gets when the recipe sets none)."""
    import inspect

    from cifarkit.models.registry import get_builder

    return {
        k: p.default
        for k, p in inspect.signature(get_builder(model)).parameters.items()
        if p.default is not inspect.Parameter.empty
    }


def matching_trial(study, params: dict, states=None):
    """The first trial whose parameters include all of ``params`` (e.g. the enqueued recipe baseline), or None."""
    from optuna.trial import TrialState

    if not params:
        return None
    for t in study.get_trials(deepcopy=False, states=states or (TrialState.COMPLETE,)):
        if all(k in t.params and t.params[k] == v for k, v in params.items()):
            return t
    return None


def recipe_params(space: str, base: TrainConfig, *, n_train: int, image_size: int = 32) -> dict:
    """The recipe's own values of a search space's parameters, as a trial to enqueue first (a baseline).

    Model options the recipe leaves unset take the model builder's default.
    Values outside the searched range are left out (the sampler picks them).
    """
    dists, _ = resolve_space(space, base, n_train=n_train, image_size=image_size)
    defaults = _builder_defaults(base.model)
    by_name = {p.name: p for p in get_space(space).params}
    out = {}
    for name, dist in dists.items():
        if by_name[name].model_option:
            value = base.model_options.get(name, defaults.get(name))
        else:
            value = getattr(base, name)
        if isinstance(value, int) and not isinstance(value, bool) and type(dist).__name__ == "FloatDistribution":
            value = float(value)
        if value is not None and _contains(dist, value):
            out[name] = value
    return out


def params_to_settings(space: str, params: dict) -> dict:
    """Turn a trial's parameters into :func:`~cifarkit.training.resolve_recipe` overrides.

    Model options go under ``model_options``; everything else is a training setting.
    """
    by_name = {p.name: p for p in get_space(space).params}
    settings, options = {}, {}
    for name, value in params.items():
        if isinstance(value, (np.integer,)):
            value = int(value)
        elif isinstance(value, (np.floating,)):
            value = float(value)
        if by_name.get(name) is not None and by_name[name].model_option:
            options[name] = value
        else:
            settings[name] = value
    if options:
        settings["model_options"] = options
    return settings


def merge_settings(*layers: dict) -> dict:
    """Merge dicts of training settings left to right; ``model_options`` are merged key by key."""
    out: dict = {}
    options: dict = {}
    for layer in layers:
        for key, value in (layer or {}).items():
            if key == "model_options":
                options.update(value or {})
            else:
                out[key] = value
    if options:
        out["model_options"] = options
    return out
