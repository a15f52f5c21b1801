"""Run the study's notebooks with papermill and render them as HTML and PDF reports.

``run_all.py`` is a thin command-line front to :func:`run_study`; the notebook
tests call it too, so they exercise the same code path. A run fills
``<out>/<run-id>/`` (its layout: :mod:`cifarkit.run_folder`) and updates
``<out>/index.html``, the list of every run in ``<out>`` (only where that page is cifarkit's).
``run_study(resume=RUN_DIR)`` continues such a folder: it keeps the notebooks that succeeded and
runs the others.

Before the first notebook the run is estimated on this machine (:mod:`cifarkit.report.estimate`:
a few measured training steps of every model it trains, the data's image counts): the table is
printed, recorded in the manifest (``time_plan``, and ``planned_seconds`` beside each notebook's
``execute_seconds``), and ``budget=MINUTES`` plans settings that fit (:mod:`cifarkit.report.estimate_budget`).

Everything that can be checked is checked before a file is written or a kernel starts: the
profile, the notebooks, every parameter value against its notebook's declaration
(:func:`cifarkit.report.plan.plan_run`), the output folder. A run folder is written by one
process at a time: its lock (:func:`cifarkit.run_folder.acquire_lock`) is taken before the
first write and held to the end of the session. Passwords in parameter values (a database
URL) are masked in everything written (:mod:`cifarkit.secrets`); the kernel gets the real
value through its environment.
"""

from __future__ import annotations

import math
import os
import shlex
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cifarkit import files, paths, provenance, run_folder, secrets, signals
from cifarkit.report import estimate, profiles
from cifarkit.report.estimate_budget import budget_lines, budget_outcome, describe_change
from cifarkit.report.execute import (
    choose_renderers,
    execute_notebook,
    has_facts,
    kill_kernels,
    render_reports,
    short_error,
)
from cifarkit.report.key_results import seconds_text
from cifarkit.report.manifest import describe_data, load_manifest, new_manifest, resume_options, totals
from cifarkit.report.plan import (
    RUN_PARAMETERS,
    absolute_data,
    domain_parameters,
    merge_notebook_overrides,
    notebook_parameters,
    parse_value,
    plan_model,
    plan_run,
    select_notebooks,
)

#: A run estimated longer than this (without ``--budget``) says under its estimate how to fit it to the time at
#: hand and how to stop and resume it: the standard profile runs for hours on a 2-core CPU.
LONG_RUN_SECONDS = 30 * 60

# run_all.py and the tests reach planning and the manifest through this module too.
__all__ = [
    "RUN_PARAMETERS",
    "NotebookResult",
    "RunResult",
    "absolute_data",
    "describe_data",
    "domain_parameters",
    "estimate_study",
    "load_manifest",
    "new_run_id",
    "notebook_parameters",
    "parse_value",
    "plan_run",
    "render_html",
    "render_reports",
    "run_study",
    "select_notebooks",
]


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


def render_html(notebook_path: Path, html_path: Path, *, no_code: bool = False) -> Path:
    """Render an executed notebook to self-contained HTML (see :func:`cifarkit.report.render.render_html`)."""
    from cifarkit.report import render

    return render.render_html(notebook_path, html_path, no_code=no_code)


def new_run_id(profile: str) -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{profile}"


