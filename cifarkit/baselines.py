"""Non-CNN baselines: do CNNs really win?

Classic scikit-learn classifiers trained on the same splits as the CNN, so that
the study can put a number on what convolutional networks add. The module has
three parts:

* **Features** (:func:`raw_pixels`, :func:`hog_features`,
  :func:`colour_histograms`, :class:`PCAFeatures`): plain numpy, vectorized and
  batched, for any image size and class count.
* **Methods**: a small registry (:data:`METHODS`) that maps a name
  (``"logreg"``, ``"knn"``, ``"random_forest"``, ``"hog_svm"``) to a builder,
  so that a notebook selects them with a plain string.
* **Running and comparing**: :func:`run_baselines` trains each method on the
  training split (optionally a stratified subsample), chooses its
  hyperparameters on the validation split only, and scores it once on the test
  split; :func:`evaluate_cnns`, :func:`compare_with_cnn` and
  :func:`comparison_table` put the baselines beside the run's CNN(s).

The test split is never used to choose anything: every hyperparameter is either
fixed a priori or chosen by validation accuracy.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

DEFAULT_METHODS = "logreg,knn,random_forest,hog_svm"


# ------------------------------------------------------------------- features
def _check_images(x: np.ndarray, what: str = "images") -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"{what} must be an array of shape (N, H, W, 3) (RGB, channels last); got shape {x.shape}.")
    return x


def raw_pixels(x: np.ndarray, batch_size: int = 4096) -> np.ndarray:
    """Flattened pixels in ``[0, 1]``: ``(N, H, W, 3)`` -> float32 ``(N, H*W*3)``."""
    x = _check_images(x)
    out = np.empty((len(x), int(np.prod(x.shape[1:]))), dtype=np.float32)
    for s in range(0, len(x), batch_size):
        out[s : s + batch_size] = x[s : s + batch_size].reshape(len(x[s : s + batch_size]), -1)
    out *= np.float32(1 / 255)
    return out


def hog_cell_size(image_size) -> int:
    """HOG cell side in pixels for an image size: 4 px on 32x32 images, scaled with the image.

    An image is always divided into about 8x8 cells, so the descriptor has the
    same layout (and length) for 32x32 thumbnails and 256x256 photographs.
    """
    h, w = (image_size, image_size) if np.isscalar(image_size) else tuple(image_size)[:2]
    return max(2, int(round(min(int(h), int(w)) / 8)))


def hog_feature_length(image_size, *, cell: int | None = None, orientations: int = 9, block: int = 2) -> int:
    """Length of :func:`hog_features`' descriptor for images of ``image_size``."""
    h, w = (image_size, image_size) if np.isscalar(image_size) else tuple(image_size)[:2]
    cell = cell or hog_cell_size((h, w))
    nbh, nbw = h // cell - block + 1, w // cell - block + 1
    return max(nbh, 0) * max(nbw, 0) * block * block * orientations


