"""ImageNet backbones from ``keras.applications`` with a new head for the data's classes, behind the registry.

A backbone model is ``image -> BackbonePreprocess -> keras.applications network (include_top=False,
global average pooling) -> Dropout -> Dense(num_classes)``. The first layer applies the family's own
``preprocess_input`` (ResNet50: RGB to BGR and ImageNet means subtracted; MobileNetV2: scaled to -1..1;
DenseNet: ImageNet mean and standard deviation; EfficientNet and MobileNetV3 normalize inside the
network, as Keras builds them), so the model takes raw 0-255 NHWC pixels like every cifarkit model
and a saved ``model.keras`` needs no separate preprocessing. Unlike the CIFAR models it does not
normalize with the data's own statistics: ImageNet weights expect their family's input.

Weights (``weights=``): ``None``/``"none"`` trains from scratch; ``"imagenet"`` asks Keras for its
ImageNet file (downloaded once into ``~/.keras/models``, or ``$KERAS_HOME/models``); a path loads a
local file (:func:`load_weights_file`). When the ImageNet download fails (no network), the model is
built from scratch and :attr:`BackboneBuild.info` says so with the reason; a bad local file is an
error. With weights loaded, every batch-norm layer of the backbone is made non-trainable, which in
Keras 3 also keeps it in inference mode while the rest trains (the fine-tuning guide's advice; the
guide's ``base_model(x, training=False)`` does not survive an outer ``training=True`` call in
Keras 3). From scratch the batch norms train, with the project's momentum 0.9.

The registry names (``mobilenet_v2``, ``efficientnet_b0``, ``resnet50``, ...) are listed by
:func:`cifarkit.models.list_backbones`; :func:`cifarkit.models.build_model` builds them.
"""

from __future__ import annotations

import contextlib
import os
import socket
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from cifarkit import backend
from cifarkit.models import common
from cifarkit.models.registry import register

keras = backend.keras()
layers = keras.layers
ops = keras.ops

#: ImageNet statistics in 0..1 units, as ``keras.applications.imagenet_utils`` uses them.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: BGR means in 0..255 units subtracted by the "caffe" preprocessing (ResNet50).
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
PREPROCESSING_MODES = ("caffe", "tf", "torch", "in_model")
#: Name of the nested ``keras.applications`` network inside a backbone model.
BACKBONE_LAYER = "backbone"
#: Default dropout before the new Dense head (Keras' EfficientNetB0 top uses 0.2).
DEFAULT_DROPOUT = 0.2
#: Sizes users are pointed to when images are too small for a backbone.
SUGGESTED_SIZES = "96-224"
#: Layout inside the backbones where Keras builds it (DenseNet is channels-last only). On the project's
#: 2-core Intel Xeon with AMX, 96 px, batch 32, float32, channels-first trained MobileNetV2 1.43x and
#: EfficientNetB0 1.20x faster than channels-last when fine-tuning (1.31x and 1.22x with the backbone
#: frozen) (benchmarks/bench_backbones.py, results/backbones.json).
DATA_FORMAT = "channels_first"
#: Seconds a silent network connection may stall the ImageNet download before it counts as failed.
DOWNLOAD_SOCKET_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class BackboneSpec:
    """One supported ``keras.applications`` network."""

    name: str  # registry name
    application: str  # constructor in keras.applications
    preprocessing: str  # see PREPROCESSING_MODES
    family: str
    paper: str
    weights_file: str  # the ImageNet no-top file Keras caches under ~/.keras/models ({size}: see imagenet_sizes)
    options: dict = field(default_factory=dict)  # extra constructor arguments
    min_size: int = 32  # smallest height/width Keras accepts
    imagenet_sizes: tuple = ()  # input sizes with their own ImageNet file (MobileNetV2); others use 224's
    notes: str = ""
    channels_first: bool = True  # whether Keras builds it channels-first