@dataclass
class _Session:
    """One call of :func:`run_study`: the run folder it writes and what it did so far."""

    run_id: str
    run_dir: Path
    out_dir: Path
    manifest: dict
    log: Callable
    no_code: bool = False
    code: bool = False
    pdf: bool = True
    chromium: str | None = None
    done: set[str] = field(default_factory=set)  # notebooks kept from earlier sessions
    index: int = 0  # 0: the run's first session; k: its k-th resumption
    prior_seconds: float = 0.0  # the duration of the earlier sessions
    results: list[NotebookResult] = field(default_factory=list)
    status: dict[str, str] = field(default_factory=dict)
    plan: list = field(default_factory=list)  # [(spec, parameters)] with the real parameter values
    lock: run_folder.RunLock | None = None  # held from before the first write to the end of the session
    time_plan: estimate.TimePlan | None = None  # this session's time estimate (None: none could be made)
    told: set[str] = field(default_factory=set)  # notes already logged once

    def __post_init__(self):
        self.status = {name: "ok" for name in self.done}

    def save_manifest(self) -> None:
        """Write the manifest; any password left in it is masked (:mod:`cifarkit.secrets`)."""
        files.atomic_write_json(self.run_dir / run_folder.MANIFEST, secrets.mask_values(self.manifest))

    def note_once(self, key: str, message: str) -> None:
        if key not in self.told:
            self.told.add(key)
            self.log(message)

    def update_dashboards(self, index_too: bool = False) -> None:
        from cifarkit.report import dashboard

        try:
            if index_too and dashboard.write_index(self.out_dir) is None:  # first: the run's page links to it
                self.note_once(
                    "index",
                    f"note: {self.out_dir / 'index.html'} was not written by cifarkit; it is left as it is "
                    f"(this run's page is {self.run_dir / 'index.html'})",
                )
            dashboard.write_run_dashboard(self.run_dir)
        except Exception as exc:  # a dashboard problem never costs the run
            self.log(f"warning: could not write the dashboard: {short_error(exc)}")


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
    code: bool = False,
    pdf: bool = True,
    image_size: int | None = None,
    class_names=None,
    resume: str | os.PathLike | None = None,
    budget: float | None = None,
    notebook_overrides: dict | None = None,
    log=print,
) -> RunResult:
    """Execute the study's notebooks under ``profile`` and render each to HTML and PDF.

    A failing notebook does not stop the others, except those that need its
    outputs (``NotebookSpec.requires``), which are marked skipped.

    Args:
        profile: a profile from ``params/`` (default: ``profiles.DEFAULT_PROFILE``, or the resumed run's).
        data: the data source (default: the official CIFAR-10, or the resumed run's).
        out: the folder that receives ``<run-id>/`` (default: ``reports/``).
        overrides: notebook parameters to set, ``{"EPOCHS": 3}``.
        notebook_overrides: parameters of one notebook each, ``{"03_train": {"EPOCHS": 3}}`` (``run_all.py -p
            03.EPOCHS 3``); a ``--budget`` plan's own go over them, and the manifest keeps both for ``--resume``
            and for the study book's command that reproduces the run.
        only, skip: notebook names or numbers to run or leave out.
        run_id: the run folder's name (default: time stamp and profile).
        no_code: leave code cells out of the HTML and PDF reports (by default the HTML folds them and the
            PDF leaves them out).
        code: keep the code in the PDF reports.
        pdf: print a PDF of every report with Chromium (skipped, with a message, when Chromium is absent).
        image_size: ``IMAGE_SIZE`` for every notebook that declares it.
        class_names: ``CLASS_NAMES`` for every notebook that declares it (``"a,b,c"`` or a list).
        resume: an existing run folder to continue: its profile, data, image size, class
            names and overrides are reused (a conflicting ``profile``/``data``/... raises
            ``ValueError``), notebooks that succeeded there are kept, the others selected run.
        budget: minutes the run may take on this machine: epochs, trial counts and subset sizes are planned
            to fit (:mod:`cifarkit.report.estimate_budget`) and applied as per-notebook overrides; a budget
            that cannot be met is refused (``ValueError``) before anything is written. Without it the
            profile's settings stay as they are.
        log: where progress lines go.

    Returns:
        a :class:`RunResult`; reused notebooks of a resumed run have ``reused=True``.
    """
    import papermill  # noqa: F401 - missing, it fails here, before the run folder is touched

    options = {"no_code": no_code, "code": code, "pdf": pdf, "log": _masking(log)}
    domain = {"image_size": image_size, "class_names": class_names}
    _check_budget(budget, resume)
    # ^C and SIGTERM (kill PID, a scheduler's limit): the kernel killed at once (one asked to shut down mid-cell
    # prints a traceback), then the notebook recorded as interrupted, the lock released, the dashboards written
    with signals.stopping_cleanly(before=kill_kernels):
        if resume:
            run = _open_resumed(
                Path(resume).expanduser(), profile, data, overrides, only, skip, domain, options, notebook_overrides
            )
        else:
            run = _open_new(
                out, run_id, profile, data, overrides, only, skip, domain, options, budget, notebook_overrides
            )
        t_run = time.time()
        socket_dir = tempfile.mkdtemp(prefix="cifarkit-kernel-")
        try:
            _rerender_kept(run)
            run.update_dashboards(index_too=True)
            todo = [(spec, params) for spec, params in run.plan if spec.name not in run.done]
            for i, (spec, params) in enumerate(todo, 1):
                if spec.name == "03_train":
                    _retime_with_tuned_settings(run, spec, params)
                _run_notebook(run, spec, params, f"[{i}/{len(todo)}]", socket_dir)
        finally:
            session_seconds = _finish(run, t_run, socket_dir)
    result = RunResult(run.run_id, run.run_dir, run.results)
    _log_summary(run, session_seconds)
    return result


