"""The study's notebooks, in run order, and the run profiles that parameterize them.

Profiles live in ``params/<name>.yaml``. Each has a ``description``, an
``expected_minutes`` measured on a 2-core CPU (printed by ``run_all.py`` before
it starts), ``common`` parameters given to every notebook that declares them,
and ``notebooks``: per-notebook parameters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cifarkit import run_folder
from cifarkit.paths import NOTEBOOKS_DIR, PARAMS_DIR

DEFAULT_PROFILE = "standard"


@dataclass(frozen=True)
class NotebookSpec:
    """One step of the study."""

    name: str  # file stem, e.g. "01_explore_data"
    title: str
    requires: tuple[str, ...] = ()  # notebooks whose outputs this one reads
    # run only where a profile (or --only) asks for it: a run without it is complete, the study book does not
    # list it as missing
    optional: bool = False

    @property
    def path(self) -> Path:
        """The notebook papermill executes (kept in step with :attr:`source`)."""
        return NOTEBOOKS_DIR / f"{self.name}.ipynb"

    @property
    def source(self) -> Path:
        """The notebook's source: a jupytext percent-format script."""
        return NOTEBOOKS_DIR / f"{self.name}.py"


# The study, in run order.
NOTEBOOKS: tuple[NotebookSpec, ...] = (
    NotebookSpec(run_folder.EXPLORE, "Data exploration"),
    NotebookSpec(run_folder.TUNE, "Hyperparameter tuning"),
    NotebookSpec(run_folder.TRAIN, "Training"),
    NotebookSpec(run_folder.EVALUATE, "Evaluation", requires=(run_folder.TRAIN,)),
    NotebookSpec(run_folder.BASELINES, "Non-CNN baselines", requires=(run_folder.TRAIN,)),
    NotebookSpec(run_folder.ARCHITECTURES, "Architectures and ensembles", requires=(run_folder.TRAIN,)),
    # trains its own models, one per fold; reads 03's and 04's metrics only to show the single split beside it
    NotebookSpec(run_folder.CROSS_VALIDATION, "Cross-validation", optional=True),
)

#: Names the notebooks had before they were numbered in run order; still accepted by --only/--skip.
OLD_NAMES = {"02_train": run_folder.TRAIN, "03_tune": run_folder.TUNE}


def notebook_spec(name: str) -> NotebookSpec:
    """The notebook called ``name``: its file stem, its number (``"03"``) or its old name (``"02_train"``)."""
    name = OLD_NAMES.get(str(name), str(name))
    for spec in NOTEBOOKS:
        if name in (spec.name, spec.name.split("_", 1)[0]):
            return spec
    known = ", ".join(s.name for s in NOTEBOOKS)
    raise ValueError(f"Unknown notebook {name!r}. Known notebooks: {known} (a number like '01' also works).")


@dataclass
class Profile:
    name: str
    description: str
    expected_minutes: float
    common: dict = field(default_factory=dict)
    notebooks: dict = field(default_factory=dict)
    skip: tuple[str, ...] = ()  # notebooks this profile leaves out (``--only`` brings them back)

    def parameters_for(self, notebook: str) -> dict:
        params = dict(self.common)
        params.update(self.notebooks.get(notebook, {}) or {})
        return params


def list_profiles() -> list[str]:
    return sorted(p.stem for p in PARAMS_DIR.glob("*.yaml"))


def load_profile(name: str) -> Profile:
    """Read ``params/<name>.yaml``; an unknown name raises ``ValueError`` listing the valid ones."""
    import yaml

    path = PARAMS_DIR / f"{name}.yaml"
    if not path.is_file():
        raise ValueError(f"Unknown profile {name!r}. Valid profiles: {', '.join(list_profiles())}.")
    with open(path) as f:
        raw = yaml.safe_load(f) or {}
    unknown_keys = set(raw) - {"description", "expected_minutes", "common", "notebooks", "skip"}
    if unknown_keys:
        raise ValueError(f"Profile file {path} has unknown keys {sorted(unknown_keys)}.")
    return Profile(
        name=name,
        description=raw.get("description", ""),
        expected_minutes=float(raw.get("expected_minutes", 0)),
        common=raw.get("common", {}) or {},
        notebooks={notebook_spec(nb).name: params for nb, params in (raw.get("notebooks", {}) or {}).items()},
        skip=tuple(notebook_spec(n).name for n in raw.get("skip", []) or []),
    )
