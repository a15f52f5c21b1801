"""The baseline methods: a registry of scikit-learn pipelines, each choosing its hyperparameters on validation."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from cifarkit.analysis.baselines.features import (
    PCAFeatures,
    hog_cell_size,
    hog_colour_features,
    raw_pixels,
)
from cifarkit.data.splits import stratified_subsample

DEFAULT_METHODS = "logreg,knn,random_forest,hog_svm"


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

    def fit(self, x_train, y_train, x_val, y_val) -> Baseline:
        raise NotImplementedError

    def predict(self, x) -> np.ndarray:
        raise NotImplementedError


class LogRegBaseline(Baseline):
    """Multinomial logistic regression on standardized, PCA-whitened pixels; C chosen on validation."""

    name = "logreg"
    title = "Logistic regression"

    def __init__(
        self,
        seed: int = 0,
        pca_components: int = 200,
        pca_fit_images: int = 10000,
        cs=(0.01, 0.1, 1.0),
        max_iter: int = 300,
    ):
        super().__init__(seed)
        self.pca_components, self.pca_fit_images = int(pca_components), int(pca_fit_images)
        self.cs, self.max_iter = tuple(float(c) for c in cs), int(max_iter)

    def fit(self, x_train, y_train, x_val, y_val):
        import warnings

        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import LogisticRegression

        self.pca_ = PCAFeatures(self.pca_components, whiten=True, fit_images=self.pca_fit_images, seed=self.seed).fit(
            x_train
        )
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
        best = (
            _choose({c: self.val_scores[f"C={c:g}"] for c in cands}, prefer=sorted(cands))
            if f_val is not None
            else cands[0]
        )
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

    def __init__(
        self, seed: int = 0, pca_components: int = 40, pca_fit_images: int = 10000, ks=(1, 3, 5, 7, 10, 15, 20, 30)
    ):
        super().__init__(seed)
        self.pca_components, self.pca_fit_images = int(pca_components), int(pca_fit_images)
        self.ks = tuple(sorted({int(k) for k in ks}))
        if not self.ks or self.ks[0] < 1:
            raise ValueError(f"ks must be positive ints; got {ks!r}.")

    def fit(self, x_train, y_train, x_val, y_val):
        from sklearn.neighbors import NearestNeighbors

        self.pca_ = PCAFeatures(self.pca_components, whiten=False, fit_images=self.pca_fit_images, seed=self.seed).fit(
            x_train
        )
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

    def __init__(
        self, seed: int = 0, n_estimators: int = 100, max_features="sqrt", min_samples_leaf: int = 1, n_jobs: int = 2
    ):
        super().__init__(seed)
        self.n_estimators, self.max_features = int(n_estimators), max_features
        self.min_samples_leaf, self.n_jobs = int(min_samples_leaf), n_jobs

    def fit(self, x_train, y_train, x_val, y_val):
        from sklearn.ensemble import RandomForestClassifier

        self.features = "raw pixels"
        self.model_ = RandomForestClassifier(
            n_estimators=self.n_estimators,
            max_features=self.max_features,
            min_samples_leaf=self.min_samples_leaf,
            n_jobs=self.n_jobs,
            random_state=self.seed,
        ).fit(raw_pixels(x_train), y_train)
        self.selected = {
            "n_estimators": self.n_estimators,
            "max_features": self.max_features,
            "min_samples_leaf": self.min_samples_leaf,
        }
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

    def __init__(
        self,
        seed: int = 0,
        solver: str = "sgd",
        alphas=(1e-6, 1e-5, 1e-4, 1e-3),
        epochs: int = 5,
        cs=(1e-4, 1e-3, 1e-2),
        orientations: int = 9,
        cell: int | None = None,
        bins: int = 16,
        n_jobs: int = 2,
    ):
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
            return SGDClassifier(
                loss="hinge",
                alpha=value,
                max_iter=self.epochs,
                tol=None,
                average=True,
                random_state=self.seed,
                n_jobs=self.n_jobs,
            )
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
        self.features = (
            f"HOG ({self.orientations} orientations, {self.cell_} px cells, 2x2 blocks) "
            f"+ colour histograms ({self.bins} bins per channel), standardized"
        )
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
        best = (
            _choose({v: self.val_scores[f"{key}={v:g}"] for v in cands}, prefer=prefer)
            if f_val is not None
            else cands[0]
        )
        self.model_ = models[best]
        self.val_pred = preds.get(best)
        self.selected = {
            key: best,
            "solver": self.solver,
            "hog_cell": self.cell_,
            "feature_dims": int(f_train.shape[1]),
        }
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
        BaselineMethod(
            "logreg", LogRegBaseline.title, "multinomial logistic regression on PCA-whitened pixels", LogRegBaseline
        ),
        BaselineMethod("knn", KNNBaseline.title, "Euclidean kNN on PCA features of the pixels", KNNBaseline),
        BaselineMethod(
            "random_forest", RandomForestBaseline.title, "random forest on raw pixels", RandomForestBaseline
        ),
        BaselineMethod(
            "hog_svm", HogSvmBaseline.title, "linear SVM on HOG and colour-histogram features", HogSvmBaseline
        ),
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


def run_baselines(
    ds,
    methods=DEFAULT_METHODS,
    *,
    max_train=None,
    seed: int = 0,
    options: dict | None = None,
    n_boot: int = 2000,
    progress=print,
) -> list[dict]:
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
    from cifarkit.analysis.stats import accuracy_ci

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
        val_pred = (
            model.val_pred if model.val_pred is not None else (model.predict(ds.x_val) if len(ds.y_val) else None)
        )
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
        say(
            f"{name}: {val_text}test {res['test_acc']:.3f}; train {train_s:.1f} s, predict {predict_s:.1f} s; {res['selected']}"
        )
        results.append(res)
    return results


def public_result(result: dict) -> dict:
    """A result without its prediction arrays (for JSON)."""
    return {k: v for k, v in result.items() if not isinstance(v, np.ndarray) and k not in ("val_pred", "test_pred")}
