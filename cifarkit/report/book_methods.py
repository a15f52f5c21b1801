"""The study book's Methods section, written from the run's manifest and metrics.

Each subsection states what this run did, with its own numbers: the data and its
checksum, the split, the preprocessing, the architecture and every training setting
(the effective learning rate is computed from the recorded configuration), and in a
few sentences each how tuning, evaluation, baselines and ensembles were done. Values
from data or parameters are escaped; papers are cited through the run's
:class:`cifarkit.report.references.Citations`.
"""

from __future__ import annotations

from cifarkit import allocator, escape, run_folder
from cifarkit.analysis.corruptions import severity_runs
from cifarkit.data import split_record
from cifarkit.report.book_parts import StudyRun, json_text, kv_table, p
from cifarkit.report.book_results import Outline
from cifarkit.report.key_results import _num
from cifarkit.report.references import model_reference
from cifarkit.training.config import default_settings
from cifarkit.wording import is_one, plural

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
SPLITS = tuple(split_record.SPLIT_WORDS.items())  # (key, word) in order: train, val, test


def _missing(run: StudyRun, name: str) -> str:
    return p(
        f"{escape.html(name)} recorded no results in this run ({escape.html(run.status(name))}), "
        "so this part of the study is missing."
    )


def peak_lr(config: dict) -> float | None:
    """The schedule's peak learning rate: ``lr * batch_size / base_batch_size`` under linear scaling, else ``lr``."""
    lr = _num(config.get("lr"))
    if lr is None:
        return None
    if config.get("lr_scaling") == "linear" and config.get("batch_size") and config.get("base_batch_size"):
        return lr * config["batch_size"] / config["base_batch_size"]
    return lr


def split_counts(run: StudyRun) -> dict[str, int]:
    """Images per split: summed over 01's per-class counts, else the data record's totals."""
    per_class = run.m(run_folder.EXPLORE).get("counts") or {}
    if per_class:
        return {s: sum((per_class.get(s) or {}).values()) for s, _ in SPLITS}
    return {s: n for s, n in (run.data().get("counts") or {}).items() if isinstance(n, int)}


def is_cifar10(run: StudyRun) -> bool:
    names = run.m(run_folder.EXPLORE).get("class_names") or run.data().get("class_names") or []
    return [str(n).lower() for n in names] == CIFAR10_CLASSES


# ------------------------------------------------------------------ data, split, preprocessing
def _counts_table(run: StudyRun) -> str:
    per_class = run.m(run_folder.EXPLORE).get("counts") or {}
    classes = list((per_class.get("train") or {}).keys())
    if not classes or len(classes) > 20:
        return ""
    head = "<tr><th>class</th>" + "".join(f"<th>{label}</th>" for _, label in SPLITS) + "</tr>"
    rows = "".join(
        f"<tr><td>{escape.html(c)}</td>"
        + "".join(f"<td>{(per_class.get(s) or {}).get(c, 0):,}</td>" for s, _ in SPLITS)
        + "</tr>"
        for c in classes
    )
    totals = split_counts(run)
    rows += "<tr><th>all</th>" + "".join(f"<th>{totals.get(s, 0):,}</th>" for s, _ in SPLITS) + "</tr>"
    return f'<table class="grid counts">{head}{rows}</table>'


