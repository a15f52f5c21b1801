# cifarkit: the two commands are `make report` (run the study) and `make test` (run the tests).
# Both create .venv with Python 3.11 (or $(PYTHON)) and install the project into it first.

PYTHON  ?= $(shell command -v python3.11 || command -v python3)
VENV    ?= .venv
PY      := $(VENV)/bin/python
# The CPU build of PyTorch; a GPU user installs the build for their CUDA instead (README).
TORCH   ?= torch==2.13.0
PROFILE ?= standard
DATA    ?=
OUT     ?= reports
ARGS    ?=
# `make test` runs the tests in this many processes (pytest-xdist); `auto` is one per CPU core, 0 runs them in
# this process.
TEST_WORKERS ?= auto
# loadfile keeps a file's tests in one worker; --no-loadscope-reorder keeps the collection's longest-files-first
# order (tests/conftest.py), which xdist would otherwise replace by test count.
PYTEST_PARALLEL := -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

.PHONY: venv report smoke test test-fast lint format notebooks lab list clean-venv

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[test]"
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (cifarkit)" >/dev/null
	touch $@

report: venv
	$(PY) run_all.py --profile $(PROFILE) --out $(OUT) $(if $(DATA),--data $(DATA)) $(ARGS)

smoke: venv
	$(PY) run_all.py --profile smoke --data synthetic:60 --out $(OUT) $(ARGS)

# The tests start with the linter: code that ruff rejects does not pass.
test: venv lint
	$(PY) -m pytest -q $(PYTEST_PARALLEL) $(ARGS)

test-fast: venv lint
	$(PY) -m pytest -q $(PYTEST_PARALLEL) -m "not slow" $(ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# notebooks/NN_name.py is the source; this writes the paired .ipynb (tests/test_notebook_sources.py checks the pairs)
notebooks: venv
	$(PY) -m cifarkit.report.notebooks

# JupyterLab on notebooks/, kernel = this venv (registered by `venv`). Installs the `lab` extra once;
# at run time nothing is fetched from the network (no news feed, no update check).
lab: venv $(VENV)/.lab-installed
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks --LabApp.news_url=None --LabApp.extension_manager=readonly \
		--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate $(ARGS)

$(VENV)/.lab-installed: pyproject.toml $(VENV)/.installed
	$(PY) -m pip install --quiet -e ".[test,lab]"
	$(VENV)/bin/jupyter lab --version >/dev/null
	touch $@

list: venv
	$(PY) run_all.py --list

clean-venv:
	rm -rf $(VENV)
