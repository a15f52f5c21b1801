"""Run the study's notebooks with papermill and render them with nbconvert.

``run_all.py`` is a thin command-line front to :func:`run_study`; the notebook
tests call :func:`run_study` too, so they exercise the same code path.

A run writes ``<out>/<run-id>/``:
    NN_name.ipynb         the executed notebook (outputs included)
    NN_name.html          its rendering, figures embedded (no network needed)
    metrics/NN_name.json  what the notebook recorded
    manifest.json         profile, parameters, versions, hardware, data, git, timings
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from cifarkit import config, reporting

# Parameters every notebook may declare; the runner fills them in.
RUN_PARAMETERS = ("RUN_DIR", "DATA")


@dataclass
class NotebookResult:
    name: str
    status: str  # "ok" | "failed" | "skipped"
    seconds: float = 0.0
    error: str | None = None
    outputs: dict = field(default_factory=dict)


@dataclass
class RunResult:
    run_id: str
    run_dir: Path
    notebooks: list[NotebookResult]

    @property
    def ok(self) -> bool:
        return all(nb.status == "ok" for nb in self.notebooks)


def notebook_parameters(spec: config.NotebookSpec) -> dict:
    """The parameters a notebook declares in its cell tagged ``parameters``."""
    import papermill

    return papermill.inspect_notebook(str(spec.path))


def parse_value(text: str):
    """Turn a ``-p NAME VALUE`` string into a Python value the way YAML reads it ("3" -> 3, "true" -> True)."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return text if value is None and text.strip() not in ("null", "~", "") else value


def select_notebooks(only=None, skip=None) -> list[config.NotebookSpec]:
    specs = list(config.NOTEBOOKS)
    if only:
        wanted = {config.notebook_spec(n).name for n in only}
        specs = [s for s in specs if s.name in wanted]
    if skip:
        unwanted = {config.notebook_spec(n).name for n in skip}
        specs = [s for s in specs if s.name not in unwanted]
    if not specs:
        raise ValueError("No notebook left to run after --only/--skip.")
    return specs


def plan_run(profile_name: str, overrides: dict | None = None, only=None, skip=None, data: str | None = None):
    """Check everything that can be checked before a notebook runs.

    Returns ``(profile, [(spec, parameters), ...])``. Unknown profile, notebook or
    parameter names raise ``ValueError`` listing the valid ones.
    """
    profile = config.load_profile(profile_name)
    specs = select_notebooks(only, skip)
    overrides = dict(overrides or {})
    declared = {spec.name: notebook_parameters(spec) for spec in specs}
    all_declared = set().union(*declared.values())
    unknown = sorted(set(overrides) - all_declared)
    if unknown:
        raise ValueError(
            f"Unknown parameter(s) {', '.join(unknown)} for the selected notebooks. "
            f"Valid parameters: {', '.join(sorted(all_declared - set(RUN_PARAMETERS)))}."
        )
    for spec in specs:
        bad = sorted(set(profile.notebooks.get(spec.name) or {}) - set(declared[spec.name]))
        if bad:
            raise ValueError(f"Profile {profile.name!r} sets unknown parameter(s) {bad} for notebook {spec.name}.")
    plan = []
    for spec in specs:
        params = profile.parameters_for(spec.name)
        params.update(overrides)
        if data is not None:
            params["DATA"] = str(data)
        plan.append((spec, {k: v for k, v in params.items() if k in declared[spec.name]}))
    return profile, plan


def describe_data(data: str | None) -> dict:
    """Provenance of the data source: what was asked for and, for a file, its sha256."""
    if not data:
        return {"source": "cifar10 (official archive, downloaded and cached)", "sha256": None}
    info = {"source": str(data), "sha256": None}
    path = Path(data).expanduser()
    if path.is_file():
        info["path"] = str(path.resolve())
        info["size_bytes"] = path.stat().st_size
        info["sha256"] = reporting.file_sha256(path)
    elif path.is_dir():
        info["path"] = str(path.resolve())
    return info


