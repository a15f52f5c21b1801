"""Cross-validation for small data sets: stratified (and grouped) folds, out-of-fold predictions, pooled metrics.

Notebook ``07_cross_validation`` strings these functions together.

**Why.** With a few hundred or a few thousand images the test split holds a few dozen to a few hundred
images, and one test accuracy is noisy: the 95% interval of an accuracy measured on ``n`` images is about
``0.98 / sqrt(n + 3.84)`` wide on each side at the worst case, an accuracy of 50% (Wilson's interval,
:func:`wilson_half_width`): +-9.6 points on 100 test images, +-5.0 points on 381, +-1.0 point on 10,000.
Cross-validation scores every labelled image once, by a model that did not train on it, so the pooled
out-of-fold estimate rests on all the images instead of a tenth of them.

**Which images are folded.** All labelled images of the study's data: the training, validation and test
splits that the other notebooks use are pooled (with ``DATA_SUBSET`` and the labels and groups they get
everywhere). They are cut into ``k`` folds, stratified by class (scikit-learn's ``StratifiedKFold``) and,
when the data has groups (``GROUP_BY`` or a labels file with a group column), with every group in one fold
(``StratifiedGroupKFold``), seeded by ``SEED``. Fold ``i`` trains on the other ``k - 1`` folds less a
validation carve (``VAL_FRACTION`` of them, stratified, whole groups when grouped: the same carve as the
study's own validation split), and its model scores the held-out fold once. The validation carve is used
for the per-epoch monitoring and to choose the fold's operating point (:func:`operating_points_cv`); the
held-out fold is used for nothing but scoring. Nothing is chosen on the out-of-fold predictions: they
estimate how well the study's training procedure (model, recipe, epochs, as configured) does on images
(groups) it has not seen. The test split of the other notebooks is pooled here too, which is no selection
on it: the fold models are separate models, and nothing about 03's model is decided from them.

**Auto rule** (``CV_FOLDS = 0``, :func:`decide`). Cross-validation runs when the study's single test split
is too small to measure an accuracy to within +-5 percentage points at 95% (the worst case, an accuracy of
50%): fewer than :func:`auto_min_test_images` = 381 test images, which with the loader's default test share
of 10% is a data set of fewer than about 3,810 images. Then it runs with :data:`DEFAULT_FOLDS` = 5 folds
(each model trains on about 80% of the images, like the single split's training plus validation share), fewer
when some class has too few groups (images) for 5 (:func:`plan_folds`). Above that size a single test split
is precise enough, and ``k`` more training runs buy little: the notebook says so in one line and records it.
``CV_FOLDS = 1`` turns cross-validation off, ``k >= 2`` asks for ``k`` folds (refused, with the largest
``k`` the data allows, when some class has images from fewer than ``k`` groups).

**Pooled metrics.** Accuracy with a percentile-bootstrap interval (:func:`cifarkit.analysis.stats.accuracy_ci`),
balanced accuracy (the mean recall over classes) with a bootstrap interval (:func:`balanced_accuracy_ci`), and
ROC AUC (one class against the rest; the positive class's AUC with two classes) with the bootstrap intervals of
:func:`cifarkit.analysis.decisions.curve_summary`, over the out-of-fold predictions of all images. A pooled AUC
ranks the scores of ``k`` different models together: when the fold models' scores are calibrated differently it
can sit below the mean of the per-fold AUCs, so both are reported.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field, replace

import numpy as np

from cifarkit.analysis.stats import mean_of_present
from cifarkit.data import split_record

#: The widest acceptable half-width of a single test split's 95% interval for an accuracy (5 points).
AUTO_HALF_WIDTH = 0.05
#: Folds the auto rule asks for.
DEFAULT_FOLDS = 5
#: The loader's default test share when the data has no test split of its own (for the report's sentence).
DEFAULT_TEST_SHARE = 0.1


# --------------------------------------------------------------------------- the auto rule
def _z(level: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(0.5 + level / 2))


def wilson_half_width(n: int, p: float = 0.5, level: float = 0.95) -> float:
    """Half the width of the Wilson score interval of a proportion ``p`` measured on ``n`` examples.

    ``z / (1 + z^2/n) * sqrt(p (1 - p) / n + z^2 / (4 n^2))``; at ``p = 0.5`` it is ``0.5 z / sqrt(n + z^2)``,
    the widest over ``p``. ``inf`` for ``n = 0``.
    """
    if n <= 0:
        return math.inf
    z = _z(level)
    return z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))


def auto_min_test_images(half_width: float = AUTO_HALF_WIDTH, level: float = 0.95) -> int:
    """The fewest test images whose worst-case (50%) 95% Wilson interval is at most ``half_width`` on each side.

    381 for the default 5 points: ``0.5 * 1.96 / sqrt(381 + 3.84) = 0.04996``, and 380 images give 0.05002.
    """
    z = _z(level)
    n = max(1, math.ceil((0.5 * z / half_width) ** 2 - z * z) - 2)
    while wilson_half_width(n, 0.5, level) > half_width:
        n += 1
    return n


@dataclass
class Decision:
    """Whether cross-validation runs and why (``k``: the folds asked for; :func:`plan_folds` may lower it)."""

    run: bool
    k: int
    requested: int
    auto: bool
    reason: str
    n_images: int
    n_test: int
    min_test_images: int
    test_half_width: float | None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "ran": self.run,
            "k": self.k,
            "requested": self.requested,
            "auto": self.auto,
            "reason": self.reason,
            "n_images": self.n_images,
            "n_test_single_split": self.n_test,
            "auto_min_test_images": self.min_test_images,
            "auto_half_width": AUTO_HALF_WIDTH,
            "single_split_half_width": self.test_half_width,
            "notes": list(self.notes),
        }


def decide(cv_folds, n_test: int, n_images: int) -> Decision:
    """Apply ``CV_FOLDS``: 0 the auto rule (see the module docstring), 1 off, ``k >= 2`` that many folds.

    Args:
        cv_folds: the notebook's ``CV_FOLDS``.
        n_test: images in the study's single test split.
        n_images: labelled images in all splits (what would be folded).

    Raises:
        ValueError: ``cv_folds`` is not a whole number >= 0, or there are fewer images than folds.
    """
    if isinstance(cv_folds, bool) or not isinstance(cv_folds, int) or cv_folds < 0:
        raise ValueError(
            f"CV_FOLDS must be a whole number: 0 (auto), 1 (off) or the number of folds (2 or more); "
            f"received {cv_folds!r}."
        )
    threshold = auto_min_test_images()
    half = wilson_half_width(n_test) if n_test else None
    width = f"+-{100 * half:.1f} points" if half is not None else "undefined (no test images)"
    common = dict(n_images=int(n_images), n_test=int(n_test), min_test_images=threshold, test_half_width=half)
    if cv_folds == 1:
        return Decision(False, 1, 1, False, "CV_FOLDS = 1 turns cross-validation off", **common)
    if cv_folds >= 2:
        if cv_folds > n_images:
            raise ValueError(
                f"CV_FOLDS = {cv_folds} asks for more folds than there are images ({n_images}). "
                "Give fewer folds, or 0 to let the notebook choose."
            )
        return Decision(True, cv_folds, cv_folds, False, f"CV_FOLDS = {cv_folds} asks for {cv_folds} folds", **common)
    if n_test >= threshold:
        reason = (
            f"the single test split has {n_test:,} images, so its 95% interval for an accuracy is at most {width} "
            f"wide (the worst case, 50%), within the +-{100 * AUTO_HALF_WIDTH:.0f} points the auto rule asks for "
            f"(it runs cross-validation below {threshold:,} test images)"
        )
        return Decision(False, 0, 0, True, reason, **common)
    reason = (
        f"the single test split has {n_test:,} images, so its 95% interval for an accuracy is up to {width} wide "
        f"(the worst case, 50%), more than the +-{100 * AUTO_HALF_WIDTH:.0f} points that {threshold:,} test images "
        f"give; {DEFAULT_FOLDS}-fold cross-validation scores all {n_images:,} images instead"
    )
    return Decision(True, min(DEFAULT_FOLDS, max(n_images, 2)), 0, True, reason, **common)


# --------------------------------------------------------------------------- the images and the folds
@dataclass
class Pooled:
    """Every labelled image of a :class:`cifarkit.data.Dataset`, its splits concatenated (train, val, test)."""

    x: np.ndarray
    y: np.ndarray
    groups: np.ndarray | None  # group id per image, None for ungrouped data
    origin: np.ndarray  # the split each image came from: "train", "val" or "test"
    index: np.ndarray  # its index in that split

    @property
    def n(self) -> int:
        return int(len(self.y))


def pool(ds) -> Pooled:
    """The images of all three splits of ``ds`` together (what cross-validation folds)."""
    splits = ("train", "val", "test")
    xs, ys = zip(*(ds.split(s) for s in splits))
    groups = None
    if ds.groups is not None:
        groups = np.concatenate([np.asarray(ds.groups.get(s, []), dtype=str).reshape(-1) for s in splits])
    origin = np.concatenate([np.full(len(y), s) for s, y in zip(splits, ys)])
    index = np.concatenate([np.arange(len(y)) for y in ys])
    return Pooled(np.concatenate(xs), np.concatenate(ys).astype(np.int64), groups, origin, index)


def _units_per_class(y, groups, num_classes: int) -> np.ndarray:
    """Distinct groups holding each class (images per class when ungrouped)."""
    from cifarkit.data.group_splits import groups_per_class

    if groups is None:
        return np.bincount(np.asarray(y, dtype=np.int64), minlength=num_classes)
    return groups_per_class(y, groups, num_classes)


def _carve_needs(grouped: bool, val_fraction: float) -> int:
    """Groups (images) of a class a fold's training part needs so that the validation carve gets one."""
    from cifarkit.data.splits import min_class_size

    if val_fraction <= 0:
        return 1
    return 2 if grouped else min_class_size([val_fraction])