_SPECS = (
    BackboneSpec(
        "mobilenet_v2",
        "MobileNetV2",
        "tf",
        "mobilenet",
        "Sandler et al. 2018, MobileNetV2: Inverted Residuals and Linear Bottlenecks",
        "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{size}_no_top.h5",
        imagenet_sizes=(96, 128, 160, 192, 224),
        notes="2.3M parameters; light enough for a CPU. Keras has ImageNet weights for 96, 128, 160, 192 and "
        "224 px and uses 224's at other sizes.",
    ),
    BackboneSpec(
        "mobilenet_v3_small",
        "MobileNetV3Small",
        "in_model",
        "mobilenet",
        "Howard et al. 2019, Searching for MobileNetV3",
        "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5",
        notes="The lightest backbone (0.9M parameters); Keras' Rescaling to -1..1 is inside the network.",
    ),
    BackboneSpec(
        "mobilenet_v3_large",
        "MobileNetV3Large",
        "in_model",
        "mobilenet",
        "Howard et al. 2019, Searching for MobileNetV3",
        "weights_mobilenet_v3_large_224_1.0_float_no_top_v2.h5",
        notes="3.0M parameters; Keras' Rescaling to -1..1 is inside the network.",
    ),
    BackboneSpec(
        "efficientnet_b0",
        "EfficientNetB0",
        "in_model",
        "efficientnet",
        "Tan and Le 2019, EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks",
        "efficientnetb0_notop.h5",
        notes="4.0M parameters; Keras' Rescaling and ImageNet Normalization are inside the network.",
    ),
    BackboneSpec(
        "efficientnet_v2_b0",
        "EfficientNetV2B0",
        "in_model",
        "efficientnet",
        "Tan and Le 2021, EfficientNetV2: Smaller Models and Faster Training",
        "efficientnetv2-b0_notop.h5",
        notes="5.9M parameters; Keras' Rescaling and ImageNet Normalization are inside the network.",
    ),
    BackboneSpec(
        "resnet50",
        "ResNet50",
        "caffe",
        "resnet",
        "He et al. 2016, Deep Residual Learning for Image Recognition",
        "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
        notes="23.6M parameters: slow on a CPU.",
    ),
    BackboneSpec(
        "densenet121",
        "DenseNet121",
        "torch",
        "densenet",
        "Huang et al. 2017, Densely Connected Convolutional Networks",
        "densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5",
        notes="7.0M parameters.",
        channels_first=False,
    ),
)
BACKBONES: dict[str, BackboneSpec] = {s.name: s for s in _SPECS}


def list_backbones() -> list[str]:
    """Registry names of the supported ``keras.applications`` backbones, sorted."""
    return sorted(BACKBONES)


def is_backbone(name) -> bool:
    return isinstance(name, str) and name in BACKBONES


def spec(name: str) -> BackboneSpec:
    if not is_backbone(name):
        raise ValueError(f"Unknown backbone {name!r}. Supported backbones: {', '.join(list_backbones())}.")
    return BACKBONES[name]


def imagenet_file_name(name: str, image_size: int | None = None) -> str:
    """The file Keras downloads (and caches under ``~/.keras/models``) for ``name``'s ImageNet weights."""
    s = spec(name)
    if not s.imagenet_sizes:
        return s.weights_file
    size = int(image_size) if image_size in s.imagenet_sizes else 224
    return s.weights_file.format(size=size)


