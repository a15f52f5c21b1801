#!/usr/bin/env python
"""Run the cifarkit study: execute every notebook under a profile and render reports.

Examples:
    python run_all.py                                   # default profile, official CIFAR-10
    python run_all.py --profile quick --data ../shared/datasets/cifar10-jpeg.tar.gz
    python run_all.py --profile smoke --data synthetic --only 01
    python run_all.py -p EPOCHS 3 -p MODEL resnet20
    python run_all.py --list
"""

from __future__ import annotations

import argparse
import sys

from cifarkit import config, runner


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", default=config.DEFAULT_PROFILE,
                   help=f"named profile from params/ (default: {config.DEFAULT_PROFILE})")
    p.add_argument("--data", default=None,
                   help="data source: an image folder or archive, a CIFAR-10 python archive or directory, "
                        "'synthetic[:N]'; default: the official CIFAR-10 archive (downloaded once, cached)")
    p.add_argument("--out", default=None, help="output folder (default: reports/)")
    p.add_argument("-p", "--param", nargs=2, action="append", metavar=("NAME", "VALUE"), default=[],
                   help="override a notebook parameter, e.g. -p EPOCHS 3")
    p.add_argument("--only", nargs="+", metavar="NOTEBOOK", help="run only these notebooks (names or numbers)")
    p.add_argument("--skip", nargs="+", metavar="NOTEBOOK", help="skip these notebooks")
    p.add_argument("--no-code", action="store_true", help="hide code cells in the HTML reports")
    p.add_argument("--list", action="store_true", help="list profiles, notebooks and parameters, then exit")
    return p


def list_everything() -> None:
    print("profiles:")
    for name in config.list_profiles():
        prof = config.load_profile(name)
        print(f"  {name:9s} ~{prof.expected_minutes:g} min  {prof.description}")
    print("notebooks and their parameters:")
    for spec in config.NOTEBOOKS:
        params = runner.notebook_parameters(spec)
        print(f"  {spec.name}: {spec.title}")
        for name, info in params.items():
            print(f"      {name} = {info['default']}  {info.get('help') or ''}".rstrip())


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.list:
        list_everything()
        return 0
    overrides = {name: runner.parse_value(value) for name, value in args.param}
    try:
        runner.plan_run(args.profile, overrides, args.only, args.skip, args.data)
    except ValueError as exc:
        print(f"run_all.py: error: {exc}", file=sys.stderr)
        return 2
    result = runner.run_study(args.profile, data=args.data, out=args.out, overrides=overrides,
                              only=args.only, skip=args.skip, no_code=args.no_code)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