def _data(run: StudyRun) -> str:
    data, man = run.data(), run.manifest.get("data") or {}
    m1 = run.m(run_folder.EXPLORE)
    names = m1.get("class_names") or data.get("class_names") or []
    counts = split_counts(run)
    size = data.get("image_size") or [run.param("IMAGE_SIZE", 32)] * 2
    subset = run.param("DATA_SUBSET") or data.get("subset")
    rows = [
        (
            "Source",
            escape.html(man.get("source") or data.get("source") or "-")
            + f" ({escape.html(data.get('source_kind', '?'))})",
        ),
        ("sha256", escape.html(man.get("sha256") or data.get("source_sha256") or "- (not a single file)")),
        (
            "Subset",
            f"at most {escape.html(subset)} images per class and split (DATA_SUBSET)" if subset else "all images",
        ),
        ("Image size", f"{escape.html(size[0])} x {escape.html(size[-1])} pixels"),
        ("Classes", f"{len(names)}: " + ", ".join(escape.html(n) for n in names)),
        (
            "Images per split",
            ", ".join(f"{counts[s]:,} {label}" for s, label in SPLITS if s in counts)
            + (f" ({sum(counts.values()):,} in all)" if counts else "-"),
        ),
    ]
    if man.get("size_bytes"):
        rows.insert(2, ("Size", f"{man['size_bytes']:,} bytes"))
    if m1:
        across = (m1.get("duplicates") or {}).get("across") or {}
        rows.append(("Skipped files", f"{m1.get('skipped_files', 0):,} unreadable"))
        rows.append(("Duplicates across splits", escape.html(", ".join(f"{k}: {v}" for k, v in across.items()) or "-")))
    text = (
        f"The data is CIFAR-10 {run.cites.cite('krizhevsky2009cifar')}, read from the source below."
        if is_cifar10(run)
        else "The data is the source below, with the classes it defines."
    )
    if m1:
        drawn = m1.get("embedding_samples") or {}
        ways = (["PCA"] if drawn.get("pca") else []) + (
            [f"t-SNE {run.cites.cite('vandermaaten2008tsne')}"] if drawn.get("tsne") else []
        )
        text += " 01_explore_data describes it (counts, samples, colour statistics, duplicates)" + (
            f" and embeds a sample in two dimensions with {' and '.join(ways)}." if ways else "."
        )
    table = _counts_table(run)
    return p(text) + kv_table(rows) + (p("Images per class and split (from 01_explore_data):") + table if table else "")


def _split(run: StudyRun) -> str:
    data, m1 = run.data(), run.m(run_folder.EXPLORE)
    val = data.get("val_fraction", run.param("VAL_FRACTION"))
    size = (data.get("image_size") or [run.param("IMAGE_SIZE", 32)])[0]
    origin = data.get("split_origin") or ""
    share = (
        f" The validation split holds a share of {escape.html(val)} of the training data (stratified by class), "
        f"drawn with seed {escape.html(data.get('seed', run.manifest.get('seed')))}."
        if split_record.carves_validation(origin)
        else ""
    )
    text = (
        f"<b>Split.</b> {escape.html(split_record.sentence(origin))}.{share} Every choice (settings, the best model, vote "
        "weights, the temperature) is made on validation; the test split is only scored."
    )
    pre = (
        f"<b>Preprocessing.</b> Every image is converted to RGB and resized to {escape.html(size)} x "
        f"{escape.html(size)} pixels: its shorter side to {escape.html(size)}, then a centre crop (images already "
        "that size are left as they are). The model's first layer normalizes each channel with the mean and "
        "standard deviation of the training split only"
    )
    mean, std = m1.get("channel_mean"), m1.get("channel_std")
    if mean and std:
        pre += (
            " (on a 0-1 scale: mean "
            + ", ".join(f"{v:.4f}" for v in mean)
            + "; standard deviation "
            + ", ".join(f"{v:.4f}" for v in std)
            + ", for R, G, B)"
        )
    return p(text) + p(pre + ", so the saved model takes raw 0-255 pixels.")


# ------------------------------------------------------------------ training
def _augment_text(c: dict) -> str:
    parts = []
    if c.get("crop"):
        parts.append(f"random crops after {c['crop']}-pixel {c.get('pad_mode', '')} padding")
    if c.get("flip"):
        parts.append(
            "horizontal flips" + (" (alternating per epoch, as in airbench)" if c.get("alternate_flip") else "")
        )
    if c.get("cutout"):
        parts.append(f"cutout of {c['cutout']} x {c['cutout']} pixels")
    for name in ("mixup", "cutmix"):
        if c.get(name):
            parts.append(f"{name} (alpha {c[name]:g})")
    return escape.html(", ".join(parts) or "none")


