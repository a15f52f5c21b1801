"""One notebook of a run: executed by papermill, then rendered as HTML and PDF reports.

The runner (:mod:`cifarkit.report.runner`) decides what runs and keeps the
manifest; this module does the work for a single notebook and reports what went
wrong as a short message instead of raising, so that the run goes on.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
import traceback
import weakref
from pathlib import Path

from cifarkit import run_folder, secrets
from cifarkit.report import notebooks as nbsource
from cifarkit.report import profiles

_MANAGERS: weakref.WeakSet = weakref.WeakSet()  # the kernel managers this process made (kill_kernels)


def execute_notebook(
    source: Path, nb_out: Path, params: dict, run_dir: Path, socket_dir: str, env: dict | None = None
) -> str | None:
    """Execute the notebook whose script is ``source`` into ``nb_out``, with ``run_dir`` as working directory.

    ``params`` are written into the executed notebook (papermill's injected cell),
    so they must hold no password; ``env`` (``CIFARKIT_SECRET_<PARAM>``: the real
    value, see :mod:`cifarkit.secrets`) is set in this process's environment while
    the kernel starts, which inherits it, and removed afterwards.

    Returns ``None`` on success, else the notebook's error in one line (the
    executed notebook, up to the failing cell, is still written).
    """
    import papermill

    try:
        with secrets.exported(env or {}):
            _execute(papermill, source, nb_out, params, run_dir, socket_dir)
    except Exception as exc:  # a failed notebook is reported and rendered, the run goes on
        return short_error(exc)
    # ^C and SIGTERM: the runner's handlers (cifarkit.signals.stopping_cleanly) kill the kernel before the
    # KeyboardInterrupt reaches papermill's clean-up
    return None


def kill_kernels() -> None:
    """Kill the kernels this process started that still run, with their process groups (joblib's workers).

    After ^C or SIGTERM the notebook's cell is abandoned anyway; a kernel asked to shut down in the middle of
    it would print a traceback into the run's console ("Exception in message handler"), one left alone would
    run its cell on until it noticed its parent gone.
    """
    for manager in list(_MANAGERS):
        process = getattr(manager.provisioner, "process", None) if manager.provisioner else None
        if process is None or process.poll() is not None:
            continue
        try:
            # jupyter_client starts a kernel in a session of its own: its group holds what the kernel started
            if hasattr(os, "killpg") and os.getpgid(process.pid) == process.pid:
                os.killpg(process.pid, signal.SIGKILL)
            else:
                process.kill()
            process.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            pass


def _execute(papermill, source: Path, nb_out: Path, params: dict, run_dir: Path, socket_dir: str) -> None:
    papermill.execute_notebook(
        nbsource.read_source(source),
        str(nb_out),
        parameters=params,
        cwd=str(run_dir),
        progress_bar=False,
        log_output=False,
        kernel_name="python3",
        **({"kernel_manager_class": _kernel_manager_class(socket_dir)} if os.name == "posix" else {}),
    )


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
            _MANAGERS.add(self)

        async def _async_interrupt_kernel(self) -> None:
            # jupyter_client 8 interrupts a kernel (SIGINT to its whole process group) before it asks
            # it to shut down. papermill shuts a kernel down only once its notebook has finished or
            # failed, so there is nothing to stop; the signal only made a kernel caught between two
            # messages log "[IPKernelApp] ERROR | KeyboardInterrupt caught in kernel." and worker
            # processes of joblib print KeyboardInterrupt tracebacks. A kernel that does not answer
            # the shutdown request is still killed after jupyter_client's wait.
            if self.shutting_down:
                return
            await super()._async_interrupt_kernel()

        interrupt_kernel = _async_interrupt_kernel

    return IPCKernelManager


def render_reports(
    run_dir: Path, name: str, manifest: dict, *, no_code: bool = False, pdf: bool = True, code: bool = False
) -> dict:
    """Render ``<run_dir>/<name>.ipynb`` to HTML (and PDF) with the run's facts and provenance.

    Args:
        run_dir: the run folder.
        name: the notebook's name; its manifest entry must exist.
        manifest: the run's manifest.
        no_code: leave code cells out of both reports (by default the HTML folds them, the PDF leaves them out).
        code: keep the code in the PDF (e.g. a coursework appendix).
        pdf: also print the PDF (needs Chromium; without it the PDF is skipped, not an error).

    Returns:
        ``{"render_seconds": {"html": s, "pdf": s|None}, "outputs": {...}, "pdf_skipped": reason|None,
        "error": message|None}``.
    """
    from cifarkit.report import render
    from cifarkit.report.key_results import key_results_html

    entry = manifest["notebooks"][name]
    nb_path, html_path, pdf_path = (run_dir / f"{name}{ext}" for ext in (".ipynb", ".html", ".pdf"))
    spec = next((s for s in profiles.NOTEBOOKS if s.name == name), None)
    title = f"{name} - {spec.title}" if spec else name
    metrics = run_folder.read_metrics(run_dir, name)
    header = key_results_html(name, metrics) + render.facts_html(render.report_facts(manifest, name, entry, metrics))
    footer = render.provenance_html(render.report_provenance(manifest, entry))
    seconds = {"html": None, "pdf": None}
    error = skipped = None
    t0 = time.time()
    try:
        render.render_html(
            nb_path,
            html_path,
            no_code=no_code,
            print_code=code,
            title=f"{title} ({manifest.get('run_id')})",
            header_html=header,
            footer_html=footer,
        )
        seconds["html"] = round(time.time() - t0, 2)
    except Exception as exc:
        error = f"HTML rendering failed: {short_error(exc)}"
    if pdf and not error:
        t1 = time.time()
        try:
            render.render_pdf(html_path, pdf_path)
            seconds["pdf"] = round(time.time() - t1, 2)
        except render.ChromiumNotFound as exc:
            skipped = str(exc)
        except Exception as exc:
            error = f"PDF rendering failed: {short_error(exc)}"
    elif not pdf:
        skipped = "PDF not requested (--no-pdf)"
    outputs = {"notebook": nb_path.name}
    for key, path in (("html", html_path), ("pdf", pdf_path)):
        outputs[key] = path.name if path.exists() and (key != "pdf" or seconds["pdf"] is not None) else None
    return {"render_seconds": seconds, "outputs": outputs, "pdf_skipped": skipped, "error": error}


def choose_renderers(pdf: bool) -> tuple[dict, str | None]:
    """``(renderers, chromium)``: what renders the reports, for the manifest (nbconvert, the Chromium that
    prints PDFs or why none does), and the Chromium binary (``None``: no PDFs)."""
    from cifarkit import provenance
    from cifarkit.report import render

    chromium = render.find_chromium() if pdf else None
    renderers = {
        "html": f"nbconvert {provenance.package_versions().get('nbconvert', '?')} (lab template, no CDN scripts)",
        "pdf": (render.chromium_version(chromium) or chromium) if chromium else None,
        "pdf_skipped": None
        if chromium
        else ("PDF not requested (--no-pdf)" if not pdf else f"No Chromium found. {render.INSTALL_HINT}"),
    }
    return renderers, chromium


def has_facts(html_path: Path) -> bool:
    """True when an HTML report was made by this renderer (it opens with the run's facts)."""
    try:
        with open(html_path, encoding="utf-8", errors="replace") as f:
            return 'id="ck-facts"' in f.read()
    except OSError:
        return False


def short_error(exc: Exception) -> str:
    """An exception in one line; for papermill's, the notebook's own exception name and message.

    Objects shown by their default repr (``<pkg.Thing object at 0x7f...>``) are shown by
    their class name instead, and URL passwords are masked.
    """
    ename = getattr(exc, "ename", None)
    evalue = getattr(exc, "evalue", None)
    if ename:
        text = f"{ename}: {evalue}".strip()
    else:
        text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        text = text.splitlines()[-1] if text else type(exc).__name__
    return readable(text)


_DEFAULT_REPR = re.compile(r"<(\S+?) object at 0x[0-9A-Fa-f]+>")


def readable(text: str | None) -> str | None:
    """``text`` for people: ``<a.b.Thing object at 0x7f3a...>`` becomes ``Thing``, URL passwords ``***``."""
    if not text:
        return text
    return secrets.mask_text(_DEFAULT_REPR.sub(lambda m: m.group(1).rsplit(".", 1)[-1], text))