def max_folds(y, groups, num_classes: int, val_fraction: float, upper: int = 100) -> int:
    """The most folds (up to ``upper``) every class allows: each fold must hold out a group (image) of every
    class, and each fold's training part must keep enough of them for its validation carve. 0 or 1: none."""
    units = _units_per_class(y, groups, num_classes)
    units = units[units > 0] if len(units) else units
    if not len(units):
        return 0
    need = _carve_needs(groups is not None, val_fraction)
    best = 0
    for k in range(2, int(min(upper, units.min())) + 1):
        if all(u - math.ceil(u / k) >= need for u in units):
            best = k
    return best


def make_folds(y, groups, k: int, seed: int) -> np.ndarray:
    """The fold (0..k-1) of every image: ``StratifiedKFold`` (``StratifiedGroupKFold`` with groups), shuffled, seeded."""
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    y = np.asarray(y)
    fold_of = np.full(len(y), -1, dtype=np.int64)
    dummy = np.zeros((len(y), 1))
    if groups is None:
        splits = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(dummy, y)
    else:
        splits = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed).split(dummy, y, np.asarray(groups))
    for i, (_, held) in enumerate(splits):
        fold_of[held] = i
    return fold_of


def fold_problems(fold_of, y, groups, class_names, val_fraction: float) -> list[str]:
    """What keeps these folds from working (empty when none): a fold that holds out no image of some class,
    or a fold whose training part cannot give its validation carve an image of every class."""
    from cifarkit.data.errors import DataError
    from cifarkit.data.group_splits import check_group_counts
    from cifarkit.data.splits import check_class_sizes

    y = np.asarray(y)
    problems = []
    for f in range(int(fold_of.max()) + 1):
        held, rest = fold_of == f, fold_of != f
        lacking = [class_names[c] for c in range(len(class_names)) if np.any(y == c) and not np.any(y[held] == c)]
        if lacking:
            problems.append(f"fold {f + 1} holds out no image of {', '.join(repr(c) for c in lacking)}")
            continue
        if val_fraction > 0:
            try:
                if groups is None:
                    check_class_sizes(y[rest], {"val_fraction": val_fraction}, class_names, f"fold {f + 1}")
                else:
                    check_group_counts(
                        y[rest], np.asarray(groups)[rest], {"val_fraction": val_fraction}, class_names, f"fold {f + 1}"
                    )
            except DataError:
                problems.append(f"the training part of fold {f + 1} is too small for its validation carve")
    return problems