def _schedule_text(c: dict) -> str:
    kind = c.get("schedule", "?")
    text = {
        "cosine": f"cosine decay to {c.get('final_lr_factor', 0):g} x the peak",
        "onecycle": f"linear decay to {c.get('final_lr_factor', 0):g} x the peak (one cycle)",
        "step": f"x {c.get('gamma', 0.1):g} at {', '.join(f'{m:g}' for m in c.get('milestones') or [])} of training",
        "constant": "constant",
    }.get(kind, str(kind))
    warm = _num(c.get("warmup_epochs")) or 0
    if warm:
        text += f", after {plural(f'{warm:g}', 'epoch')} of linear warmup from {c.get('warmup_start_factor', 0):g} x the peak"
    return escape.html(f"{kind}: {text}")


def _optimizer_text(c: dict) -> str:
    """The optimizer row; a key missing from an older recorded config reads as ``TrainConfig``'s default."""
    c = {**default_settings(), **c}
    nesterov = ", Nesterov" if c["nesterov"] else ""
    if c["optimizer"] == "adamw":
        text = f"AdamW (beta1 {c['momentum']:g})"
    elif c["optimizer"] == "muon":
        least = int(c["muon_min_filters"] or 0)
        which = f"the convolution kernels of {least} or more filters" if least else "the convolution kernels"
        text = (
            f"Muon for {which} (orthogonalized Nesterov momentum {c['muon_momentum']:g}, "
            f"learning rate {c['muon_lr']:g} x the schedule's factor); for the other parameters SGD, "
            f"momentum {c['momentum']:g}{nesterov}"
        )
    else:
        text = f"SGD, momentum {c['momentum']:g}{nesterov}"
    return escape.html(text)


def _lr_paragraph(run: StudyRun, c: dict) -> str:
    peak = peak_lr(c)
    if peak is None:
        return ""
    if c.get("lr_scaling") == "linear":
        return p(
            f"<b>Effective learning rate.</b> The recipe gives the learning rate {c['lr']:.4g} for a batch of "
            f"{c.get('base_batch_size')} images. Under linear scaling {run.cites.cite('goyal2017largebatch')} the "
            f"rate grows in proportion to the batch size, so this run's batch of {c.get('batch_size')} gives "
            f"{c['lr']:.4g} x {c.get('batch_size')} / {c.get('base_batch_size')} = <b>{peak:.4g}</b>, the peak "
            "(effective) learning rate of the schedule."
        )
    return p(f"<b>Effective learning rate.</b> {peak:.4g}, used as given (no scaling with the batch size).")