def hog_features(x: np.ndarray, *, cell: int | None = None, orientations: int = 9, block: int = 2,
                 batch_size: int = 1024) -> np.ndarray:
    """Histograms of oriented gradients (Dalal & Triggs 2005), vectorized over a batch of images.

    Gradients are central differences in each colour channel; at every pixel
    the channel with the largest gradient magnitude is kept (as Dalal and
    Triggs do for colour images). Unsigned orientations (0-180 degrees) vote
    with their magnitude into ``orientations`` bins with linear interpolation
    between neighbouring bins, summed over square cells of ``cell`` pixels.
    Blocks of ``block`` x ``block`` cells (stride one cell) are L2-Hys
    normalized (L2, clip at 0.2, L2 again), as in scikit-image's ``hog``.

    Args:
        x: uint8 images ``(N, H, W, 3)``.
        cell: cell side in pixels; ``None`` scales it with the image
            (:func:`hog_cell_size`: 4 px for 32x32).
        orientations: orientation bins over 0-180 degrees.
        block: cells per block side.
        batch_size: images processed at once (bounds the memory used).

    Returns:
        float32 ``(N, hog_feature_length(...))``.
    """
    x = _check_images(x)
    n, h, w = x.shape[:3]
    cell = int(cell or hog_cell_size((h, w)))
    if cell < 1 or orientations < 1 or block < 1:
        raise ValueError(f"cell, orientations and block must be positive; got cell={cell}, orientations={orientations}, block={block}.")
    ch, cw = h // cell, w // cell
    if ch < block or cw < block:
        raise ValueError(
            f"Images of {h}x{w} pixels hold {ch}x{cw} HOG cells of {cell} px, fewer than one block of {block}x{block} cells. "
            f"Use a smaller cell (got {cell}) or larger images."
        )
    nbh, nbw = ch - block + 1, cw - block + 1
    out = np.empty((n, nbh * nbw * block * block * orientations), dtype=np.float32)
    bin_width = np.float32(np.pi / orientations)
    cell_of = ((np.arange(ch * cell) // cell)[:, None] * cw + (np.arange(cw * cell) // cell)[None, :]).ravel()
    for s in range(0, n, batch_size):
        img = x[s : s + batch_size, : ch * cell, : cw * cell].astype(np.float32)
        m = len(img)
        gx = np.zeros_like(img)
        gy = np.zeros_like(img)
        gx[:, :, 1:-1] = img[:, :, 2:] - img[:, :, :-2]
        gy[:, 1:-1] = img[:, 2:] - img[:, :-2]
        mag2 = gx * gx + gy * gy
        best = np.argmax(mag2, axis=-1)[..., None]
        gx = np.take_along_axis(gx, best, axis=-1)[..., 0]
        gy = np.take_along_axis(gy, best, axis=-1)[..., 0]
        mag = np.sqrt(np.take_along_axis(mag2, best, axis=-1)[..., 0]).reshape(m, -1)
        angle = np.mod(np.arctan2(gy, gx), np.float32(np.pi)).reshape(m, -1)  # unsigned, [0, pi)
        pos = angle / bin_width - np.float32(0.5)  # bin centres at (i + 0.5) * width
        lo = np.floor(pos)
        w_hi = pos - lo
        lo = lo.astype(np.int64) % orientations
        hi = (lo + 1) % orientations
        # one bincount per neighbouring bin sums the votes of every (image, cell, orientation)
        base = (np.arange(m)[:, None] * (ch * cw) + cell_of[None, :]) * orientations
        size = m * ch * cw * orientations
        cells = np.bincount((base + lo).ravel(), weights=(mag * (1 - w_hi)).ravel(), minlength=size)
        cells += np.bincount((base + hi).ravel(), weights=(mag * w_hi).ravel(), minlength=size)
        cells = cells.astype(np.float32).reshape(m, ch, cw, orientations)
        blocks = np.concatenate(
            [cells[:, i : i + nbh, j : j + nbw] for i in range(block) for j in range(block)], axis=-1
        )  # (m, nbh, nbw, block*block*orientations)
        eps = np.float32(1e-5)
        blocks /= np.sqrt((blocks**2).sum(axis=-1, keepdims=True) + eps**2)
        np.minimum(blocks, np.float32(0.2), out=blocks)
        blocks /= np.sqrt((blocks**2).sum(axis=-1, keepdims=True) + eps**2)
        out[s : s + m] = blocks.reshape(m, -1)
    return out


def colour_histograms(x: np.ndarray, bins: int = 16, batch_size: int = 4096) -> np.ndarray:
    """Per-channel intensity histograms, each normalized to sum to one.

    Args:
        x: uint8 images ``(N, H, W, 3)``.
        bins: bins per channel over 0-255.

    Returns:
        float32 ``(N, 3 * bins)``: the red, green and blue histograms side by side.
    """
    x = _check_images(x)
    if not 1 <= bins <= 256:
        raise ValueError(f"bins must be between 1 and 256; got {bins!r}.")
    n = len(x)
    pixels = int(np.prod(x.shape[1:3]))
    out = np.empty((n, 3 * bins), dtype=np.float32)
    for s in range(0, n, batch_size):
        xb = x[s : s + batch_size].reshape(-1, pixels, 3)
        m = len(xb)
        idx = (xb.astype(np.int64) * bins) >> 8  # 0..bins-1
        rows = np.arange(m)[:, None] * (3 * bins)
        for c in range(3):
            flat = (rows + c * bins + idx[:, :, c]).ravel()
            counts = np.bincount(flat, minlength=m * 3 * bins).reshape(m, 3 * bins)
            out[s : s + m, c * bins : (c + 1) * bins] = counts[:, c * bins : (c + 1) * bins]
    out /= np.float32(pixels)
    return out


def hog_colour_features(x: np.ndarray, *, cell: int | None = None, orientations: int = 9, bins: int = 16) -> np.ndarray:
    """HOG descriptor and per-channel colour histograms, concatenated (float32)."""
    return np.concatenate([hog_features(x, cell=cell, orientations=orientations), colour_histograms(x, bins=bins)], axis=1)


class PCAFeatures:
    """Standardize, then project on the first principal components of the training data.

    Fitted on the training images only. ``n_components`` is capped by the number
    of training images and of features, so the same setting works on tiny data.
    """

    def __init__(self, n_components: int, *, whiten: bool = False, standardize: bool = True, fit_images: int = 10000,
                 seed: int = 0):
        if int(n_components) < 1:
            raise ValueError(f"n_components must be a positive int; got {n_components!r}.")
        self.n_components = int(n_components)
        self.whiten = whiten
        self.standardize = standardize
        self.fit_images = int(fit_images or 0)
        self.seed = seed

    def fit(self, x: np.ndarray) -> "PCAFeatures":
        """Fit on ``x`` (at most ``fit_images`` of them, drawn at random: the leading
        components of 10,000 images match those of 45,000 closely, at a quarter of the cost)."""
        from sklearn.decomposition import PCA

        self.fit_images_used_ = len(x)
        if self.fit_images and len(x) > self.fit_images:
            pick = np.sort(np.random.default_rng(self.seed).choice(len(x), self.fit_images, replace=False))
            x = x[pick]
            self.fit_images_used_ = self.fit_images
        f = raw_pixels(x)
        self.mean_ = f.mean(axis=0)
        self.scale_ = f.std(axis=0) + np.float32(1e-6) if self.standardize else np.ones(f.shape[1], np.float32)
        f -= self.mean_
        f /= self.scale_
        k = max(1, min(self.n_components, f.shape[0] - 1, f.shape[1]))
        self.pca_ = PCA(n_components=k, whiten=self.whiten, svd_solver="randomized", random_state=self.seed).fit(f)
        self.explained_variance_ = float(self.pca_.explained_variance_ratio_.sum())
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        f = raw_pixels(x)
        f -= self.mean_
        f /= self.scale_
        return self.pca_.transform(f).astype(np.float32)

    @property
    def components(self) -> int:
        return int(self.pca_.n_components_)

    def describe(self, n_train: int) -> str:
        whiten = "whitened " if self.whiten else ""
        fitted = f" fitted on {self.fit_images_used_} of them" if self.fit_images_used_ < n_train else ""
        return f"raw pixels, standardized, PCA to {self.components} {whiten}components{fitted}"


# ------------------------------------------------------------- subsampling
def stratified_subsample(y: np.ndarray, max_images: int | None, seed: int = 0) -> np.ndarray:
    """Indices of at most ``max_images`` examples with the class proportions of ``y``.

    Every class keeps its share (largest-remainder rounding, at least one image
    of every class that has any while the cap allows it). ``None`` or 0 keeps
    everything. The indices come back sorted.
    """
    y = np.asarray(y)
    n = len(y)
    if max_images is None or int(max_images) <= 0 or int(max_images) >= n:
        return np.arange(n)
    max_images = int(max_images)
    classes, counts = np.unique(y, return_counts=True)
    quota = counts * (max_images / n)
    take = np.floor(quota).astype(int)
    if max_images >= len(classes):
        take = np.maximum(take, 1)
    remainder = max_images - take.sum()
    if remainder > 0:
        order = np.argsort(-(quota - np.floor(quota)), kind="stable")
        for i in order:
            if remainder == 0:
                break
            if take[i] < counts[i]:
                take[i] += 1
                remainder -= 1
    elif remainder < 0:  # the minimum of one per class overshot: trim the largest classes
        for i in np.argsort(-take, kind="stable"):
            while remainder < 0 and take[i] > 1:
                take[i] -= 1
                remainder += 1
    rng = np.random.default_rng(seed)
    picked = [rng.choice(np.flatnonzero(y == c), size=int(k), replace=False) for c, k in zip(classes, take)]
    return np.sort(np.concatenate(picked))


# ------------------------------------------------------------- the methods
def _accuracy(y_true, y_pred) -> float:
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred))) if len(y_true) else float("nan")