def estimate_study(
    profile: str | None = None,
    *,
    data: str | None = None,
    overrides: dict | None = None,
    only=None,
    skip=None,
    pdf: bool = True,
    image_size: int | None = None,
    class_names=None,
    resume: str | os.PathLike | None = None,
    budget: float | None = None,
    notebook_overrides: dict | None = None,
    log=print,
) -> estimate.TimePlan | None:
    """What :func:`run_study` with the same arguments would plan, without running it (``run_all.py --estimate``):
    the run is checked and timed on this machine as a run would be, the estimate per notebook (and with
    ``budget`` the settings that fit) is printed, and nothing is written: no run folder, no manifest, no lock.

    With ``resume`` the notebooks that session would run (those that did not succeed there) are estimated; the
    run folder is only read. Returns the time plan (None: every notebook of a resumed run succeeded already);
    ``ValueError`` where the options are wrong or no estimate can be made.
    """
    log = _masking(log)
    domain = {"image_size": image_size, "class_names": class_names}
    _check_budget(budget, resume)
    if resume:
        run_dir = Path(resume).expanduser()
        manifest = load_manifest(run_dir)
        prof, plan, _, _ = _plan_resumed(
            run_dir, manifest, profile, data, overrides, only, skip, domain, notebook_overrides
        )
        done = succeeded(manifest)
        plan = [(spec, params) for spec, params in plan if spec.name not in done]
        log(
            f"cifarkit estimate: resuming {run_dir.name} (profile '{prof.name}'), kept: {', '.join(sorted(done)) or 'nothing'}"
        )
        if not plan:
            log("every notebook of this run succeeded already: nothing to run")
            return None
    else:
        prof, plan, _ = _plan_new(profile, data, overrides, only, skip, domain, notebook_overrides)
        log(f"cifarkit estimate: profile '{prof.name}' ({prof.description}); nothing is run or written")
    _, chromium = choose_renderers(pdf)
    with signals.stopping_cleanly(before=kill_kernels):  # a probe process stops with it
        time_plan, _ = estimate.plan_time(
            plan, budget=budget, pdf=chromium is not None, log=log, needed_by="--estimate"
        )
    for line in _plan_lines(time_plan) + long_run_lines(time_plan, resumed=bool(resume)):
        log(line)
    return time_plan


def long_run_lines(time_plan: estimate.TimePlan | None, run_dir=None, *, resumed: bool = False) -> list[str]:
    """What a run estimated at more than :data:`LONG_RUN_SECONDS` without ``--budget`` says under its estimate:
    how to fit it to the time at hand (not for a resumed run, which keeps its settings) and, for a run that starts
    (``run_dir``), how to stop it and continue later. Nothing for a shorter run or one without an estimate."""
    if time_plan is None or time_plan.budget is not None or time_plan.total <= LONG_RUN_SECONDS:
        return []
    out = []
    if not resumed:
        out.append(
            f"a long run on this machine (about {seconds_text(time_plan.total)} of execution): --budget MINUTES plans "
            "the profile's epochs, trials and sample sizes to fit the time you have (--estimate --budget MINUTES "
            'prints the plan and runs nothing; with make: ARGS="--budget 60")'
        )
    if run_dir is not None:
        out.append(
            "Ctrl-C stops it cleanly (the notebook running is recorded as interrupted); "
            f"{provenance.python_command()} run_all.py --resume {shlex.quote(str(run_dir))} continues it later, keeping the "
            "notebooks that finished"
        )
    return out


def _plan_lines(time_plan: estimate.TimePlan) -> list[str]:
    """What a run prints of its time plan before the first notebook: a budget's plan, then the estimate."""
    return (budget_lines(time_plan.budget) if time_plan.budget is not None else []) + time_plan.lines()


def _check_budget(budget, resume) -> None:
    """``ValueError`` unless ``budget`` is None or a positive number of minutes for a new run."""
    if budget is None:
        return
    if isinstance(budget, bool) or not isinstance(budget, (int, float)) or not math.isfinite(budget) or budget <= 0:
        raise ValueError(f"--budget must be a positive number of minutes; received {budget!r}. Example: --budget 15.")
    if resume:
        raise ValueError(
            "--budget does not go with --resume: a resumed run keeps the settings its first session planned."
        )


# ------------------------------------------------------------------ starting a session
def _masking(log: Callable) -> Callable:
    """``log`` with every password in its lines masked."""

    def masked(*parts):
        log(*(secrets.mask_text(p) for p in parts))

    return masked


def _command_line() -> str:
    """This process's command line as recorded in the manifest: the script's name and its arguments quoted as a
    shell takes them back, passwords masked (:func:`cifarkit.provenance.quoted_args`)."""
    return " ".join([os.path.basename(sys.argv[0]), provenance.quoted_args(sys.argv[1:])]).rstrip()