def keras_cache_dir() -> Path:
    """Where ``keras.utils.get_file`` caches downloaded weights: ``$KERAS_HOME/models`` or ``~/.keras/models``."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "models"


# --------------------------------------------------------------------------- the preprocessing layer


@keras.saving.register_keras_serializable(package="cifarkit")
class BackbonePreprocess(layers.Layer):
    """Raw ``0..255`` NHWC pixels to the input a ``keras.applications`` family expects.

    ``mode`` is the family's ``preprocess_input`` mode: ``"caffe"`` (RGB to BGR, ImageNet BGR means
    subtracted, no scaling), ``"tf"`` (scaled to -1..1), ``"torch"`` (0..1, then ImageNet mean and
    standard deviation), or ``"in_model"`` (left at 0..255: the network normalizes itself). One-channel
    images are repeated to three. The output is in ``data_format`` layout.
    """

    def __init__(self, mode="tf", data_format="channels_last", **kwargs):
        super().__init__(**kwargs)
        if mode not in PREPROCESSING_MODES:
            raise ValueError(f"mode must be one of {', '.join(PREPROCESSING_MODES)}; received mode={mode!r}.")
        self.mode = mode
        self.data_format = data_format

    def call(self, inputs):
        x = ops.cast(inputs, "float32")
        if x.shape[-1] == 1:
            x = ops.concatenate([x, x, x], axis=-1)
        if self.mode == "caffe":
            x = ops.flip(x, axis=-1) - ops.convert_to_tensor(CAFFE_MEAN_BGR, dtype="float32")
        elif self.mode == "tf":
            x = x / 127.5 - 1.0
        elif self.mode == "torch":
            scale = [1.0 / (255.0 * s) for s in IMAGENET_STD]
            shift = [-m / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD)]
            x = x * ops.convert_to_tensor(scale, dtype="float32") + ops.convert_to_tensor(shift, dtype="float32")
        if self.data_format == "channels_first":
            x = ops.transpose(x, (0, 3, 1, 2))
        return ops.cast(x, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        n, h, w, _ = input_shape
        return (n, 3, h, w) if self.data_format == "channels_first" else (n, h, w, 3)

    def get_config(self):
        config = super().get_config()
        config.update(mode=self.mode, data_format=self.data_format)
        return config


# --------------------------------------------------------------------------- weights


@dataclass
class BackboneBuild:
    """What :func:`build_backbone` returns: the model and what it knows about the weights in it."""

    model: object
    info: dict


def parse_weights(weights) -> tuple[str, Path | None]:
    """``("none", None)``, ``("imagenet", None)`` or ``("file", path)`` for a ``weights`` value.

    Raises:
        ValueError: a value that is none of these (a file of another type included).
        FileNotFoundError: a file path that does not exist.
    """
    if weights is None or (isinstance(weights, str) and weights.strip().lower() in ("", "none")):
        return "none", None
    if isinstance(weights, str) and weights.strip().lower() == "imagenet":
        return "imagenet", None
    if not isinstance(weights, (str, os.PathLike)):
        raise ValueError(
            f"Backbone weights must be 'imagenet', 'none' or the path of a .h5, .weights.h5 or .keras file; "
            f"received {weights!r}."
        )
    path = Path(weights).expanduser()
    if not path.name.lower().endswith((".h5", ".keras")):
        raise ValueError(
            f"Backbone weights file {str(path)!r} is neither .h5 (Keras' ImageNet file or a .weights.h5 file) nor "
            ".keras; give one of those, 'imagenet' or 'none'."
        )
    if not path.is_file():
        raise FileNotFoundError(
            f"Backbone weights file not found: {path}. Give the path of a file on this machine (for ImageNet "
            "weights on an offline machine: copy the file Keras caches under ~/.keras/models, see the README), "
            "'imagenet' to let Keras download them, or 'none' to train from scratch."
        )
    return "file", path.resolve()


def _application(s: BackboneSpec, input_shape, data_format: str, weights):
    """``keras.applications.<s.application>(include_top=False, pooling="avg", ...)`` in ``data_format``.

    Keras names the network after its settings (``mobilenetv2_1.00_96``) and some constructors look
    their ImageNet file and block settings up by that name, so it is renamed only afterwards.
    """
    ctor = getattr(keras.applications, s.application)
    h, w = input_shape[:2]
    shape = (3, h, w) if data_format == "channels_first" else (h, w, 3)
    kwargs = dict(include_top=False, weights=weights, input_shape=shape, pooling="avg", **s.options)
    before = keras.config.image_data_format()
    keras.config.set_image_data_format(data_format)
    try:
        with warnings.catch_warnings():
            # MobileNetV2 warns that sizes without their own ImageNet file use 224's (recorded in info instead)
            warnings.filterwarnings("ignore", message=r".*`input_shape` is undefined or non-square.*")
            return ctor(**kwargs)
    finally:
        keras.config.set_image_data_format(before)


@contextlib.contextmanager
def _quiet_download():
    """Keras' download messages and progress bar go to its logger, not the notebook's output; a silent
    connection times out instead of hanging the run."""
    interactive = keras.config.is_interactive_logging_enabled()
    timeout = socket.getdefaulttimeout()
    keras.config.disable_interactive_logging()
    if timeout is None:
        socket.setdefaulttimeout(DOWNLOAD_SOCKET_TIMEOUT_S)
    try:
        yield
    finally:
        socket.setdefaulttimeout(timeout)
        if interactive:
            keras.config.enable_interactive_logging()


def _is_download_failure(exc: BaseException) -> bool:
    """Whether ``exc`` came out of Keras' download (``keras.utils.get_file``) rather than loading a file."""
    return any(
        frame.f_code.co_name == "get_file" and "file_utils" in frame.f_code.co_filename
        for frame, _ in traceback.walk_tb(exc.__traceback__)
    )


