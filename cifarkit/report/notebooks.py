"""The study's notebooks as source: jupytext percent-format scripts, paired with the ``.ipynb`` Jupyter opens.

``notebooks/NN_name.py`` is the source a contributor edits, lints and reviews
(a cell tagged ``parameters`` holds the notebook's parameters). The runner
executes the notebook read from that script; ``notebooks/NN_name.ipynb`` is
written from it, without outputs, for Jupyter users. Keep the pair in step::

    make notebooks                                  # or: python -m cifarkit.report.notebooks
    python -m cifarkit.report.notebooks --check     # exit 1 when a pair is out of step (the tests do this)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cifarkit.files import atomic_write_text

KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


def read_source(path: str | Path):
    """The notebook (an ``nbformat`` node, no outputs) that a percent-format script describes.

    Cell ids are numbered (``cell-00``, ...) so that writing it twice gives the same file.
    """
    import jupytext

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"Notebook source {path} does not exist. Each notebook of the study is authored as "
            f"notebooks/NN_name.py (jupytext percent format)."
        )
    nb = jupytext.read(str(path), fmt="py:percent")
    nb.metadata = {
        "kernelspec": dict(KERNELSPEC),
        "language_info": {"name": "python"},
        "jupytext": {"formats": "ipynb,py:percent"},
    }
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i:02d}"
        cell.metadata.pop("lines_to_next_cell", None)
    return nb


def notebook_json(nb) -> str:
    import nbformat

    nbformat.validate(nb)
    return nbformat.writes(nb) + "\n"


def parameters(nb) -> dict:
    """The parameters declared in the cell tagged ``parameters``: name -> ``{"name", "inferred_type_name",
    "default", "help"}`` (papermill's own reading of the cell)."""
    from papermill.translators import papermill_translators

    cell = next((c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])), None)
    if cell is None:
        return {}
    translator = papermill_translators.find_translator("python3", "python")
    return {p.name: p._asdict() for p in translator.inspect(cell)}


def out_of_sync(specs) -> list[str]:
    """Names of the notebooks whose ``.ipynb`` differs from what their script gives (or is missing)."""
    stale = []
    for spec in specs:
        expected = notebook_json(read_source(spec.source))
        current = spec.path.read_text(encoding="utf-8") if spec.path.is_file() else None
        if current != expected:
            stale.append(spec.name)
    return stale


def sync(specs) -> list[str]:
    """Write each ``.ipynb`` from its script where they differ; returns the names written."""
    written = []
    for name in out_of_sync(specs):
        spec = next(s for s in specs if s.name == name)
        atomic_write_text(spec.path, notebook_json(read_source(spec.source)))
        written.append(name)
    return written


def main(argv=None) -> int:
    from cifarkit.report.profiles import NOTEBOOKS

    p = argparse.ArgumentParser(
        prog="python -m cifarkit.report.notebooks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--check", action="store_true", help="only report notebooks out of step (exit 1 if any)")
    args = p.parse_args(argv)
    if args.check:
        stale = out_of_sync(NOTEBOOKS)
        for name in stale:
            print(f"notebooks/{name}.ipynb is out of step with notebooks/{name}.py: run `make notebooks`.")
        return 1 if stale else 0
    for name in sync(NOTEBOOKS):
        print(f"wrote notebooks/{name}.ipynb from notebooks/{name}.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
