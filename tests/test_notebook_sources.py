"""The notebooks are authored as jupytext scripts; the paired .ipynb must say the same, and the runner reads the script."""

import json

import pytest

from cifarkit.report import notebooks as nbsource
from cifarkit.report import profiles, runner


def test_every_ipynb_matches_its_script():
    stale = nbsource.out_of_sync(profiles.NOTEBOOKS)
    assert stale == [], f"out of step with their scripts (run `make notebooks`): {stale}"


def test_a_changed_script_is_caught_and_sync_repairs_it(tmp_path, monkeypatch):
    for spec in profiles.NOTEBOOKS:
        (tmp_path / spec.source.name).write_text(spec.source.read_text())
        (tmp_path / spec.path.name).write_text(spec.path.read_text())
    monkeypatch.setattr(profiles, "NOTEBOOKS_DIR", tmp_path)
    spec = profiles.notebook_spec("03")
    spec.source.write_text(spec.source.read_text().replace("# # 03 · Training", "# # 03 · Training, edited"))
    assert nbsource.out_of_sync(profiles.NOTEBOOKS) == ["03_train"]
    assert nbsource.sync(profiles.NOTEBOOKS) == ["03_train"]
    assert nbsource.out_of_sync(profiles.NOTEBOOKS) == []
    cells = json.loads(spec.path.read_text())["cells"]
    assert cells[0]["source"][0].startswith("# 03 · Training, edited")
    assert [c["id"] for c in cells] == [f"cell-{i:02d}" for i in range(len(cells))]
    assert all(not c.get("outputs") for c in cells if c["cell_type"] == "code")


@pytest.mark.parametrize("spec", profiles.NOTEBOOKS, ids=lambda s: s.name)
def test_scripts_declare_parameters_in_run_order(spec):
    nb = nbsource.read_source(spec.source)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    params = runner.notebook_parameters(spec)
    assert {"DATA", "RUN_DIR", "SEED"} <= set(params)
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith(f"# {spec.name[:2]} ·")
    assert [s.name[:2] for s in profiles.NOTEBOOKS] == ["01", "02", "03", "04", "05", "06", "07"]