def _open_resumed(
    run_dir: Path, profile, data, overrides, only, skip, domain: dict, options: dict, notebook_overrides=None
):
    """Lock ``run_dir``, read its manifest under the lock, plan the session and record it.

    Raises before anything is written (the lock file is removed again) when the
    folder is no run, another process writes it, or the options do not fit.
    """
    load_manifest(run_dir)  # a run at all? (refused before the lock file is created)
    at = provenance.now_iso()
    lock = run_folder.acquire_lock(run_dir, at)
    try:
        manifest = load_manifest(run_dir)  # again, under the lock: as its last writer left it
        prof, plan, overrides, per_notebook = _plan_resumed(
            run_dir, manifest, profile, data, overrides, only, skip, domain, notebook_overrides
        )
        if per_notebook:
            manifest["notebook_overrides"] = per_notebook
        renderers, chromium = choose_renderers(options["pdf"])
        session = {"at": at, "command": _command_line()}
        run = _resume_session(run_dir, manifest, prof, plan, session, overrides, renderers, **options)
        run.lock, run.chromium = lock, chromium
        todo = [(spec, params) for spec, params in plan if spec.name not in run.done]
        run.time_plan, _ = estimate.plan_time(todo, log=run.log) if todo else (None, {})
        manifest["resumed_at"][-1]["time_plan"] = run.time_plan.to_dict() if run.time_plan else None
        _start(run, prof, renderers)
    except BaseException:
        lock.release()
        raise
    return run


def _plan_resumed(
    run_dir: Path, manifest: dict, profile, data, overrides, only, skip, domain: dict, notebook_overrides
):
    """The resumed run's profile and plan, its overrides and per-notebook overrides (``ValueError`` where this
    session's options conflict with the run's)."""
    profile, data, image_size, class_names, overrides = resume_options(
        run_dir, manifest, profile, data, domain["image_size"], domain["class_names"], overrides
    )
    per_notebook = merge_notebook_overrides(manifest.get("notebook_overrides"), notebook_overrides)
    prof, plan = plan_run(
        profile,
        overrides,
        only,
        skip,
        data,
        image_size=image_size,
        class_names=class_names,
        notebook_overrides=per_notebook,
    )
    _check_notebooks_planned(notebook_overrides, plan, kept=succeeded(manifest))
    # a kept notebook ran with its earlier session's values: where this session's -p changes one of them,
    # the manifest pins the earlier value to that notebook, so the record (and the study book's command
    # that reproduces the run) says what each notebook ran with
    per_notebook = merge_notebook_overrides(per_notebook, kept_parameter_pins(manifest, overrides, per_notebook))
    return prof, plan, overrides, per_notebook


def _plan_new(profile, data, overrides, only, skip, domain: dict, notebook_overrides):
    """A new run's profile, plan and per-notebook overrides (``ValueError`` for anything that does not fit)."""
    per_notebook = merge_notebook_overrides(notebook_overrides)
    prof, plan = plan_run(
        profile or profiles.DEFAULT_PROFILE, overrides, only, skip, data, **domain, notebook_overrides=per_notebook
    )
    _check_notebooks_planned(notebook_overrides, plan)
    return prof, plan, per_notebook


def _open_new(
    out, run_id, profile, data, overrides, only, skip, domain: dict, options: dict, budget=None, notebook_overrides=None
):
    """Plan a new run (its time too, and with ``budget`` the settings that fit it), then create its folder
    (a name no other run has), lock it and write its manifest."""
    prof, plan, per_notebook = _plan_new(profile, data, overrides, only, skip, domain, notebook_overrides)
    renderers, chromium = choose_renderers(options["pdf"])
    time_plan, budget_overrides = estimate.plan_time(plan, budget=budget, pdf=chromium is not None, log=options["log"])
    if budget_overrides:
        per_notebook = merge_notebook_overrides(per_notebook, budget_overrides)
        prof, plan = plan_run(prof.name, overrides, only, skip, data, **domain, notebook_overrides=per_notebook)
    out_dir = Path(out).expanduser() if out else paths.REPORTS_DIR
    run_dir = run_folder.create_run_dir(out_dir, run_id or new_run_id(prof.name), exact=bool(run_id))
    at = provenance.now_iso()
    lock = run_folder.acquire_lock(run_dir, at)
    try:
        session = {"at": at, "command": _command_line()}
        manifest = new_manifest(
            run_dir.name,
            prof,
            plan,
            data=data,
            domain=domain_parameters(**domain),
            overrides=secrets.mask_values(overrides or {}),
            no_code=options["no_code"],
            renderers=renderers,
            command=session["command"],
            started_at=at,
        )
        manifest["time_plan"] = time_plan.to_dict() if time_plan else None
        if per_notebook:  # -p NOTEBOOK.NAME and the budget's plan: a resumed session plans with them too
            manifest["notebook_overrides"] = per_notebook
        run = _Session(run_dir.name, run_dir, out_dir, manifest, lock=lock, chromium=chromium, **options)
        run.plan, run.time_plan = plan, time_plan
        _start(run, prof, renderers)
    except BaseException:
        lock.release()
        run_folder.remove_if_empty(run_dir)
        raise
    return run


