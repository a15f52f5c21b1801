"""Notebook 06's analysis: architectures trained in one run compared on accuracy and cost, beside published numbers.

Notebook ``06_architectures_and_ensembles`` trains (or reloads, when they are
already in the run folder) several registered models under the profile's
budget, then compares accuracy with cost and builds ensembles
(:mod:`cifarkit.analysis.ensembles`). The model trained by ``03_train`` in the
same run is always a member.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field, replace

import numpy as np

from cifarkit import run_folder
from cifarkit.analysis import ensembles, stats
from cifarkit.training.inference import predict_logits, softmax


def short_citation(paper: str) -> str:
    """``"He, Zhang, Ren & Sun 2016, Deep Residual ..."`` -> ``"He et al. 2016"``; two authors stay named."""
    m = re.match(r"\s*([^,]+?)\s+(\d{4})\b", paper.split(",")[0]) if "," not in paper.split(" 20")[0] else None
    if m:
        return f"{m[1]} {m[2]}"
    m = re.match(r"\s*([^,&]+?)\s*[,&].*?\b(\d{4})\b", paper)
    return f"{m[1]} et al. {m[2]}" if m else paper


def published_results() -> dict:
    """Published CIFAR-10 test errors (%) from the model registry: ``{model: {"error", "epochs", "source"}}``."""
    from cifarkit.models import list_models, model_info

    out = {}
    infos = [model_info(name) for name in list_models()]
    families = ["resnet", "densenet", "wrn"]  # the papers in the order they appeared
    infos.sort(
        key=lambda i: (
            families.index(i["family"]) if i["family"] in families else len(families),
            i["reference_params"] or 0,
        )
    )
    for info in infos:
        name = info["name"]
        if info["reference_error_pct"] is not None and info["reference_epochs"]:
            source = (
                f"{short_citation(info['paper'])}, {info['reference_source']}"
                if info["paper"]
                else info["reference_source"]
            )
            out[name] = {"error": info["reference_error_pct"], "epochs": info["reference_epochs"], "source": source}
    return out


@dataclass
class ArchSpec:
    """One architecture to train: a registered model, a recipe, an epoch budget (0 = the recipe's) and a seed
    (None = the notebook's)."""

    model: str
    recipe: str = "default"
    epochs: int = 0
    overrides: dict = field(default_factory=dict)
    seed: int | None = None

    @property
    def label(self) -> str:
        return (
            f"{self.model}/{self.recipe}"
            + (f"/{self.epochs}ep" if self.epochs else "")
            + (f"/seed{self.seed}" if self.seed is not None else "")
        )

    @property
    def folder(self) -> str:
        return (
            f"06_{self.model}_{self.recipe}"
            + (f"_{self.epochs}ep" if self.epochs else "")
            + (f"_seed{self.seed}" if self.seed is not None else "")
        )


#: The largest seed (the notebooks' ``SEED`` range): scikit-learn takes seeds below 2**32, and a seed that repeats
#: one already used is moved up (:func:`separate_seeds`), so the range stops well below.
MAX_SEED = 2**31 - 1


def parse_architectures(text: str) -> list[ArchSpec]:
    """``"resnet20:default:8, fastnet:fast:0:1"`` -> specs (``model[:recipe[:epochs[:seed]]]``, comma-separated).

    A seed trains another instance of an architecture (a deep-ensemble member); one that names the training
    notebook's model for its epochs is a seed of the headline and trains with that notebook's settings
    (:func:`train_member`). Without one the notebook's seed is used. Unknown model or recipe names raise
    ``ValueError`` listing the known ones.
    """
    from cifarkit.models import list_models
    from cifarkit.training import RECIPES

    specs = []
    for item in [t.strip() for t in (text or "").split(",") if t.strip()]:
        parts = item.split(":")
        if len(parts) > 4:
            raise ValueError(
                f"Cannot read architecture {item!r}: use model[:recipe[:epochs[:seed]]], e.g. resnet20:default:8 "
                "or fastnet:fast:0:1."
            )
        model = parts[0]
        recipe = parts[1] if len(parts) > 1 and parts[1] else "default"
        try:
            epochs = int(parts[2]) if len(parts) > 2 and parts[2] else 0
            seed = int(parts[3]) if len(parts) > 3 else None
        except ValueError:
            raise ValueError(f"Epochs and seed in {item!r} must be integers, like fastnet:fast:0:1.") from None
        if model not in list_models():
            raise ValueError(f"Unknown model {model!r} in ARCHITECTURES. Known models: {', '.join(list_models())}.")
        if recipe not in RECIPES:
            raise ValueError(f"Unknown recipe {recipe!r} in ARCHITECTURES. Known recipes: {', '.join(RECIPES)}.")
        if epochs < 0 or (seed is not None and seed < 0):
            raise ValueError(f"Epochs and seed must be >= 0 (epochs 0 keeps the recipe's); got {item!r}.")
        if seed is not None and seed > MAX_SEED:
            raise ValueError(f"A seed must be at most {MAX_SEED:,} (as SEED is); got {item!r}. Use a smaller seed.")
        specs.append(ArchSpec(model, recipe, epochs, seed=seed))
    return specs


@dataclass
class Member:
    """A trained model of the run with its predictions on the validation and test splits."""

    name: str
    arch: str  # the registered model name
    model_path: str
    origin: str
    epochs: int
    recipe: str
    train_seconds: float | None
    params: int
    flops: int | None
    val_probs: np.ndarray
    test_probs: np.ndarray
    inference_images_per_sec: float
    seed: int | None = None

    def val_acc(self, y_val) -> float:
        return float(np.mean(self.val_probs.argmax(axis=1) == np.asarray(y_val)))

    def test_acc(self, y_test) -> float:
        return float(np.mean(self.test_probs.argmax(axis=1) == np.asarray(y_test)))


def measure_inference(model, x: np.ndarray, *, batch_size: int = 512, max_images: int = 2048) -> float:
    """Images per second of a forward pass (eval mode) over up to ``max_images`` images, after one warm-up batch."""
    x = x[:max_images]
    predict_logits(model, x[: min(len(x), 64)], batch_size=batch_size)
    t0 = time.perf_counter()
    predict_logits(model, x, batch_size=batch_size)
    return len(x) / max(time.perf_counter() - t0, 1e-9)


def member_from_model(name, arch, model, model_path, ds, *, origin, epochs, recipe, train_seconds, seed=None) -> Member:
    """Predict the validation and test splits with ``model`` and measure its cost."""
    from cifarkit.models import count_flops, count_params

    try:
        flops = int(count_flops(model))
    except Exception:  # noqa: BLE001 - a model the analytic counter does not know still gets compared
        flops = None
    return Member(
        name=name,
        arch=arch,
        model_path=str(model_path),
        origin=origin,
        epochs=int(epochs),
        recipe=recipe,
        train_seconds=train_seconds,
        params=count_params(model),
        flops=flops,
        val_probs=softmax(predict_logits(model, ds.x_val)),
        test_probs=softmax(predict_logits(model, ds.x_test)),
        inference_images_per_sec=measure_inference(model, ds.x_test),
        seed=seed,
    )


def train_member(ds, spec: ArchSpec, run_dir, *, seed: int = 0, progress: bool = True) -> Member:
    """Train ``spec`` into ``<run_dir>/models/<spec.folder>`` (or reload it when it finished there before).

    A spec with a seed that names the training notebook's model again (its model and recipe, for as many
    epochs) is a seed of the headline: it trains with ``03_train``'s own settings as that notebook recorded
    them (02's tuned settings and its overrides included), only the seed changed, so that the seed spread and
    the ensemble compare runs of one configuration. Any other spec trains with its recipe.
    """
    from cifarkit.training import train

    seed = seed if spec.seed is None else spec.seed
    config = _spec_config(spec, seed)
    main = main_model_settings(run_dir, spec, config) if spec.seed is not None else None
    if main is not None:
        config = main.replace(seed=seed)
    out_dir = run_folder.model_dir(run_dir, spec.folder)
    res = train(ds, config, out_dir, resume=True, progress=progress)
    return member_from_model(
        spec.label,
        spec.model,
        res.model,
        res.paths["model"],
        ds,
        origin="trained in 06 with 03's settings" if main is not None else "trained in 06",
        epochs=res.metrics["epochs"],
        recipe=spec.recipe,
        train_seconds=res.metrics.get("train_seconds"),
        seed=seed,
    )


def _spec_config(spec: ArchSpec, seed: int):
    """``spec``'s recipe resolved for its model, epochs (0: the recipe's), overrides and ``seed``."""
    from cifarkit.training import resolve_recipe

    settings = dict(spec.overrides, model=spec.model, seed=seed)
    if spec.epochs:
        settings["epochs"] = spec.epochs
    return resolve_recipe(spec.recipe, **settings)


def separate_seeds(specs: list[ArchSpec], run_dir) -> tuple[list[ArchSpec], list[str]]:
    """``specs`` with each seed of the training notebook's model (:func:`main_model_settings`) that repeats a seed
    already used for it (03's own, or an earlier entry's) moved to the next seed not used, and a sentence per move.

    Training is seeded, so a repeated seed trains the same model again: an ensemble member that adds nothing, a
    "seed" that varies nothing, and the time of a whole training run spent. It happens when a profile's entry names
    seed 1 (``fastnet:fast:4:1``) and the run's ``SEED`` is 1. Other entries are left as they are."""
    taken, out, moved = set(), [], []
    for spec in specs:
        main = main_model_settings(run_dir, spec, _spec_config(spec, spec.seed)) if spec.seed is not None else None
        if main is None:
            out.append(spec)
            continue
        taken.add(main.seed)
        new = spec.seed
        while new in taken:
            new += 1
        taken.add(new)
        if new != spec.seed:
            moved.append(
                f"{spec.label} names seed {spec.seed}, which {run_folder.TRAIN}'s model was already trained with "
                f"in this run (its own seed or an earlier entry's): trained with seed {new} instead, the next one "
                "not used"
            )
            spec = replace(spec, seed=new)
        out.append(spec)
    return out, moved


def main_model_settings(run_dir, spec: ArchSpec, config):
    """``03_train``'s recorded settings (a ``TrainConfig``) when ``spec``, resolved to ``config``, is its model
    again: the same model and recipe for the same epochs. None otherwise, or when 03 recorded no settings."""
    from cifarkit.training import TrainConfig

    if not run_folder.metrics_path(run_dir, run_folder.TRAIN).exists():
        return None
    m = run_folder.load_metrics(run_dir, run_folder.TRAIN)
    recorded = m.get("config") or {}
    if not recorded or (m.get("model"), m.get("recipe"), recorded.get("epochs")) != (
        config.model,
        spec.recipe,
        config.epochs,
    ):
        return None
    return TrainConfig.from_dict(recorded)


def member_from_training_notebook(ds, run_dir) -> Member:
    """The model trained by the training notebook (``03_train``) of this run, found through its metrics file."""
    m = run_folder.load_metrics(run_dir, run_folder.TRAIN)
    path = run_folder.resolve_model_path(run_dir)
    model = run_folder.load_model(path, ds.num_classes)
    label = f"{m['model']}/{m.get('recipe', '?')}/{m.get('epochs_run', '?')}ep"
    return member_from_model(
        label,
        m["model"],
        model,
        path,
        ds,
        origin=run_folder.TRAIN,
        epochs=m.get("epochs_run", 0),
        recipe=m.get("recipe", "?"),
        train_seconds=m.get("train_seconds"),
        seed=(m.get("config") or {}).get("seed"),
    )


def seed_variation(members: list[Member], y_test) -> dict | None:
    """Test accuracy over seeds of the training notebook's model: the members with its architecture, recipe
    and epochs (the training notebook's own run and the seeds trained in 06). None with fewer than two seeds.

    Returns:
        ``{"model", "n", "seeds", "test_accs", "mean", "sd"}`` (``sd`` with ``ddof=1``).
    """
    if not members:
        return None
    ref = members[0]
    same = [m for m in members if (m.arch, m.recipe, m.epochs) == (ref.arch, ref.recipe, ref.epochs)]
    if len({m.seed for m in same}) < 2:
        return None
    accs = [m.test_acc(y_test) for m in same]
    return {
        "model": f"{ref.arch}/{ref.recipe}/{ref.epochs}ep",
        "n": len(same),
        "seeds": [m.seed for m in same],
        "test_accs": accs,
        "mean": float(np.mean(accs)),
        "sd": float(np.std(accs, ddof=1)),
    }


def no_seed_variation_reason(members: list[Member]) -> str:
    """Why :func:`seed_variation` found nothing to show: the training notebook's model (the first member) was
    trained once, or trained again only for other epochs (then the runs are different models, not seeds)."""
    if members:
        ref = members[0]
        others = sorted(
            {m.epochs for m in members[1:] if (m.arch, m.recipe) == (ref.arch, ref.recipe) and m.epochs != ref.epochs}
        )
        if others:
            return (
                f"{ref.arch} with the {ref.recipe} recipe was trained again in this run, but for "
                f"{' and '.join(map(str, others))} epoch{'s' if others != [1] else ''} against the training "
                f"notebook's {ref.epochs}: runs of different lengths are not seeds of one model, so there is no "
                "seed variation to show."
            )
    return "This run trains the model with one seed only, so there is no seed variation to show."


def unique_names(members: list[Member]) -> list[Member]:
    """Make member names unique (``name``, ``name #2``, ...) so that tables and plots keep them apart."""
    seen: dict[str, int] = {}
    for m in members:
        seen[m.name] = seen.get(m.name, 0) + 1
        if seen[m.name] > 1:
            m.name = f"{m.name} #{seen[m.name]}"
    return members


def comparison_table(members: list[Member], y_val, y_test, *, n_boot: int = 2000, seed: int = 0):
    """One row per member: validation and test accuracy (with a bootstrap CI), size, FLOPs, training and inference speed."""
    import pandas as pd

    rows = []
    for m in members:
        pred = m.test_probs.argmax(axis=1)
        ci = stats.accuracy_ci(y_test, pred, n_boot=n_boot, seed=seed)
        rows.append(
            {
                "model": m.name,
                "origin": m.origin,
                "epochs": m.epochs,
                "val_acc": m.val_acc(y_val),
                "test_acc": ci["accuracy"],
                "ci_low": ci["ci_low"],
                "ci_high": ci["ci_high"],
                "params": m.params,
                "mflops": m.flops / 1e6 if m.flops else None,
                "train_seconds": m.train_seconds,
                "inference_img_per_s": m.inference_images_per_sec,
            }
        )
    return pd.DataFrame(rows)


def pareto_mask(cost, acc) -> np.ndarray:
    """True for the points no other point beats on both lower-or-equal cost and higher-or-equal accuracy (one strictly)."""
    cost = np.asarray(cost, dtype=float)
    acc = np.asarray(acc, dtype=float)
    mask = np.ones(len(cost), dtype=bool)
    for i in range(len(cost)):
        dominated = (cost <= cost[i]) & (acc >= acc[i]) & ((cost < cost[i]) | (acc > acc[i]))
        mask[i] = not dominated.any()
    return mask


def pairwise_mcnemar(members: list[Member], y_test):
    """McNemar p-values between every pair of members (a symmetric DataFrame, 1.0 on the diagonal)."""
    import pandas as pd

    names = [m.name for m in members]
    p = pd.DataFrame(np.ones((len(members), len(members))), index=names, columns=names)
    for i, a in enumerate(members):
        for j in range(i + 1, len(members)):
            r = stats.mcnemar(y_test, a.test_probs.argmax(axis=1), members[j].test_probs.argmax(axis=1))
            p.iloc[i, j] = p.iloc[j, i] = r["p_value"]
    return p


def full_cifar10(ds) -> tuple[bool, str]:
    """Whether ``ds`` is the whole CIFAR-10, recognized by its content (class names and image counts), not its file.

    Returns:
        ``(is_full, why)`` with a sentence saying what was found.
    """
    from cifarkit.data import CIFAR10_CLASSES

    if [str(c).lower() for c in ds.class_names] != list(CIFAR10_CLASSES):
        return False, "the data's classes are not CIFAR-10's"
    n_train, n_test = len(ds.y_train) + len(ds.y_val), len(ds.y_test)
    if (n_train, n_test) != (50_000, 10_000):
        return False, (
            f"the run used {n_train:,} training and {n_test:,} test images of CIFAR-10, not all 50,000 and 10,000"
        )
    return True, "the run used all of CIFAR-10 (recognized by its classes and image counts)"


def replication_table(members: list[Member], y_val, y_test, *, full_data: bool = False):
    """Published CIFAR-10 errors beside this run's, for the published architectures this run trained.

    A row is a **replication** only when the model trained with the paper's recipe, for at
    least the paper's epochs, on the full CIFAR-10 (``full_data``); otherwise the published
    number is there for reference and ``comparison`` says why it does not compare (epochs,
    recipe, data); ``reasons`` holds the same reasons as a list (empty for a replication), for readers
    of the recorded metrics. The member with the best validation accuracy stands for its architecture.
    """
    import pandas as pd

    from cifarkit.models import model_info

    rows = []
    for name, pub in published_results().items():
        ours = [m for m in members if m.arch == name]
        if not ours:
            continue
        best = max(ours, key=lambda m: m.val_acc(y_val))
        paper_recipe = model_info(name).get("paper_recipe")
        reasons = []
        if best.epochs < pub["epochs"]:
            reasons.append(f"{best.epochs} of the paper's {pub['epochs']} epochs")
        if best.recipe not in ("paper", paper_recipe):
            reasons.append(f"recipe {best.recipe!r}, not the paper's")
        if not full_data:
            reasons.append("not the full CIFAR-10")
        rows.append(
            {
                "model": name,
                "recipe": best.recipe,
                "epochs_run": best.epochs,
                "measured_error_pct": round(100 * (1 - best.test_acc(y_test)), 2),
                "published_error_pct": pub["error"],
                "published_epochs": pub["epochs"],
                "comparison": "replication" if not reasons else "for reference only: " + "; ".join(reasons),
                "reasons": reasons,
                "source": pub["source"],
            }
        )
    return pd.DataFrame(
        rows,
        columns=[
            "model",
            "recipe",
            "epochs_run",
            "measured_error_pct",
            "published_error_pct",
            "published_epochs",
            "comparison",
            "reasons",
            "source",
        ],
    )


def evaluate_ensembles(
    members: list[Member], y_val, y_test, *, n_boot: int = 2000, seed: int = 0, margin: float = 0.03
) -> dict:
    """Soft, hard and weighted votes of calibrated members, with the gain over the best member.

    Everything is chosen on validation: the members (those within ``margin`` of the best validation
    accuracy, so that a much weaker model does not pull the vote down), each member's temperature
    (:func:`cifarkit.analysis.ensembles.calibrate`), the weights of the weighted vote, the best member
    and the method reported.

    Returns:
        ``{"members", "left_out", "temperatures", "best_member", "best_member_test_acc", "methods":
        {method: {...}}, "best_method", "ensemble_gain", "ensemble_gain_ci", "degenerate"}``.
    """
    val_accs = [m.val_acc(y_val) for m in members]
    chosen = ensembles.select_members(val_accs, margin=margin) if len(y_val) else list(range(len(members)))
    if len(chosen) < 2:
        chosen = list(range(len(members)))
    if len(chosen) < 2:
        raise ValueError(
            f"An ensemble needs at least two trained models; this run has {len(members)}. "
            "Add architectures to ARCHITECTURES."
        )
    picked = [members[i] for i in chosen]
    val, test, temps = ensembles.calibrate(
        np.stack([m.val_probs for m in picked]), np.stack([m.test_probs for m in picked]), y_val
    )
    best = int(np.argmax([val_accs[i] for i in chosen]))
    best_pred = picked[best].test_probs.argmax(axis=1)
    weights = ensembles.fit_weights(val, y_val)
    out = {
        "members": [m.name for m in picked],
        "left_out": [m.name for i, m in enumerate(members) if i not in chosen],
        "selection": f"members within {margin:.0%} of the best validation accuracy",
        "temperatures": temps,
        "best_member": picked[best].name,
        "best_member_val_acc": val_accs[chosen[best]],
        "best_member_test_acc": float(np.mean(best_pred == y_test)),
        "methods": {},
    }
    for method in ensembles.METHODS:
        w = weights if method == "weighted" else None
        val_pred = ensembles.ensemble_predictions(val, method=method, weights=w)
        pred = ensembles.ensemble_predictions(test, method=method, weights=w)
        ci = stats.accuracy_ci(y_test, pred, n_boot=n_boot, seed=seed)
        gain = stats.paired_difference_ci(y_test, pred, best_pred, n_boot=n_boot, seed=seed)
        out["methods"][method] = {
            "val_acc": float(np.mean(val_pred == y_val)),
            "test_acc": ci["accuracy"],
            "test_acc_ci": [ci["ci_low"], ci["ci_high"]],
            "gain": gain["difference"],
            "gain_ci": [gain["ci_low"], gain["ci_high"]],
            "mcnemar_vs_best": stats.mcnemar(y_test, pred, best_pred),
            "weights": [float(x) for x in w] if w is not None else None,
        }
    method = max(ensembles.METHODS, key=lambda k: out["methods"][k]["val_acc"])
    out["best_method"] = method
    out["ensemble_gain"] = out["methods"][method]["gain"]
    out["ensemble_gain_ci"] = out["methods"][method]["gain_ci"]
    out["degenerate"] = bool(max(weights) >= ensembles.DEGENERATE_WEIGHT)
    return out


def ensemble_table(ens: dict):
    """:func:`evaluate_ensembles`' votes as a report's table, one row per vote (the one chosen on validation
    marked): validation accuracy, test accuracy and gain over the best member with their 95% intervals in
    points, McNemar's p against the best member, the weights. Cells are text; the caller escapes them."""
    import pandas as pd

    nb = "\u00a0"  # no-break spaces keep a figure with its interval on one line of the PDF's narrow columns

    def rows():
        for k, v in ens["methods"].items():
            (lo, hi), (glo, ghi) = v["test_acc_ci"], v["gain_ci"]
            yield {
                "vote": k + (" (chosen)" if k == ens["best_method"] else ""),
                "validation": f"{v['val_acc']:.2%}",
                "test % (95% CI)": f"{100 * v['test_acc']:.2f}{nb}({100 * lo:.2f}-{100 * hi:.2f})",
                "gain, points (95% CI)": f"{100 * v['gain']:+.2f}{nb}({100 * glo:+.2f},{nb}{100 * ghi:+.2f})",
                "McNemar p": stats.p_value_text(v["mcnemar_vs_best"]["p_value"]),
                "weights": ", ".join(f"{w:.2f}" for w in v["weights"]) if v["weights"] else "",
            }

    return pd.DataFrame(list(rows())).set_index("vote")


def ensemble_summary(ens: dict) -> str:
    """Markdown under the ensemble table: the members and their temperatures, those left out, the best member,
    the vote chosen on validation with its gain and whether that is beyond noise, and a degenerate weighted
    vote named as such. Names are escaped."""
    from cifarkit import escape
    from cifarkit.analysis import verdicts

    best = ens["methods"][ens["best_method"]]
    weights = (ens["methods"].get("weighted") or {}).get("weights") or []
    temps = ", ".join(f"{t:.2f}" for t in ens["temperatures"])
    text = f"Members: {escape.names(ens['members'])} (temperatures {temps})"
    if ens["left_out"]:
        text += f"; left out as too weak on validation: {escape.names(ens['left_out'])}"
    text += (
        ".  \n"
        f"The best single model on validation is **{escape.md(ens['best_member'])}** "
        f"({ens['best_member_test_acc']:.2%} test). The ensemble method chosen on validation, the "
        f"**{ens['best_method']} vote**, scores **{best['test_acc']:.2%}** "
        f"(McNemar against the best member {stats.format_p(best['mcnemar_vs_best']['p_value'])}). "
        + verdicts.gain(best["gain"], best["gain_ci"], "The ensemble", of="the best member's ")
    )
    if ens.get("degenerate"):
        text += (
            f" The weighted vote is degenerate: one member carries {max(weights):.2f} of the weight, so it is "
            "that member rather than an ensemble."
        )
    return text
