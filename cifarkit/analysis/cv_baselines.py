"""The non-CNN baselines cross-validated beside the CNN (notebook ``07_cross_validation``).

A small collection's test split holds a few dozen images, and McNemar's test on it can rarely tell a CNN
from a classic pipeline even when one is clearly better. Cross-validation scores every labelled image once,
so the comparison can use all of them: each baseline method of ``05_baselines`` is trained on every fold's
training images (its hyperparameters chosen on the fold's validation carve, as the CNN's epochs are),
predicts the fold's held-out images, and the pooled out-of-fold predictions are compared image by image with
the CNN's. Nothing is chosen on the held-out images; the "best baseline" named in the verdict is the one with
the highest pooled accuracy, which favours the baselines (the conservative side for a claim that the CNN
beats them).

The CNN is tested against every baseline with McNemar's test; the p-values are adjusted for the number of
baselines with Holm's step-down method (Holm 1979), and the CNN "beats every baseline" only when it is more
accurate than each and every adjusted p is below ``alpha`` (0.05 unless the notebook's ``ALPHA`` says
otherwise).
"""

from __future__ import annotations

import numpy as np

from cifarkit import escape

DEFAULT_ALPHA = 0.05


def holm(p_values) -> list[float]:
    """Holm's step-down adjusted p-values, in the input order (each at most 1, never below an earlier one's).

    >>> holm([0.01, 0.04, 0.03])
    [0.03, 0.06, 0.06]
    """
    p = [float(v) for v in p_values]
    if any(not 0.0 <= v <= 1.0 for v in p):
        raise ValueError(f"p-values must lie in [0, 1]; received {p}.")
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted


def run_fold_baselines(ds, pooled, fold_of, methods, val_fraction: float, seed: int, *, options=None) -> list[dict]:
    """Train every baseline method on each fold's training images and predict the fold's held-out images.

    The folds, validation carves and held-out images are those of
    :func:`cifarkit.analysis.cross_validation.fold_indices`, so the CNN and the baselines score the same images.

    Returns:
        One dict per method: ``name``, ``title``, ``features`` (of the first fold), ``pred`` (the out-of-fold
        predicted class of every pooled image), ``selected`` (the hyperparameters chosen in each fold) and
        ``seconds`` (fitting, the choice on validation and prediction, all folds).
    """
    from cifarkit.analysis import cross_validation as cv
    from cifarkit.analysis.baselines import parse_methods, run_baselines

    names = parse_methods(methods)
    k = int(np.max(fold_of)) + 1
    out = {
        name: {"name": name, "pred": np.full(pooled.n, -1, dtype=np.int64), "selected": [], "seconds": 0.0}
        for name in names
    }
    for f in range(k):
        tr, va, te = cv.fold_indices(pooled, fold_of, f, val_fraction, seed)
        fds = cv.fold_dataset(ds, pooled, tr, va, te, f, k)
        results = run_baselines(fds, names, seed=seed, options=options, n_boot=100, progress=None)
        for r in results:
            entry = out[r["name"]]
            entry["pred"][te] = np.asarray(r["test_pred"], dtype=np.int64)
            entry["selected"].append(dict(r["selected"]))
            entry["seconds"] += float(r["train_seconds"]) + float(r["predict_seconds"])
            entry.setdefault("title", r["title"])
            entry.setdefault("features", r["features"])
        del fds, results
    for entry in out.values():
        if np.any(entry["pred"] < 0):
            raise RuntimeError(f"Baseline {entry['name']} left images without an out-of-fold prediction.")
    return [out[name] for name in names]