def _check_notebooks_planned(notebook_overrides: dict | None, plan, kept=frozenset()) -> None:
    """Every notebook given a setting of its own (``-p NOTEBOOK.NAME``) runs in this session's plan and is
    not one a resumed run keeps from an earlier session (``kept``)."""
    planned = {spec.name for spec, _ in plan}
    given = set(notebook_overrides or {})
    idle = sorted(given - planned)
    if idle:
        raise ValueError(
            f"-p sets parameters of {', '.join(idle)}, which this run does not execute "
            f"(it runs {', '.join(sorted(planned))}). Leave those settings out or select the notebook with --only."
        )
    done = sorted(given & set(kept))
    if done:
        raise ValueError(
            f"-p sets parameters of {', '.join(done)}, which succeeded in an earlier session of this run and is "
            f"kept, not run again. Leave those settings out, or start a new run to run it with other settings."
        )


def succeeded(manifest: dict) -> set[str]:
    """The notebooks of a run that succeeded in one of its sessions (a resumed session keeps them)."""
    earlier = manifest.get("notebooks") or {}
    return {name for name, e in earlier.items() if isinstance(e, dict) and e.get("status") == "ok"}


def kept_parameter_pins(manifest: dict, overrides: dict | None, notebook_overrides: dict | None) -> dict:
    """``{notebook: {NAME: value}}``: for each notebook a resumed run keeps, the values it ran with where this
    session's settings (``-p NAME``, ``-p NOTEBOOK.NAME``, those of earlier sessions merged in) give another.

    Kept notebooks do not run again, so the settings the run records for it would otherwise claim values they
    never ran with. Only values the manifest recorded as they were are pinned: not a password (recorded
    masked; ``-p NOTEBOOK.NAME`` refuses to write one) nor a parameter the notebook's record lacks.
    """
    pins: dict = {}
    for notebook in sorted(succeeded(manifest)):
        recorded = (manifest["notebooks"][notebook] or {}).get("parameters") or {}
        wanted = {**(overrides or {}), **((notebook_overrides or {}).get(notebook) or {})}
        for name, value in wanted.items():
            if name in RUN_PARAMETERS or name not in recorded or recorded[name] == secrets.mask_values(value):
                continue  # (recorded values are masked ones)
            if secrets.carries_credentials(recorded[name]) or secrets.carries_credentials(value):
                continue
            pins.setdefault(notebook, {})[name] = recorded[name]
    return pins


def _resume_session(run_dir: Path, manifest: dict, prof, plan, session: dict, overrides, renderers, **options):
    """A later session of ``run_dir``: the notebooks that succeeded are kept, the session is recorded."""
    done = succeeded(manifest)
    prior_seconds = manifest.get("duration_seconds") or totals(manifest)["execute_seconds"]
    run = _Session(run_dir.name, run_dir, run_dir.parent, manifest, done=done, prior_seconds=prior_seconds, **options)
    run.plan = plan
    sessions = manifest.get("resumed_at") or []
    if "finished_at" not in manifest or (sessions and "finished_at" not in sessions[-1]):
        run.log(
            f"note: the earlier session of {run.run_id} recorded no end (interrupted?); notebooks it did not "
            f"finish run again"
        )
    _record_session(run, session, plan, overrides, renderers)
    run.log(
        f"cifarkit run {run.run_id}: resuming (profile '{prof.name}'); kept from earlier: "
        f"{', '.join(sorted(done)) or 'nothing'}"
    )
    return run


def _record_session(run: _Session, session: dict, plan, overrides, renderers: dict) -> None:
    """Append this session to the manifest's ``resumed_at``, with what it runs and on what."""
    overrides = secrets.mask_values(overrides or {})
    session.update(
        overrides=overrides,
        no_code=run.no_code,
        versions=provenance.package_versions(),
        hardware=provenance.hardware_info(),
        git=provenance.git_info(),
        renderers=renderers,
        notebooks=[spec.name for spec, _ in plan if spec.name not in run.done],
    )
    manifest = run.manifest
    manifest.setdefault("resumed_at", []).append(session)
    manifest["overrides"] = overrides
    manifest["renderers"] = renderers  # the latest session's; each session keeps its own too
    if not manifest.get("model"):
        manifest["model"] = plan_model(plan)
    run.index = len(manifest["resumed_at"])


def _start(run: _Session, prof, renderers: dict) -> None:
    """Say what runs and where, and write the manifest (the run's lock is held already)."""
    run.log(f"cifarkit run {run.run_id}: profile '{prof.name}' ({prof.description})")
    for line in _plan_lines(run.time_plan) if run.time_plan is not None else []:
        run.log(line)
    run.log(f"output: {run.run_dir}")
    for line in long_run_lines(run.time_plan, run.run_dir, resumed=run.index > 0):
        run.log(line)
    if renderers["pdf_skipped"]:
        run.log(f"note: PDF reports are skipped: {renderers['pdf_skipped']}")
    run.save_manifest()