def render_html(notebook_path: Path, html_path: Path, *, no_code: bool = False) -> Path:
    """Render an executed notebook to self-contained HTML (images are embedded as data URIs)."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(str(notebook_path), as_version=4)
    exporter = HTMLExporter(exclude_input=no_code, exclude_input_prompt=no_code, exclude_output_prompt=no_code)
    body, _ = exporter.from_notebook_node(nb)
    return reporting.atomic_write_text(html_path, body)


def new_run_id(profile: str) -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{profile}"


def run_study(
    profile: str = config.DEFAULT_PROFILE,
    *,
    data: str | None = None,
    out: str | os.PathLike | None = None,
    overrides: dict | None = None,
    only=None,
    skip=None,
    run_id: str | None = None,
    no_code: bool = False,
    log=print,
) -> RunResult:
    """Execute the study's notebooks under ``profile`` and render each to HTML.

    A failing notebook does not stop the others, except those that need its
    outputs (``NotebookSpec.requires``), which are marked skipped.
    """
    import papermill

    prof, plan = plan_run(profile, overrides, only, skip, data)
    out = Path(out) if out else config.REPORTS_DIR
    run_id = run_id or new_run_id(prof.name)
    run_dir = out / run_id
    run_dir.mkdir(parents=True, exist_ok=False)
    log(f"cifarkit run {run_id}: profile '{prof.name}' ({prof.description})")
    log(f"expected duration on a 2-core CPU: about {prof.expected_minutes:g} min; output: {run_dir}")

    manifest = {
        "run_id": run_id,
        "profile": prof.name,
        "profile_description": prof.description,
        "command": " ".join([os.path.basename(sys.argv[0])] + sys.argv[1:]),
        "overrides": overrides or {},
        "seed": prof.common.get("SEED"),
        "data": describe_data(data),
        "versions": reporting.package_versions(),
        "keras_backend": os.environ.get("KERAS_BACKEND", "torch"),
        "hardware": reporting.hardware_info(),
        "git": reporting.git_info(),
        "started_at": reporting.now_iso(),
        "notebooks": {},
    }
    manifest_path = run_dir / "manifest.json"
    reporting.atomic_write_json(manifest_path, manifest)

    results: list[NotebookResult] = []
    status: dict[str, str] = {}
    t_run = time.time()
    for i, (spec, params) in enumerate(plan, 1):
        params = dict(params)
        params_declared = notebook_parameters(spec)
        if "RUN_DIR" in params_declared:
            params["RUN_DIR"] = str(run_dir.resolve())
        entry = {"parameters": params, "started_at": reporting.now_iso()}
        missing = [r for r in spec.requires if status.get(r) not in (None, "ok")]
        if missing:
            res = NotebookResult(spec.name, "skipped", error=f"needs {', '.join(missing)}, which did not succeed")
            log(f"[{i}/{len(plan)}] {spec.name}: skipped ({res.error})")
            results.append(res)
            status[spec.name] = res.status
            entry.update(status="skipped", error=res.error)
            manifest["notebooks"][spec.name] = entry
            reporting.atomic_write_json(manifest_path, manifest)
            continue
        log(f"[{i}/{len(plan)}] {spec.name} ({spec.title}) ...")
        nb_out = run_dir / f"{spec.name}.ipynb"
        html_out = run_dir / f"{spec.name}.html"
        t0 = time.time()
        error = None
        try:
            papermill.execute_notebook(
                str(spec.path), str(nb_out), parameters=params, cwd=str(run_dir),
                progress_bar=False, log_output=False, kernel_name="python3",
            )
        except Exception as exc:  # a failed notebook is reported and rendered, the run goes on
            error = _short_error(exc)
        exec_seconds = time.time() - t0
        render_seconds = None
        if nb_out.exists():
            t1 = time.time()
            try:
                render_html(nb_out, html_out, no_code=no_code)
                render_seconds = time.time() - t1
            except Exception as exc:
                error = error or f"rendering failed: {_short_error(exc)}"
        res = NotebookResult(spec.name, "failed" if error else "ok", exec_seconds, error,
                             {"notebook": nb_out.name, "html": html_out.name if html_out.exists() else None})
        results.append(res)
        status[spec.name] = res.status
        entry.update(status=res.status, error=error, finished_at=reporting.now_iso(),
                     execute_seconds=round(exec_seconds, 2),
                     render_seconds=round(render_seconds, 2) if render_seconds is not None else None,
                     outputs=res.outputs)
        manifest["notebooks"][spec.name] = entry
        reporting.atomic_write_json(manifest_path, manifest)
        word = "ok" if not error else "FAILED"
        log(f"[{i}/{len(plan)}] {spec.name}: {word} in {exec_seconds:.1f} s" + (f" -- {error}" if error else ""))

    manifest["finished_at"] = reporting.now_iso()
    manifest["duration_seconds"] = round(time.time() - t_run, 2)
    manifest["status"] = "ok" if all(r.status == "ok" for r in results) else "failed"
    reporting.atomic_write_json(manifest_path, manifest)
    result = RunResult(run_id, run_dir, results)
    log("")
    log(f"summary of run {run_id} ({manifest['duration_seconds']:.0f} s):")
    for r in results:
        log(f"  {r.name:20s} {r.status:8s} {r.seconds:7.1f} s" + (f"  {r.error}" if r.error else ""))
    log(f"reports in {run_dir}")
    return result


def _short_error(exc: Exception) -> str:
    # papermill's PapermillExecutionError carries the notebook's own exception name and message
    ename = getattr(exc, "ename", None)
    evalue = getattr(exc, "evalue", None)
    if ename:
        return f"{ename}: {evalue}".strip()
    text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    return text.splitlines()[-1] if text else type(exc).__name__
