"""Inference with a trained model: logits, probabilities (with flip TTA), loss and accuracy.

Always in inference mode and without gradients; precision as asked (float32
by default, so that recorded metrics match what the saved model gives anywhere).
"""

from __future__ import annotations

import weakref

import numpy as np

from cifarkit import backend
from cifarkit.training.precision import autocast, model_layers, native_dtypes

#: The memory one inference batch's activations may take. Keras' Functional models hold every layer's output
#: until a forward pass ends (also without gradients), so a deep or wide model predicts in smaller batches: at
#: batch 512 DenseNet-BC-100 needed 27 GB in float32 (killed on a 24 GB machine), WRN-28-10 17 GB, ResNet-110
#: 7.5 GB; fastnet, ResNet-20, VGG and the simple CNN stay at 512 (0.7-1.8 GB).
ACTIVATION_BYTES = 2 * 1024**3
_ELEMENTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> {image shape: values per image}


def inference_batch(model, image_shape, batch_size: int = 512) -> int:
    """``batch_size``, or fewer images where one batch's activations would take more than
    :data:`ACTIVATION_BYTES` (counted at 4 bytes a value by :func:`cifarkit.models.common.activation_elements`;
    a multiple of 8 where that leaves 8 or more). A model whose graph cannot be counted keeps ``batch_size``.
    """
    from cifarkit.models.common import activation_elements

    shape = tuple(int(d) for d in image_shape)
    try:
        known = _ELEMENTS.setdefault(model, {})
    except TypeError:  # a model that cannot be weakly referenced: counted again each time
        known = {}
    if shape not in known:
        try:
            known[shape] = activation_elements(model, shape)
        except Exception:  # noqa: BLE001 - counting only sizes the batches; it never costs a prediction
            known[shape] = 0  # e.g. not a Functional graph (a subclassed model frees its intermediates as it goes)
    if not known[shape]:
        return batch_size
    fits = ACTIVATION_BYTES // (4 * known[shape])
    fits = fits // 8 * 8 if fits >= 8 else max(fits, 1)
    return max(1, min(int(batch_size), int(fits)))


def predict_logits(
    model, x: np.ndarray, batch_size: int = 512, *, device: str | None = None, autocast_dtype=None
) -> np.ndarray:
    """Logits of ``model`` for uint8 (or float) NHWC images, in inference mode, without gradients, in batches
    of ``batch_size`` images or fewer where a batch's activations would not fit (:func:`inference_batch`).

    Returns:
        float32 ``(N, num_classes)``.
    """
    torch = backend.torch()
    x = np.asarray(x)
    if len(x):
        batch_size = inference_batch(model, x.shape[1:], batch_size)
    device = device or model_device(model)
    was_training = getattr(model, "training", False)
    model.eval()
    layers_ = model_layers(model) if autocast_dtype is not None else []
    outs = []
    try:
        with torch.no_grad():
            for start in range(0, len(x), batch_size):
                xb = torch.from_numpy(np.ascontiguousarray(x[start : start + batch_size])).to(device, non_blocking=True)
                with autocast(device, autocast_dtype), native_dtypes(layers_, autocast_dtype):
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
    torch = backend.torch()
    import torch.nn.functional as F

    if len(x) == 0:
        return None, None, np.zeros((0, 0), dtype=np.float32)
    logits = predict_logits(model, x, batch_size, **kwargs)
    labels = torch.from_numpy(np.asarray(y, dtype=np.int64))
    t = torch.from_numpy(logits)
    loss = float(F.cross_entropy(t, labels))
    acc = float((t.argmax(1) == labels).double().mean())
    return loss, acc, logits


def model_device(model) -> str:
    for v in model.variables:
        return str(v.value.device)
    return "cpu"


def softmax(logits, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of ``logits / temperature`` (float64, numerically stable)."""
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def flip_horizontal(x: np.ndarray) -> np.ndarray:
    """Mirror NHWC images left to right."""
    return np.ascontiguousarray(np.asarray(x)[:, :, ::-1, :])


def predict_probs(model, x, tta: bool = False, *, batch_size: int = 512, base_probs=None) -> np.ndarray:
    """Class probabilities of ``model`` for uint8 NHWC images.

    Args:
        model: a trained Keras model returning logits.
        x: images ``(N, H, W, C)``.
        tta: test-time augmentation: average the softmax of each image and of its
            horizontal mirror.
        batch_size: images per forward pass.
        base_probs: probabilities already computed for ``x`` without TTA; with
            ``tta=True`` they are reused instead of running the unflipped pass again.

    Returns:
        float64 ``(N, num_classes)`` rows that sum to 1.
    """
    x = np.asarray(x)
    probs = softmax(predict_logits(model, x, batch_size)) if base_probs is None else np.asarray(base_probs, np.float64)
    if not tta:
        return probs
    flipped = softmax(predict_logits(model, flip_horizontal(x), batch_size))
    return (probs + flipped) / 2.0