def _training_rows(run: StudyRun, m3: dict, c: dict) -> list[tuple[str, str]]:
    ref = model_reference(m3.get("model"))
    facts = run.train_facts()
    rows = [
        (
            "Architecture",
            f"{escape.html(m3.get('model', '-'))}"
            + (f" {run.cites.cite(ref)}" if ref else "")
            + (f", {m3['params']:,} parameters" if isinstance(m3.get("params"), int) else ""),
        ),
        ("Recipe", escape.html(m3.get("recipe", "-"))),
        ("Epochs", f"{escape.html(c.get('epochs', '?'))} planned, {escape.html(m3.get('epochs_run', '?'))} run"),
        ("Batch size", escape.html(c.get("batch_size", "?"))),
        ("Optimizer", _optimizer_text(c)),
        ("Peak learning rate", f"{peak_lr(c):.4g}" if peak_lr(c) is not None else "-"),
        ("Schedule", _schedule_text(c)),
        ("Weight decay", f"{c.get('weight_decay', 0):g} ({escape.html(c.get('weight_decay_mode', 'l2'))})"),
        ("Label smoothing", f"{c.get('label_smoothing', 0):g}"),
        ("Augmentation", _augment_text(c)),
    ]
    if c.get("label_smoothing"):
        rows[-2] = ("Label smoothing", f"{c['label_smoothing']:g} {run.cites.cite('szegedy2016inception')}")
    if c.get("lookahead_every"):
        rows.append(("Lookahead", f"every {c['lookahead_every']} steps {run.cites.cite('zhang2019lookahead')}"))
    if c.get("progressive_size"):
        rows.append(
            (
                "Progressive resizing",
                escape.html(
                    f"{_first_epochs(c.get('progressive_epochs'))} on images downscaled to "
                    f"{c['progressive_size']} x {c['progressive_size']} pixels, the rest at full size"
                ),
            )
        )
    if c.get("whiten_init"):
        rows.append(("Whitening stem", f"initialized from the training data {run.cites.cite('jordan2024airbench')}"))
    if c.get("class_weight", "none") != "none":
        rows.append(("Class weights", escape.html(c["class_weight"])))
    rows.append(("Pretrained weights", escape.html(c.get("pretrained") or "none (trained from scratch)")))
    rows.append(
        ("Tuned settings", "applied (from 02_tune)" if (m3.get("tuned_params") or {}).get("applied") else "not applied")
    )
    mp = facts.get("mixed_precision", "?") if facts else "?"
    computed = "float32" if mp == "off" else f"{mp} autocast (weights float32)"
    precision = "not recorded (the model folder holds no metrics.json)"
    if facts:
        precision = (
            f"{escape.html(computed)} on {escape.html(facts.get('device', '?'))}, "
            f"{plural(escape.html(facts.get('torch_threads', '?')), 'torch thread')}"
        )
        malloc = allocator.describe((facts.get("versions") or {}).get("allocator"))
        precision += f"; {escape.html(malloc)}" if malloc else ""
    rows.append(("Precision and device", precision))
    return rows


def _training(run: StudyRun) -> str:
    m3 = run.m(run_folder.TRAIN)
    if not m3:
        return _missing(run, run_folder.TRAIN)
    c = m3.get("config") or {}
    return kv_table(_training_rows(run, m3, c)) + _lr_paragraph(run, c)


# ------------------------------------------------------------------ tuning, evaluation, baselines, ensembles
def _tuning(run: StudyRun) -> str:
    m2 = run.m(run_folder.TUNE)
    if not m2:
        return _missing(run, run_folder.TUNE)
    signal = m2.get("tuning_signal") or {}
    return p(
        f"Optuna {run.cites.cite('akiba2019optuna')} searched the {escape.html(m2.get('space', '?'))} space of "
        f"settings for {escape.html(m2.get('model', '?'))} (recipe {escape.html(m2.get('recipe', '?'))}) with a TPE "
        f"sampler: {escape.html(m2.get('n_trials_requested', '?'))} trials of "
        f"{plural(escape.html(m2.get('epochs_per_trial', '?')), 'epoch')} each, the first with the recipe's own settings, poor trials stopped by the "
        f"{escape.html(m2.get('pruner', '?'))} pruner. Each trial is scored by its validation accuracy. The best "
        "trial counts as better than the recipe only when the 95% interval of its margin lies above zero ("
        f"{escape.html(signal.get('method') or 'method not recorded')}); only then does 03_train apply its settings."
    )


