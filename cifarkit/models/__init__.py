"""Model zoo: CIFAR architectures as Keras Functional builders behind a name registry.

Example:
    >>> from cifarkit import models
    >>> models.list_models()[:3]
    ['densenet_bc_100', 'fastnet', 'resnet110']
    >>> model = models.build_model("resnet20", input_shape=(32, 32, 3), num_classes=10)
    >>> models.count_params(model)
    271098

Every model takes raw NHWC images (uint8 or 0..255 floats) and returns float32
logits. Importing this package configures the Keras backend (PyTorch by
default, see :mod:`cifarkit.backend`) and registers the custom layers, so
``keras.saving.load_model`` can read saved models afterwards.

``list_models()`` names the CIFAR architectures; ``list_backbones()`` the ImageNet backbones from
``keras.applications`` (``mobilenet_v2``, ``efficientnet_b0``, ``resnet50``, ...) that
``build_model`` builds with a new head (:mod:`cifarkit.models.backbones`).
"""

from cifarkit.models import layers  # noqa: F401  (registers the custom layers)
from cifarkit.models.common import count_flops, count_params
from cifarkit.models.registry import (
    build_model,
    check_model_options,
    get_builder,
    list_backbones,
    list_models,
    model_info,
    register,
)

# Importing the architecture modules fills the registry.
from cifarkit.models import densenet, fastnet, resnet, simple_cnn, vgg, wrn  # noqa: E402,F401  isort: skip
from cifarkit.models import backbones  # noqa: E402,F401  isort: skip  (keras.applications backbones)
from cifarkit.models.backbones import build_backbone  # noqa: E402
from cifarkit.models.fastnet import init_whitening  # noqa: E402

__all__ = [
    "build_backbone",
    "build_model",
    "check_model_options",
    "count_flops",
    "count_params",
    "get_builder",
    "init_whitening",
    "list_backbones",
    "list_models",
    "model_info",
    "register",
]
