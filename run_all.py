#!/usr/bin/env python
r"""Run the cifarkit study: execute every notebook under a profile and render reports.

Examples:
    python run_all.py                                   # default profile, official CIFAR-10
    python run_all.py --profile quick --data ../shared/datasets/cifar10-jpeg.tar.gz
    python run_all.py --profile smoke --data synthetic --only 01
    python run_all.py -p EPOCHS 3 -p MODEL resnet20
    python run_all.py --profile quick -p 03.EPOCHS 6                  # one notebook's parameter (03_train's)
    python run_all.py --profile quick --data my_images/ --image-size 64 --class-names benign,malignant
    python run_all.py --data scans/ --group-by 'patient(\d+)'            # whole patients per split
    python run_all.py --data defects.zip --labels-from 'filename:^([a-z]+)_\d+'   # crazing_12.jpg -> crazing
    python run_all.py --data images/ --labels images/labels.csv        # lines path,label[,group]
    python run_all.py --resume reports/20260101-120000-standard     # continue a run: the notebooks not yet ok
    python run_all.py --profile quick --budget 8                   # fit the run into 8 minutes on this machine
    python run_all.py --profile replicate --estimate               # how long it would take here (nothing runs)
    python run_all.py --list
    CIFARKIT_STORAGE=postgresql://user:password@host/db python run_all.py --only 02   # no password on the command line

Before the first notebook, the run is timed on this machine (a few training steps of every model it trains)
and the estimate per notebook is printed; --budget MINUTES plans epochs, trials and subset sizes to fit.

Every notebook is written as NN_name.ipynb (executed), NN_name.html and NN_name.pdf (the PDF needs
Chromium: apt-get install chromium); <out>/<run-id>/index.html and <out>/index.html are the dashboards.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from cifarkit import run_folder, secrets
from cifarkit.report import plan, profiles, runner
from cifarkit.signals import EXIT_CODE, Terminated


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--profile",
        default=None,
        help=f"named profile from params/ (default: {profiles.DEFAULT_PROFILE}, or the resumed run's)",
    )
    p.add_argument(
        "--data",
        default=None,
        help="data source: an image folder or archive, a CIFAR-10 python archive or directory, "
        "'synthetic[:N]'; default: the official CIFAR-10 archive (downloaded once, cached)",
    )
    p.add_argument("--out", default=None, help="output folder (default: reports/)")
    p.add_argument(
        "-p",
        "--param",
        nargs=2,
        action="append",
        metavar=("NAME", "VALUE"),
        default=[],
        help="override a notebook parameter, e.g. -p EPOCHS 3 (every notebook that declares it); "
        "NOTEBOOK.NAME sets it in one notebook, e.g. -p 03.EPOCHS 3",
    )
    p.add_argument("--only", nargs="+", metavar="NOTEBOOK", help="run only these notebooks (names or numbers)")
    p.add_argument("--skip", nargs="+", metavar="NOTEBOOK", help="skip these notebooks")
    p.add_argument(
        "--image-size",
        type=int,
        default=None,
        metavar="N",
        help="image side in pixels: sets IMAGE_SIZE for every notebook that declares it",
    )
    p.add_argument(
        "--class-names",
        nargs="+",
        default=None,
        metavar="NAME",
        help="display names of the data's classes, in the order of its own (sorted folder) names: "
        "'a,b,c' or 'a b c'; sets CLASS_NAMES",
    )
    p.add_argument(
        "--group-by",
        default=None,
        metavar="REGEX",
        help="group the images (patient, part, session) by the capture group of REGEX searched in each image's "
        "path relative to the data root, e.g. 'patient(\\d+)'; whole groups go to one split (sets GROUP_BY)",
    )
    p.add_argument(
        "--labels",
        default=None,
        metavar="FILE.csv",
        help="read the labels from a CSV file with the columns path,label[,group] (paths relative to the data "
        "root; an optional header line); the group column works like --group-by (sets LABELS)",
    )
    p.add_argument(
        "--labels-from",
        default=None,
        metavar="filename:REGEX",
        help="read each image's label from its file name: the first capture group of REGEX, e.g. "
        "'filename:^([a-z]+)_' labels crazing_12.jpg as crazing ('path:REGEX' searches the relative path; "
        "sets LABELS)",
    )
    p.add_argument(
        "--resume",
        default=None,
        metavar="RUN_DIR",
        help="continue this run folder: keep its notebooks that succeeded, run the others "
        "(its profile, data and options are reused)",
    )
    p.add_argument(
        "--no-code", action="store_true", help="leave code cells out of the reports (HTML folds them by default)"
    )
    p.add_argument("--code", action="store_true", help="keep the code in the PDF reports (left out by default)")
    p.add_argument("--no-pdf", action="store_true", help="do not print PDF reports (HTML only)")
    p.add_argument(
        "--precision",
        choices=("auto", "off", "bf16"),
        default=None,
        help="what mixed_precision='auto' means for every model of the run: off = float32 (what a CPU without "
        "bf16 units runs), bf16 = bf16 autocast; default auto: bf16 on a GPU and on CPUs with bf16 units",
    )
    p.add_argument(
        "--budget",
        type=float,
        default=None,
        metavar="MINUTES",
        help="fit the run into MINUTES on this machine, from the estimate on (measuring the machine, re-timing 03 "
        "and rendering the reports are set aside first): epochs, tuning trials and subset sizes are planned "
        "from measured speeds and the changes printed; refused when even the minimum settings need longer "
        "(default: the profile's settings, the same on every machine)",
    )
    p.add_argument(
        "--estimate",
        action="store_true",
        help="time the run on this machine, print the estimate per notebook (with --budget: the plan), and stop: "
        "nothing runs and nothing is written (with --resume: the notebooks a resumed session would run)",
    )
    p.add_argument("--list", action="store_true", help="list profiles, notebooks and parameters, then exit")
    return p


def list_everything() -> None:
    print(
        "profiles (reference durations from params/*.yaml, measured elsewhere; a run estimates its own on this machine):"
    )
    for name in profiles.list_profiles():
        prof = profiles.load_profile(name)
        print(f"  {name:9s} reference ~{prof.expected_minutes:g} min  {prof.description}")
    print("notebooks and their parameters:")
    for spec in profiles.NOTEBOOKS:
        try:
            params = runner.notebook_parameters(spec)
        except FileNotFoundError as exc:
            print(f"  {spec.name}: {spec.title}  -- MISSING: {exc}")
            continue
        print(f"  {spec.name}: {spec.title}")
        for name, info in params.items():
            print(f"      {name} = {info['default']}  {info.get('help') or ''}".rstrip())


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.list:
        list_everything()
        return 0
    class_names = " ".join(args.class_names) if args.class_names else None  # "a,b,c", "a b c" or "a, b, c"
    try:
        if args.resume and args.out:
            raise ValueError("--out does not go with --resume: the run folder given to --resume is written.")
        overrides, per_notebook = plan.split_parameters({name: runner.parse_value(value) for name, value in args.param})
        overrides.update(data_options(args, overrides))
        apply_precision(args.precision if args.precision or not args.resume else resumed_precision(args.resume))
        study = {  # what a run and its --estimate share
            "data": args.data,
            "overrides": overrides,
            "only": args.only,
            "skip": args.skip,
            "pdf": not args.no_pdf,
            "image_size": args.image_size,
            "class_names": class_names,
            "resume": args.resume,
            "budget": args.budget,
            "notebook_overrides": per_notebook,
        }
        if args.estimate:
            if args.out:
                raise ValueError("--out does not go with --estimate: nothing is written.")
            runner.estimate_study(args.profile, **study)
            return 0
        # run_study checks everything it can (profile, notebooks, every parameter value, the class count,
        # the output folder, the run's lock) before it writes a file or starts a kernel.
        result = runner.run_study(args.profile, out=args.out, no_code=args.no_code, code=args.code, **study)
    except (ValueError, FileNotFoundError) as exc:
        return _error(str(exc))
    except OSError as exc:  # the run folder cannot be written: a full disk, a folder made read-only meanwhile
        return _error(f"could not write the run's files: {run_folder.describe_os_error(exc)}")
    except KeyboardInterrupt as exc:  # the runner killed the kernel and recorded the run (cifarkit.signals)
        how, code = ("terminated (SIGTERM)", EXIT_CODE) if isinstance(exc, Terminated) else ("interrupted", 130)
        then = "" if args.estimate else " (a run it started continues with --resume <its folder>)"
        print(f"run_all.py: {how}{then}", file=sys.stderr)
        return code
    return 0 if result.ok else 1


def data_options(args, overrides: dict) -> dict:
    """``GROUP_BY``/``LABELS`` from --group-by, --labels and --labels-from, checked (they travel as parameter
    overrides, so that a resumed run reuses them); ValueError/FileNotFoundError for a bad or conflicting one."""
    if args.labels and args.labels_from:
        raise ValueError("--labels and --labels-from do not go together: the labels come from a file or from names.")
    if args.labels_from and not args.labels_from.strip().lower().startswith(("filename:", "path:")):
        raise ValueError(
            f"--labels-from takes 'filename:REGEX' (or 'path:REGEX'); received {repr_free(args.labels_from)}. "
            "Example: --labels-from 'filename:^([a-z]+)_'. For a CSV file use --labels FILE.csv."
        )
    found = plan.domain_parameters(group_by=args.group_by, labels=args.labels or args.labels_from)
    for name, value in found.items():
        if name in overrides and overrides[name] != value:
            raise ValueError(
                f"{plan.OPTION_OF[name]} and -p {name} disagree ('{value}' vs {repr_free(overrides[name])})."
            )
    if args.resume and found:
        from cifarkit.report.manifest import load_manifest

        used = load_manifest(Path(args.resume).expanduser()).get("overrides") or {}
        for name, value in found.items():
            if used.get(name, "") != value:
                raise ValueError(
                    f"Cannot resume {args.resume} with {plan.OPTION_OF[name]} '{value}': that run used "
                    f"{repr_free(used.get(name))}, and its notebooks that succeeded used those splits. Leave the "
                    "option out (the run's own is used) or start a new run."
                )
    return found


def apply_precision(precision: str | None) -> None:
    """``--precision``: set what ``mixed_precision="auto"`` means for this process and the notebook kernels it
    starts (they inherit the environment); the manifest records it and the time estimate uses it."""
    if precision is not None:
        from cifarkit.training.precision import ENV_MIXED_PRECISION

        os.environ[ENV_MIXED_PRECISION] = precision


def resumed_precision(run_dir: str) -> str | None:
    """The ``--precision`` a resumed run was started with (None: it set none, or its manifest cannot say)."""
    from cifarkit.report.manifest import load_manifest

    try:
        value = load_manifest(Path(run_dir).expanduser()).get("precision")
    except (ValueError, OSError):
        return None  # run_study reports the unreadable run folder itself
    return value if value in ("off", "bf16") else None


def repr_free(value) -> str:
    """A regex or path quoted as typed (``repr`` would double its backslashes); ``none`` when not set."""
    return f"'{value}'" if value else "none"


def _error(message: str) -> int:
    """Print ``message`` as one ``run_all.py: error:`` line (passwords masked); the exit code for user errors."""
    one_line = " ".join(secrets.mask_text(message).split())
    print(f"run_all.py: error: {one_line}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