def _imagenet_into(base, s: BackboneSpec, input_shape, data_format: str) -> tuple[bool, str]:
    """Copy Keras' ImageNet weights into ``base``: ``(True, "")``, or ``(False, reason)`` when they cannot be downloaded."""
    try:
        with _quiet_download():
            source = _application(s, input_shape, data_format, "imagenet")
    except Exception as exc:  # noqa: BLE001 - classified below; anything but the download is re-raised
        if not _is_download_failure(exc):
            raise
        reason = " ".join(str(exc).split()) or type(exc).__name__
        return False, reason
    base.set_weights(source.get_weights())
    return True, ""


def load_weights_file(base, path: Path, name: str) -> None:
    """Load a local weights file into the ``keras.applications`` network ``base``.

    Accepted: Keras' own ImageNet ``*_notop.h5`` file (or any legacy ``.h5`` of the network), a
    ``.weights.h5`` written by ``save_weights`` of the network, and a ``.keras`` file of the network
    or of a whole cifarkit backbone model (its ``backbone`` layer is used).

    Raises:
        ValueError: the file cannot be read or holds another architecture (nothing is half-loaded
            into a model that is then used: the build fails).
    """
    s = spec(name)
    what = (
        f"keras.applications.{s.application}(include_top=False) weights, such as Keras' ImageNet file "
        f"{imagenet_file_name(name)!r}"
    )
    lower = path.name.lower()
    try:
        if lower.endswith(".keras"):
            import cifarkit.models  # noqa: F401  (registers the custom layers a cifarkit model needs)

            loaded = keras.saving.load_model(str(path), compile=False)
            source = _find_backbone(loaded)
            ours, theirs = base.weights, source.weights
            if len(ours) != len(theirs) or any(tuple(a.shape) != tuple(b.shape) for a, b in zip(ours, theirs)):
                raise ValueError(
                    f"it holds a network with {len(theirs)} weight arrays that do not match {name}'s {len(ours)}"
                )
            base.set_weights(source.get_weights())
        else:
            base.load_weights(str(path))
    except Exception as exc:  # noqa: BLE001 - every failure becomes one message that says what to do
        detail = " ".join(str(exc).split())
        if len(detail) > 300:
            detail = detail[:300] + "..."
        raise ValueError(
            f"The backbone weights file {path} could not be loaded into {name} ({type(exc).__name__}: {detail}). "
            f"It must hold {what}; a file of another network, a top-included (1000-class) file or a damaged "
            "download does not fit. To continue from a whole cifarkit model, use PRETRAINED (pretrained=) instead."
        ) from None


def _find_backbone(model):
    """The ``keras.applications`` network inside a loaded ``.keras`` model (the model itself if it is one)."""
    for layer in getattr(model, "layers", []):
        if layer.name == BACKBONE_LAYER and isinstance(layer, keras.Model):
            return layer
    return model


def _fix_efficientnet_normalization(base) -> bool:
    """Make Keras' ImageNet EfficientNet normalization divide by the standard deviation.

    Keras' EfficientNet ImageNet files store the ImageNet *standard deviation* as the ``Normalization``
    layer's variance (tensorflow/tensorflow#49930), so the layer divides by its square root; for
    ``weights="imagenet"`` Keras adds a ``Rescaling(1/sqrt(std))`` layer to compensate. A network built
    without that layer and loaded from such a file (what this module does for every source, so that all
    of them give one architecture) gets the same function by squaring the stored variance. Returns whether
    it changed anything (only a variance equal to the ImageNet standard deviation is touched).
    """
    import numpy as np

    changed = False
    for layer in base.layers:
        if type(layer).__name__ != "Normalization" or getattr(layer, "variance", None) is None:
            continue
        variance = np.asarray(keras.ops.convert_to_numpy(layer.variance)).reshape(-1)
        if variance.shape == (3,) and np.allclose(variance, IMAGENET_STD, atol=1e-6):
            layer.variance.assign(np.reshape(np.square(variance), tuple(layer.variance.shape)).astype("float32"))
            changed = True
    return changed


