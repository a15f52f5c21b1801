"""The CIFAR-10-C protocol (Hendrycks & Dietterich 2019): 15 corruptions x 5 severities, and its accuracy table.

The corruptions follow the published CIFAR-10 definitions of ``make_cifar_c.py``
(repository hendrycks/robustness, ``ImageNet-C/create_c/make_cifar_c.py``) parameter for
parameter; the code is our own and works on whole batches (see ``corruptions_ops`` for each
definition, ``corruptions_primitives`` for the building blocks, ``corruptions_params`` for
the constants). What differs from the paper's script, and why:

* ImageMagick (through Wand) is not a dependency: motion blur and the snow layer's motion
  blur use our implementation of ImageMagick's ``MotionBlurImage`` definition
  (``corruptions_primitives.motion_blur``).
* The frost photographs are the six that the ``imagecorruptions`` package ships, under the
  paper's file names (that package took them from the ImageNet-C code; not byte-compared
  with the paper's copies here); only the first five are ever drawn, as in the paper.
* Random numbers come from one ``numpy.random.Generator`` per call, seeded from
  ``(seed, name, severity)``, drawn for the whole batch: the same call always gives the
  same images, but the images differ from the released CIFAR-10-C files (different random
  draws) and a batch's noise depends on the whole batch (its size and order).
* Images of other sizes than 32x32 get lengths scaled by ``max(H, W) / 32`` (see
  ``corruptions_ops``); only 32x32 is CIFAR-10-C proper.

Typical use::

    from cifarkit.analysis import corruptions as cc
    xc = cc.corrupt_c(x_test, "fog", 3, seed=0)
    df = cc.cifar10c_table(lambda imgs: model_predict(imgs), x_test, y_test, samples=2000)
    df.attrs["mean"]   # mean accuracy over the 15 x 5 cells (the protocol's headline number)
"""

from __future__ import annotations

import re
import time
import zlib

import numpy as np
import pandas as pd

from cifarkit.analysis.corruptions_ops import OPS
from cifarkit.analysis.corruptions_params import CORRUPTIONS_C, GROUPS, PARAMETERS, REFERENCE_POINTS, SEVERITIES
from cifarkit.analysis.verdicts import chance_level
from cifarkit.wording import agree, series

__all__ = [
    "CORRUPTIONS_C",
    "GROUPS",
    "PARAMETERS",
    "REFERENCE_POINTS",
    "SEVERITIES",
    "cells_at_chance",
    "cifar10c_summary",
    "cifar10c_table",
    "corrupt_c",
    "group_corruption_cells",
    "group_of",
    "severity_runs",
]

#: Images corrupted per internal step (bounds the float64 temporaries to a few hundred MB).
CHUNK = 2048
#: Smallest image side accepted (elastic_transform's control points need side // 3 >= 2).
MIN_SIDE = 8


def group_of(name: str) -> str:
    """The group (``noise``, ``blur``, ``weather``, ``digital``) of a corruption."""
    for group, names in GROUPS.items():
        if name in names:
            return group
    raise ValueError(f"Unknown corruption {name!r}. Valid names: {', '.join(CORRUPTIONS_C)}.")


def _check_name(name) -> str:
    if not isinstance(name, str) or name not in PARAMETERS:
        raise ValueError(f"Unknown corruption {name!r}. Valid names: {', '.join(CORRUPTIONS_C)}.")
    return name


def _check_severity(severity) -> int:
    if (
        isinstance(severity, (bool, np.bool_))
        or not isinstance(severity, (int, np.integer))
        or severity not in SEVERITIES
    ):
        raise ValueError(
            f"severity must be one of {', '.join(map(str, SEVERITIES))} (an integer); received severity={severity!r}."
        )
    return int(severity)


def _check_seed(seed) -> int:
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer; received seed={seed!r}.")
    return int(seed)


def _rng(seed: int, name: str, severity: int) -> np.random.Generator:
    """A Generator seeded from ``(seed, name, severity)``; the name enters as its CRC-32 (stable across runs)."""
    return np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(name.encode()), severity]))