def _choose(scores: dict, prefer) -> object:
    """The key with the best validation score; ties go to ``prefer``'s order (simplest model first)."""
    best = max(scores.values())
    return next(k for k in prefer if scores.get(k) == best)


class Baseline:
    """Base class: ``fit`` on training images (choosing hyperparameters on validation images), ``predict`` labels.

    After ``fit``: ``selected`` (the hyperparameters used), ``val_scores`` (the
    validation accuracy of each candidate, empty when nothing was chosen),
    ``val_pred`` (predictions on the validation images) and ``features``
    (a description of the features).
    """

    name = "baseline"
    title = "Baseline"

    def __init__(self, seed: int = 0):
        self.seed = seed
        self.selected: dict = {}
        self.val_scores: dict = {}
        self.val_pred: np.ndarray | None = None
        self.features = ""

    def fit(self, x_train, y_train, x_val, y_val) -> "Baseline":
        raise NotImplementedError

    def predict(self, x) -> np.ndarray:
        raise NotImplementedError


class LogRegBaseline(Baseline):
    """Multinomial logistic regression on standardized, PCA-whitened pixels; C chosen on validation."""

    name = "logreg"
    title = "Logistic regression"

    def __init__(self, seed: int = 0, pca_components: int = 200, pca_fit_images: int = 10000, cs=(0.01, 0.1, 1.0),
                 max_iter: int = 300):
        super().__init__(seed)
        self.pca_components, self.pca_fit_images = int(pca_components), int(pca_fit_images)
        self.cs, self.max_iter = tuple(float(c) for c in cs), int(max_iter)

    def fit(self, x_train, y_train, x_val, y_val):
        import warnings

        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import LogisticRegression

        self.pca_ = PCAFeatures(self.pca_components, whiten=True, fit_images=self.pca_fit_images, seed=self.seed).fit(x_train)
        f_train = self.pca_.transform(x_train)
        f_val = self.pca_.transform(x_val) if len(x_val) else None
        self.features = self.pca_.describe(len(x_train))
        cands = self.cs if f_val is not None else self.cs[:1]
        models, preds = {}, {}
        for c in cands:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                models[c] = LogisticRegression(C=c, solver="lbfgs", max_iter=self.max_iter).fit(f_train, y_train)
            if f_val is not None:
                preds[c] = models[c].predict(f_val)
                self.val_scores[f"C={c:g}"] = _accuracy(y_val, preds[c])
        best = _choose({c: self.val_scores[f"C={c:g}"] for c in cands}, prefer=sorted(cands)) if f_val is not None else cands[0]
        self.model_ = models[best]
        self.val_pred = preds.get(best)
        self.selected = {"C": best, "pca_components": self.pca_.components}
        return self

    def predict(self, x):
        return self.model_.predict(self.pca_.transform(x))


def knn_vote(neighbour_labels: np.ndarray, k: int, num_classes: int) -> np.ndarray:
    """Majority vote of the first ``k`` neighbours (ordered nearest first); ties go to the class of the nearer neighbours."""
    nl = neighbour_labels[:, :k]
    # weight 1 per vote plus a tiny bonus for rank, smaller than one vote in total
    weights = 1.0 + (k - np.arange(k)) / (k * (k + 1))
    scores = np.zeros((len(nl), num_classes))
    np.add.at(scores, (np.arange(len(nl))[:, None], nl), weights[None, :])
    return scores.argmax(axis=1)


