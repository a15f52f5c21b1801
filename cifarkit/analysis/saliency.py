"""Where a model looks: Grad-CAM on its last convolutional feature map, or occlusion sensitivity."""

from __future__ import annotations

import numpy as np

from cifarkit.training.inference import predict_logits, softmax

# --------------------------------------------------------------------------- saliency

_FEATURE_TYPES = (
    "Conv2D",
    "Conv1D",
    "SeparableConv2D",
    "DepthwiseConv2D",
    "Activation",
    "ReLU",
    "LeakyReLU",
    "ELU",
    "PReLU",
    "Add",
    "Concatenate",
    "BatchNormalization",
    "FusedBatchNorm",
)


def _layer_rank(layer) -> int:
    shape = getattr(layer, "output", None)
    try:
        return len(shape.shape)
    except AttributeError:
        return -1


def last_conv_layer(model):
    """The last layer with a 4-D (image-like) output that a convolution, activation, sum or batch norm produced.

    Pooling and dropout layers are passed over, so the map has the resolution of
    the last convolution (as in Selvaraju et al. 2017).

    Raises:
        ValueError: the model has no such layer.
    """
    candidates = [layer for layer in model.layers if _layer_rank(layer) == 4]
    for layer in reversed(candidates):
        if any(k.__name__ in _FEATURE_TYPES for k in type(layer).__mro__):
            return layer
    raise ValueError(
        f"Model {model.name!r} has no convolution or activation layer with a 4-D output, so Grad-CAM has no feature "
        f"map to use; use occlusion_sensitivity instead."
    )


def _data_format_of(model, layer) -> str:
    """Layout of ``layer``'s output: its own ``data_format``, else that of the closest layer before it."""
    fmt = getattr(layer, "data_format", None)
    if fmt in ("channels_first", "channels_last"):
        return fmt
    for other in reversed(model.layers[: model.layers.index(layer)]):
        fmt = getattr(other, "data_format", None)
        if fmt in ("channels_first", "channels_last"):
            return fmt
    from cifarkit import backend

    return backend.data_format()


def _target_classes(class_idx, n: int, scores) -> np.ndarray:
    """One class per image: the argmax of ``scores`` for ``None``, else the given int(s)."""
    if class_idx is None:
        return np.asarray(scores).argmax(1)
    c = np.asarray(class_idx).reshape(-1).astype(np.int64)
    if c.size == 1:
        return np.full(n, c[0])
    if c.size != n:
        raise ValueError(f"class_idx needs one class per image ({n}) or a single int; received {c.size} values.")
    return c


def grad_cam(model, x, class_idx=None, *, layer_name: str | None = None, batch_size: int = 64) -> np.ndarray:
    """Grad-CAM maps (Selvaraju et al. 2017) for uint8 NHWC images.

    For the feature maps ``A`` of the last convolutional layer (or
    ``layer_name``) and the logit ``y_c`` of the target class, each channel is
    weighted by the spatial mean of ``d y_c / d A``; the map is the ReLU of the
    weighted sum, upsampled bilinearly to the image size and scaled to a maximum
    of 1 per image. Needs the torch backend; both channel layouts are handled.

    Args:
        model: a Keras model (torch backend) from images to logits.
        x: uint8 or float images ``(N, H, W, C)``.
        class_idx: the class to explain: ``None`` for each image's predicted class,
            an int for all images, or one int per image.
        layer_name: feature layer; default :func:`last_conv_layer`.
        batch_size: images per forward/backward pass.

    Returns:
        float32 ``(N, H, W)`` maps in ``[0, 1]``.
    """
    from cifarkit import backend

    keras = backend.keras()
    import cifarkit.models  # noqa: F401 - registers the custom layers

    if keras.backend.backend() != "torch":
        raise ValueError(f"grad_cam needs the torch backend of Keras; the backend is {keras.backend.backend()!r}.")
    import torch
    import torch.nn.functional as F

    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"grad_cam needs images shaped (N, H, W, C); received shape {x.shape}.")
    layer = model.get_layer(layer_name) if layer_name else last_conv_layer(model)
    fmt = _data_format_of(model, layer)
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    probe = keras.Model(inputs, [layer.output, model.outputs[0]])
    device = next((v.value.device for v in model.variables), torch.device("cpu"))
    was_training = getattr(model, "training", False)
    model.eval()
    maps = []
    try:
        with torch.enable_grad():
            for start in range(0, len(x), batch_size):
                xb = torch.tensor(x[start : start + batch_size], dtype=torch.float32, device=device, requires_grad=True)
                feats, logits = probe(xb, training=False)
                if class_idx is None:
                    targets = logits.detach().cpu().numpy().argmax(1)
                else:
                    targets = _target_classes(class_idx, len(x), None)[start : start + len(xb)]
                t = torch.as_tensor(targets, device=logits.device).long()
                score = logits.gather(1, t[:, None]).sum()
                (grads,) = torch.autograd.grad(score, feats)
                if fmt == "channels_last":
                    feats, grads = feats.permute(0, 3, 1, 2), grads.permute(0, 3, 1, 2)
                weights = grads.mean(dim=(2, 3), keepdim=True)
                cam = F.relu((weights * feats).sum(dim=1, keepdim=True))
                cam = F.interpolate(cam, size=tuple(x.shape[1:3]), mode="bilinear", align_corners=False)[:, 0]
                maps.append(cam.detach().float().cpu().numpy())
    finally:
        model.train(was_training)
    out = np.concatenate(maps) if maps else np.zeros((0,) + x.shape[1:3], np.float32)
    peak = out.reshape(len(out), -1).max(axis=1) if len(out) else np.zeros(0)
    out = out / np.where(peak > 0, peak, 1.0)[:, None, None]
    return np.nan_to_num(out).astype(np.float32)