# ------------------------------------------------------------------ the notebooks
def _rerender_kept(run: _Session) -> None:
    """Results for the notebooks kept from earlier sessions, in the study's order.

    Their reports are rendered again when an earlier session made them before
    PDFs (a PDF is missing and Chromium is here) or facts existed.
    """
    order = [s.name for s in profiles.NOTEBOOKS]
    for name in sorted(run.done, key=lambda n: order.index(n) if n in order else len(order)):
        entry = run.manifest["notebooks"][name]
        run.results.append(
            NotebookResult(
                name, "ok", entry.get("execute_seconds") or 0.0, None, entry.get("outputs") or {}, reused=True
            )
        )
        missing_pdf = run.chromium is not None and not (entry.get("outputs") or {}).get("pdf")
        if missing_pdf or not has_facts(run.run_dir / f"{name}.html"):
            run.log(f"re-rendering the reports of {name} (kept from the earlier session)")
            rendered = render_reports(run.run_dir, name, run.manifest, no_code=run.no_code, pdf=run.pdf, code=run.code)
            if rendered["error"]:
                run.log(f"warning: {name}: {rendered['error']}")
            else:
                entry.update(
                    render_seconds=rendered["render_seconds"],
                    outputs=rendered["outputs"],
                    pdf_skipped=rendered["pdf_skipped"],
                    rendered_again_at=provenance.now_iso(),
                )
                run.save_manifest()


def _retime_with_tuned_settings(run: _Session, spec: profiles.NotebookSpec, params: dict) -> None:
    """Before 03: when 02 succeeded and its tuned settings will be applied, time 03's training again with
    them and re-estimate 03 and what follows (:func:`cifarkit.report.estimate.retime_tuned_training`); when
    they will not be, 03 is re-estimated at the recipe's speed measured at the start.

    The start's estimate stays in the manifest; each re-timing is added to its ``time_plan`` (``retimed``)
    and the notebooks' entries get the new ``planned_seconds`` beside ``planned_seconds_at_start``. A
    re-timing that fails costs the run nothing but a note.
    """
    from cifarkit.analysis.tuning.results import tuned_settings

    tp = run.time_plan
    if tp is None or not tp.machine.measured:
        return
    p3 = estimate.effective_parameters(spec, params)
    try:
        applied = None  # 02 failed or did not run: 03 keeps the recipe's settings
        if run.status.get("02_tune") == "ok":  # status holds the notebooks kept from earlier sessions too
            tuned = tuned_settings(
                str(p3.get("TUNED_PARAMS") or "auto"), run.run_dir, model=p3["MODEL"], recipe=p3["RECIPE"]
            )
            applied = tuned["settings"] if tuned["applied"] else None
        nb = {s.name: estimate.effective_parameters(s, ps) for s, ps in run.plan if s.name in tp.estimates}
        # not applied: 03 settles on the recipe's speed where the start timed it as a mixture of the two
        record = estimate.retime_tuned_training(tp, nb, applied)
    except Exception as exc:  # noqa: BLE001 - an estimate never costs the run its notebooks
        run.log(f"note: 03_train could not be re-timed with 02's tuned settings ({short_error(exc)})")
        return
    if record is None:
        return
    for line in estimate.retime_lines(record):
        run.log(line)
    if tp.budget is not None:  # the budget was planned before 02 picked; say where the run stands now
        _check_budget_after_retime(run, tp, record)
    plan_record = run.manifest["resumed_at"][-1] if run.index else run.manifest
    if isinstance(plan_record.get("time_plan"), dict):
        plan_record["time_plan"].setdefault("retimed", []).append(record)
    run.save_manifest()


def _check_budget_after_retime(run: _Session, tp: estimate.TimePlan, record: dict) -> None:
    """After 03's re-timing under ``--budget``: say whether 03 and what follows still fit the budget's time for
    the notebooks, and when they do not, lower their settings to fit (:func:`estimate.replan_rest`): the plan's
    parameters change before those notebooks start, and the manifest's ``notebook_overrides`` with them (what
    ``--resume`` and the study book's command to reproduce the run use). What no setting can fit is said and run."""
    used = sum(r.seconds for r in run.results if not r.reused)
    to_go = sum(record["notebooks"][n]["after"] for n in record["notebooks"])
    room = tp.budget.get("notebooks_seconds", 60 * tp.budget["minutes"])  # the budget less what it set aside
    record["budget_check"] = {"used_seconds": round(used, 1), "to_go_seconds": round(to_go, 1)}
    left = f" ({room / 60:.1f} min of it for the notebooks)" if "notebooks_seconds" in tp.budget else ""
    head = (
        f"budget {tp.budget['minutes']:g} min{left}: {used / 60:.1f} min of execution so far and about "
        f"{to_go / 60:.1f} min to go"
    )
    if used + to_go <= room:
        run.log(f"{head}, within it")
        return
    params_of = {spec.name: params for spec, params in run.plan if spec.name in record["notebooks"]}
    rest = {s.name: estimate.effective_parameters(s, p) for s, p in run.plan if s.name in params_of}
    try:
        plan = estimate.replan_rest(tp, rest, room - used)
    except ValueError as exc:
        run.log(f"{head}, over it; the notebooks to come cannot fit it ({exc}): their settings are kept")
        return
    for name, changed in plan["overrides"].items():
        params_of[name].update(changed)  # the parameters those notebooks start with
    run.manifest["notebook_overrides"] = merge_notebook_overrides(
        run.manifest.get("notebook_overrides"), plan["overrides"]
    )
    for name, entry in record["notebooks"].items():
        entry["after_replan"] = round(tp.estimates[name].seconds, 1)
    record["budget_replan"] = {"changes": plan["changes"], "to_go_seconds": plan["after_seconds"]}
    run.log(f"{head}, over it; the notebooks to come change, in the planner's order:")
    for change in plan["changes"]:
        run.log(f"  {describe_change(change)} ({change['why']})")
    run.log(f"planned now: about {plan['after_seconds'] / 60:.1f} min to go")


