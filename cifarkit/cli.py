"""Command line: ``python -m cifarkit <command> ...``.

Commands:
    train   train a model with a recipe and write the run folder (see :mod:`cifarkit.training`).
    tune    search hyperparameters with Optuna; several workers may share one
            study through a database (see :mod:`cifarkit.analysis.tuning`).
    compare compare two or more study runs on the same test images: parameter diff,
            paired-bootstrap difference, McNemar's test, per-class F1, learning curves
            (see :mod:`cifarkit.report.compare`).

Example::

    python -m cifarkit train --model resnet20 --recipe paper --data cifar10 \\
        --epochs 30 --out runs/resnet20-paper
    python -m cifarkit tune --model fastnet --recipe fast --data cifar10 --subset 1000 \\
        --epochs 3 --n-trials 20 --study fastnet-fast --storage postgresql://user@host:5432/optuna
    python -m cifarkit compare reports/RUN_A reports/RUN_B

Each command is a pair of functions registered in :data:`COMMANDS`: one adds
its arguments to an ``argparse`` sub-parser, the other runs it and returns the
exit code. Bad input (unknown model or recipe, missing data, invalid setting)
prints a one-line message and exits with code 2; a diverged run exits with 1.
The CLI calls the same :func:`cifarkit.training.train` as the notebooks.
"""

from __future__ import annotations

import argparse
import shlex
import sys

from cifarkit.wording import plural

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


class UsageError(ValueError):
    """Bad command-line input (reported with exit code 2)."""


# --------------------------------------------------------------------------- train


def add_data_arguments(p: argparse.ArgumentParser, subset_use: str, val_use: str) -> None:
    """The data options ``train`` and ``tune`` share."""
    p.add_argument(
        "--data",
        default="cifar10",
        help="data source: cifar10, synthetic[:N], an image folder or archive (default: %(default)s)",
    )
    p.add_argument("--subset", type=int, help=f"at most N images per class per split ({subset_use})")
    p.add_argument("--image-size", type=int, help="resize images to N x N (default: 32)")
    p.add_argument(
        "--val-fraction",
        type=float,
        default=0.1,
        help=f"fraction of the training data held out for validation{val_use} (default: %(default)s)",
    )
    p.add_argument(
        "--data-seed", type=int, default=0, help="seed of the train/val split and subsets (default: %(default)s)"
    )
    p.add_argument(
        "--cache-dir", help="download and decode cache folder (default: $CIFARKIT_DATA_DIR or the user cache)"
    )


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    from cifarkit.training.recipes import list_recipes  # the registry's names, so the help cannot go stale

    p.add_argument(
        "--model", help="model name (default: the recipe's, else resnet20); see cifarkit.models.list_models()"
    )
    p.add_argument(
        "--recipe",
        default="default",
        help=f"training recipe: {', '.join(list_recipes())} (default: %(default)s)",
    )
    add_data_arguments(p, "quick runs", "")
    p.add_argument("--out", required=True, help="run folder for checkpoints, history, model and metrics")
    p.add_argument("--epochs", type=int, help="override the recipe's number of epochs")
    p.add_argument(
        "--batch-size", type=int, help="override the batch size (the lr scales linearly unless lr_scaling=none)"
    )
    p.add_argument("--lr", type=float, help="override the base learning rate (at the recipe's base batch size)")
    p.add_argument("--seed", type=int, help="training seed (weights, batches, augmentation); default: the recipe's (0)")
    p.add_argument(
        "--deterministic", action="store_true", default=None, help="deterministic kernels, for bit-identical reruns"
    )
    p.add_argument("--device", choices=("auto", "cpu", "gpu"), help="where to train (default: auto)")
    p.add_argument(
        "--resume",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="continue from the run folder's checkpoint (default: yes)",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any training setting, e.g. --set label_smoothing=0.1 (repeatable)",
    )
    p.add_argument(
        "--progress", action=argparse.BooleanOptionalAction, default=True, help="show progress bars (default: yes)"
    )


def _load_data(args: argparse.Namespace):
    """The data set the data options of ``train`` and ``tune`` describe."""
    from cifarkit.data import load_dataset

    return load_dataset(
        args.data,
        image_size=args.image_size,
        val_fraction=args.val_fraction,
        seed=args.data_seed,
        subset=args.subset,
        cache_dir=args.cache_dir,
        progress=args.progress,
    )