def occlusion_sensitivity(
    model, x, class_idx=None, *, patch: int | None = None, stride: int | None = None, batch_size: int = 256
) -> np.ndarray:
    """Occlusion maps (Zeiler & Fergus 2014): the drop in the class probability when a grey patch hides a region.

    Args:
        model: a model from images to logits (any backend).
        x: uint8 images ``(N, H, W, C)``.
        class_idx: as in :func:`grad_cam`.
        patch: side of the grey square (default: a quarter of the image side).
        stride: step between patch positions (default: half the patch).
        batch_size: images per forward pass.

    Returns:
        float32 ``(N, H, W)`` maps in ``[0, 1]`` (pixels averaged over the patches covering them,
        negative drops clipped to 0, scaled to a maximum of 1 per image).
    """
    x = np.asarray(x)
    n, h, w = x.shape[:3]
    patch = patch or max(2, min(h, w) // 4)
    stride = stride or max(1, patch // 2)
    base = softmax(predict_logits(model, x, batch_size))
    targets = _target_classes(class_idx, n, base)
    p0 = base[np.arange(n), targets]
    tops = list(range(0, max(h - patch, 0) + 1, stride))
    lefts = list(range(0, max(w - patch, 0) + 1, stride))
    if tops[-1] + patch < h:
        tops.append(h - patch)
    if lefts[-1] + patch < w:
        lefts.append(w - patch)
    maps = np.zeros((n, h, w), np.float64)
    cover = np.zeros((h, w), np.float64)
    for i in range(n):
        variants = []
        for t in tops:
            for left in lefts:
                v = x[i].copy()
                v[t : t + patch, left : left + patch] = 128
                variants.append(v)
        probs = softmax(predict_logits(model, np.stack(variants), batch_size))[:, targets[i]]
        k = 0
        for t in tops:
            for left in lefts:
                maps[i, t : t + patch, left : left + patch] += p0[i] - probs[k]
                if i == 0:
                    cover[t : t + patch, left : left + patch] += 1
                k += 1
    maps = np.clip(maps / np.maximum(cover, 1), 0, None)
    peak = maps.reshape(n, -1).max(axis=1)
    maps = maps / np.where(peak > 0, peak, 1.0)[:, None, None]
    return maps.astype(np.float32)


def saliency(model, x, class_idx=None) -> tuple[np.ndarray, str]:
    """Grad-CAM maps, or occlusion maps where Grad-CAM cannot run (another backend, no conv layer, 1x1 maps).

    Returns:
        ``(maps, method)`` with ``method`` ``"Grad-CAM (layer <name>)"`` or ``"occlusion sensitivity"``.
    """
    try:
        layer = last_conv_layer(model)
        fmt = _data_format_of(model, layer)
        shape = tuple(layer.output.shape)
        spatial = shape[2:4] if fmt == "channels_first" else shape[1:3]
        if min(int(d or 0) for d in spatial) >= 2:
            return grad_cam(model, x, class_idx, layer_name=layer.name), f"Grad-CAM (layer {layer.name})"
    except (ValueError, RuntimeError, TypeError, AttributeError):
        pass
    return occlusion_sensitivity(model, x, class_idx), "occlusion sensitivity"