def _evaluation(run: StudyRun) -> str:
    m4, m5 = run.m(run_folder.EVALUATE), run.m(run_folder.BASELINES)
    n_boot = m4.get("n_boot") or run.param("N_BOOT")
    methods = sorted({str(v.get("method")) for v in (m5.get("mcnemar") or {}).values() if isinstance(v, dict)})
    text = (
        f"Every accuracy comes with a 95% percentile-bootstrap interval over the test images ({escape.html(n_boot)} "
        f"resamples, N_BOOT) {run.cites.cite('efron1993bootstrap')}. Two classifiers scored on the same images are "
        f"compared with McNemar's test {run.cites.cite('mcnemar1947')}"
        + (f" ({escape.html(', '.join(methods))} form)" if methods else "")
        + ", which counts the images where exactly one of them is right."
    )
    if not m4:
        return p(text) + _missing(run, run_folder.EVALUATE)
    text2 = (
        f"04_evaluate measures calibration by the expected calibration error over {escape.html(m4.get('ece_bins', '?'))} "
        f"bins and fits temperature scaling {run.cites.cite('guo2017calibration')} on the validation split "
        + (f"(T = {m4['temperature']:.3g})" if _num(m4.get("temperature")) is not None else "")
        + "; it leaves the predictions unchanged."
    )
    if m4.get("robustness"):
        text2 += (
            f" Robustness is the accuracy on {escape.html(m4.get('robustness_n', '?'))} test images under "
            f"{plural(len(m4['robustness']), 'corruption')} at {_severities(m4['robustness'])}, generated with the "
            f"published CIFAR-10-C definitions {run.cites.cite('hendrycks2019corruptions')}."
        )
    if m4.get("saliency_method"):
        cite = run.cites.cite("selvaraju2017gradcam") if "grad-cam" in str(m4["saliency_method"]).lower() else ""
        text2 += f" Saliency maps: {escape.html(m4['saliency_method'])} {cite}."
    return p(text) + p(text2)


def _severities(robustness: dict) -> str:
    """``"severities 1-5"``: the severities 04 measured, read from its ``{corruption: {severity: accuracy}}``."""
    found = {str(s) for cells in robustness.values() if isinstance(cells, dict) for s in cells}
    if found and all(s.isdigit() for s in found):
        return severity_runs([int(s) for s in found])
    return "severities " + escape.html(", ".join(sorted(found)) or "?")


def _baselines(run: StudyRun) -> str:
    m5 = run.m(run_folder.BASELINES)
    if not m5:
        return _missing(run, run_folder.BASELINES)
    rows = [
        (
            b.get("title") or b.get("name") or "?",
            f"{escape.html(b.get('features', '-'))}; {b.get('train_images_used', '?'):,} training images; "
            f"chosen on validation: {json_text(b.get('selected') or {})}"
            if isinstance(b.get("train_images_used"), int)
            else escape.html(b.get("features", "-")),
        )
        for b in m5.get("baselines") or []
        if isinstance(b, dict)
    ]
    text = (
        "05_baselines trains classic classifiers on the same splits; their hyperparameters are chosen on "
        "validation, and each is compared with the CNN by McNemar's test (reference: "
        f"{escape.html(m5.get('mcnemar_reference', 'the best CNN'))})."
    )
    return p(text) + kv_table(rows)


def _architectures(run: StudyRun) -> str:
    m6 = run.m(run_folder.ARCHITECTURES)
    if not m6:
        return _missing(run, run_folder.ARCHITECTURES)
    rows = []
    for m in m6.get("models") or []:
        ref = model_reference(m.get("arch") or m.get("name"))
        rows.append(
            (
                str(m.get("name", "?")),
                f"{escape.html(m.get('arch', '?'))}{' ' + run.cites.cite(ref) if ref else ''}, recipe "
                f"{escape.html(m.get('recipe', '?'))}, {plural(escape.html(m.get('epochs', '?')), 'epoch')}; "
                f"{escape.html(m.get('origin', '?'))}",
            )
        )
    text = (
        "06_architectures_and_ensembles compares the models below on test accuracy (with intervals), parameters, "
        "FLOPs, training time and inference speed, and combines them by soft voting (mean probability), hard "
        "voting (majority) and weighted voting (weights fitted on validation). The best single model and the "
        "best vote are chosen on validation"
    )
    best = (m6.get("ensembles") or {}).get("best_method")
    return p(text + (f" (here: the {escape.html(best)} vote)." if best else ".")) + kv_table(rows)