def run_train(args: argparse.Namespace) -> int:
    from cifarkit.training import parse_override, resolve_recipe

    overrides = {}
    for text in args.overrides:
        key, value = parse_override(text)
        overrides[key] = value
    explicit = {
        "model": args.model,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "seed": args.seed,
        "deterministic": args.deterministic,
        "device": args.device,
    }
    overrides.update({k: v for k, v in explicit.items() if v is not None})
    config = resolve_recipe(args.recipe, **overrides)

    from cifarkit.models import check_model_options

    try:
        check_model_options(config.model, config.model_options)
    except ValueError as e:
        raise UsageError(str(e)) from None
    dataset = _load_data(args)
    from cifarkit.training import TrainingDivergedError, train

    run_info = {"command": "python -m cifarkit " + shlex.join(args.argv), "recipe": args.recipe}
    try:
        result = train(dataset, config, args.out, resume=args.resume, progress=args.progress, run_info=run_info)
    except TrainingDivergedError as e:
        print(f"cifarkit train: {e}", file=sys.stderr)
        return EXIT_FAILED
    m = result.metrics
    print(_train_summary(m, args.recipe, result.out_dir))
    return EXIT_OK


def _pct(v) -> str:
    return "n/a" if v is None else f"{100 * v:.2f}%"


def _train_summary(m: dict, recipe: str, out_dir) -> str:
    ips = m.get("images_per_sec_mean")
    lines = [
        f"{m['model']} ({recipe} recipe), {plural(m['epochs'], 'epoch')} on {m['dataset'].get('source', '?')}"
        + (" (stopped early)" if m.get("stopped_early") else ""),
        f"  validation accuracy {_pct(m['val_acc'])} (loss {m['val_loss']:.4f})"
        if m.get("val_loss") is not None
        else "  no validation split",
        f"  test accuracy       {_pct(m['test_acc'])} (evaluated once, after training)",
        f"  training time {m['train_seconds']:.1f} s ({ips:.0f} img/s on {m['device']}), total {m['total_seconds']:.1f} s"
        if ips
        else f"  training time {m['train_seconds']:.1f} s",
        f"  run folder: {out_dir}",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------- tune


def add_tune_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--study",
        help="study name; workers that share a study use the same --study and --storage "
        "(default: <model>-<recipe>-<space>-<epochs>ep)",
    )
    p.add_argument(
        "--storage",
        help="Optuna storage URL (SQLAlchemy), e.g. postgresql://user@host:5432/db "
        "(default: sqlite:///<out>/optuna.db)",
    )
    p.add_argument(
        "--n-trials",
        type=int,
        default=10,
        help="trials this worker runs; parallel workers add up (default: %(default)s)",
    )
    p.add_argument(
        "--total",
        action="store_true",
        help="treat --n-trials as the number of finished trials the study "
        "should hold and run only what is missing (what the notebook does)",
    )
    p.add_argument(
        "--model", help="model name (default: the recipe's, else resnet20); see cifarkit.models.list_models()"
    )
    p.add_argument("--recipe", default="default", help="recipe every trial starts from (default: %(default)s)")
    p.add_argument(
        "--space",
        default="default",
        help="search space name, see cifarkit.analysis.tuning.list_spaces() (default: %(default)s)",
    )
    p.add_argument("--pruner", default="median", help="median, halving, hyperband or none (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=3, help="training epochs per trial (default: %(default)s)")
    p.add_argument("--timeout", type=float, help="stop starting trials after this many seconds")
    p.add_argument(
        "--seed", type=int, default=0, help="training seed of every trial and sampler seed (default: %(default)s)"
    )
    p.add_argument(
        "--out",
        default="runs/tune",
        help="tuning folder: default SQLite storage, best_params.json, trial histories (default: %(default)s)",
    )
    add_data_arguments(p, "quick studies", ", which scores the trials")
    p.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto", help="where to train (default: auto)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a training setting fixed for every trial, e.g. --set mixup=0.2 (repeatable)",
    )
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="show data-loading and per-epoch training progress bars (default: no; one line per trial is always printed)",
    )


