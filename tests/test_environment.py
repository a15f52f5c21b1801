"""environment.yml (conda) and pyproject.toml (pip) must list the same dependencies."""

import re

import tomllib
import yaml
from conftest import REPO

# conda-forge names that differ from PyPI names
CONDA_TO_PIP = {"pytorch": "torch", "opencv": "opencv-python"}


def _split(req: str):
    m = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", req)
    return m.group(1).lower().replace("_", "-"), m.group(2).replace(" ", "")


def test_environment_matches_pyproject():
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pip = dict(_split(r) for r in pyproject["dependencies"] + pyproject["optional-dependencies"]["test"])
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    conda = {}
    deps = [d for d in env["dependencies"] if isinstance(d, str)]
    deps += [d for entry in env["dependencies"] if isinstance(entry, dict) for d in entry.get("pip", [])]
    for dep in deps:
        name, spec = _split(dep)
        if name in ("python", "pip"):
            continue
        conda[CONDA_TO_PIP.get(name, name)] = spec
    assert conda == pip, (
        f"only in environment.yml: {sorted(set(conda) - set(pip))}; only in pyproject.toml: "
        f"{sorted(set(pip) - set(conda))}; different bounds: "
        f"{ {k: (conda[k], pip[k]) for k in set(conda) & set(pip) if conda[k] != pip[k]} }"
    )
    assert "conda-forge" in env["channels"]


def test_importing_cifarkit_loads_no_backend():
    import subprocess
    import sys

    code = (
        "import sys, cifarkit, cifarkit.data, cifarkit.run_folder, cifarkit.report.profiles, cifarkit.report.runner,"
        " cifarkit.report.notebooks, cifarkit.analysis, cifarkit.analysis.explore, cifarkit.training;"
        "print(sorted(m for m in ('torch', 'tensorflow', 'jax', 'keras') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