def corrupt_c(x, name: str, severity: int, seed: int = 0) -> np.ndarray:
    """A CIFAR-10-C corrupted copy of uint8 images.

    Args:
        x: uint8 images ``(N, H, W, 3)`` (or one image ``(H, W, 3)``), as the data layer stores them;
            H and W at least 8. 32x32 is CIFAR-10-C; other sizes scale the pixel lengths by
            ``max(H, W) / 32`` (see :mod:`cifarkit.analysis.corruptions_ops`).
        name: one of :data:`CORRUPTIONS_C`.
        severity: 1..5.
        seed: non-negative integer; with ``(name, severity)`` it seeds the call's own
            ``numpy.random.Generator`` (the global numpy RNG is never used), so the same
            arguments always give the same images.

    Returns:
        uint8 array of ``x``'s shape. As in the paper, the float result in 0..255 is truncated
        (``np.uint8``), not rounded.

    Raises:
        ValueError: unknown name, severity outside 1..5, a negative seed, or images that are
            not uint8 ``(N, H, W, 3)`` of side >= 8.
    """
    name = _check_name(name)
    severity = _check_severity(severity)
    seed = _check_seed(seed)
    x = np.asarray(x)
    single = x.ndim == 3
    batch = x[None] if single else x
    if batch.ndim != 4 or batch.dtype != np.uint8 or batch.shape[-1] != 3:
        raise ValueError(
            f"corrupt_c needs uint8 RGB images shaped (N, H, W, 3) or (H, W, 3); received {x.dtype} of shape {x.shape}."
        )
    if min(batch.shape[1], batch.shape[2]) < MIN_SIDE:
        raise ValueError(f"corrupt_c needs images of at least {MIN_SIDE}x{MIN_SIDE} pixels; received {x.shape}.")
    op, params, rng = OPS[name], PARAMETERS[name][severity], _rng(seed, name, severity)
    out = np.empty_like(batch)
    for start in range(0, len(batch), CHUNK):
        part = np.ascontiguousarray(batch[start : start + CHUNK])
        out[start : start + CHUNK] = np.clip(op(part, params, rng), 0, 255).astype(np.uint8)
    return out[0] if single else out


def _subsample(n: int, samples: int, seed: int) -> np.ndarray:
    """Sorted indices of a seeded subsample of ``samples`` out of ``n`` (all when ``samples`` is 0 or >= n)."""
    if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples < 0:
        raise ValueError(f"samples must be an integer >= 0 (0 means all); received {samples!r}.")
    if samples == 0 or samples >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=int(samples), replace=False))


def _accuracy(predict, images: np.ndarray, labels: np.ndarray) -> float:
    pred = np.asarray(predict(images))
    if pred.ndim == 2:  # scores or probabilities: take the arg-max class
        pred = pred.argmax(axis=1)
    pred = pred.reshape(-1)
    if pred.shape[0] != labels.shape[0]:
        raise ValueError(f"predict returned {pred.shape[0]} labels for {labels.shape[0]} images.")
    return float(np.mean(pred == labels)) if len(labels) else float("nan")


def cifar10c_table(
    predict,
    x,
    y,
    *,
    severities=SEVERITIES,
    names=CORRUPTIONS_C,
    samples: int = 0,
    seed: int = 0,
) -> pd.DataFrame:
    """Accuracy of ``predict`` on CIFAR-10-C corrupted copies of ``(x, y)``.

    Args:
        predict: ``predict(images) -> labels`` for uint8 NHWC images (an ``(n, classes)``
            score array is also accepted: its arg-max is taken). Any model fits: wrap a Keras
            model as ``lambda im: predict_logits(model, im, 512).argmax(1)``.
        x, y: uint8 NHWC images and their integer labels (the test split).
        severities: severities to evaluate (default 1..5).
        names: corruptions to evaluate (default all 15, in the paper's order).
        samples: evaluate on a seeded random subsample of this many images (0 = all).
        seed: seed of the subsample and of every corruption (``corrupt_c(..., seed=seed)``).

    Returns:
        A DataFrame with one row per corruption and one column per severity (accuracy, 0..1).
        ``df.attrs``: ``clean_acc`` (same images, uncorrupted), ``n``, ``indices`` (into ``x``),
        ``mean_by_severity`` ({severity: mean over the corruptions}), ``mean`` (mean over all
        cells: with all 15 x 5 this is the protocol's headline, the mean corruption accuracy
        that :data:`REFERENCE_POINTS` report in %), ``by_group`` ({group: mean over its cells}),
        ``complete`` (all 15 x 5 evaluated), ``image_size``, ``seed``, ``seconds``
        (corruption time) and ``reference_points``.
    """
    names = [_check_name(n) for n in names]
    severities = [_check_severity(s) for s in severities]
    if not names or not severities:
        raise ValueError("cifar10c_table needs at least one corruption and one severity.")
    seed = _check_seed(seed)
    x = np.asarray(x)
    y = np.asarray(y).reshape(-1)
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} images but y has {len(y)} labels.")
    idx = _subsample(len(x), samples, seed)
    xs, ys = x[idx], y[idx]
    clean = _accuracy(predict, xs, ys)
    rows: dict[str, dict[int, float]] = {}
    spent = 0.0
    for name in names:
        rows[name] = {}
        for s in severities:
            t0 = time.perf_counter()
            xc = corrupt_c(xs, name, s, seed=seed)
            spent += time.perf_counter() - t0
            rows[name][s] = _accuracy(predict, xc, ys)
    df = pd.DataFrame.from_dict(rows, orient="index")[severities]
    df.index.name = "corruption"
    df.columns.name = "severity"
    by_group = {}
    for group, members in GROUPS.items():
        present = [n for n in members if n in rows]
        if present:
            by_group[group] = float(df.loc[present].to_numpy().mean())
    df.attrs.update(
        clean_acc=clean,
        n=int(len(idx)),
        indices=idx,
        mean_by_severity={int(s): float(df[s].mean()) for s in severities},
        mean=float(df.to_numpy().mean()),
        by_group=by_group,
        complete=set(names) == set(CORRUPTIONS_C) and set(severities) == set(SEVERITIES),
        image_size=tuple(int(v) for v in x.shape[1:3]),
        seed=seed,
        seconds=round(spent, 3),
        reference_points=REFERENCE_POINTS,
    )
    return df