def _batch_norms(base) -> list:
    return [layer for layer in base._flatten_layers(include_self=False) if isinstance(layer, layers.BatchNormalization)]


def set_batch_norm_inference(base) -> int:
    """Make every batch norm in ``base`` non-trainable: in Keras 3 such a layer also runs in inference mode
    (moving statistics used and kept) when the model is called with ``training=True``. Returns the count."""
    norms = _batch_norms(base)
    for bn in norms:
        bn.trainable = False
    return len(norms)


def _check_shape(name: str, input_shape) -> tuple:
    s = spec(name)
    shape = common.check_input_shape(input_shape, model=name)
    h, w, c = shape
    if c not in (1, 3):
        raise ValueError(
            f"{name} takes RGB (or greyscale) images; received input_shape={tuple(input_shape)!r} with {c} channels."
        )
    if min(h, w) < s.min_size:
        raise ValueError(
            f"{name} needs images of at least {s.min_size}x{s.min_size} pixels (Keras' minimum for "
            f"{s.application}); received {h}x{w}. Set IMAGE_SIZE {SUGGESTED_SIZES} (e.g. -p IMAGE_SIZE 96 or "
            f"--image-size 96): ImageNet weights were learned at 224 px and transfer best near it."
        )
    return shape


def build_backbone(
    name: str,
    *,
    input_shape=(96, 96, 3),
    num_classes: int = 10,
    weights=None,
    dropout: float = DEFAULT_DROPOUT,
    bn_inference: bool | None = None,
    data_format: str | None = None,
) -> BackboneBuild:
    """Build backbone ``name`` with a new head and load its weights.

    Args:
        name: a name from :func:`list_backbones`.
        input_shape: ``(height, width, channels)`` of the raw images (1 or 3 channels, at least
            the family's minimum size).
        num_classes: classes of the new Dense head.
        weights: ``None``/``"none"`` (from scratch), ``"imagenet"`` (Keras' download and cache; without
            network the model is built from scratch and ``info["note"]`` says why) or a local file
            (see :func:`load_weights_file`).
        dropout: rate before the Dense head.
        bn_inference: keep the backbone's batch norms in inference mode (non-trainable). ``None``: when
            weights were loaded. The training loop passes ``True`` to a model that a pretrained
            cifarkit model's weights will be copied into.
        data_format: layout inside the network; ``None``: :data:`DATA_FORMAT` where the family builds
            it, else channels-last (DenseNet).

    Returns:
        :class:`BackboneBuild` with the model and ``info``: ``name``, ``application``,
        ``preprocessing``, ``input_size``, ``weights_requested``, ``weights`` (``"imagenet"``,
        ``"file"`` or ``"none"``), ``weights_path``, ``weights_sha256`` (a local file's, or Keras'
        cached ImageNet file's when present), ``imagenet_file`` (the file name Keras uses), ``note``,
        ``bn_inference``, ``data_format``.

    Raises:
        ValueError: unknown name, too small images, bad options, or a local file that does not fit.
        FileNotFoundError: a local weights file that does not exist.
    """
    from cifarkit.files import file_sha256

    s = spec(name)
    shape = _check_shape(name, input_shape)
    num_classes = common.check_num_classes(num_classes)
    dropout = common.check_rate(dropout)
    source, path = parse_weights(weights)
    fmt = data_format or (DATA_FORMAT if s.channels_first else "channels_last")
    if fmt not in ("channels_first", "channels_last"):
        raise ValueError(f"data_format must be 'channels_first' or 'channels_last'; received {data_format!r}.")
    if fmt == "channels_first" and not s.channels_first:
        raise ValueError(f"keras.applications.{s.application} builds only channels_last; leave data_format unset.")

    base = _application(s, shape, fmt, None)
    base.name = BACKBONE_LAYER  # one name at every size, so PRETRAINED matches it by name
    info = {
        "name": name,
        "application": f"keras.applications.{s.application}",
        "preprocessing": s.preprocessing,
        "input_size": [shape[0], shape[1]],
        "weights_requested": "none" if source == "none" else ("imagenet" if source == "imagenet" else str(path)),
        "weights": source,
        "weights_path": str(path) if path else None,
        "weights_sha256": None,
        "imagenet_file": imagenet_file_name(name, shape[0] if shape[0] == shape[1] else None),
        "note": "",
        "data_format": fmt,
    }
    if source == "imagenet":
        loaded, reason = _imagenet_into(base, s, shape, fmt)
        if loaded:
            cached = keras_cache_dir() / info["imagenet_file"]
            info["weights_path"] = str(cached) if cached.is_file() else None
            info["weights_sha256"] = file_sha256(cached) if cached.is_file() else None
            info["note"] = f"ImageNet weights from Keras ({info['imagenet_file']})"
        else:
            info["weights"] = "none"
            info["note"] = f"ImageNet weights could not be downloaded ({reason}); trained from scratch"
            warnings.warn(info["note"], stacklevel=2)
    elif source == "file":
        load_weights_file(base, path, name)
        info["weights_sha256"] = file_sha256(path)
        info["note"] = f"weights from the local file {path.name}"
    else:
        info["note"] = "trained from scratch (no backbone weights asked for)"
    if info["weights"] != "none" and _fix_efficientnet_normalization(base):
        info["note"] += "; EfficientNet's ImageNet normalization divides by the standard deviation, as Keras' own"
    if s.imagenet_sizes and info["weights"] == "imagenet" and shape[0] not in s.imagenet_sizes:
        info["note"] += f"; Keras has no ImageNet file for {shape[0]} px, the 224 px one is used"

    bn_inference = info["weights"] != "none" if bn_inference is None else bool(bn_inference)
    if bn_inference:
        set_batch_norm_inference(base)
    else:
        for bn in _batch_norms(base):
            bn.momentum = common.BN_MOMENTUM  # Keras' 0.99-0.999 adapt too slowly for short runs from scratch
    info["bn_inference"] = bn_inference

    inputs = keras.Input(shape=shape, name="image")
    x = BackbonePreprocess(mode=s.preprocessing, data_format=fmt, name="preprocess")(inputs)
    x = base(x)
    if dropout > 0:
        x = layers.Dropout(dropout, name="head_dropout")(x)
    outputs = layers.Dense(num_classes, dtype="float32", name="head_dense")(x)
    return BackboneBuild(keras.Model(inputs, outputs, name=name), info)