def plan_folds(decision: Decision, pooled: Pooled, class_names, val_fraction: float, seed: int) -> np.ndarray:
    """The folds cross-validation runs with: ``decision.k`` of them, or with the auto rule as many as the data
    allows up to that (the reduction is added to ``decision.notes`` and ``decision.k`` updated).

    Raises:
        ValueError: one line saying which class has too few groups (images) and what to do: fewer folds, more
            groups, or ``CV_FOLDS = 1``.
    """
    names = [str(c) for c in class_names]
    unit = "groups" if pooled.groups is not None else "images"
    units = _units_per_class(pooled.y, pooled.groups, len(names))
    present = [c for c in range(len(names)) if units[c] > 0]
    scarce = min(present, key=lambda c: units[c])
    feasible = max_folds(pooled.y, pooled.groups, len(names), val_fraction, upper=max(decision.k, 2))
    scarce_text = f"class {names[scarce]!r} has images from only {units[scarce]} {unit}"
    if unit == "images":
        scarce_text = f"class {names[scarce]!r} has only {units[scarce]} images"
    carve = (
        f" and keep enough for each fold's validation carve (VAL_FRACTION = {val_fraction:g})" if val_fraction else ""
    )
    if feasible < 2:
        raise ValueError(
            f"Cross-validation needs every class in at least 2 folds{carve}, with whole {unit} per fold, but "
            f"{scarce_text}. Add images of that class (from more {unit}), or set CV_FOLDS = 1 to turn "
            "cross-validation off."
        )
    if decision.k > feasible:
        if not decision.auto:
            raise ValueError(
                f"CV_FOLDS = {decision.k} needs every class in each of {decision.k} folds{carve}, with whole {unit} "
                f"per fold, but {scarce_text}: at most {feasible} folds are possible. Set CV_FOLDS to {feasible} "
                "or fewer, or 0 to let the notebook choose."
            )
        decision.notes.append(f"{decision.k} folds reduced to {feasible} because {scarce_text}")
        decision.k = feasible
    last: list[str] = []
    for k in range(decision.k, 1, -1):
        fold_of = make_folds(pooled.y, pooled.groups, k, seed)
        problems = fold_problems(fold_of, pooled.y, pooled.groups, names, val_fraction)
        if not problems:
            if k < decision.k:
                decision.notes.append(
                    f"{decision.k} folds reduced to {k}: with whole {unit} per fold, {problems_text(last)}"
                )
                decision.k = k
            return fold_of
        if not decision.auto:
            raise ValueError(
                f"CV_FOLDS = {k} cannot be met with whole {unit} per fold: {problems_text(problems)}. "
                f"Set CV_FOLDS lower (or 0 to let the notebook choose), or add {unit}."
            )
        last = problems
    raise ValueError(
        f"No fold count from {decision.k} down to 2 works with whole {unit} per fold ({problems_text(last)}). "
        f"Add images from more {unit}, or set CV_FOLDS = 1 to turn cross-validation off."
    )


def problems_text(problems: list[str]) -> str:
    return "; ".join(problems[:3]) + (f" and {len(problems) - 3} more" if len(problems) > 3 else "")


def fold_indices(pooled: Pooled, fold_of, fold: int, val_fraction: float, seed: int):
    """``(train, val, held_out)`` pooled indices of one fold: the validation carve comes out of the other
    folds as the study's own validation split comes out of its training data (stratified; whole groups when
    grouped; the same seed)."""
    from cifarkit.data.group_splits import stratified_group_split
    from cifarkit.data.splits import stratified_split

    held = np.flatnonzero(fold_of == fold)
    rest = np.flatnonzero(fold_of != fold)
    if val_fraction <= 0:
        return rest, np.zeros(0, dtype=np.int64), held
    if pooled.groups is None:
        keep, val = stratified_split(pooled.y[rest], [val_fraction], seed)
    else:
        keep, val = stratified_group_split(pooled.y[rest], pooled.groups[rest], [val_fraction], seed)
    return rest[keep], rest[val], held


def fold_dataset(ds, pooled: Pooled, train_idx, val_idx, test_idx, fold: int, k: int):
    """A :class:`cifarkit.data.Dataset` for one fold: the fold's training, validation and held-out images."""
    groups = None
    if pooled.groups is not None:
        groups = {"train": pooled.groups[train_idx], "val": pooled.groups[val_idx], "test": pooled.groups[test_idx]}
    return replace(
        ds,
        x_train=pooled.x[train_idx],
        y_train=pooled.y[train_idx],
        x_val=pooled.x[val_idx],
        y_val=pooled.y[val_idx],
        x_test=pooled.x[test_idx],
        y_test=pooled.y[test_idx],
        groups=groups,
        split_origin=split_record.fold(fold + 1, k),
    )


def folds_tag(fold_of, k: int, seed: int) -> str:
    """A short name for one assignment of images to folds (a run's model folders are kept per assignment)."""
    digest = hashlib.sha256(np.asarray(fold_of, dtype=np.int64).tobytes() + f"{k}:{seed}".encode()).hexdigest()
    return f"{k}fold_{digest[:8]}"