def _new_entry(run: _Session, spec: profiles.NotebookSpec, params: dict) -> dict:
    """The manifest entry of a notebook about to run; an earlier attempt's entry goes in ``previous_attempts``."""
    params = secrets.mask_values(dict(params))  # what is written: the executed notebook, manifest, reports
    if "RUN_DIR" in notebook_parameters(spec):
        params["RUN_DIR"] = str(run.run_dir.resolve())
    entry = {"parameters": params, "started_at": provenance.now_iso(), "status": "running"}
    if run.time_plan is not None:
        entry["planned_seconds"] = run.time_plan.planned_seconds(spec.name)
        if run.time_plan.planned_at_start(spec.name) is not None:  # re-timed during the run
            entry["planned_seconds_at_start"] = run.time_plan.planned_at_start(spec.name)
    if run.index:
        entry["resumed"] = run.index
    old = run.manifest["notebooks"].get(spec.name)
    if isinstance(old, dict):  # an earlier failed or unfinished attempt: keep its record
        attempts = old.pop("previous_attempts", [])
        entry["previous_attempts"] = attempts + [old]
    return entry


def _run_notebook(run: _Session, spec: profiles.NotebookSpec, params: dict, step: str, socket_dir: str) -> None:
    """Run one notebook of the plan and record it (``step``: ``[i/n]`` in the log).

    Skipped when a notebook it needs did not succeed; else executed by papermill
    and rendered. The manifest and the run's dashboard follow every step.
    """
    entry = _new_entry(run, spec, params)
    missing = [r for r in spec.requires if run.status.get(r) not in (None, "ok")]
    if missing:
        error = f"needs {', '.join(missing)}, which did not succeed"
        run.log(f"{step} {spec.name}: skipped ({error})")
        run.results.append(NotebookResult(spec.name, "skipped", error=error))
        run.status[spec.name] = "skipped"
        entry.update(status="skipped", error=error)
        run.manifest["notebooks"][spec.name] = entry
        run.save_manifest()
        return
    run.manifest["notebooks"][spec.name] = entry
    run.save_manifest()
    run.update_dashboards()
    run.log(f"{step} {spec.name} ({spec.title}) ...")
    nb_out = run.run_dir / f"{spec.name}.ipynb"
    t0 = time.time()
    env = _secret_environment(run, spec, params)
    error = execute_notebook(spec.source, nb_out, entry["parameters"], run.run_dir, socket_dir, env=env)
    error = secrets.mask_text(error)
    exec_seconds = time.time() - t0
    entry.update(
        status="failed" if error else "ok",
        error=error,
        finished_at=provenance.now_iso(),
        execute_seconds=round(exec_seconds, 2),
    )
    outputs = {"notebook": nb_out.name if nb_out.exists() else None, "html": None, "pdf": None}
    if nb_out.exists():
        rendered = render_reports(run.run_dir, spec.name, run.manifest, no_code=run.no_code, pdf=run.pdf, code=run.code)
        error = error or rendered["error"]
        outputs = rendered["outputs"]
        entry.update(render_seconds=rendered["render_seconds"], pdf_skipped=rendered["pdf_skipped"])
    res = NotebookResult(spec.name, "failed" if error else "ok", exec_seconds, error, outputs)
    run.results.append(res)
    run.status[spec.name] = res.status
    entry.update(status=res.status, error=error, outputs=outputs)
    run.save_manifest()
    run.update_dashboards(index_too=True)  # the folder index shows the run's progress, not "0/0" until the end
    word = "ok" if not error else "FAILED"
    rs = entry.get("render_seconds") or {}
    timing = f"executed in {exec_seconds:.1f} s, HTML {rs.get('html') or 0:.1f} s" + (
        f", PDF {rs['pdf']:.1f} s" if rs.get("pdf") is not None else ""
    )
    run.log(f"{step} {spec.name}: {word}, {timing}" + (f" -- {error}" if error else ""))