def _cross_validation(run: StudyRun) -> str | None:
    m7 = run.m(run_folder.CROSS_VALIDATION)
    if run_folder.CROSS_VALIDATION not in run.expected():
        return None  # an optional notebook this run left out
    if not m7:
        return _missing(run, run_folder.CROSS_VALIDATION)
    cv = m7.get("cross_validation") or {}
    if not cv.get("ran"):
        return p(f"07_cross_validation ran but did not cross-validate: {escape.html(cv.get('reason') or '-')}.")
    c = m7.get("config") or {}
    text = (
        f"07_cross_validation pools the training, validation and test images ({m7.get('n_images', 0):,} in all) and "
        f"cuts them into {m7.get('k', '?')} folds, stratified by class"
        + (" with every group in one fold (scikit-learn's StratifiedGroupKFold)" if m7.get("grouped") else "")
        + (" (StratifiedKFold)" if not m7.get("grouped") else "")
        + f", seeded ({escape.html(cv.get('reason') or '')}). Each fold trains {escape.html(m7.get('model', '?'))} "
        f"(recipe {escape.html(m7.get('recipe', '?'))}, {plural(escape.html(c.get('epochs', '?')), 'epoch')}, batch "
        f"{escape.html(c.get('batch_size', '?'))}) on the other folds less a stratified validation carve, which "
        "chooses the fold's operating point; the held-out fold is only scored. Accuracy, balanced accuracy and "
        "ROC AUC are given per fold (mean ± sd) and pooled over the out-of-fold predictions with percentile-"
        f"bootstrap intervals {run.cites.cite('efron1993bootstrap')}; the rates at the operating point are pooled "
        "over the folds' calls with Wilson score intervals."
    )
    return p(text)


def _precision_text(precision: str) -> str:
    return {
        "off": "float32 (run_all.py --precision off)",
        "bf16": "bf16 autocast, weights float32 (run_all.py --precision bf16)",
    }.get(
        precision,
        "auto: bf16 autocast on a GPU or a CPU with bf16 units that oneDNN may use, float32 otherwise (03's metrics record "
        "which)",
    )


def cpu_text(hw: dict, unknown: str = "?") -> str:
    """``"AMD EPYC, 2 logical cores (avx2 fma)"`` from a manifest's ``hardware`` (plain text: escape it)."""
    text = f"{hw.get('cpu') or unknown}, {hw.get('cpu_count', '?')} logical cores"
    text += f" ({hw['cpu_flags']})" if hw.get("cpu_flags") else ""
    limits = hw.get("isa_limits") or {}
    return text + ("; instruction set limited: " + ", ".join(f"{k}={v}" for k, v in limits.items()) if limits else "")


def _hardware(run: StudyRun) -> str:
    hw, versions = run.manifest.get("hardware") or {}, run.manifest.get("versions") or {}
    rows = [
        ("CPU", escape.html(cpu_text(hw))),
        ("Memory", f"{escape.html(hw.get('memory_gib', '?'))} GiB"),
        ("GPU", escape.html(", ".join(hw.get("gpus") or []) or "none")),
        ("Precision", escape.html(_precision_text(run.manifest.get("precision") or "auto"))),
        ("Platform", escape.html(hw.get("platform", "?"))),
        (
            "Software",
            escape.html(
                ", ".join(
                    f"{k} {v}"
                    for k, v in versions.items()
                    if k in ("python", "torch", "keras", "numpy", "scikit-learn")
                )
            ),
        ),
    ]
    return kv_table(rows)


SUBSECTIONS = (
    ("Data", _data),
    ("Split and preprocessing", _split),
    ("Model and training", _training),
    ("Tuning", _tuning),
    ("Evaluation", _evaluation),
    ("Baselines", _baselines),
    ("Architectures and ensembles", _architectures),
    ("Cross-validation", _cross_validation),
    ("Hardware and software", _hardware),
)


def methods_html(run: StudyRun, outline: Outline) -> str:
    parts = [outline.heading(2, "Methods", anchor="methods")]
    for title, build in SUBSECTIONS:
        text = build(run)
        if text is None:  # a part this run left out on purpose (an optional notebook)
            continue
        parts.append(outline.heading(3, escape.html(title), anchor=f"methods-{title}") + text)
    return "\n".join(parts)


def _first_epochs(count) -> str:
    """ "the first epoch", "the first 2 epochs" (a missing count shows as "?")."""
    return "the first epoch" if is_one(count) else f"the first {plural(count, 'epoch')}"