def backbone_of(model):
    """The nested ``keras.applications`` network of a backbone model, or None for other models."""
    try:
        layer = model.get_layer(BACKBONE_LAYER)
    except ValueError:
        return None
    return layer if isinstance(layer, keras.Model) else None


def build_backbone_model(
    *,
    input_shape=(96, 96, 3),
    num_classes=10,
    mean=None,
    std=None,
    backbone: str = "mobilenet_v2",
    weights=None,
    dropout: float = DEFAULT_DROPOUT,
    bn_inference: bool | None = None,
    data_format: str | None = None,
    name: str | None = None,
):
    """Registry builder for the backbones: :func:`build_backbone`'s model (``mean``/``std`` are not used:
    ImageNet backbones normalize with their family's own preprocessing)."""
    del mean, std, name
    return build_backbone(
        backbone,
        input_shape=input_shape,
        num_classes=num_classes,
        weights=weights,
        dropout=dropout,
        bn_inference=bn_inference,
        data_format=data_format,
    ).model


for _s in _SPECS:
    register(
        _s.name,
        family=_s.family,
        paper=_s.paper,
        notes=f"keras.applications.{_s.application} (include_top=False, global average pooling) with dropout and "
        f"a new Dense head; {_s.notes} ImageNet weights: backbone_weights='imagenet' (Keras' file "
        f"{_s.weights_file}).",
        kind="backbone",
        backbone=_s.name,
    )(build_backbone_model)

del _s
