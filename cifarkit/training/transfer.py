"""Fine-tuning: copy a saved model's layers into a freshly built one (nothing is downloaded)."""

from __future__ import annotations

from pathlib import Path

from cifarkit import backend


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
        ValueError: the file shares no layer with ``model`` (another architecture).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"Pretrained weights not found: {path}. Give the path of a .keras model or .weights.h5 file on this "
            "machine (cifarkit downloads nothing), or leave pretrained empty to train from scratch."
        )
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