def composition_table(pooled: Pooled, fold_of, class_names):
    """Held-out images per class in each fold (and groups, when grouped), as a DataFrame."""
    import pandas as pd

    k = int(fold_of.max()) + 1
    rows = {}
    for f in range(k):
        held = fold_of == f
        row = {str(name): int(np.sum(pooled.y[held] == c)) for c, name in enumerate(class_names)}
        row["images"] = int(held.sum())
        if pooled.groups is not None:
            row["groups"] = int(len(np.unique(pooled.groups[held])))
        rows[f"fold {f + 1}"] = row
    frame = pd.DataFrame(rows).T
    frame.index.name = "held out"
    return frame


# --------------------------------------------------------------------------- scoring
def _check(y, probs):
    y = np.asarray(y, dtype=np.int64).reshape(-1)
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or len(p) != len(y) or not len(y):
        raise ValueError(f"Need (N, classes) probabilities for N > 0 labels; got {p.shape} for {len(y)} labels.")
    return y, p


def balanced_accuracy(y_true, y_pred, num_classes: int | None = None) -> float:
    """The mean recall over the classes present in ``y_true`` (scikit-learn's ``balanced_accuracy_score``)."""
    y, pred = np.asarray(y_true).reshape(-1), np.asarray(y_pred).reshape(-1)
    classes = np.unique(y)
    return float(np.mean([np.mean(pred[y == c] == c) for c in classes]))


def roc_auc(y_true, probs, positive: int | None = None) -> float | None:
    """ROC AUC of ``positive``'s probability against the rest (two classes: the second class by default), or the
    macro average over classes, each against the rest, that have positives and negatives (``None`` when none has)."""
    from sklearn.metrics import roc_auc_score

    y, p = _check(y_true, probs)
    if positive is None and p.shape[1] == 2:
        positive = 1
    classes = [positive] if positive is not None else range(p.shape[1])
    aucs = [float(roc_auc_score(y == c, p[:, c])) for c in classes if 0 < np.sum(y == c) < len(y)]
    return float(np.mean(aucs)) if aucs else None


def score_fold(y_true, probs, positive: int | None = None) -> dict:
    """One fold's held-out accuracy, balanced accuracy and ROC AUC (:func:`roc_auc`)."""
    y, p = _check(y_true, probs)
    pred = p.argmax(1)
    return {
        "n": int(len(y)),
        "accuracy": float(np.mean(pred == y)),
        "balanced_accuracy": balanced_accuracy(y, pred),
        "roc_auc": roc_auc(y, p, positive),
    }


def spread(values) -> dict:
    """``{"mean", "sd", "min", "max", "n"}`` of the finite values (sd with n - 1; ``None`` below two values)."""
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=np.float64)
    if not len(v):
        return {"mean": None, "sd": None, "min": None, "max": None, "n": 0}
    return {
        "mean": float(v.mean()),
        "sd": float(v.std(ddof=1)) if len(v) > 1 else None,
        "min": float(v.min()),
        "max": float(v.max()),
        "n": int(len(v)),
    }


def balanced_accuracy_ci(
    y_true, y_pred, num_classes: int, *, n_boot: int = 2000, level: float = 0.95, seed: int = 0
) -> list[float] | None:
    """Percentile-bootstrap interval of the balanced accuracy over the examples (each resample's balanced accuracy
    is the mean recall over the classes it holds)."""
    y = np.asarray(y_true, dtype=np.int64).reshape(-1)
    correct = (np.asarray(y_pred).reshape(-1) == y).astype(np.float64)
    n = len(y)
    onehot = np.eye(num_classes)[y]
    rng = np.random.default_rng(seed)
    out = np.empty(n_boot)
    chunk = max(1, 2_000_000 // max(n, 1))
    for start in range(0, n_boot, chunk):
        stop = min(n_boot, start + chunk)
        b = stop - start
        idx = rng.integers(0, n, size=(b, n))
        w = np.bincount((idx + n * np.arange(b)[:, None]).ravel(), minlength=b * n).reshape(b, n).astype(float)
        den = w @ onehot
        num = w @ (onehot * correct[:, None])
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start:stop] = np.nanmean(np.where(den > 0, num / den, np.nan), axis=1)
    alpha = (1 - level) / 2
    return [float(np.quantile(out, alpha)), float(np.quantile(out, 1 - alpha))]


def pooled_metrics(y_true, probs, class_names, *, positive: int | None = None, n_boot: int = 2000, seed: int = 0):
    """Accuracy, balanced accuracy and ROC AUC of the pooled out-of-fold predictions, with 95% bootstrap intervals.

    Returns:
        ``(record, roc)``: ``record`` is JSON-ready (``n``, ``accuracy``, ``accuracy_ci``, ``balanced_accuracy``,
        ``balanced_accuracy_ci``, ``roc_auc`` and ``roc_auc_ci`` (the positive class's with two classes or a named
        one, else the macro average), ``roc_auc_of``, ``auc`` (the whole record of
        :func:`cifarkit.analysis.decisions.curve_summary`), ``n_boot``, ``interval_method``); ``roc`` is
        ``curve_summary``'s answer with the curves, for the figure.
    """
    from cifarkit.analysis import decisions, stats

    y, p = _check(y_true, probs)
    names = [str(c) for c in class_names]
    pred = p.argmax(1)
    acc = stats.accuracy_ci(y, pred, n_boot=n_boot, seed=seed)
    roc = decisions.curve_summary(y, p, names, n_boot=n_boot, seed=seed)
    auc = roc["json"]
    if positive is None and len(names) == 2:
        positive = 1
    if positive is not None:
        value, ci, of = auc["roc_auc"][names[positive]], auc["roc_auc_ci"][names[positive]], names[positive]
    else:
        value, ci, of = auc["roc_auc_macro"], auc["roc_auc_macro_ci"], None
    record = {
        "n": int(len(y)),
        "accuracy": acc["accuracy"],
        "accuracy_ci": [acc["ci_low"], acc["ci_high"]],
        "balanced_accuracy": balanced_accuracy(y, pred),
        "balanced_accuracy_ci": balanced_accuracy_ci(y, pred, len(names), n_boot=n_boot, seed=seed),
        "roc_auc": value,
        "roc_auc_ci": ci,
        "roc_auc_of": of,
        "auc": auc,
        "n_boot": int(n_boot),
        "interval_method": "percentile bootstrap over the pooled out-of-fold predictions",
    }
    return record, roc


