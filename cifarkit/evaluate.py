"""Evaluate a trained model on the test split: metrics, calibration, robustness and saliency.

The functions here are pure: they take a model (a Keras model on the torch
backend, which is a ``torch.nn.Module``) or arrays of labels, probabilities
and logits, and return numbers, arrays or tables. The notebook
``04_evaluate`` strings them together and draws the figures with
:mod:`cifarkit.plots`.

Conventions: images are ``uint8`` NHWC arrays as the data layer stores them,
labels are integer class indices, ``probs`` are ``(N, K)`` softmax rows and
``logits`` the model's raw outputs.

Nothing here imports Keras or torch at module import; the functions that need
a model import them when called.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from cifarkit import stats

#: Name of the file :func:`cifarkit.train.train` saves the model to.
MODEL_FILE = "model.keras"
#: Top-k accuracies reported (each capped at the number of classes).
TOP_K = (1, 3, 5)
#: Synthetic corruptions of :func:`corrupt`, in the order the tables list them.
CORRUPTIONS = ("gaussian_noise", "gaussian_blur", "contrast", "jpeg", "brightness")
#: Severity 1..3 -> corruption strength: CIFAR-10-C's severities 1, 3 and 5 (Hendrycks & Dietterich 2019,
#: ``make_cifar_c.py``). Noise std and brightness shift are in 0..1 pixel units; blur sigma is in pixels
#: for a 32-pixel image (scaled with the image side); contrast is the factor that pulls each pixel towards
#: its image's channel mean; jpeg is the JPEG quality.
SEVERITIES = {
    "gaussian_noise": (0.04, 0.08, 0.10),
    "gaussian_blur": (0.4, 0.7, 1.0),
    "contrast": (0.75, 0.4, 0.15),
    "jpeg": (80, 58, 40),
    "brightness": (0.05, 0.15, 0.3),
}
CORRUPTION_UNITS = {
    "gaussian_noise": "noise std (0-1 units)",
    "gaussian_blur": "blur sigma (pixels at 32 px)",
    "contrast": "contrast factor",
    "jpeg": "JPEG quality",
    "brightness": "value (HSV) shift (0-1 units)",
}


# --------------------------------------------------------------------------- models


def _keras():
    from cifarkit import backend

    keras = backend.keras()
    import cifarkit.models  # noqa: F401 - registers the custom layers a saved model needs

    return keras


def load_trained_model(path, num_classes: int | None = None, input_shape=None):
    """Load a model saved by :func:`cifarkit.train.train` (``model.keras``) and check it fits the data.

    Args:
        path: the ``.keras`` file.
        num_classes: the number of classes of the data it will be evaluated on;
            ``None`` skips the check.
        input_shape: ``(height, width, channels)`` of the data's images; ``None``
            skips the check.

    Returns:
        The Keras model, in inference mode.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the model was trained for another number of classes or image size.
    """
    if path is None or str(path).strip() == "":
        raise ValueError(
            "load_trained_model needs the path of a saved model (a model.keras file); received an empty path. "
            "Run notebook 02_train first, which saves one under <run>/models/<MODEL>/model.keras."
        )
    path = Path(path).expanduser()
    if not path.is_file():
        where = "a folder, not a file" if path.is_dir() else "no such file"
        raise FileNotFoundError(
            f"No trained model at {path} ({where}). Notebook 02_train saves the model it trains to "
            f"<run>/models/<MODEL>/{MODEL_FILE}: run 02_train first (python run_all.py --only 02_train) "
            f"or give the path of an existing .keras file (MODEL_PATH)."
        )
    keras = _keras()
    model = keras.saving.load_model(str(path), compile=False)
    out_classes = int(model.outputs[0].shape[-1])
    if num_classes is not None and out_classes != int(num_classes):
        raise ValueError(
            f"The model at {path} was trained for {out_classes} classes but the data has {int(num_classes)} classes. "
            f"Evaluate it on the data it was trained on (same DATA and CLASS_NAMES), or train a model for this data "
            f"with 02_train."
        )
    if input_shape is not None:
        model_shape = tuple(int(d) for d in model.inputs[0].shape[1:])
        if model_shape != tuple(int(d) for d in input_shape):
            raise ValueError(
                f"The model at {path} takes images of shape {model_shape} but the data's images are "
                f"{tuple(input_shape)}. Use the IMAGE_SIZE the model was trained with."
            )
    if hasattr(model, "eval"):
        model.eval()
    return model


def _resolve_saved_path(raw, run_dir: Path) -> Path:
    """A recorded model path as it is now: absolute, relative to the run, or the run moved elsewhere."""
    path = Path(str(raw)).expanduser()
    if not path.is_absolute():
        return run_dir / path
    if path.exists():
        return path
    # The run folder may have been moved or copied: look for the same models/<name>/file inside this run.
    parts = path.parts
    if "models" in parts:
        i = len(parts) - 1 - parts[::-1].index("models")
        moved = run_dir.joinpath(*parts[i:])
        if moved.exists():
            return moved
    return path


def find_run_models(run_dir) -> list[dict]:
    """The models trained earlier in the same run, found through what the notebooks recorded.

    Reads ``metrics/02_train.json`` (its ``model_path``) and, if present, the
    metrics of notebook 06 (``metrics/06_*.json``, e.g.
    ``06_architectures_and_ensembles.json``: a ``models`` list of dicts with
    ``name`` and ``model_path``). A model listed twice (06 also lists 02's) is
    returned once. Recorded paths are resolved against the run directory when
    relative, or when the run folder has moved since.

    Args:
        run_dir: the run directory.

    Returns:
        A list of ``{"name", "model_path", "source", "exists", "epochs_run"}``
        dicts, 02_train's model first; empty when nothing was recorded.
    """
    run_dir = Path(run_dir)
    found: list[dict] = []
    seen: set[str] = set()

    def add(name, raw_path, source, epochs):
        if not raw_path:
            return
        path = _resolve_saved_path(raw_path, run_dir)
        if str(path) in seen:
            return
        seen.add(str(path))
        found.append({"name": str(name or path.parent.name), "model_path": str(path), "source": source,
                      "exists": path.is_file(), "epochs_run": epochs})

    train_file = run_dir / "metrics" / "02_train.json"
    if train_file.is_file():
        info = json.loads(train_file.read_text())
        add(info.get("model"), info.get("model_path"), "02_train", info.get("epochs_run"))
    # notebook 06 (06_architectures_and_ensembles; any name starting with 06_) lists the models it trained
    for arch_file in sorted((run_dir / "metrics").glob("06_*.json")):
        info = json.loads(arch_file.read_text())
        for entry in info.get("models") or []:
            if isinstance(entry, dict):
                add(entry.get("name"), entry.get("model_path"), arch_file.stem,
                    entry.get("epochs_run", entry.get("epochs")))
    return found


def resolve_model_path(run_dir, model_path: str = "") -> Path:
    """The model the evaluation notebook evaluates: ``model_path`` if given, else 02_train's model of this run.

    Raises:
        FileNotFoundError: no ``model_path`` and 02_train recorded no model in ``run_dir``
            (the message names the run directory searched), or the file is missing.
    """
    run_dir = Path(run_dir)
    if model_path:
        path = Path(model_path).expanduser()
        path = path if path.is_absolute() else (Path.cwd() / path)
        if not path.is_file():
            raise FileNotFoundError(
                f"MODEL_PATH points to {path}, which is not a file. Give the path of a saved model.keras, or leave "
                f"MODEL_PATH empty to evaluate the model 02_train trained in this run ({run_dir})."
            )
        return path
    for entry in find_run_models(run_dir):
        if entry["source"] == "02_train":
            if not entry["exists"]:
                raise FileNotFoundError(
                    f"02_train recorded the model {entry['model_path']} in {run_dir / 'metrics' / '02_train.json'}, "
                    f"but the file is missing. Run 02_train again in this run, or set MODEL_PATH to a saved model."
                )
            return Path(entry["model_path"])
    raise FileNotFoundError(
        f"No trained model found in the run directory {run_dir}: {run_dir / 'metrics' / '02_train.json'} does not "
        f"exist. Run 02_train first in the same run (python run_all.py --only 02_train 04_evaluate), or set "
        f"MODEL_PATH to a saved model.keras."
    )


def training_info(model_path) -> dict:
    """What :func:`cifarkit.train.train` recorded beside a saved model (its ``metrics.json``), or ``{}``.

    Returns:
        ``{"model", "epochs_run", "val_acc", "test_acc", "dataset", "config"}`` where known.
    """
    metrics_file = Path(model_path).with_name("metrics.json")
    if not metrics_file.is_file():
        return {}
    try:
        m = json.loads(metrics_file.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return {
        "model": m.get("model"),
        "epochs_run": m.get("epochs"),
        "val_acc": m.get("val_acc"),
        "test_acc": m.get("test_acc"),
        "dataset": m.get("dataset") or {},
        "config": m.get("config") or {},
    }


def data_mismatch(trained_on: dict, evaluating: dict) -> list[str]:
    """Data settings that differ between the model's training data and the data evaluated now.

    A different seed, subset or validation share can put training images into
    this test split; a reader should know. Both arguments are
    ``Dataset.to_dict()`` records.

    Returns:
        Descriptions like ``"seed: 0 (training) vs 1 (now)"``; empty when they agree.
    """
    out = []
    for key in ("source", "image_size", "seed", "subset", "val_fraction", "test_fraction"):
        if key in trained_on and key in evaluating and trained_on[key] != evaluating[key]:
            out.append(f"{key}: {trained_on[key]!r} (training) vs {evaluating[key]!r} (now)")
    return out


# --------------------------------------------------------------------------- predictions


def softmax(logits, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of ``logits / temperature`` (float64, numerically stable)."""
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def flip_horizontal(x: np.ndarray) -> np.ndarray:
    """Mirror NHWC images left to right."""
    return np.ascontiguousarray(np.asarray(x)[:, :, ::-1, :])


def predict_logits(model, x, batch_size: int = 512) -> np.ndarray:
    """Logits of ``model`` for uint8 NHWC images (inference mode, no gradients)."""
    from cifarkit.train import predict_logits as _predict

    return _predict(model, np.asarray(x), batch_size=batch_size)


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
    probs = softmax(predict_logits(model, x, batch_size)) if base_probs is None else np.asarray(base_probs, np.float64)
    if not tta:
        return probs
    flipped = softmax(predict_logits(model, flip_horizontal(x), batch_size))
    return (probs + flipped) / 2.0


# --------------------------------------------------------------------------- classification metrics


def _check_probs(y_true, probs):
    y = np.asarray(y_true).reshape(-1).astype(np.int64)
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or len(p) != len(y):
        raise ValueError(
            f"probs must be (N, num_classes) with one row per label; received probs of shape {p.shape} "
            f"for {len(y)} labels."
        )
    if len(y) == 0:
        raise ValueError("Need at least one example to evaluate; received empty arrays.")
    if y.min() < 0 or y.max() >= p.shape[1]:
        raise ValueError(f"Labels must lie in 0..{p.shape[1] - 1} (one column of probs per class); got {y.min()}..{y.max()}.")
    return y, p


def top_k_accuracy(y_true, probs, ks=TOP_K) -> dict:
    """Share of examples whose true class is among the ``k`` most probable, for each ``k``.

    Each ``k`` is capped at the number of classes (so with 4 classes ``k=5``
    becomes ``k=4``, which is always 1.0); duplicates after capping are dropped.

    Returns:
        ``{k: accuracy}`` with int keys in increasing order.
    """
    y, p = _check_probs(y_true, probs)
    num_classes = p.shape[1]
    out = {}
    # rank of the true class = number of classes with a strictly higher probability (ties favour the truth)
    true_p = p[np.arange(len(y)), y]
    rank = (p > true_p[:, None]).sum(axis=1)
    for k in sorted({min(int(k), num_classes) for k in ks}):
        out[k] = float(np.mean(rank < k))
    return out


def confusion_matrix(y_true, y_pred, num_classes: int) -> np.ndarray:
    """Counts ``cm[i, j]`` of examples of true class ``i`` predicted as ``j`` (``int64``, K x K)."""
    y_true = np.asarray(y_true).reshape(-1).astype(np.int64)
    y_pred = np.asarray(y_pred).reshape(-1).astype(np.int64)
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    return cm


def normalize_rows(cm) -> np.ndarray:
    """Row-normalized confusion matrix (each true class sums to 1; an empty row stays 0)."""
    cm = np.asarray(cm, dtype=np.float64)
    totals = cm.sum(axis=1, keepdims=True)
    return np.divide(cm, totals, out=np.zeros_like(cm), where=totals > 0)


def most_confused(cm, class_names, top: int = 10) -> list[dict]:
    """The off-diagonal cells of a confusion matrix with the most examples.

    Returns:
        Up to ``top`` dicts ``{"true", "predicted", "count", "share_of_true"}``,
        largest count first; ``share_of_true`` is the count over the true class's
        support. Cells with no example are left out.
    """
    cm = np.asarray(cm)
    rates = normalize_rows(cm)
    cells = [(int(cm[i, j]), i, j) for i in range(len(cm)) for j in range(len(cm)) if i != j and cm[i, j] > 0]
    cells.sort(key=lambda t: (-t[0], t[1], t[2]))
    return [
        {"true": class_names[i], "predicted": class_names[j], "count": n, "share_of_true": float(rates[i, j])}
        for n, i, j in cells[:top]
    ]


def classification_metrics(y_true, probs, class_names, *, n_boot: int = 2000, level: float = 0.95, seed: int = 0,
                           top_confused: int = 10) -> dict:
    """Accuracy with a bootstrap CI, top-k, per-class precision/recall/F1 and the confusion matrix.

    Per-class and averaged scores come from scikit-learn's
    ``precision_recall_fscore_support`` (classes without predictions score 0).

    Args:
        y_true: true labels ``(N,)``.
        probs: predicted probabilities ``(N, K)``; the prediction is the argmax.
        class_names: the K display names.
        n_boot, level, seed: of the percentile bootstrap (:func:`cifarkit.stats.accuracy_ci`).
        top_confused: how many most-confused pairs to list.

    Returns:
        A JSON-ready dict with ``n``, ``accuracy``, ``accuracy_ci`` ``[lo, hi]``, ``ci_level``,
        ``top_k`` ``{k: acc}``, ``balanced_accuracy``, ``nll``, ``macro`` and ``weighted``
        ``{precision, recall, f1}``, ``per_class`` ``{name: {precision, recall, f1, support}}``,
        ``confusion_matrix`` (list of rows) and ``most_confused``.
    """
    from sklearn.metrics import balanced_accuracy_score, precision_recall_fscore_support

    y, p = _check_probs(y_true, probs)
    names = [str(c) for c in class_names]
    if len(names) != p.shape[1]:
        raise ValueError(f"Got {len(names)} class names for {p.shape[1]} probability columns; give one name per class.")
    pred = p.argmax(axis=1)
    labels = np.arange(len(names))
    acc = stats.accuracy_ci(y, pred, n_boot=n_boot, level=level, seed=seed)
    prec, rec, f1, support = precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
    averages = {}
    for avg in ("macro", "weighted"):
        ap, ar, af, _ = precision_recall_fscore_support(y, pred, labels=labels, average=avg, zero_division=0)
        averages[avg] = {"precision": float(ap), "recall": float(ar), "f1": float(af)}
    cm = confusion_matrix(y, pred, len(names))
    true_p = np.clip(p[np.arange(len(y)), y], 1e-12, 1.0)
    return {
        "n": int(len(y)),
        "accuracy": acc["accuracy"],
        "accuracy_ci": [acc["ci_low"], acc["ci_high"]],
        "ci_level": level,
        "top_k": top_k_accuracy(y, p),
        "balanced_accuracy": float(balanced_accuracy_score(y, pred)),
        "nll": float(-np.mean(np.log(true_p))),
        "macro": averages["macro"],
        "weighted": averages["weighted"],
        "per_class": {
            name: {"precision": float(prec[i]), "recall": float(rec[i]), "f1": float(f1[i]), "support": int(support[i])}
            for i, name in enumerate(names)
        },
        "confusion_matrix": cm.tolist(),
        "most_confused": most_confused(cm, names, top_confused),
    }


def per_class_table(metrics: dict) -> pd.DataFrame:
    """Per-class precision, recall, F1 and support, with macro and weighted averages as the last rows."""
    df = pd.DataFrame(metrics["per_class"]).T[["precision", "recall", "f1", "support"]]
    df.index.name = "class"
    total = int(df["support"].sum())
    for avg in ("macro", "weighted"):
        df.loc[f"{avg} avg"] = [metrics[avg]["precision"], metrics[avg]["recall"], metrics[avg]["f1"], total]
    df["support"] = df["support"].astype(int)
    return df


def misclassified(y_true, probs, n: int = 16, *, most_confident: bool = False, seed: int = 0) -> np.ndarray:
    """Indices of wrongly classified examples.

    Args:
        y_true: true labels.
        probs: predicted probabilities.
        n: at most this many indices.
        most_confident: the ``n`` mistakes with the highest predicted probability
            (largest first); otherwise a random sample (seeded), in index order.
        seed: seed of the random sample.

    Returns:
        int64 indices into ``y_true``.
    """
    y, p = _check_probs(y_true, probs)
    wrong = np.flatnonzero(p.argmax(axis=1) != y)
    if most_confident:
        conf = p[wrong].max(axis=1)
        return wrong[np.argsort(-conf, kind="stable")][:n]
    if len(wrong) <= n:
        return wrong
    return np.sort(np.random.default_rng(seed).choice(wrong, size=n, replace=False))


def correctly_classified(y_true, probs, n: int = 4, *, seed: int = 0) -> np.ndarray:
    """A seeded random sample of at most ``n`` correctly classified indices, in index order."""
    y, p = _check_probs(y_true, probs)
    right = np.flatnonzero(p.argmax(axis=1) == y)
    if len(right) <= n:
        return right
    return np.sort(np.random.default_rng(seed).choice(right, size=n, replace=False))


# --------------------------------------------------------------------------- calibration


def reliability_bins(probs, y_true, n_bins: int = 15) -> dict:
    """Confidence histogram for a reliability diagram.

    The confidence of an example is its largest predicted probability; bin ``b``
    holds confidences in ``(b/n_bins, (b+1)/n_bins]`` (the first bin also takes 0).

    Returns:
        ``{"edges", "count", "accuracy", "confidence"}``: ``n_bins + 1`` edges and, per bin,
        the number of examples, their accuracy and mean confidence (NaN for an empty bin).
    """
    y, p = _check_probs(y_true, probs)
    if not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}.")
    conf = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.clip(np.ceil(conf * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    count = np.bincount(idx, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.bincount(idx, weights=correct, minlength=n_bins) / count
        confidence = np.bincount(idx, weights=conf, minlength=n_bins) / count
    return {"edges": edges, "count": count, "accuracy": accuracy, "confidence": confidence}


def expected_calibration_error(probs, y_true, n_bins: int = 15) -> float:
    """Expected calibration error (Guo et al. 2017): ``sum_b |B_b|/N * |acc(B_b) - conf(B_b)|``.

    Bins are ``n_bins`` equal-width confidence intervals on ``[0, 1]`` (see
    :func:`reliability_bins`); the confidence is the top-class probability.

    Returns:
        ECE in ``[0, 1]``.
    """
    b = reliability_bins(probs, y_true, n_bins)
    n = b["count"].sum()
    filled = b["count"] > 0
    gaps = np.abs(b["accuracy"][filled] - b["confidence"][filled])
    return float(np.sum(b["count"][filled] / n * gaps))


def nll(logits, y_true, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of the true labels under ``softmax(logits / temperature)``."""
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    y = np.asarray(y_true).reshape(-1).astype(np.int64)
    m = z.max(axis=1, keepdims=True)
    log_norm = (m + np.log(np.exp(z - m).sum(axis=1, keepdims=True)))[:, 0]
    return float(np.mean(log_norm - z[np.arange(len(y)), y]))


def fit_temperature(logits_val, y_val, bounds=(0.05, 20.0)) -> float:
    """Temperature scaling (Guo et al. 2017): the ``T`` that minimizes validation NLL of ``softmax(logits / T)``.

    The search runs over ``log T`` with a bounded scalar minimizer, so ``T`` stays positive.

    Args:
        logits_val: validation logits ``(N, K)``, never test logits.
        y_val: validation labels.
        bounds: smallest and largest ``T`` considered.

    Returns:
        The fitted temperature (> 1 means the model was overconfident).
    """
    from scipy.optimize import minimize_scalar

    z = np.asarray(logits_val, dtype=np.float64)
    y = np.asarray(y_val).reshape(-1)
    if z.ndim != 2 or len(z) != len(y) or len(y) == 0:
        raise ValueError(
            f"fit_temperature needs validation logits (N, num_classes) and N labels, N > 0; received logits of "
            f"shape {z.shape} and {len(y)} labels. With VAL_FRACTION = 0 there is no validation split to fit on."
        )
    lo, hi = (math.log(b) for b in bounds)
    res = minimize_scalar(lambda log_t: nll(z, y, math.exp(log_t)), bounds=(lo, hi), method="bounded",
                          options={"xatol": 1e-5})
    return float(math.exp(res.x))


# --------------------------------------------------------------------------- corruptions


def _gaussian_kernel(sigma: float) -> np.ndarray:
    radius = max(1, int(math.ceil(4 * sigma)))  # truncated at 4 sigma, as scikit-image's gaussian filter
    t = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


def _blur(x: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of NHWC float images; borders repeat the edge pixel."""
    k = _gaussian_kernel(sigma)
    r = len(k) // 2
    out = x
    for axis in (1, 2):
        pad = [(0, 0)] * 4
        pad[axis] = (r, r)
        padded = np.pad(out, pad, mode="edge")
        acc = np.zeros_like(out)
        size = out.shape[axis]
        for i, w in enumerate(k):
            acc += w * np.take(padded, np.arange(i, i + size), axis=axis)
        out = acc
    return out


def _brighten(f: np.ndarray, shift: float) -> np.ndarray:
    """Add ``shift`` (0..255 units) to the HSV value of every pixel, keeping hue and saturation.

    In HSV the value is the largest channel and scaling RGB scales only the value,
    so this is ``rgb * min(v + shift, 255) / v`` (a black pixel becomes grey).
    """
    v = f.max(axis=-1, keepdims=True)
    new_v = np.minimum(v + shift, 255.0)
    scale = np.divide(new_v, v, out=np.ones_like(v), where=v > 0)
    return np.where(v > 0, f * scale, new_v)


def _jpeg(x: np.ndarray, quality: int) -> np.ndarray:
    from PIL import Image

    out = np.empty_like(x)
    for i, img in enumerate(x):
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=int(quality))
        buf.seek(0)
        out[i] = np.asarray(Image.open(buf).convert("RGB"))
    return out


def corrupt(x, kind: str, severity: int, seed: int = 0) -> np.ndarray:
    """A synthetically corrupted copy of uint8 NHWC images.

    Kinds (strength per severity in :data:`SEVERITIES`):
        ``gaussian_noise``  adds N(0, sigma^2) noise (seeded; the only random kind);
        ``gaussian_blur``   Gaussian blur, sigma scaled with the image side / 32;
        ``contrast``        pulls every pixel towards its image's per-channel mean by a factor;
        ``jpeg``            JPEG compression at a low quality (Pillow);
        ``brightness``      raises the HSV value of every pixel by a constant.
    The strengths are CIFAR-10-C's severities 1, 3 and 5, so severity 3 here is
    CIFAR-10-C's strongest.
    Results are clipped to 0..255 and rounded.

    Args:
        x: uint8 images ``(N, H, W, 3)``.
        kind: one of :data:`CORRUPTIONS`.
        severity: 1, 2 or 3.
        seed: seed of the noise, so a corruption is the same on every call.

    Returns:
        uint8 array of the same shape.
    """
    if kind not in SEVERITIES:
        raise ValueError(f"Unknown corruption {kind!r}. Known corruptions: {', '.join(CORRUPTIONS)}.")
    levels = SEVERITIES[kind]
    if isinstance(severity, bool) or not isinstance(severity, (int, np.integer)) or not 1 <= severity <= len(levels):
        raise ValueError(f"severity must be an integer from 1 to {len(levels)}; received severity={severity!r}.")
    x = np.asarray(x)
    if x.ndim != 4 or x.dtype != np.uint8:
        raise ValueError(f"corrupt needs uint8 images shaped (N, H, W, C); received {x.dtype} of shape {x.shape}.")
    level = levels[int(severity) - 1]
    if kind == "jpeg":
        return _jpeg(x, level)
    f = x.astype(np.float32)
    if kind == "gaussian_noise":
        rng = np.random.default_rng(seed)
        f = f + rng.normal(0.0, level * 255.0, size=x.shape).astype(np.float32)
    elif kind == "gaussian_blur":
        f = _blur(f, level * max(x.shape[1], x.shape[2]) / 32.0)
    elif kind == "contrast":
        mean = f.mean(axis=(1, 2), keepdims=True)
        f = (f - mean) * level + mean
    elif kind == "brightness":
        f = _brighten(f, level * 255.0)
    return np.clip(np.rint(f), 0, 255).astype(np.uint8)


def subsample(n: int, samples: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of a seeded random subsample of ``samples`` out of ``n`` (all when ``samples`` is 0 or >= n)."""
    if samples < 0:
        raise ValueError(f"samples must be >= 0 (0 means all); received {samples}.")
    if samples == 0 or samples >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=samples, replace=False))


def robustness_table(model, x, y, *, kinds=CORRUPTIONS, severities=(1, 2, 3), samples: int = 0, seed: int = 0,
                     batch_size: int = 512) -> pd.DataFrame:
    """Accuracy of ``model`` on corrupted copies of ``(x, y)``.

    Args:
        model: a trained model returning logits.
        x, y: uint8 NHWC images and their labels (the test split).
        kinds: corruptions from :data:`CORRUPTIONS`.
        severities: severities from 1 to 3.
        samples: evaluate on a seeded random subsample of this many images (0 = all).
        seed: seed of the subsample and of the noise.
        batch_size: images per forward pass.

    Returns:
        A DataFrame with one row per corruption and one column per severity (accuracy);
        ``df.attrs`` holds ``clean_acc`` (the same subsample, uncorrupted), ``n`` and ``indices``.
    """
    x = np.asarray(x)
    y = np.asarray(y).reshape(-1)
    idx = subsample(len(x), int(samples), seed)
    xs, ys = x[idx], y[idx]
    clean = float(np.mean(predict_logits(model, xs, batch_size).argmax(1) == ys))
    rows = {}
    for kind in kinds:
        rows[kind] = {}
        for s in severities:
            pred = predict_logits(model, corrupt(xs, kind, s, seed=seed), batch_size).argmax(1)
            rows[kind][int(s)] = float(np.mean(pred == ys))
    df = pd.DataFrame.from_dict(rows, orient="index")
    df.index.name = "corruption"
    df.columns.name = "severity"
    df.attrs.update(clean_acc=clean, n=int(len(idx)), indices=idx)
    return df


def robustness_dict(df: pd.DataFrame) -> dict:
    """``{kind: {severity: accuracy}}`` (severity keys as strings) from :func:`robustness_table`."""
    return {kind: {str(s): float(v) for s, v in row.items()} for kind, row in df.iterrows()}


# --------------------------------------------------------------------------- saliency

_FEATURE_TYPES = ("Conv2D", "Conv1D", "SeparableConv2D", "DepthwiseConv2D", "Activation", "ReLU", "LeakyReLU",
                  "ELU", "PReLU", "Add", "Concatenate", "BatchNormalization", "FusedBatchNorm")


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
    keras = _keras()
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


def occlusion_sensitivity(model, x, class_idx=None, *, patch: int | None = None, stride: int | None = None,
                          batch_size: int = 256) -> np.ndarray:
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
            for l in lefts:
                v = x[i].copy()
                v[t : t + patch, l : l + patch] = 128
                variants.append(v)
        probs = softmax(predict_logits(model, np.stack(variants), batch_size))[:, targets[i]]
        k = 0
        for t in tops:
            for l in lefts:
                maps[i, t : t + patch, l : l + patch] += p0[i] - probs[k]
                if i == 0:
                    cover[t : t + patch, l : l + patch] += 1
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