class KNNBaseline(Baseline):
    """k-nearest neighbours (Euclidean) on PCA features of the pixels; k chosen on validation."""

    name = "knn"
    title = "k-nearest neighbours"

    def __init__(self, seed: int = 0, pca_components: int = 40, pca_fit_images: int = 10000, ks=(1, 3, 5, 7, 10, 15, 20, 30)):
        super().__init__(seed)
        self.pca_components, self.pca_fit_images = int(pca_components), int(pca_fit_images)
        self.ks = tuple(sorted({int(k) for k in ks}))
        if not self.ks or self.ks[0] < 1:
            raise ValueError(f"ks must be positive ints; got {ks!r}.")

    def fit(self, x_train, y_train, x_val, y_val):
        from sklearn.neighbors import NearestNeighbors

        self.pca_ = PCAFeatures(self.pca_components, whiten=False, fit_images=self.pca_fit_images, seed=self.seed).fit(x_train)
        self.features = self.pca_.describe(len(x_train))
        self.y_train_ = np.asarray(y_train)
        self.num_classes_ = int(max(self.y_train_.max(initial=0), np.max(y_val, initial=0)) + 1)
        self.nn_ = NearestNeighbors(algorithm="brute").fit(self.pca_.transform(x_train))
        ks = [k for k in self.ks if k <= len(x_train)] or [1]
        if len(x_val):
            neigh = self._neighbour_labels(x_val, max(ks))
            preds = {k: knn_vote(neigh, k, self.num_classes_) for k in ks}
            self.val_scores = {f"k={k}": _accuracy(y_val, preds[k]) for k in ks}
            self.k_ = _choose({k: self.val_scores[f"k={k}"] for k in ks}, prefer=ks)
            self.val_pred = preds[self.k_]
        else:
            self.k_ = ks[0]
        self.selected = {"k": self.k_, "pca_components": self.pca_.components}
        return self

    def _neighbour_labels(self, x, k):
        idx = self.nn_.kneighbors(self.pca_.transform(x), n_neighbors=k, return_distance=False)
        return self.y_train_[idx]

    def predict(self, x):
        return knn_vote(self._neighbour_labels(x, self.k_), self.k_, self.num_classes_)


class RandomForestBaseline(Baseline):
    """Random forest on raw pixels; hyperparameters fixed a priori (the usual sqrt-of-features rule)."""

    name = "random_forest"
    title = "Random forest"

    def __init__(self, seed: int = 0, n_estimators: int = 100, max_features="sqrt", min_samples_leaf: int = 1, n_jobs: int = 2):
        super().__init__(seed)
        self.n_estimators, self.max_features = int(n_estimators), max_features
        self.min_samples_leaf, self.n_jobs = int(min_samples_leaf), n_jobs

    def fit(self, x_train, y_train, x_val, y_val):
        from sklearn.ensemble import RandomForestClassifier

        self.features = "raw pixels"
        self.model_ = RandomForestClassifier(
            n_estimators=self.n_estimators, max_features=self.max_features, min_samples_leaf=self.min_samples_leaf,
            n_jobs=self.n_jobs, random_state=self.seed,
        ).fit(raw_pixels(x_train), y_train)
        self.selected = {"n_estimators": self.n_estimators, "max_features": self.max_features,
                         "min_samples_leaf": self.min_samples_leaf}
        return self

    def predict(self, x):
        return self.model_.predict(raw_pixels(x))


