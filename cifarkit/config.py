"""Paths, notebooks and run profiles: the project's defaults, in one place.

Profiles live in ``params/<name>.yaml``. Each has a ``description``, an
``expected_minutes`` measured on a 2-core CPU (printed by ``run_all.py`` before
it starts), ``common`` parameters given to every notebook that declares them,
and ``notebooks``: per-notebook parameters.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"
PARAMS_DIR = PROJECT_ROOT / "params"
REPORTS_DIR = PROJECT_ROOT / "reports"
DEFAULT_PROFILE = "standard"


@dataclass(frozen=True)
class NotebookSpec:
    """One step of the study."""

    name: str  # file stem, e.g. "01_explore_data"
    title: str
    requires: tuple[str, ...] = ()  # notebooks whose outputs this one reads

    @property
    def path(self) -> Path:
        return NOTEBOOKS_DIR / f"{self.name}.ipynb"


# The study, in order.
NOTEBOOKS: tuple[NotebookSpec, ...] = (
    NotebookSpec("01_explore_data", "Data exploration"),
    NotebookSpec("03_tune", "Hyperparameter tuning"),
    NotebookSpec("02_train", "Training"),
    NotebookSpec("04_evaluate", "Evaluation", requires=("02_train",)),
    NotebookSpec("05_baselines", "Non-CNN baselines", requires=("02_train",)),
    NotebookSpec("06_architectures_and_ensembles", "Architectures and ensembles", requires=("02_train",)),
)


def notebook_spec(name: str) -> NotebookSpec:
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
    for nb in raw.get("notebooks", {}) or {}:
        notebook_spec(nb)
    return Profile(
        name=name,
        description=raw.get("description", ""),
        expected_minutes=float(raw.get("expected_minutes", 0)),
        common=raw.get("common", {}) or {},
        notebooks=raw.get("notebooks", {}) or {},
        skip=tuple(notebook_spec(n).name for n in raw.get("skip", []) or []),
    )


def data_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """Where downloads and decoded arrays are cached: the argument, ``$CIFARKIT_DATA_DIR``, or the user cache."""
    if cache_dir:
        return Path(cache_dir)
    if os.environ.get("CIFARKIT_DATA_DIR"):
        return Path(os.environ["CIFARKIT_DATA_DIR"])
    import platformdirs

    return Path(platformdirs.user_cache_dir("cifarkit"))