# --------------------------------------------------------------------------- the operating point
def operating_points_cv(
    y_true,
    probs,
    fold_of,
    val_sets,
    class_names,
    rule,
    *,
    positive_class: str = "",
    level: float = 0.95,
) -> dict:
    """The operating point chosen per fold on that fold's validation carve, pooled over the out-of-fold calls.

    For each positive class ``c`` (:func:`cifarkit.analysis.decisions.positive_classes`) and each fold, the
    threshold is :func:`~cifarkit.analysis.decisions.choose_threshold` on the fold's validation scores
    (``val_sets[f] = (y_val, probs_val)``); without a validation carve, or one lacking a positive or negative of
    ``c``, the default decision (``>= 0.5`` with two classes, the argmax with more), said in ``notes``. Each
    held-out image is called with its own fold's threshold; the calls of all folds are pooled and sensitivity,
    specificity, PPV, NPV and accuracy get Wilson score intervals
    (:func:`~cifarkit.analysis.decisions.rates_with_intervals`).

    Returns:
        JSON-ready: ``rule``, ``rule_description``, ``mode``, ``positive_class``, ``interval_method``, ``notes``,
        ``per_class`` ``{name: {"thresholds", "chosen_on", "constraint_met", "per_fold": [{fold, threshold,
        chosen_on, n_val, sensitivity, specificity, ppv, npv}], "pooled": rates_with_intervals}}``; with one positive
        class its entry is also copied to the top level, one-vs-rest adds ``macro`` (mean pooled rates).
    """
    from cifarkit.analysis import decisions

    rule = decisions.parse_rule(rule) if isinstance(rule, str) else rule
    names = [str(c) for c in class_names]
    y, p = _check(y_true, probs)
    fold_of = np.asarray(fold_of)
    indices, mode = decisions.positive_classes(names, positive_class)
    notes, per_class = [], {}
    for c in indices:
        name = names[c]
        called = np.zeros(len(y), dtype=bool)
        entry = {"thresholds": [], "chosen_on": [], "constraint_met": [], "per_fold": []}
        for f, (y_val, p_val) in enumerate(val_sets):
            held = fold_of == f
            have_val = p_val is not None and len(p_val) > 0
            y_val = np.asarray(y_val) if have_val else np.zeros(0, dtype=np.int64)
            thr, on, met = None, "default", None
            if have_val and 0 < int(np.sum(y_val == c)) < len(y_val):
                chosen = decisions.choose_threshold(y_val == c, np.asarray(p_val)[:, c], rule)
                thr, on, met = chosen["threshold"], "validation", chosen["constraint_met"]
                if not met:
                    notes.append(
                        f"Fold {f + 1}: no threshold meets {rule.text} on its validation carve for {name}: the "
                        "closest one is used."
                    )
            else:
                why = "no validation carve" if not have_val else f"a validation carve without both {name} and other"
                notes.append(f"Fold {f + 1} has {why} images, so the default decision is used for {name}.")
            if thr is None and len(names) == 2:
                thr = 0.5
            called[held] = p[held, c] >= thr if thr is not None else p[held].argmax(1) == c
            truth = y[held] == c
            r = decisions.rates(*_counts(truth, called[held]))
            entry["thresholds"].append(thr)
            entry["chosen_on"].append(on)
            entry["constraint_met"].append(met)
            entry["per_fold"].append(
                {"fold": f + 1, "threshold": thr, "chosen_on": on, "n_val": int(len(y_val)), "n": int(held.sum())}
                | {k: (None if not math.isfinite(v) else float(v)) for k, v in r.items() if k != "youden_j"}
            )
        entry["pooled"] = decisions.rates_with_intervals(*_counts(y == c, called), level)
        entry["decision"] = (
            f"probability of {name} >= the threshold chosen on each fold's validation carve"
            if any(on == "validation" for on in entry["chosen_on"])
            else (f"probability of {name} >= 0.5" if len(names) == 2 else f"{name} is the most probable class")
        )
        per_class[name] = entry
    out = {
        "rule": rule.text,
        "rule_description": rule.describe().replace("the validation split", "each fold's validation carve"),
        "mode": mode,
        "positive_class": names[indices[0]] if mode == "positive class" else None,
        "interval_method": f"{decisions.RATE_INTERVALS} ({level:.0%}) over the pooled out-of-fold calls",
        "ci_level": level,
        "n_folds": len(val_sets),
        "notes": notes,
        "per_class": per_class,
    }
    if mode == "positive class":
        out.update(per_class[names[indices[0]]])
    else:
        out["macro"] = {
            k: mean_of_present([e["pooled"][k]["value"] for e in per_class.values()])
            for k in ("sensitivity", "specificity", "ppv", "npv", "accuracy")
        }
    return out


def _counts(truth, called) -> tuple[int, int, int, int]:
    truth, called = np.asarray(truth, bool), np.asarray(called, bool)
    return (
        int(np.sum(truth & called)),
        int(np.sum(~truth & called)),
        int(np.sum(~truth & ~called)),
        int(np.sum(truth & ~called)),
    )