class HogSvmBaseline(Baseline):
    """Linear SVM on HOG + colour-histogram features (standardized); regularization chosen on validation.

    ``solver="sgd"`` (default) minimizes the hinge loss with an L2 penalty by
    averaged stochastic gradient descent (``SGDClassifier``, one-vs-rest), a few
    passes over the data: the same model as ``LinearSVC`` and much faster on
    tens of thousands of dense 1800-dimensional vectors. ``solver="liblinear"``
    uses ``LinearSVC`` (squared hinge) with the ``cs`` grid instead.
    """

    name = "hog_svm"
    title = "Linear SVM (HOG + colour)"

    def __init__(self, seed: int = 0, solver: str = "sgd", alphas=(1e-6, 1e-5, 1e-4, 1e-3), epochs: int = 5,
                 cs=(1e-4, 1e-3, 1e-2), orientations: int = 9, cell: int | None = None, bins: int = 16,
                 n_jobs: int = 2):
        super().__init__(seed)
        if solver not in ("sgd", "liblinear"):
            raise ValueError(f"Unknown solver {solver!r} for hog_svm. Use 'sgd' or 'liblinear'.")
        self.solver, self.epochs, self.n_jobs = solver, int(epochs), n_jobs
        self.alphas, self.cs = tuple(float(a) for a in alphas), tuple(float(c) for c in cs)
        self.orientations, self.cell, self.bins = int(orientations), cell, int(bins)

    def _features(self, x):
        return hog_colour_features(x, cell=self.cell_, orientations=self.orientations, bins=self.bins)

    def _model(self, value):
        from sklearn.linear_model import SGDClassifier
        from sklearn.svm import LinearSVC

        if self.solver == "sgd":
            return SGDClassifier(loss="hinge", alpha=value, max_iter=self.epochs, tol=None, average=True,
                                 random_state=self.seed, n_jobs=self.n_jobs)
        return LinearSVC(C=value, dual="auto", max_iter=2000, random_state=self.seed)

    def fit(self, x_train, y_train, x_val, y_val):
        import warnings

        from sklearn.exceptions import ConvergenceWarning
        from sklearn.preprocessing import StandardScaler

        self.cell_ = int(self.cell or hog_cell_size(x_train.shape[1:3]))
        f_train = self._features(x_train)
        self.scaler_ = StandardScaler().fit(f_train)
        f_train = self.scaler_.transform(f_train)
        f_val = self.scaler_.transform(self._features(x_val)) if len(x_val) else None
        self.features = (f"HOG ({self.orientations} orientations, {self.cell_} px cells, 2x2 blocks) "
                         f"+ colour histograms ({self.bins} bins per channel), standardized")
        key = "alpha" if self.solver == "sgd" else "C"
        grid = self.alphas if self.solver == "sgd" else self.cs
        # simplest model first on ties: the strongest regularization
        prefer = sorted(grid, reverse=(self.solver == "sgd"))
        cands = grid if f_val is not None else (prefer[len(prefer) // 2],)
        models, preds = {}, {}
        for v in cands:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                models[v] = self._model(v).fit(f_train, y_train)
            if f_val is not None:
                preds[v] = models[v].predict(f_val)
                self.val_scores[f"{key}={v:g}"] = _accuracy(y_val, preds[v])
        best = _choose({v: self.val_scores[f"{key}={v:g}"] for v in cands}, prefer=prefer) if f_val is not None else cands[0]
        self.model_ = models[best]
        self.val_pred = preds.get(best)
        self.selected = {key: best, "solver": self.solver, "hog_cell": self.cell_, "feature_dims": int(f_train.shape[1])}
        if self.solver == "sgd":
            self.selected["epochs"] = self.epochs
        return self

    def predict(self, x):
        return self.model_.predict(self.scaler_.transform(self._features(x)))


@dataclass(frozen=True)
class BaselineMethod:
    """A registered baseline: its name, what it is, and the builder of its estimator."""

    name: str
    title: str
    description: str
    builder: Callable[..., Baseline]

    def build(self, seed: int = 0, **options) -> Baseline:
        try:
            return self.builder(seed=seed, **options)
        except TypeError as exc:
            raise ValueError(f"Bad options for baseline {self.name!r}: {options} ({exc}).") from None


METHODS: dict[str, BaselineMethod] = {
    m.name: m
    for m in (
        BaselineMethod("logreg", LogRegBaseline.title, "multinomial logistic regression on PCA-whitened pixels", LogRegBaseline),
        BaselineMethod("knn", KNNBaseline.title, "Euclidean kNN on PCA features of the pixels", KNNBaseline),
        BaselineMethod("random_forest", RandomForestBaseline.title, "random forest on raw pixels", RandomForestBaseline),
        BaselineMethod("hog_svm", HogSvmBaseline.title, "linear SVM on HOG and colour-histogram features", HogSvmBaseline),
    )
}


def list_methods() -> list[str]:
    """Names of the registered baseline methods."""
    return list(METHODS)


def parse_methods(methods) -> list[str]:
    """``"logreg, knn"`` or ``["logreg", "knn"]`` -> validated list of method names (order kept, duplicates dropped)."""
    if isinstance(methods, str):
        names = [m.strip() for m in methods.split(",") if m.strip()]
    else:
        names = [str(m).strip() for m in (methods or [])]
    if not names:
        raise ValueError(f"No baseline method selected (got {methods!r}). Known methods: {', '.join(METHODS)}.")
    unknown = [m for m in names if m not in METHODS]
    if unknown:
        raise ValueError(
            f"Unknown baseline method(s) {', '.join(repr(m) for m in unknown)}. Known methods: {', '.join(METHODS)}."
        )
    return list(dict.fromkeys(names))


def _cap_for(max_train, name: str) -> int | None:
    if max_train is None:
        return None
    if isinstance(max_train, dict):
        unknown = sorted(set(max_train) - set(METHODS))
        if unknown:
            raise ValueError(f"max_train names unknown method(s) {unknown}. Known methods: {', '.join(METHODS)}.")
        value = max_train.get(name)
    else:
        value = max_train
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"max_train for {name!r} must be a non-negative int (0 = all training images); got {value!r}.")
    return int(value) or None


def run_baselines(ds, methods=DEFAULT_METHODS, *, max_train=None, seed: int = 0, options: dict | None = None,
                  n_boot: int = 2000, progress=print) -> list[dict]:
    """Train, select on validation and test each baseline method on the splits of ``ds``.

    Args:
        ds: a :class:`cifarkit.data.Dataset` (the study's splits).
        methods: method names, comma-separated or a list (see :func:`list_methods`).
        max_train: cap on training images: an int for every method, or a dict
            ``{method: int}``; ``None``/0 uses the whole training split. The
            subsample is stratified by class and reported as ``train_images_used``.
        seed: seed of the subsample and of the methods.
        options: ``{method: {option: value}}`` passed to the method's builder
            (for example ``{"random_forest": {"n_estimators": 50}}``).
        n_boot: bootstrap resamples for the test accuracy's 95% interval.
        progress: callable taking one line of text, or ``None`` for silence.

    Returns:
        One dict per method: ``name``, ``title``, ``features``,
        ``train_images_used``, ``train_images_available``, ``selected``
        (hyperparameters), ``val_scores`` (validation accuracy per candidate),
        ``val_acc``, ``test_acc``, ``test_acc_ci`` (``[low, high]``),
        ``ci_level``, ``train_seconds`` (features, fitting and the choice on
        validation), ``predict_seconds`` (features and prediction of the test
        split), and the arrays ``val_pred`` and ``test_pred``.
    """
    from cifarkit.stats import accuracy_ci

    names = parse_methods(methods)
    options = dict(options or {})
    unknown = sorted(set(options) - set(METHODS))
    if unknown:
        raise ValueError(f"options name unknown method(s) {unknown}. Known methods: {', '.join(METHODS)}.")
    caps = {name: _cap_for(max_train, name) for name in names}
    if len(ds.y_train) == 0 or len(ds.y_test) == 0:
        raise ValueError(f"Baselines need training and test images; the data has {ds.counts()}.")
    say = progress or (lambda *a: None)
    results = []
    for name in names:
        method = METHODS[name]
        idx = stratified_subsample(ds.y_train, caps[name], seed=seed)
        x_tr, y_tr = ds.x_train[idx], ds.y_train[idx]
        model = method.build(seed=seed, **options.get(name, {}))
        say(f"{name}: training on {len(idx)} of {len(ds.y_train)} training images ...")
        t0 = time.perf_counter()
        model.fit(x_tr, y_tr, ds.x_val, ds.y_val)
        train_s = time.perf_counter() - t0
        val_pred = model.val_pred if model.val_pred is not None else (model.predict(ds.x_val) if len(ds.y_val) else None)
        t1 = time.perf_counter()
        test_pred = np.asarray(model.predict(ds.x_test))
        predict_s = time.perf_counter() - t1
        ci = accuracy_ci(ds.y_test, test_pred, n_boot=n_boot, seed=seed)
        res = {
            "name": name,
            "title": method.title,
            "features": model.features,
            "train_images_used": int(len(idx)),
            "train_images_available": int(len(ds.y_train)),
            "selected": dict(model.selected),
            "val_scores": dict(model.val_scores),
            "val_acc": _accuracy(ds.y_val, val_pred) if val_pred is not None else None,
            "test_acc": ci["accuracy"],
            "test_acc_ci": [ci["ci_low"], ci["ci_high"]],
            "ci_level": ci["level"],
            "train_seconds": round(train_s, 6),
            "predict_seconds": round(predict_s, 6),
            "val_pred": None if val_pred is None else np.asarray(val_pred),
            "test_pred": test_pred,
        }
        val_text = f"val {res['val_acc']:.3f}, " if res["val_acc"] is not None else ""
        say(f"{name}: {val_text}test {res['test_acc']:.3f}; train {train_s:.1f} s, predict {predict_s:.1f} s; {res['selected']}")
        results.append(res)
    return results


def public_result(result: dict) -> dict:
    """A result without its prediction arrays (for JSON)."""
    return {k: v for k, v in result.items() if not isinstance(v, np.ndarray) and k not in ("val_pred", "test_pred")}


# ------------------------------------------------------- beside the CNN(s)
def _resolve_model_path(raw: str, run_dir: Path) -> Path:
    """A recorded model path; relative ones are taken from the run folder, and a run folder that has been
    moved since is searched for the same ``models/...`` file."""
    path = Path(raw)
    if not path.is_absolute():
        path = run_dir / path
    if not path.exists() and "models" in path.parts:
        i = len(path.parts) - 1 - path.parts[::-1].index("models")
        moved = run_dir.joinpath(*path.parts[i:])
        if moved.exists():
            return moved
    return path


def run_cnns(run_dir) -> list[dict]:
    """The CNNs of a run: the model trained by ``02_train`` and the ``models`` recorded by notebook 06, if it ran.

    Notebook 06's metrics (``metrics/06_*.json``) hold a ``models`` list (or
    dict) of entries with ``name`` and ``model_path``. A model recorded twice is
    returned once.

    Returns:
        One dict per model: ``name``, ``model_path``, ``source`` (the notebook
        that recorded it), ``epochs``, ``train_seconds``, ``recorded`` (that
        notebook's own record), 02_train's model first.
    """
    import json

    from cifarkit import reporting

    run_dir = Path(run_dir)
    train = reporting.load_metrics(run_dir, "02_train")
    if not train.get("model_path"):
        raise ValueError(f"metrics/02_train.json in {run_dir} has no model_path. Run 02_train again to record the model.")
    cnns = [{"name": str(train.get("model", "cnn")), "model_path": str(_resolve_model_path(train["model_path"], run_dir)),
             "source": "02_train", "epochs": train.get("epochs_run"), "train_seconds": train.get("train_seconds"),
             "recorded": train}]
    for path in sorted((run_dir / "metrics").glob("06_*.json")):
        with open(path) as f:
            models = json.load(f).get("models") or []
        entries = list(models.items()) if isinstance(models, dict) else list(enumerate(models))
        for key, entry in entries:
            if not isinstance(entry, dict) or not entry.get("model_path"):
                continue
            name = entry.get("name") or entry.get("model") or (key if isinstance(key, str) else f"model{key}")
            cnns.append({"name": str(name), "model_path": str(_resolve_model_path(entry["model_path"], run_dir)),
                         "source": path.stem, "epochs": entry.get("epochs_run", entry.get("epochs")),
                         "train_seconds": entry.get("train_seconds"), "recorded": entry})
    seen, unique = set(), []
    for c in cnns:
        key = str(Path(c["model_path"]).resolve())
        if key not in seen:
            seen.add(key)
            unique.append(c)
    names = [c["name"] for c in unique]
    for c in unique:  # two entries with one name get their source appended
        if names.count(c["name"]) > 1:
            c["name"] = f"{c['name']} ({c['source']})"
    return unique


def check_same_data(recorded: dict, ds) -> None:
    """Raise ``ValueError`` unless the data recorded by the training notebook has the splits of ``ds``."""
    if not recorded:
        return
    mismatch = []
    if recorded.get("counts") and dict(recorded["counts"]) != ds.counts():
        mismatch.append(f"split sizes {recorded['counts']} vs {ds.counts()}")
    if recorded.get("seed") is not None and ds.seed is not None and recorded["seed"] != ds.seed:
        mismatch.append(f"seed {recorded['seed']} vs {ds.seed}")
    if recorded.get("class_names") and len(recorded["class_names"]) != ds.num_classes:
        mismatch.append(f"{len(recorded['class_names'])} vs {ds.num_classes} classes")
    if recorded.get("source_sha256") and ds.source_sha256 and recorded["source_sha256"] != ds.source_sha256:
        mismatch.append("data checksum")
    if mismatch:
        raise ValueError(
            "The CNN was trained on other splits than the baselines would use (" + "; ".join(mismatch) + "). "
            "Give this notebook the same DATA, DATA_SUBSET, VAL_FRACTION and SEED as 02_train."
        )


def evaluate_cnns(cnns: list[dict], ds, *, n_boot: int = 2000, seed: int = 0, progress=print) -> list[dict]:
    """Load each CNN and score it on the validation and test splits of ``ds``.

    Returns:
        The dicts of ``cnns`` with ``val_acc``, ``test_acc``, ``test_acc_ci``,
        ``ci_level``, ``predict_seconds`` (test split), ``train_images_used``
        and the arrays ``val_pred`` and ``test_pred`` added.
    """
    from cifarkit import backend

    keras = backend.keras()  # chooses the backend before Keras is first imported
    import cifarkit.models  # noqa: F401  (registers the custom layers)
    from cifarkit.stats import accuracy_ci
    from cifarkit.train import predict_logits

    say = progress or (lambda *a: None)
    out = []
    for c in cnns:
        path = Path(c["model_path"])
        if not path.is_file():
            raise FileNotFoundError(f"The model of {c['name']!r} ({c['source']}) is missing: {path}. Run {c['source']} again.")
        model = keras.saving.load_model(str(path))
        val_pred = predict_logits(model, ds.x_val).argmax(axis=1) if len(ds.y_val) else None
        t0 = time.perf_counter()
        test_pred = predict_logits(model, ds.x_test).argmax(axis=1)
        predict_s = time.perf_counter() - t0
        ci = accuracy_ci(ds.y_test, test_pred, n_boot=n_boot, seed=seed)
        res = dict(c, val_acc=_accuracy(ds.y_val, val_pred) if val_pred is not None else c["recorded"].get("val_acc"),
                   test_acc=ci["accuracy"], test_acc_ci=[ci["ci_low"], ci["ci_high"]], ci_level=ci["level"],
                   predict_seconds=round(predict_s, 6), train_images_used=int(len(ds.y_train)),
                   val_pred=val_pred, test_pred=test_pred)
        say(f"{res['name']}: val {res['val_acc']:.3f}, test {res['test_acc']:.3f}; predict {predict_s:.1f} s")
        out.append(res)
    return out


def best_by_validation(cnns: list[dict]) -> dict:
    """The CNN with the highest validation accuracy (the first one on ties or without validation data)."""
    if not cnns:
        raise ValueError("No CNN to compare with. Run 02_train first.")
    scored = [c for c in cnns if c.get("val_acc") is not None and not math.isnan(c["val_acc"])]
    return max(scored, key=lambda c: c["val_acc"]) if scored else cnns[0]


def compare_with_cnn(baselines: list[dict], cnn: dict, y_test) -> dict:
    """McNemar's test of every baseline against ``cnn`` on the test split.

    Returns:
        ``{baseline name: {"b", "c", "statistic", "p_value", "method", "p_text"}}``
        where ``b`` counts test images the CNN gets right and the baseline wrong,
        ``c`` the reverse.
    """
    from cifarkit.stats import format_p, mcnemar

    out = {}
    for r in baselines:
        m = mcnemar(y_test, cnn["test_pred"], r["test_pred"])
        m["p_text"] = format_p(m["p_value"])
        out[r["name"]] = m
    return out


def cnn_beats_all(baselines: list[dict], cnn: dict, tests: dict, alpha: float = 0.001) -> bool:
    """True when ``cnn``'s test accuracy is above every baseline's and McNemar's p is below ``alpha`` for each."""
    return all(cnn["test_acc"] > r["test_acc"] and tests[r["name"]]["p_value"] < alpha for r in baselines)


def _epochs(n) -> str:
    return f"{n} epoch" + ("" if n == 1 else "s")


def comparison_frame(baselines: list[dict], cnns: list[dict], tests: dict, best_cnn: str | None = None):
    """One row per model (CNNs first, then baselines by test accuracy), numeric columns.

    Columns: ``method``, ``kind`` ("CNN" or "baseline"), ``features``,
    ``train_images_used``, ``val_acc``, ``test_acc``, ``ci_low``, ``ci_high``,
    ``train_seconds``, ``predict_seconds``, ``mcnemar_b``, ``mcnemar_c``,
    ``p_value``, ``p_text``, ``best_cnn`` (bool).
    """
    import pandas as pd

    rows = []
    for c in cnns:
        epochs = f", {_epochs(c['epochs'])}" if c.get("epochs") is not None else ""
        rows.append({"method": c["name"], "kind": "CNN", "features": f"raw pixels (learned features{epochs})",
                     "train_images_used": c.get("train_images_used"), "val_acc": c.get("val_acc"),
                     "test_acc": c["test_acc"], "ci_low": c["test_acc_ci"][0], "ci_high": c["test_acc_ci"][1],
                     "train_seconds": c.get("train_seconds"), "predict_seconds": c.get("predict_seconds"),
                     "mcnemar_b": None, "mcnemar_c": None, "p_value": None, "p_text": "",
                     "best_cnn": c["name"] == best_cnn})
    for r in sorted(baselines, key=lambda r: -r["test_acc"]):
        t = tests.get(r["name"], {})
        rows.append({"method": r["title"], "kind": "baseline", "features": r["features"],
                     "train_images_used": r["train_images_used"], "val_acc": r["val_acc"],
                     "test_acc": r["test_acc"], "ci_low": r["test_acc_ci"][0], "ci_high": r["test_acc_ci"][1],
                     "train_seconds": r["train_seconds"], "predict_seconds": r["predict_seconds"],
                     "mcnemar_b": t.get("b"), "mcnemar_c": t.get("c"), "p_value": t.get("p_value"),
                     "p_text": t.get("p_text", ""), "best_cnn": False})
    return pd.DataFrame(rows)


def format_comparison(frame, train_available: int | None = None):
    """The comparison table as a reader sees it: percentages with their CI, seconds, McNemar's b, c and p."""
    import pandas as pd

    def pct(v):
        return "" if v is None or pd.isna(v) else f"{v:.1%}"

    def secs(v):
        return "" if v is None or pd.isna(v) else f"{v:.1f}"

    def integer(v):
        return "" if v is None or pd.isna(v) else f"{int(v):,}"

    def count(v):
        if v is None or pd.isna(v):
            return ""
        text = f"{int(v):,}"
        return f"{text} of {train_available:,}" if train_available and int(v) < train_available else text

    return pd.DataFrame({
        "method": [m + (" (best CNN)" if b else "") for m, b in zip(frame["method"], frame["best_cnn"])],
        "features": frame["features"],
        "train images used": [count(v) for v in frame["train_images_used"]],
        "val acc": [pct(v) for v in frame["val_acc"]],
        "test acc (95% CI)": [f"{a:.1%} [{lo:.1%}, {hi:.1%}]" for a, lo, hi in zip(frame["test_acc"], frame["ci_low"], frame["ci_high"])],
        "train s": [secs(v) for v in frame["train_seconds"]],
        "predict s": [secs(v) for v in frame["predict_seconds"]],
        "McNemar b (CNN right only)": [integer(v) for v in frame["mcnemar_b"]],
        "McNemar c (baseline right only)": [integer(v) for v in frame["mcnemar_c"]],
        "p": frame["p_text"],
    })


def conclusion(baselines: list[dict], cnn: dict, tests: dict, *, num_classes: int, test_images: int, alpha: float = 0.001) -> str:
    """A short paragraph (markdown) with the verdict, computed from the numbers."""
    best = max(baselines, key=lambda r: r["test_acc"])
    epochs = f" after {_epochs(cnn['epochs'])}" if cnn.get("epochs") is not None else ""
    gap = cnn["test_acc"] - best["test_acc"]
    lines = [
        f"On the {test_images:,} test images ({num_classes} classes, chance {1 / num_classes:.1%}), the best baseline is "
        f"**{best['title']}** ({best['features']}; {best['train_images_used']:,} training images) at "
        f"**{best['test_acc']:.1%}** [{best['test_acc_ci'][0]:.1%}, {best['test_acc_ci'][1]:.1%}], and the CNN "
        f"`{cnn['name']}`{epochs} reaches **{cnn['test_acc']:.1%}** [{cnn['test_acc_ci'][0]:.1%}, {cnn['test_acc_ci'][1]:.1%}]: "
        f"{abs(gap) * 100:.1f} percentage points {'above' if gap >= 0 else 'below'} it."
    ]
    beaten = [r for r in baselines if cnn["test_acc"] > r["test_acc"] and tests[r["name"]]["p_value"] < alpha]
    not_beaten = [r for r in baselines if r not in beaten]
    if not not_beaten:
        lines.append(f"The CNN beats every baseline, each with McNemar's test at p < {alpha:g}: on this data, "
                     "learned convolutional features do better than the classic pipelines.")
    else:
        parts = []
        for r in not_beaten:
            t = tests[r["name"]]
            better = "above" if r["test_acc"] > cnn["test_acc"] else ("level with" if r["test_acc"] == cnn["test_acc"] else "below")
            parts.append(f"{r['title']} ({r['test_acc']:.1%}, {better} the CNN; b = {t['b']}, c = {t['c']}, {t['p_text']})")
        lines.append(f"The CNN does **not** beat every baseline at p < {alpha:g}: " + "; ".join(parts) + ". "
                     "A short training run, a small data set or an easy task can leave the classic pipelines level "
                     "with the CNN; more epochs or data decide it.")
    return " ".join(lines)