def _secret_environment(run: _Session, spec, params: dict) -> dict:
    """The real values of the notebook's password-bearing parameters, for the kernel's environment.

    A value that is masked already (a resumed run's, from its manifest) can only be revealed
    from ``CIFARKIT_SECRET_<PARAM>`` set by the user: said once when it is not.
    """
    for name, value in params.items():
        if secrets.is_masked(value) and secrets.reveal(name, value) == value:
            run.note_once(
                f"masked-{name}",
                f"warning: {name} of {spec.name} is {value}: its password was not recorded. Give it again "
                f"(-p {name} URL, or export {secrets.env_name(name)}=URL) or the notebook cannot connect.",
            )
    return secrets.secret_environment(params)


# ------------------------------------------------------------------ finishing
def _finish(run: _Session, t_run: float, socket_dir: str) -> float:
    """Close the session, even after an error or ^C: totals and status in the manifest, the lock
    released (even when the manifest cannot be written), the dashboards written. Returns the session's seconds."""
    try:
        os.rmdir(socket_dir)
    except OSError:
        pass
    session_seconds = round(time.time() - t_run, 2)
    manifest = run.manifest
    manifest["finished_at"] = provenance.now_iso()
    for entry in manifest["notebooks"].values():
        if isinstance(entry, dict) and entry.get("status") == "running":  # stopped by an exception or ^C
            entry.update(status="interrupted", error="the run stopped before this notebook finished")
    if run.index:
        manifest["resumed_at"][-1].update(finished_at=manifest["finished_at"], duration_seconds=session_seconds)
        manifest["duration_seconds"] = round(run.prior_seconds + session_seconds, 2)  # all sessions together
    else:
        manifest["duration_seconds"] = session_seconds
    entries = [e for e in manifest["notebooks"].values() if isinstance(e, dict)]
    manifest["status"] = "ok" if entries and all(e.get("status") == "ok" for e in entries) else "failed"
    manifest["totals"] = totals(manifest)
    try:
        run.save_manifest()  # the book reads the run's duration and statuses from the saved manifest
        _write_study_book(run)
        run.save_manifest()  # and now with the book's files
    finally:
        run.lock.release()  # before the dashboards, which then show the run finished
    run.update_dashboards(index_too=True)
    return session_seconds


def _write_study_book(run: _Session) -> None:
    """study.html/.pdf/.bib from what the run recorded; a problem with the book never costs the run."""
    from cifarkit.report.book import write_study_book

    try:
        book = write_study_book(run.run_dir, pdf=run.pdf and run.chromium is not None)
        run.manifest["study_book"] = {
            k: (Path(v).name if k in ("html", "pdf", "bib") and v else v) for k, v in book.items()
        }
    except Exception as exc:  # noqa: BLE001
        run.manifest["study_book"] = {"error": short_error(exc)}
        run.log(f"warning: could not write the study book: {short_error(exc)}")


def _log_summary(run: _Session, session_seconds: float) -> None:
    """The lines printed at the end: each notebook's outcome, the cost of rendering, where the reports are."""
    log = run.log
    log("")
    log(f"summary of run {run.run_id} ({session_seconds:.0f} s in this session):")
    for r in run.results:
        entry = run.manifest["notebooks"].get(r.name) or {}
        planned, at_start = entry.get("planned_seconds"), entry.get("planned_seconds_at_start")
        log(
            f"  {r.name:20s} {r.status:8s} {r.seconds:7.1f} s"
            + (f" (planned {planned:.0f} s" if planned is not None and not r.reused else "")
            + (f"; {at_start:.0f} s at the start" if at_start is not None and not r.reused else "")
            + (")" if planned is not None and not r.reused else "")
            + ("  (kept from earlier)" if r.reused else "")
            + (f"  {r.error}" if r.error else "")
        )
    sums = run.manifest["totals"]
    if sums.get("render_percent_of_execute") is not None:
        pdf_time = f" + PDF {sums['render_pdf_seconds']:.1f} s" if sums["render_pdf_seconds"] else ""
        log(
            f"rendering (HTML {sums['render_html_seconds']:.1f} s{pdf_time}) adds "
            f"{sums['render_percent_of_execute']:.1f}% to the {sums['execute_seconds']:.1f} s of execution"
        )
    kept = budget_outcome(run.manifest)
    if kept is not None:
        over = kept["over_seconds"]
        log(
            f"budget {kept['minutes']:g} min: the run took {seconds_text(kept['used_seconds'])} with measuring the "
            "machine, " + ("within it" if over <= 0 else f"{seconds_text(over)} ({kept['over_text']}) over it")
        )
    log(f"reports in {run.run_dir} (open {run.run_dir / 'index.html'}; the study book: {run.run_dir / 'study.html'})")
