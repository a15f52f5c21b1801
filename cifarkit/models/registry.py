"""Model registry: a plain string (``"resnet20"``) names a builder and every fact about the model.

Each architecture module registers its builders with :func:`register`, beside
the model's facts (as timm's ``default_cfgs``): the paper, its published
CIFAR-10 error and the epochs behind it, the recipe that reproduces the paper,
and special layers the training loop treats apart. Importing
:mod:`cifarkit.models` imports them all. Notebooks pick a model with a string
parameter and tests loop over :func:`list_models`.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

#: Arguments every builder takes; build_model passes them explicitly.
COMMON_ARGS = ("input_shape", "num_classes", "mean", "std")


@dataclass(frozen=True)
class ModelEntry:
    """What the registry knows about one model name."""

    name: str
    builder: Callable
    fixed_options: dict = field(default_factory=dict)
    family: str = ""
    paper: str | None = None
    reference_params: int | None = None
    reference_error_pct: float | None = None
    reference_source: str | None = None
    reference_epochs: int | None = None
    paper_recipe: str | None = None
    whitening_layer: str | None = None
    notes: str = ""
    kind: str = "cifar"  # "cifar" (built here for small images) or "backbone" (keras.applications, see backbones.py)


#: Kinds of registered models: the CIFAR architectures, and ImageNet backbones from keras.applications.
KINDS = ("cifar", "backbone")

_REGISTRY: dict[str, ModelEntry] = {}


def register(
    name: str,
    *,
    family: str,
    paper: str | None = None,
    reference_params: int | None = None,
    reference_error_pct: float | None = None,
    reference_source: str | None = None,
    reference_epochs: int | None = None,
    paper_recipe: str | None = None,
    whitening_layer: str | None = None,
    notes: str = "",
    kind: str = "cifar",
    **fixed_options,
):
    """Decorator that registers a builder function under ``name``.

    Stack it to register one generic builder under several names, each fixing
    some of its options (``@register("resnet20", family="resnet", depth=20)``).

    Args:
        name: the model name users pass to :func:`build_model`.
        family: architecture family (``"resnet"``, ``"vgg"``, ...).
        paper: the publication the architecture follows.
        reference_params: parameter count the paper reports, if any.
        reference_error_pct: CIFAR-10 test error (%) the paper reports, if any.
        reference_source: where in the paper (table) the numbers come from and
            the setting they were measured in.
        reference_epochs: epochs the published number was trained for.
        paper_recipe: the recipe (``cifarkit.training.RECIPES``) that follows
            the paper's training; ``"paper"`` resolves to it for this model.
        whitening_layer: name of a first convolution that the training loop
            initializes from the data (``whiten_init``), if the model has one.
        notes: anything a reader of the numbers should know.
        kind: ``"cifar"`` or ``"backbone"`` (a ``keras.applications`` network with a new head; listed
            by :func:`list_backbones`, not by :func:`list_models`).
        **fixed_options: builder keyword arguments this name fixes.

    Returns:
        The decorator; it returns the builder unchanged.
    """

    def decorator(builder: Callable) -> Callable:
        if kind not in KINDS:
            raise ValueError(f"register('{name}'): kind must be one of {KINDS}; received {kind!r}.")
        if name in _REGISTRY:
            raise ValueError(f"Model name '{name}' is already registered (by {_REGISTRY[name].builder.__module__}).")
        params = inspect.signature(builder).parameters
        unknown = [k for k in fixed_options if k not in params]
        if unknown:
            raise TypeError(f"register('{name}'): {builder.__name__} has no option(s) {unknown}.")
        _REGISTRY[name] = ModelEntry(
            name=name,
            builder=builder,
            fixed_options=dict(fixed_options),
            family=family,
            paper=paper,
            reference_params=reference_params,
            reference_error_pct=reference_error_pct,
            reference_source=reference_source,
            reference_epochs=reference_epochs,
            paper_recipe=paper_recipe,
            whitening_layer=whitening_layer,
            notes=notes,
            kind=kind,
        )
        return builder

    return decorator


def list_models(include_backbones: bool = False) -> list[str]:
    """Names of the registered CIFAR architectures, sorted; with ``include_backbones`` the ImageNet backbones too.

    The backbones (:func:`list_backbones`) are kept out of the default list: they need images of 32 px
    and more (96-224 px to use ImageNet weights), so the loops over "every model" (the architecture
    table, the model tests) stay with the networks made for CIFAR's 32 px images.
    """
    return sorted(n for n, e in _REGISTRY.items() if include_backbones or e.kind == "cifar")


def list_backbones() -> list[str]:
    """Names of the registered ``keras.applications`` backbones, sorted (see :mod:`cifarkit.models.backbones`)."""
    return sorted(n for n, e in _REGISTRY.items() if e.kind == "backbone")


def _entry(name: str) -> ModelEntry:
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"Unknown model {name!r}. Known models: {', '.join(list_models())}; ImageNet backbones: "
            f"{', '.join(list_backbones())}."
        ) from None


def _options(entry: ModelEntry) -> list[str]:
    """Keyword options a user may pass for this model (besides the common ones)."""
    params = inspect.signature(entry.builder).parameters
    return [p for p in params if p not in COMMON_ARGS and p not in entry.fixed_options]


def check_model_options(name: str, options) -> None:
    """Raise ``ValueError`` for an unknown model or an option its builder does not take."""
    accepted = _options(_entry(name))
    unknown = sorted(set(options or ()) - set(accepted))
    if unknown:
        raise ValueError(
            f"Model {name!r} does not accept option(s) {', '.join(unknown)}. Options it accepts: {', '.join(accepted)}."
        )


def get_builder(name: str) -> Callable[..., Any]:
    """The builder function for ``name`` with the options that name fixes already bound.

    ``get_builder("resnet20")(num_classes=2)`` builds the same model as
    ``build_model("resnet20", num_classes=2)`` but skips its option checks.
    """
    entry = _entry(name)
    defaults = dict(entry.fixed_options)
    if "name" in inspect.signature(entry.builder).parameters:
        defaults["name"] = name
    return functools.partial(entry.builder, **defaults)


def model_info(name: str) -> dict:
    """What is known about a model: family, paper, reference numbers and accepted options.

    Returns:
        A dict with ``name``, ``family``, ``paper``, ``reference_params`` (int or
        None), ``reference_error_pct`` (published CIFAR-10 test error in percent
        or None), ``reference_source``, ``reference_epochs``, ``paper_recipe``,
        ``whitening_layer``, ``notes``, ``kind`` (``"cifar"`` or ``"backbone"``), ``builder`` (dotted path),
        ``fixed_options`` and ``options`` (keyword options build_model accepts).
    """
    entry = _entry(name)
    return {
        "name": entry.name,
        "family": entry.family,
        "paper": entry.paper,
        "reference_params": entry.reference_params,
        "reference_error_pct": entry.reference_error_pct,
        "reference_source": entry.reference_source,
        "reference_epochs": entry.reference_epochs,
        "paper_recipe": entry.paper_recipe,
        "whitening_layer": entry.whitening_layer,
        "notes": entry.notes,
        "kind": entry.kind,
        "builder": f"{entry.builder.__module__}.{entry.builder.__name__}",
        "fixed_options": dict(entry.fixed_options),
        "options": _options(entry),
    }


def build_model(name: str, input_shape=(32, 32, 3), num_classes: int = 10, mean=None, std=None, **options):
    """Build a registered model.

    Args:
        name: a name from :func:`list_models`, e.g. ``"resnet20"``.
        input_shape: ``(height, width, channels)`` of the raw images (NHWC, 0..255).
        num_classes: number of output logits (>= 2).
        mean, std: per-channel statistics of the training split in 0..1 units;
            None uses CIFAR-10's for 3-channel input.
        **options: builder options such as ``width_multiplier`` or ``dropout``;
            :func:`model_info` lists them per model.

    Returns:
        An uncompiled ``keras.Model`` that maps images to float32 logits.
    """
    entry = _entry(name)
    accepted = _options(entry)
    fixed = {k: v for k, v in options.items() if k in entry.fixed_options}
    if fixed:
        k, v = next(iter(fixed.items()))
        raise ValueError(
            f"Model '{name}' fixes {k}={entry.fixed_options[k]!r}; received {k}={v!r}. Pick the registered "
            f"name with the setting you want, or call {entry.builder.__module__}.{entry.builder.__name__}({k}=...)."
        )
    unknown = sorted(k for k in options if k not in accepted)
    if unknown:
        raise TypeError(
            f"Model '{name}' does not accept option(s) {', '.join(unknown)}. Options it accepts: {', '.join(accepted)}."
        )
    if "name" in accepted:
        options.setdefault("name", name)
    return entry.builder(
        input_shape=input_shape, num_classes=num_classes, mean=mean, std=std, **entry.fixed_options, **options
    )
