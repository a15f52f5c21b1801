"""Run the study's notebooks with papermill and render them as HTML and PDF reports.

``run_all.py`` is a thin command-line front to :func:`run_study`; the notebook
tests call :func:`run_study` too, so they exercise the same code path.

A run writes ``<out>/<run-id>/``:
    NN_name.ipynb         the executed notebook (outputs included)
    NN_name.html          its rendering, figures embedded, no network needed (cifarkit.render)
    NN_name.pdf           the same report printed by headless Chromium (skipped, and said so, without Chromium)
    metrics/NN_name.json  what the notebook recorded
    figures/NN_name_K.png the figures of the executed notebook (for the dashboard)
    manifest.json         profile, parameters, versions, hardware, data, git, timings
    index.html            the run's dashboard (cifarkit.dashboard)
and ``<out>/index.html``, the list of every run in ``<out>``.

``run_study(resume=RUN_DIR)`` continues such a folder: it keeps the notebooks
that already succeeded and runs the others.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from cifarkit import config, reporting

# Parameters every notebook may declare; the runner fills them in.
RUN_PARAMETERS = ("RUN_DIR", "DATA")
LOCK_NAME = ".running.json"


@dataclass
class NotebookResult:
    name: str
    status: str  # "ok" | "failed" | "skipped"
    seconds: float = 0.0
    error: str | None = None
    outputs: dict = field(default_factory=dict)
    reused: bool = False  # True: succeeded in an earlier session of a resumed run, not run again


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

    if not spec.path.is_file():
        raise FileNotFoundError(
            f"Notebook {spec.name} is listed in cifarkit/config.py but {spec.path} does not exist. "
            f"Generate it (python tools/notebook_{spec.name[:2]}.py) or leave it out with --skip {spec.name[:2]}."
        )
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


def absolute_data(data: str | None) -> str | None:
    """Notebooks run with the run directory as working directory, so a relative path to
    existing data is made absolute here; names like ``synthetic:60`` pass through."""
    if not data:
        return data
    path = Path(data).expanduser()
    return str(path.resolve()) if path.exists() else str(data)


def domain_parameters(image_size=None, class_names=None) -> dict:
    """Notebook parameters for a custom data set: ``IMAGE_SIZE`` and ``CLASS_NAMES``.

    Args:
        image_size: side in pixels of the square images the models see (``None`` keeps the profile's).
        class_names: display names for the data's classes, in the order of its own
            class names: ``"a,b,c"``, ``"a b c"`` or a list (``None``/empty keeps the data's own).

    Returns:
        ``{"IMAGE_SIZE": int, "CLASS_NAMES": "a,b,c"}`` with only the given ones.
    """
    from cifarkit.study import parse_class_names

    params = {}
    if image_size is not None:
        try:
            size = int(image_size)
        except (TypeError, ValueError):
            size = None
        if size is None or size != float(image_size) or size < 8:
            raise ValueError(f"--image-size must be a whole number of pixels, at least 8; received {image_size!r}. "
                             "Example: --image-size 64.")
        params["IMAGE_SIZE"] = size
    if class_names:
        if isinstance(class_names, str):  # "a,b,c" or "a b c"
            class_names = class_names.split(",") if "," in class_names else class_names.split()
        names = parse_class_names(list(class_names))
        params["CLASS_NAMES"] = ",".join(names)
    return params


def plan_run(profile_name: str, overrides: dict | None = None, only=None, skip=None, data: str | None = None,
             *, image_size=None, class_names=None):
    """Check everything that can be checked before a notebook runs.

    ``image_size``/``class_names`` (see :func:`domain_parameters`) set ``IMAGE_SIZE``
    and ``CLASS_NAMES`` for every selected notebook that declares them.

    Returns ``(profile, [(spec, parameters), ...])``. Unknown profile, notebook or
    parameter names raise ``ValueError`` listing the valid ones; a notebook file
    missing from ``notebooks/`` raises ``FileNotFoundError``.
    """
    profile = config.load_profile(profile_name)
    if not only:  # the profile's own skip list; naming a notebook in --only runs it anyway
        skip = list(skip or []) + list(profile.skip)
    specs = select_notebooks(only, skip)
    overrides = dict(overrides or {})
    domain = domain_parameters(image_size, class_names)
    declared = {spec.name: notebook_parameters(spec) for spec in specs}
    all_declared = set().union(*declared.values())
    unknown = sorted(set(overrides) - all_declared)
    if unknown:
        raise ValueError(
            f"Unknown parameter(s) {', '.join(unknown)} for the selected notebooks. "
            f"Valid parameters: {', '.join(sorted(all_declared - set(RUN_PARAMETERS)))}."
        )
    for name in domain:
        if name not in all_declared:
            option = "--image-size" if name == "IMAGE_SIZE" else "--class-names"
            raise ValueError(f"{option} sets {name}, but none of the selected notebooks "
                             f"({', '.join(s.name for s in specs)}) declares that parameter.")
    for spec in specs:
        bad = sorted(set(profile.notebooks.get(spec.name) or {}) - set(declared[spec.name]))
        if bad:
            raise ValueError(f"Profile {profile.name!r} sets unknown parameter(s) {bad} for notebook {spec.name}.")
    plan = []
    for spec in specs:
        params = profile.parameters_for(spec.name)
        params.update(overrides)
        params.update(domain)
        if data is not None:
            params["DATA"] = absolute_data(data)
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
    """Render an executed notebook to self-contained HTML (see :func:`cifarkit.render.render_html`)."""
    from cifarkit import render

    return render.render_html(notebook_path, html_path, no_code=no_code)


def new_run_id(profile: str) -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{profile}"


def load_manifest(run_dir: str | os.PathLike) -> dict:
    path = Path(run_dir) / "manifest.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"No run to resume at {run_dir}: {path} does not exist. Pass a folder that run_all.py made, "
            f"e.g. --resume reports/20260101-120000-standard."
        )
    with open(path) as f:
        return json.load(f)


def _manifest_data_argument(manifest: dict):
    """The ``--data`` a run was started with (``None``: the official CIFAR-10)."""
    data = manifest.get("data") or {}
    if "argument" in data:
        return data["argument"]
    for entry in (manifest.get("notebooks") or {}).values():  # runs made before "argument" was recorded
        if (entry.get("parameters") or {}).get("DATA"):
            return entry["parameters"]["DATA"]
    if str(data.get("source", "")).startswith("cifar10 (official"):
        return None
    return data.get("path") or data.get("source")


def _same_data(given: str, manifest: dict) -> bool:
    stored = _manifest_data_argument(manifest)
    if absolute_data(given) == (absolute_data(stored) if stored else stored):
        return True
    sha = (manifest.get("data") or {}).get("sha256")
    path = Path(given).expanduser()
    return bool(sha) and path.is_file() and reporting.file_sha256(path) == sha


def _check_lock(run_dir: Path) -> None:
    lock = run_dir / LOCK_NAME
    try:
        info = json.loads(lock.read_text())
    except (OSError, ValueError):
        return
    if info.get("host") == socket.gethostname() and _pid_alive(info.get("pid")):
        raise ValueError(f"Run {run_dir} is still being written by process {info['pid']} (started "
                         f"{info.get('started_at')}). Wait for it to finish, then resume.")


def _pid_alive(pid) -> bool:
    try:
        os.kill(int(pid), 0)
    except (TypeError, ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def _kernel_manager_class(socket_dir: str):
    """A kernel manager whose kernel talks over local IPC (Unix) sockets in ``socket_dir``: no TCP
    ports, hence no "Kernel is running over TCP without encryption" warning in the run's output,
    and nothing written beside the notebook. POSIX only; elsewhere papermill's default is used."""
    from jupyter_client.manager import AsyncKernelManager

    class IPCKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs):
            kwargs.setdefault("transport", "ipc")
            kwargs.setdefault("ip", os.path.join(socket_dir, "kernel"))
            super().__init__(**kwargs)

    return IPCKernelManager


def _read_metrics(run_dir: Path, name: str) -> dict:
    try:
        with open(reporting.metrics_path(run_dir, name)) as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def render_reports(run_dir: Path, name: str, manifest: dict, *, no_code: bool = False, pdf: bool = True) -> dict:
    """Render ``<run_dir>/<name>.ipynb`` to HTML (and PDF) with the run's facts and provenance.

    Args:
        run_dir: the run folder.
        name: the notebook's name; its manifest entry must exist.
        manifest: the run's manifest.
        no_code: hide code cells in both reports.
        pdf: also print the PDF (needs Chromium; without it the PDF is skipped, not an error).

    Returns:
        ``{"render_seconds": {"html": s, "pdf": s|None}, "outputs": {...}, "pdf_skipped": reason|None,
        "error": message|None}``.
    """
    from cifarkit import render

    entry = manifest["notebooks"][name]
    nb_path, html_path, pdf_path = (run_dir / f"{name}{ext}" for ext in (".ipynb", ".html", ".pdf"))
    spec = next((s for s in config.NOTEBOOKS if s.name == name), None)
    title = f"{name} - {spec.title}" if spec else name
    header = render.facts_html(render.report_facts(manifest, name, entry, _read_metrics(run_dir, name)))
    footer = render.provenance_html(render.report_provenance(manifest, entry))
    seconds = {"html": None, "pdf": None}
    error = skipped = None
    t0 = time.time()
    try:
        render.render_html(nb_path, html_path, no_code=no_code, title=f"{title} ({manifest.get('run_id')})",
                           header_html=header, footer_html=footer)
        seconds["html"] = round(time.time() - t0, 2)
    except Exception as exc:
        error = f"HTML rendering failed: {_short_error(exc)}"
    if pdf and not error:
        t1 = time.time()
        try:
            render.render_pdf(html_path, pdf_path)
            seconds["pdf"] = round(time.time() - t1, 2)
        except render.ChromiumNotFound as exc:
            skipped = str(exc)
        except Exception as exc:
            error = f"PDF rendering failed: {_short_error(exc)}"
    elif not pdf:
        skipped = "PDF not requested (--no-pdf)"
    outputs = {"notebook": nb_path.name}
    for key, path in (("html", html_path), ("pdf", pdf_path)):
        outputs[key] = path.name if path.exists() and (key != "pdf" or seconds["pdf"] is not None) else None
    return {"render_seconds": seconds, "outputs": outputs, "pdf_skipped": skipped, "error": error}


def _totals(manifest: dict) -> dict:
    """Execution and rendering seconds summed over the run's notebooks (older runs: a number, not html/pdf)."""
    entries = [e for e in (manifest.get("notebooks") or {}).values() if isinstance(e, dict)]

    def total(get):
        vals = [v for v in map(get, entries) if isinstance(v, (int, float)) and not isinstance(v, bool)]
        return round(sum(vals), 2) if vals else 0.0

    def render_seconds(entry, kind):
        rs = entry.get("render_seconds")
        return rs.get(kind) if isinstance(rs, dict) else (rs if kind == "html" else None)

    out = {
        "execute_seconds": total(lambda e: e.get("execute_seconds")),
        "render_html_seconds": total(lambda e: render_seconds(e, "html")),
        "render_pdf_seconds": total(lambda e: render_seconds(e, "pdf")),
    }
    if out["execute_seconds"]:
        out["render_percent_of_execute"] = round(
            100 * (out["render_html_seconds"] + out["render_pdf_seconds"]) / out["execute_seconds"], 1)
    return out


def run_study(
    profile: str | None = None,
    *,
    data: str | None = None,
    out: str | os.PathLike | None = None,
    overrides: dict | None = None,
    only=None,
    skip=None,
    run_id: str | None = None,
    no_code: bool = False,
    pdf: bool = True,
    image_size: int | None = None,
    class_names=None,
    resume: str | os.PathLike | None = None,
    log=print,
) -> RunResult:
    """Execute the study's notebooks under ``profile`` and render each to HTML and PDF.

    A failing notebook does not stop the others, except those that need its
    outputs (``NotebookSpec.requires``), which are marked skipped.

    Args:
        profile: a profile from ``params/`` (default: ``config.DEFAULT_PROFILE``, or the resumed run's).
        data: the data source (default: the official CIFAR-10, or the resumed run's).
        out: the folder that receives ``<run-id>/`` (default: ``reports/``).
        overrides: notebook parameters to set, ``{"EPOCHS": 3}``.
        only, skip: notebook names or numbers to run or leave out.
        run_id: the run folder's name (default: time stamp and profile).
        no_code: hide code cells in the HTML and PDF reports.
        pdf: print a PDF of every report with Chromium (skipped, with a message, when Chromium is absent).
        image_size: ``IMAGE_SIZE`` for every notebook that declares it.
        class_names: ``CLASS_NAMES`` for every notebook that declares it (``"a,b,c"`` or a list).
        resume: an existing run folder to continue: its profile, data, image size, class
            names and overrides are reused (a conflicting ``profile``/``data``/... raises
            ``ValueError``), notebooks that succeeded there are kept, the others selected run.
        log: where progress lines go.

    Returns:
        a :class:`RunResult`; reused notebooks of a resumed run have ``reused=True``.
    """
    import papermill

    from cifarkit import dashboard, render

    if resume:
        run_dir = Path(resume).expanduser()
        manifest = load_manifest(run_dir)
        _check_lock(run_dir)
        previous = manifest.get("profile")
        if profile and profile != previous:
            raise ValueError(f"Cannot resume {run_dir} with profile {profile!r}: that run used profile {previous!r}. "
                             f"Leave --profile out (the run's own is used) or start a new run.")
        profile = previous
        if data is not None and not _same_data(data, manifest):
            raise ValueError(f"Cannot resume {run_dir} with --data {data}: that run used "
                             f"{_manifest_data_argument(manifest) or 'the official CIFAR-10'}. "
                             f"Leave --data out (the run's own is used) or start a new run.")
        data = _manifest_data_argument(manifest)
        for key, given in (("image_size", image_size), ("class_names", class_names)):
            stored = manifest.get(key)
            if given is not None and given != "" and stored is not None:
                new = domain_parameters(**{key: given})
                old = domain_parameters(**{key: stored})
                if new != old:
                    raise ValueError(f"Cannot resume {run_dir} with {key.replace('_', '-')} {given!r}: that run used "
                                     f"{stored!r}. Leave the option out or start a new run.")
        image_size = image_size if image_size is not None else manifest.get("image_size")
        class_names = class_names or manifest.get("class_names")
        overrides = {**(manifest.get("overrides") or {}), **(overrides or {})}
        prior_seconds = manifest.get("duration_seconds") or _totals(manifest)["execute_seconds"]
    profile = profile or config.DEFAULT_PROFILE
    prof, plan = plan_run(profile, overrides, only, skip, data, image_size=image_size, class_names=class_names)
    domain = domain_parameters(image_size, class_names)
    chromium = render.find_chromium() if pdf else None
    renderers = {
        "html": f"nbconvert {reporting.package_versions().get('nbconvert', '?')} (lab template, no CDN scripts)",
        "pdf": (render.chromium_version(chromium) or chromium) if chromium else None,
        "pdf_skipped": None if chromium else ("PDF not requested (--no-pdf)" if not pdf else
                                              f"No Chromium found. {render.INSTALL_HINT}"),
    }
    command = " ".join([os.path.basename(sys.argv[0])] + sys.argv[1:])
    session = {"at": reporting.now_iso(), "command": command}

    if resume:
        run_id = run_dir.name
        out_dir = run_dir.parent
        earlier = manifest.get("notebooks") or {}
        done = {name for name, e in earlier.items() if isinstance(e, dict) and e.get("status") == "ok"}
        if "finished_at" not in manifest and not (run_dir / LOCK_NAME).exists():
            log(f"note: the earlier session of {run_id} recorded no end (interrupted?); notebooks it did not "
                f"finish run again")
        session.update(overrides=overrides or {}, no_code=no_code, versions=reporting.package_versions(),
                       hardware=reporting.hardware_info(), git=reporting.git_info(), renderers=renderers,
                       notebooks=[spec.name for spec, _ in plan if spec.name not in done])
        manifest.setdefault("resumed_at", []).append(session)
        manifest["overrides"] = overrides
        manifest["renderers"] = renderers  # the latest session's; each session keeps its own too
        if not manifest.get("model"):
            manifest["model"] = next((p["MODEL"] for _, p in plan if "MODEL" in p), None)
        session_index = len(manifest["resumed_at"])
        log(f"cifarkit run {run_id}: resuming (profile '{prof.name}'); kept from earlier: "
            f"{', '.join(sorted(done)) or 'nothing'}")
    else:
        out_dir = Path(out) if out else config.REPORTS_DIR
        run_id = run_id or new_run_id(prof.name)
        run_dir = out_dir / run_id
        run_dir.mkdir(parents=True, exist_ok=False)
        done, session_index, prior_seconds = set(), 0, 0
        data_info = describe_data(data)
        data_info["argument"] = absolute_data(data)
        manifest = {
            "run_id": run_id,
            "profile": prof.name,
            "profile_description": prof.description,
            "command": command,
            "overrides": overrides or {},
            "seed": (overrides or {}).get("SEED", prof.common.get("SEED")),
            "model": next((p["MODEL"] for _, p in plan if "MODEL" in p), None),
            "image_size": domain.get("IMAGE_SIZE"),
            "class_names": domain["CLASS_NAMES"].split(",") if "CLASS_NAMES" in domain else None,
            "no_code": no_code,
            "data": data_info,
            "versions": reporting.package_versions(),
            "keras_backend": os.environ.get("KERAS_BACKEND", "torch"),
            "hardware": reporting.hardware_info(),
            "git": reporting.git_info(),
            "renderers": renderers,
            "started_at": session["at"],
            "notebooks": {},
        }
    log(f"cifarkit run {run_id}: profile '{prof.name}' ({prof.description})")
    log(f"expected duration on a 2-core CPU: about {prof.expected_minutes:g} min; output: {run_dir}")
    if renderers["pdf_skipped"]:
        log(f"note: PDF reports are skipped: {renderers['pdf_skipped']}")
    manifest_path = run_dir / "manifest.json"
    reporting.atomic_write_json(manifest_path, manifest)
    lock_path = run_dir / LOCK_NAME
    reporting.atomic_write_json(lock_path, {"pid": os.getpid(), "host": socket.gethostname(),
                                            "started_at": session["at"]})

    def update_dashboards(index_too: bool = False):
        try:
            if index_too:  # first, so that the run's page can link back to it
                dashboard.write_index(out_dir)
            dashboard.write_run_dashboard(run_dir)
        except Exception as exc:  # a dashboard problem never costs the run
            log(f"warning: could not write the dashboard: {_short_error(exc)}")

    results: list[NotebookResult] = []
    status: dict[str, str] = {name: "ok" for name in done}
    t_run = time.time()
    socket_dir = tempfile.mkdtemp(prefix="cifarkit-kernel-")
    try:
        order = [s.name for s in config.NOTEBOOKS]
        for name in sorted(done, key=lambda n: order.index(n) if n in order else len(order)):
            entry = manifest["notebooks"][name]
            results.append(NotebookResult(name, "ok", entry.get("execute_seconds") or 0.0, None,
                                          entry.get("outputs") or {}, reused=True))
            # reports of an earlier session made before PDFs and facts existed are brought up to date
            missing_pdf = chromium is not None and not (entry.get("outputs") or {}).get("pdf")
            if missing_pdf or not _has_facts(run_dir / f"{name}.html"):
                log(f"re-rendering the reports of {name} (kept from the earlier session)")
                rendered = render_reports(run_dir, name, manifest, no_code=no_code, pdf=pdf)
                if rendered["error"]:
                    log(f"warning: {name}: {rendered['error']}")
                else:
                    entry.update(render_seconds=rendered["render_seconds"], outputs=rendered["outputs"],
                                 pdf_skipped=rendered["pdf_skipped"], rendered_again_at=reporting.now_iso())
                    reporting.atomic_write_json(manifest_path, manifest)
        update_dashboards(index_too=True)
        todo = [(spec, params) for spec, params in plan if spec.name not in done]
        for i, (spec, params) in enumerate(todo, 1):
            params = dict(params)
            if "RUN_DIR" in notebook_parameters(spec):
                params["RUN_DIR"] = str(run_dir.resolve())
            entry = {"parameters": params, "started_at": reporting.now_iso(), "status": "running"}
            if session_index:
                entry["resumed"] = session_index
            old = manifest["notebooks"].get(spec.name)
            if isinstance(old, dict):  # an earlier failed or unfinished attempt: keep its record
                attempts = old.pop("previous_attempts", [])
                entry["previous_attempts"] = attempts + [old]
            missing = [r for r in spec.requires if status.get(r) not in (None, "ok")]
            if missing:
                error = f"needs {', '.join(missing)}, which did not succeed"
                log(f"[{i}/{len(todo)}] {spec.name}: skipped ({error})")
                results.append(NotebookResult(spec.name, "skipped", error=error))
                status[spec.name] = "skipped"
                entry.update(status="skipped", error=error)
                manifest["notebooks"][spec.name] = entry
                reporting.atomic_write_json(manifest_path, manifest)
                continue
            manifest["notebooks"][spec.name] = entry
            reporting.atomic_write_json(manifest_path, manifest)
            update_dashboards()
            log(f"[{i}/{len(todo)}] {spec.name} ({spec.title}) ...")
            nb_out = run_dir / f"{spec.name}.ipynb"
            t0 = time.time()
            error = None
            try:
                papermill.execute_notebook(
                    str(spec.path), str(nb_out), parameters=params, cwd=str(run_dir),
                    progress_bar=False, log_output=False, kernel_name="python3",
                    **({"kernel_manager_class": _kernel_manager_class(socket_dir)} if os.name == "posix" else {}),
                )
            except Exception as exc:  # a failed notebook is reported and rendered, the run goes on
                error = _short_error(exc)
            exec_seconds = time.time() - t0
            entry.update(status="failed" if error else "ok", error=error, finished_at=reporting.now_iso(),
                         execute_seconds=round(exec_seconds, 2))
            outputs = {"notebook": nb_out.name if nb_out.exists() else None, "html": None, "pdf": None}
            if nb_out.exists():
                rendered = render_reports(run_dir, spec.name, manifest, no_code=no_code, pdf=pdf)
                error = error or rendered["error"]
                outputs = rendered["outputs"]
                entry.update(render_seconds=rendered["render_seconds"], pdf_skipped=rendered["pdf_skipped"])
            res = NotebookResult(spec.name, "failed" if error else "ok", exec_seconds, error, outputs)
            results.append(res)
            status[spec.name] = res.status
            entry.update(status=res.status, error=error, outputs=outputs)
            reporting.atomic_write_json(manifest_path, manifest)
            update_dashboards()
            word = "ok" if not error else "FAILED"
            rs = entry.get("render_seconds") or {}
            timing = f"executed in {exec_seconds:.1f} s, HTML {rs.get('html') or 0:.1f} s" + (
                f", PDF {rs['pdf']:.1f} s" if rs.get("pdf") is not None else "")
            log(f"[{i}/{len(todo)}] {spec.name}: {word}, {timing}" + (f" -- {error}" if error else ""))
    finally:
        try:
            os.rmdir(socket_dir)
        except OSError:
            pass
        session_seconds = round(time.time() - t_run, 2)
        manifest["finished_at"] = reporting.now_iso()
        for entry in manifest["notebooks"].values():
            if isinstance(entry, dict) and entry.get("status") == "running":  # stopped by an exception or ^C
                entry.update(status="interrupted", error="the run stopped before this notebook finished")
        if session_index:
            manifest["resumed_at"][-1].update(finished_at=manifest["finished_at"], duration_seconds=session_seconds)
            manifest["duration_seconds"] = round(prior_seconds + session_seconds, 2)  # all sessions together
        else:
            manifest["duration_seconds"] = session_seconds
        entries = [e for e in manifest["notebooks"].values() if isinstance(e, dict)]
        manifest["status"] = "ok" if entries and all(e.get("status") == "ok" for e in entries) else "failed"
        manifest["totals"] = _totals(manifest)
        reporting.atomic_write_json(manifest_path, manifest)
        try:
            lock_path.unlink()
        except OSError:
            pass
        update_dashboards(index_too=True)
    result = RunResult(run_id, run_dir, results)
    log("")
    log(f"summary of run {run_id} ({session_seconds:.0f} s in this session):")
    for r in results:
        log(f"  {r.name:20s} {r.status:8s} {r.seconds:7.1f} s" + ("  (kept from earlier)" if r.reused else "")
            + (f"  {r.error}" if r.error else ""))
    totals = manifest["totals"]
    if totals.get("render_percent_of_execute") is not None:
        pdf_time = f" + PDF {totals['render_pdf_seconds']:.1f} s" if totals["render_pdf_seconds"] else ""
        log(f"rendering (HTML {totals['render_html_seconds']:.1f} s{pdf_time}) adds "
            f"{totals['render_percent_of_execute']:.1f}% to the {totals['execute_seconds']:.1f} s of execution")
    log(f"reports in {run_dir} (open {run_dir / 'index.html'})")
    return result


def _has_facts(html_path: Path) -> bool:
    """True when an HTML report was made by this renderer (it opens with the run's facts)."""
    try:
        with open(html_path, encoding="utf-8", errors="replace") as f:
            return 'id="ck-facts"' in f.read()
    except OSError:
        return False


def _short_error(exc: Exception) -> str:
    # papermill's PapermillExecutionError carries the notebook's own exception name and message
    ename = getattr(exc, "ename", None)
    evalue = getattr(exc, "evalue", None)
    if ename:
        return f"{ename}: {evalue}".strip()
    text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    return text.splitlines()[-1] if text else type(exc).__name__
