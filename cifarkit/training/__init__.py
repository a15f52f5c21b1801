"""Training: the loop, ``TrainConfig`` and the named recipes, augmentation, checkpoints, optimizers, inference.

Example:
    >>> from cifarkit.training import resolve_recipe, train
    >>> config = resolve_recipe("fast", epochs=4)        # doctest: +SKIP
    >>> result = train(dataset, config, "runs/fastnet")  # doctest: +SKIP
    >>> result.metrics["test_acc"]                       # doctest: +SKIP

Training runs Keras models on the PyTorch backend with a plain torch loop
(:mod:`cifarkit.training.loop`); importing this package imports no backend until
a function needs it.
"""

from cifarkit.training.config import TrainConfig, config_keys, parse_override
from cifarkit.training.inference import evaluate_model, flip_horizontal, predict_logits, predict_probs, softmax
from cifarkit.training.loop import TrainingDivergedError, TrainResult, train
from cifarkit.training.recipes import RECIPES, list_recipes, notebook_config, notebook_settings, resolve_recipe
from cifarkit.training.schedule import lr_schedule_values

__all__ = [
    "RECIPES",
    "TrainConfig",
    "TrainResult",
    "TrainingDivergedError",
    "config_keys",
    "evaluate_model",
    "flip_horizontal",
    "list_recipes",
    "notebook_config",
    "notebook_settings",
    "lr_schedule_values",
    "parse_override",
    "predict_logits",
    "predict_probs",
    "resolve_recipe",
    "softmax",
    "train",
]