def operating_table(op: dict):
    """The pooled operating point as a table of text (escape it with ``escape.table``).

    One positive class: one row per rate with its pooled out-of-fold value, Wilson interval and count, and the
    per-fold mean and sd. One-vs-rest: one row per class with the pooled rates and their intervals.
    """
    import pandas as pd

    from cifarkit.analysis.decisions import RATE_LABELS, ci_text, pct_or_dash

    pct, ci, labels = pct_or_dash, ci_text, dict(RATE_LABELS)
    if len(op["per_class"]) == 1:
        (e,) = op["per_class"].values()
        rows = {}
        for key, label in labels.items():
            r, s = e["pooled"][key], spread(f[key] for f in e["per_fold"])
            rows[label] = {
                "pooled out-of-fold": pct(r["value"]),
                "95% CI": ci(r),
                "count": f"{r['k']}/{r['n']}",
                "per fold, mean ± sd": f"{pct(s['mean'])} ± {100 * s['sd']:.1f} points"
                if s["sd"] is not None
                else pct(s["mean"]),
            }
        frame = pd.DataFrame(rows).T
        frame.index.name = "rate"
        return frame
    rows = {}
    for name, e in op["per_class"].items():
        rows[name] = {
            f"pooled {labels[key]}": f"{pct(e['pooled'][key]['value'])} ({ci(e['pooled'][key])})"
            for key in ("sensitivity", "specificity", "ppv", "npv")
        }
    frame = pd.DataFrame(rows).T
    frame.index.name = "class against the rest"
    return frame


def mark_operating_points(fig, op: dict, class_names):
    """Add the pooled operating points to a figure of ``plots.roc_curves`` (drawn without ``points``: its legend
    would announce validation points, which a pooled point has none of). Returns ``fig``."""
    from cifarkit.escape import plain

    ax = fig.axes[0]
    colours = {line.get_label().rsplit(" (AUC", 1)[0]: line.get_color() for line in ax.get_lines()}
    for n, (name, e) in enumerate(op["per_class"].items()):
        se, sp = e["pooled"]["sensitivity"]["value"], e["pooled"]["specificity"]["value"]
        if se is None or sp is None:
            continue
        label = f"operating point ({op['rule']} per fold), pooled" if n == 0 else None
        colour = colours.get(plain(name), "black") if len(op["per_class"]) <= 10 else "black"
        ax.plot(1 - sp, se, marker="o", ms=7, color=colour, mec="black", ls="none", label=label and plain(label))
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8)
    return fig


# --------------------------------------------------------------------------- the single split beside it
def single_split(run_dir) -> dict:
    """What the study's single split measured in this run (04_evaluate, else 03_train): ``{}`` when neither ran."""
    from cifarkit import run_folder

    m4 = run_folder.read_metrics(run_dir, run_folder.EVALUATE)
    m3 = run_folder.read_metrics(run_dir, run_folder.TRAIN)
    source = m4 if m4.get("test_acc") is not None else m3
    if source.get("test_acc") is None:
        return {}
    out = {
        "from": run_folder.EVALUATE if source is m4 else run_folder.TRAIN,
        "model": source.get("model"),
        "n_test": source.get("n_test") or ((source.get("data") or {}).get("counts") or {}).get("test"),
        "test_acc": source.get("test_acc"),
        "test_acc_ci": source.get("test_acc_ci"),
        "balanced_acc": m4.get("balanced_acc"),
    }
    op = m4.get("operating_point") or {}
    positive, aucs = op.get("positive_class"), m4.get("roc_auc") or {}
    if positive is not None and len(aucs) == 2:
        out.update(roc_auc=aucs.get(positive), roc_auc_ci=(m4.get("roc_auc_ci") or {}).get(positive))
    elif m4.get("roc_auc_macro") is not None:
        out.update(roc_auc=m4.get("roc_auc_macro"), roc_auc_ci=m4.get("roc_auc_macro_ci"))
    return out