def cells_at_chance(table: pd.DataFrame, num_classes: int) -> list[str]:
    """The cells of a :func:`cifar10c_table` at chance level (within two binomial standard errors of guessing on
    its ``attrs["n"]`` images), as ``"gaussian noise at severity 5"``, in the table's order."""
    n = int(table.attrs.get("n") or 0)
    return [
        f"{name.replace('_', ' ')} at severity {severity}"
        for name, row in table.iterrows()
        for severity, accuracy in row.items()
        if chance_level(accuracy, num_classes, n)
    ]


def severity_runs(severities: list[int]) -> str:
    """``[1, 2, 3, 5]`` -> ``"severities 1-3 and 5"``; ``[4]`` -> ``"severity 4"``."""
    runs: list[list[int]] = []
    for s in sorted(set(severities)):
        if runs and s == runs[-1][-1] + 1:
            runs[-1].append(s)
        else:
            runs.append([s])
    parts = [f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs]
    word = "severity" if len(set(severities)) == 1 else "severities"
    return f"{word} {series(parts)}"


def group_corruption_cells(cells: list[str]) -> list[str]:
    """:func:`cells_at_chance`'s cells (``"gaussian noise at severity 5"``) grouped by corruption, in their first order:
    ``"gaussian noise (severities 1-5)"``. A cell in another form is kept as it is."""
    groups: dict[str, list[int]] = {}
    for cell in cells:
        found = re.fullmatch(r"(.+) at severity (\d+)", str(cell))
        if found:
            groups.setdefault(found.group(1), []).append(int(found.group(2)))
        else:
            groups.setdefault(str(cell), [])
    return [f"{name} ({severity_runs(sev)})" if sev else name for name, sev in groups.items()]


def cifar10c_summary(table: pd.DataFrame, num_classes: int) -> str:
    """Markdown under 04's CIFAR-10-C table: the mean over its cells with the clean accuracy on the same images, the
    mean per severity, the published reference points, and the cells at chance level, grouped by corruption."""
    attrs, chance = table.attrs, 1.0 / num_classes
    at_chance = cells_at_chance(table, num_classes)
    text = (
        f"Mean CIFAR-10-C accuracy: **{attrs['mean']:.2%}** over {table.shape[0]} corruptions x {table.shape[1]} "
        f"severities (clean {attrs['clean_acc']:.2%}); by severity {', '.join(str(s) for s in table.columns)}: "
        + ", ".join(f"{attrs['mean_by_severity'][int(s)]:.1%}" for s in table.columns)
        + ". Published reference points (mean over the released CIFAR-10-C, full training budgets): "
        + "; ".join(f"{v['model']}: {v['mean_corruption_acc']:.1f}%" for v in REFERENCE_POINTS.values())
        + ". "
    )
    if chance_level(attrs["clean_acc"], num_classes, int(attrs.get("n") or 0)):
        return text + (
            f"The model is at chance level ({chance:.0%}) on the clean images already, so these figures say nothing "
            "about its robustness: train it longer or on more data first."
        )
    if not at_chance:
        return text + f"No corruption brings it down to chance level ({chance:.0%})."
    verb = agree(len(at_chance), "brings", "bring")
    return (
        text
        + f"{len(at_chance)} of {table.size} corruption settings {verb} the model to chance level (within two "
        + f"standard errors of {chance:.0%}): "
        + "; ".join(group_corruption_cells(at_chance))
        + ". On those images it does no better than guessing, whatever its clean accuracy."
    )