def compare(
    y_true, cnn_pred, baselines: list[dict], *, alpha: float = DEFAULT_ALPHA, n_boot: int = 2000, seed: int = 0
):
    """The CNN's pooled out-of-fold predictions against each baseline's, on every image.

    Returns:
        ``{"n", "alpha", "correction", "cnn": {"accuracy", "accuracy_ci"}, "baselines": [{"name", "title",
        "features", "accuracy", "accuracy_ci", "difference", "difference_ci", "b", "c", "p_value",
        "p_holm", "method"}], "best_baseline", "cnn_beats_all"}``; ``b`` counts the images only the CNN gets
        right, ``c`` those only the baseline gets right.
    """
    from cifarkit.analysis.stats import accuracy_ci, mcnemar, paired_difference_ci

    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie between 0 and 1; received alpha={alpha!r}.")
    y_true = np.asarray(y_true, dtype=np.int64)
    cnn_pred = np.asarray(cnn_pred, dtype=np.int64)
    cnn = accuracy_ci(y_true, cnn_pred, n_boot=n_boot, seed=seed)
    rows = []
    for b in baselines:
        acc = accuracy_ci(y_true, b["pred"], n_boot=n_boot, seed=seed)
        diff = paired_difference_ci(y_true, cnn_pred, b["pred"], n_boot=n_boot, seed=seed)
        test = mcnemar(y_true, cnn_pred, b["pred"])
        rows.append(
            {
                "name": b["name"],
                "title": b.get("title", b["name"]),
                "features": b.get("features", ""),
                "accuracy": acc["accuracy"],
                "accuracy_ci": [acc["ci_low"], acc["ci_high"]],
                "difference": diff["difference"],
                "difference_ci": [diff["ci_low"], diff["ci_high"]],
                "b": test["b"],
                "c": test["c"],
                "p_value": test["p_value"],
                "method": test["method"],
            }
        )
    for row, adjusted in zip(rows, holm([r["p_value"] for r in rows])):
        row["p_holm"] = adjusted
    best = max(rows, key=lambda r: r["accuracy"]) if rows else None
    return {
        "n": int(len(y_true)),
        "alpha": float(alpha),
        "correction": f"Holm over {len(rows)} baseline(s)",
        "cnn": {"accuracy": cnn["accuracy"], "accuracy_ci": [cnn["ci_low"], cnn["ci_high"]]},
        "baselines": rows,
        "best_baseline": best["name"] if best else None,
        "cnn_beats_all": bool(rows) and all(cnn["accuracy"] > r["accuracy"] and r["p_holm"] < alpha for r in rows),
    }


def table(result: dict, cnn_name: str):
    """The comparison as a DataFrame: the CNN's row first, then each baseline with its test against the CNN."""
    import pandas as pd

    from cifarkit.analysis.stats import format_p

    def pct(v):
        return f"{100 * v:.1f}%"

    def interval(ci, points=False):
        if points:
            return f"{100 * ci[0]:+.1f} to {100 * ci[1]:+.1f}"
        return f"{100 * ci[0]:.1f}-{100 * ci[1]:.1f}%"

    rows = [
        {
            "model": f"{cnn_name} (CNN)",
            "out-of-fold accuracy": pct(result["cnn"]["accuracy"]),
            "95% CI": interval(result["cnn"]["accuracy_ci"]),
            "CNN minus model (points, 95% CI)": "-",
            "b / c": "-",
            "McNemar p": "-",
            "Holm-adjusted p": "-",
        }
    ]
    for r in result["baselines"]:
        rows.append(
            {
                "model": f"{r['title']} ({r['features']})" if r["features"] else r["title"],
                "out-of-fold accuracy": pct(r["accuracy"]),
                "95% CI": interval(r["accuracy_ci"]),
                "CNN minus model (points, 95% CI)": f"{100 * r['difference']:+.1f} ({interval(r['difference_ci'], True)})",
                "b / c": f"{r['b']} / {r['c']}",
                "McNemar p": format_p(r["p_value"]),
                "Holm-adjusted p": format_p(r["p_holm"]),
            }
        )
    return pd.DataFrame(rows).set_index("model")


def sentence(result: dict, cnn_name: str) -> str:
    """The verdict in one paragraph (markdown, data escaped), computed from :func:`compare`'s numbers."""
    from cifarkit.analysis.stats import format_p

    rows = result["baselines"]
    if not rows:
        return "No baseline was cross-validated (`BASELINES` is empty)."
    best = next(r for r in rows if r["name"] == result["best_baseline"])
    cnn = result["cnn"]["accuracy"]
    gap = cnn - best["accuracy"]
    text = (
        f"On all {result['n']:,} images, out of fold, {escape.code(cnn_name)} reaches **{cnn:.1%}** and the best "
        f"baseline, {escape.md(best['title'])}, **{best['accuracy']:.1%}**: the CNN is {abs(100 * gap):.1f} points "
        f"{'above' if gap >= 0 else 'below'} it (paired 95% CI {100 * best['difference_ci'][0]:+.1f} to "
        f"{100 * best['difference_ci'][1]:+.1f}; McNemar b = {best['b']}, c = {best['c']}, {format_p(best['p_value'])}, "
        f"{format_p(best['p_holm'])} after Holm's correction for {len(rows)} baseline(s))."
    )
    alpha = result["alpha"]
    if result["cnn_beats_all"]:
        return text + f" The CNN beats **every** baseline at p < {alpha:g} (Holm-adjusted)."
    losers = [r for r in rows if not (cnn > r["accuracy"] and r["p_holm"] < alpha)]
    return text + (
        f" The CNN does **not** beat every baseline at p < {alpha:g} (Holm-adjusted): "
        + ", ".join(f"{escape.md(r['title'])} ({r['accuracy']:.1%}, {format_p(r['p_holm'])})" for r in losers)
        + "."
    )