# --------------------------------------------------------------------------- the figure
def fold_figure(per_fold: list[dict], pooled: dict, num_classes: int, title: str):
    """Each fold's held-out accuracy, balanced accuracy and ROC AUC (points), their mean ± sd over the folds, and
    the pooled out-of-fold value with its 95% interval; dotted lines mark chance."""
    import matplotlib.pyplot as plt

    from cifarkit.analysis.plots import PAGE_WIDTH
    from cifarkit.escape import plain

    metrics = [("accuracy", "accuracy", 1 / num_classes), ("balanced_accuracy", "balanced accuracy", 1 / num_classes)]
    if any(f.get("roc_auc") is not None for f in per_fold):
        metrics.append(("roc_auc", "ROC AUC" + (" (macro)" if num_classes > 2 else ""), 0.5))
    fig, ax = plt.subplots(figsize=(PAGE_WIDTH, 3.3))
    low = 1.0
    for j, (key, _, _) in enumerate(metrics):
        values = [(f["fold"], f[key]) for f in per_fold if f.get(key) is not None]
        xs = j - 0.2 + np.linspace(-0.08, 0.08, len(values)) if len(values) > 1 else np.array([j - 0.2])
        ax.scatter(xs, [v for _, v in values], s=22, color="tab:blue", zorder=3, label="one fold" if j == 0 else None)
        for x, (f, v) in zip(xs, values):
            ax.annotate(str(f), (x, v), xytext=(-9, -3), textcoords="offset points", fontsize=7, color="tab:blue")
        s = spread(v for _, v in values)
        if s["mean"] is not None:
            ax.errorbar(
                j + 0.05,
                s["mean"],
                yerr=s["sd"] or 0,
                fmt="s",
                color="black",
                capsize=4,
                label="mean ± sd over the folds" if j == 0 else None,
            )
        value, ci = pooled.get(key), pooled.get(f"{key}_ci")
        if value is not None:
            err = [[value - ci[0]], [ci[1] - value]] if ci else None
            ax.errorbar(
                j + 0.25,
                value,
                yerr=err,
                fmt="D",
                color="tab:red",
                capsize=4,
                label="pooled out-of-fold, 95% CI" if j == 0 else None,
            )
        low = min([low] + [v for _, v in values] + ([ci[0]] if value is not None and ci else []))
    bottom = max(0.0, low - max(0.05, 0.25 * (1 - low)))  # the points fill the axes; chance shows when it is near
    near = min(c for _, _, c in metrics)
    if near >= bottom - 0.1:
        bottom = max(0.0, min(bottom, near - 0.03))
    for j, (_, _, chance) in enumerate(metrics):
        if chance >= bottom:
            ax.hlines(chance, j - 0.4, j + 0.4, colors="grey", linestyles=":", label="chance" if j == 0 else None)
    ax.set_xticks(range(len(metrics)))
    ax.set_xticklabels([label for _, label, _ in metrics])
    ax.set_xlim(-0.6, len(metrics) - 0.4)
    ax.set_ylim(bottom, 1.0 + 0.02 * (1 - bottom))
    ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:.0%}"))
    ax.set_title(plain(title))
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- running the folds
def run_folds(ds, pooled: Pooled, fold_of, config, out_root, val_fraction: float, seed: int, *, progress=False):
    """Train one model per fold and predict its held-out images (and its validation carve).

    Each fold trains in ``<out_root>/<model>_<folds_tag>/fold<i>`` with ``resume=True``, so a second run of the
    notebook in the same run folder continues (a finished fold returns at once). Returns one dict per fold:
    ``fold`` (1-based), ``train_idx``, ``val_idx``, ``held_out`` (pooled indices), ``n_train``, ``n_val``,
    ``n_groups_held_out``, ``probs`` (held-out softmax), ``y_val``, ``probs_val`` (None without a carve),
    ``epochs_run``, ``train_seconds``, ``val_acc``, ``model_path``.
    """
    from pathlib import Path

    from cifarkit.training import predict_logits, softmax, train

    k = int(np.max(fold_of)) + 1
    root = Path(out_root) / f"{config.model}_{folds_tag(fold_of, k, seed)}"
    out = []
    for f in range(k):
        tr, va, te = fold_indices(pooled, fold_of, f, val_fraction, seed)
        fds = fold_dataset(ds, pooled, tr, va, te, f, k)
        result = train(fds, config, root / f"fold{f + 1}", resume=True, progress=progress)
        probs = softmax(predict_logits(result.model, fds.x_test))
        probs_val = softmax(predict_logits(result.model, fds.x_val)) if len(va) else None
        out.append(
            {
                "fold": f + 1,
                "train_idx": tr,
                "val_idx": va,
                "held_out": te,
                "n_train": int(len(tr)),
                "n_val": int(len(va)),
                "n_groups_held_out": int(len(np.unique(pooled.groups[te]))) if pooled.groups is not None else None,
                "probs": probs,
                "y_val": pooled.y[va],
                "probs_val": probs_val,
                "epochs_run": int(result.metrics.get("epochs") or len(result.history)),
                "train_seconds": float(result.metrics.get("train_seconds") or 0.0),
                "val_acc": result.metrics.get("val_acc"),
                "model_path": str(result.paths["model"]),
            }
        )
        del result, fds
    return out