def run_tune(args: argparse.Namespace) -> int:
    from cifarkit.analysis import tuning
    from cifarkit.training import parse_override

    overrides = {}
    for text in args.overrides:
        key, value = parse_override(text)
        overrides[key] = value
    options = dict(
        model=args.model,
        recipe=args.recipe,
        space=args.space,
        epochs=args.epochs,
        n_trials=args.n_trials,
        count="total" if args.total else "add",
        timeout=args.timeout,
        pruner=args.pruner,
        seed=args.seed,
        overrides=overrides,
        device=args.device,
    )
    tuning.check_arguments(**options)  # bad input fails before the data is loaded
    if args.storage:
        tuning.open_storage(args.storage)  # an unreachable database too

    dataset = _load_data(args)
    try:
        result = tuning.tune(
            dataset,
            out_dir=args.out,
            storage=args.storage,
            study_name=args.study,
            train_progress=args.progress,
            **options,
        )
    except RuntimeError as e:  # trials kept failing
        print(f"cifarkit tune: {e}", file=sys.stderr)
        return EXIT_FAILED
    c, b = result.counts, result.budget
    print(
        f"study {result.study_name!r} ({result.storage}): {plural(result.new_trials, 'trial')} run here in {result.seconds:.0f} s; "
        f"study total {c['total']} ({c['complete']} complete, {c['pruned']} pruned, {c['failed']} failed, {c['running']} running); "
        f"trials: {tuning.budget_summary(b)}"
    )
    if result.best:
        print(
            f"best: trial {result.best['trial_number']}, val_acc {_pct(result.best['value'])} "
            f"after {plural(result.best['epochs'], 'epoch')}; parameters in {result.best_params_path}"
        )
    return EXIT_OK


# --------------------------------------------------------------------------- compare


def add_compare_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "runs",
        nargs="+",
        metavar="RUN",
        help="run folders made by run_all.py (two or more), evaluated on the same test images; the first is the "
        "reference (A) the others are compared with",
    )
    p.add_argument(
        "--out",
        help="folder for index.html, compare.pdf and compare.json (default: <parent of RUN_A>/compare-<idA>-vs-<idB>)",
    )
    p.add_argument("--no-pdf", action="store_true", help="write the HTML and JSON only")


def run_compare(args: argparse.Namespace) -> int:
    from cifarkit.report.compare import write_comparison

    try:
        out = write_comparison(args.runs, args.out, pdf=not args.no_pdf)
    except OSError as e:  # writing the report (a missing FileNotFoundError is the caller's: exit 2 too)
        from cifarkit.run_folder import describe_os_error

        raise UsageError(f"cannot write the comparison: {describe_os_error(e)}") from None
    first = out["result"]["pairs"][0]
    print(
        f"{first['b_run']} minus {first['a_run']}: test accuracy {100 * first['difference']:+.2f} points "
        f"(95% CI {100 * first['ci'][0]:+.2f} to {100 * first['ci'][1]:+.2f}), McNemar {first['mcnemar']['p_text']}"
    )
    for key in ("html", "pdf", "json"):
        if out[key]:
            print(f"{key}: {out[key]}")
    if out["pdf_skipped"]:
        print(f"pdf skipped: {out['pdf_skipped']}")
    return EXIT_OK


#: name -> (help, add_arguments, run). Later commands (explore, evaluate) register here.
COMMANDS = {
    "train": ("train a model with a recipe", add_train_arguments, run_train),
    "tune": (
        "search hyperparameters with Optuna (one worker; several may share a study)",
        add_tune_arguments,
        run_tune,
    ),
    "compare": (
        "compare two or more study runs on the same test images (HTML, PDF and JSON report)",
        add_compare_arguments,
        run_compare,
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cifarkit", description="cifarkit: CNN studies on CIFAR-10 and your own images."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (help_text, add_arguments, run) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        add_arguments(p)
        p.set_defaults(run=run)
    return parser


def main(argv=None) -> int:
    """Run a command; returns the exit code (0 ok, 1 failed run, 2 bad input)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse reports bad usage by exiting with 2
        return int(e.code) if isinstance(e.code, int) else EXIT_USAGE
    if not getattr(args, "run", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    args.argv = argv
    from cifarkit.data import DataError

    try:
        return args.run(args)
    except (ValueError, FileNotFoundError, DataError) as e:
        print(f"cifarkit {args.command}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