def out_of_fold(folds: list[dict], n: int, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """``(probs, fold_of)`` in the pooled order from :func:`run_folds`' answer (every image held out once)."""
    probs = np.full((n, num_classes), np.nan, dtype=np.float64)
    fold_of = np.full(n, -1, dtype=np.int64)
    for f in folds:
        probs[f["held_out"]] = f["probs"]
        fold_of[f["held_out"]] = f["fold"] - 1
    if (fold_of < 0).any():
        raise ValueError(f"{int((fold_of < 0).sum())} images were held out by no fold.")
    return probs, fold_of


def fold_record(f: dict) -> dict:
    """One fold as metrics/07 records it (no arrays)."""
    keep = ("fold", "n_train", "n_val", "n", "n_groups_held_out", "accuracy", "balanced_accuracy", "roc_auc")
    return {k: f.get(k) for k in keep} | {
        "epochs_run": f.get("epochs_run"),
        "train_seconds": f.get("train_seconds"),
        "val_acc": f.get("val_acc"),
        "model_path": f.get("model_path"),
    }


def save_folds(run_dir, pooled: Pooled, fold_of, folds: list[dict], baseline_preds: dict | None = None):
    """``predictions/07_cross_validation_folds.npz``: each pooled image's fold (0-based), split of origin, index in
    it and group (empty strings when ungrouped), each fold's validation carve (pooled indices), and the
    out-of-fold class each cross-validated baseline predicted (``baseline_<name>``)."""
    import io

    from cifarkit import run_folder
    from cifarkit.files import atomic_write_bytes

    buf = io.BytesIO()
    val = np.full(pooled.n, -1, dtype=np.int64)
    for f in folds:
        val[f["val_idx"]] = f["fold"] - 1
    np.savez_compressed(
        buf,
        fold=np.asarray(fold_of, dtype=np.int64),
        validation_in_fold=val,
        origin=pooled.origin.astype(str),
        index=pooled.index.astype(np.int64),
        group=(pooled.groups if pooled.groups is not None else np.full(pooled.n, "")).astype(str),
        **{f"baseline_{name}": np.asarray(pred, dtype=np.int64) for name, pred in (baseline_preds or {}).items()},
    )
    return atomic_write_bytes(run_folder.predictions_path(run_dir, "07_cross_validation", "folds"), buf.getvalue())


# --------------------------------------------------------------------------- the report's tables and sentences
def fold_table(folds: list[dict], class_names, positive: int | None = None):
    """One row per fold: its images, held-out scores, epochs and training time."""
    import pandas as pd

    names = [str(c) for c in class_names]
    auc_label = f"ROC AUC ({names[positive]})" if positive is not None else "ROC AUC (macro)"
    rows = {}
    for f in folds:
        row = {
            "training": f["n_train"],
            "validation": f["n_val"],
            "held out": f["n"],
        }
        if f.get("n_groups_held_out") is not None:
            row["held-out groups"] = f["n_groups_held_out"]
        row.update(
            {
                "accuracy": f["accuracy"],
                "balanced accuracy": f["balanced_accuracy"],
                auc_label: f["roc_auc"] if f["roc_auc"] is not None else float("nan"),
                "epochs": f["epochs_run"],
                "train s": f["train_seconds"],
            }
        )
        rows[int(f["fold"])] = row
    frame = pd.DataFrame(rows).T
    for col in ("training", "validation", "held out", "held-out groups", "epochs"):
        if col in frame:
            frame[col] = frame[col].astype(int)
    frame.index.name = "fold"
    return frame


def _pm(s: dict, percent: bool = True) -> str:
    if s.get("mean") is None:
        return "-"
    f = (lambda v: f"{100 * v:.1f}%") if percent else (lambda v: f"{v:.3f}")
    sd = s.get("sd")
    if sd is None:
        return f(s["mean"])
    return f"{f(s['mean'])} ± {100 * sd:.1f} points" if percent else f"{f(s['mean'])} ± {sd:.3f}"


def fold_sentence(summary: dict, k: int, model: str, epochs: int) -> str:
    """The per-fold results in one sentence (escaped Markdown)."""
    from cifarkit import escape
    from cifarkit.wording import plural

    acc = summary["accuracy"]
    text = (
        f"Over the {k} folds ({escape.md(model)}, {plural(epochs, 'epoch')} each): accuracy {_pm(acc)} (mean ± sd; from "
        f"{100 * acc['min']:.1f}% to {100 * acc['max']:.1f}%), balanced accuracy {_pm(summary['balanced_accuracy'])}"
    )
    if summary["roc_auc"]["mean"] is not None:
        text += f", ROC AUC {_pm(summary['roc_auc'], percent=False)}"
    return text + "."


def _ci(value, ci, percent=True) -> str:
    from cifarkit.analysis.decisions import value_ci

    return value_ci(value, ci, percent=percent)


def pooled_sentence(record: dict, k: int) -> str:
    """The pooled out-of-fold results in one sentence (escaped Markdown)."""
    from cifarkit import escape

    auc_of = f"of {escape.md(record['roc_auc_of'])} " if record.get("roc_auc_of") else "(macro average, one-vs-rest) "
    return (
        f"Pooled over the {k} held-out folds, on all **{record['n']:,} images**: accuracy "
        f"**{_ci(record['accuracy'], record['accuracy_ci'])}**, balanced accuracy "
        f"{_ci(record['balanced_accuracy'], record['balanced_accuracy_ci'])}, ROC AUC {auc_of}"
        f"**{_ci(record['roc_auc'], record['roc_auc_ci'], percent=False)}** ({record['n_boot']} bootstrap resamples)."
    )


def comparison_table(record: dict, summary: dict, single: dict, k: int):
    """The pooled and per-fold results beside the single split's (escaped)."""
    import pandas as pd

    from cifarkit import escape

    def width(ci):
        return f"{100 * (ci[1] - ci[0]):.1f} points" if ci and None not in ci else "-"

    rows = {
        f"cross-validation, pooled ({record['n']:,} images)": {
            "accuracy": _ci(record["accuracy"], record["accuracy_ci"]),
            "accuracy CI width": width(record["accuracy_ci"]),
            "balanced accuracy": _ci(record["balanced_accuracy"], record["balanced_accuracy_ci"]),
            "ROC AUC": _ci(record["roc_auc"], record["roc_auc_ci"], percent=False),
        },
        f"cross-validation, per fold (mean ± sd of {k})": {
            "accuracy": _pm(summary["accuracy"]),
            "accuracy CI width": "-",
            "balanced accuracy": _pm(summary["balanced_accuracy"]),
            "ROC AUC": _pm(summary["roc_auc"], percent=False),
        },
    }
    if single:
        n = single.get("n_test")
        rows[f"single split, test ({single['from']}, {n:,} images)" if isinstance(n, int) else "single split, test"] = {
            "accuracy": _ci(single.get("test_acc"), single.get("test_acc_ci")),
            "accuracy CI width": width(single.get("test_acc_ci")),
            "balanced accuracy": _ci(single.get("balanced_acc"), None),
            "ROC AUC": _ci(single.get("roc_auc"), single.get("roc_auc_ci"), percent=False),
        }
    frame = pd.DataFrame(rows).T
    frame.index.name = "estimate"
    return escape.table(frame)


def comparison_sentence(record: dict, single: dict) -> str:
    """How much narrower the pooled interval is than the single split's (escaped Markdown)."""
    ci, other = record.get("accuracy_ci"), (single or {}).get("test_acc_ci")
    if not single or not ci or not other or None in other:
        return (
            "No single-split test result of this run to compare with (04_evaluate and 03_train recorded none); "
            "the pooled interval above rests on every image."
        )
    w_cv, w_single = ci[1] - ci[0], other[1] - other[0]
    inside = other[0] <= record["accuracy"] <= other[1]
    return (
        f"The pooled accuracy's 95% interval is {100 * w_cv:.1f} points wide against {100 * w_single:.1f} for the "
        f"single test split ({single['from']}, a model trained on the training split only); the pooled accuracy "
        + ("lies inside" if inside else "lies outside")
        + " the single split's interval."
    )


def thresholds_text(op: dict) -> str:
    """``fold 1: 0.4312, fold 2: 0.5 (default), ...`` for one positive class, or the count per class."""
    per = op["per_class"]
    if len(per) == 1:
        (e,) = per.values()
        return ", ".join(
            f"fold {i + 1}: " + (f"{t:.4g}" if t is not None else "argmax") + (" (default)" if on == "default" else "")
            for i, (t, on) in enumerate(zip(e["thresholds"], e["chosen_on"]))
        )
    chosen = sum(on == "validation" for e in per.values() for on in e["chosen_on"])
    total = sum(len(e["chosen_on"]) for e in per.values())
    return f"{chosen} of {total} class-and-fold thresholds chosen on validation carves (the rest: argmax)"
