"""Static dashboards of the study's runs: plain HTML with relative links, no script, no network.

``<out>/<run-id>/index.html`` shows one run: its status, headline metrics and
timings per notebook (failed ones in red), links to every report, thumbnails of
the figures and the manifest. ``<out>/index.html`` lists every run in ``<out>``,
newest first. The runner writes both; to rebuild them, e.g. after deleting runs::

    python -m cifarkit.report.dashboard reports/            # every run in reports/ and reports/index.html
    python -m cifarkit.report.dashboard reports/RUN-ID      # that run and its folder's index
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from urllib.parse import quote

from cifarkit import files, paths, run_folder
from cifarkit.files import read_json
from cifarkit.report import profiles
from cifarkit.report.compare_page import comparisons_section
from cifarkit.report.dashboard_figures import extract_captioned_figures, extract_figures  # noqa: F401 - public here too
from cifarkit.report.dashboard_page import data_table, esc, kv_table, link, page, value_html, written_by_cifarkit
from cifarkit.report.execute import readable
from cifarkit.report.headline import fmt_acc, fmt_ci, fmt_epochs, headline_metrics, model_text, result_lines
from cifarkit.report.render import format_seconds
from cifarkit.wording import plural

THUMBNAILS_PER_NOTEBOOK = 6
# Which notebook's test accuracy stands for the run, best first.
HEADLINE_NOTEBOOKS = (run_folder.EVALUATE, run_folder.ARCHITECTURES, run_folder.TRAIN)
NOTEBOOK_COLUMNS = (
    "Notebook",
    "Status",
    "Model",
    "Key results (each labelled validation or test)",
    "Execute",
    "HTML",
    "PDF",
    "Reports",
)
#: The study book the runner writes at the end of a run (``cifarkit.report.book``), with the manifest key.
BOOK_FILES = (("study.html", "HTML"), ("study.pdf", "PDF"), ("study.bib", "BibTeX"))

INDEX_COLUMNS = ("Run", "Profile", "Data", "Model", "Test accuracy", "Status", "Notebooks ok", "Duration", "Started")


# ------------------------------------------------------------------ reading a run
def run_status(run_dir: Path, manifest: dict) -> str:
    """``ok``/``failed`` for a finished run, ``running`` while its runner is alive, else ``interrupted``."""
    if run_folder.lock_holder(run_dir):
        return "running"
    if manifest.get("status") and manifest.get("finished_at"):
        return manifest["status"]
    return "interrupted"


def notebook_names(run_dir: Path, manifest: dict) -> list[str]:
    """The run's notebooks in the study's order: those in the manifest, then any other metrics file."""
    names = list((manifest.get("notebooks") or {}).keys())
    names += [p.stem for p in sorted((run_dir / run_folder.METRICS_DIR).glob("*.json")) if p.stem not in names]
    order = [s.name for s in profiles.NOTEBOOKS]
    return sorted(names, key=lambda n: (order.index(n) if n in order else len(order), n))


def run_summary(run_dir: str | os.PathLike) -> dict | None:
    """One row of the runs index (``None`` when the folder holds no readable manifest)."""
    run_dir = Path(run_dir)
    manifest = read_json(run_dir / run_folder.MANIFEST)
    if not isinstance(manifest, dict):
        return None
    model = manifest.get("model")
    test_acc = ci = source = epochs = None
    for name in HEADLINE_NOTEBOOKS:
        h = headline_metrics(run_folder.read_metrics(run_dir, name))
        model = model or h["model"]
        epochs = epochs if epochs is not None else h["epochs"]
        if h["test_acc"] is not None and test_acc is None:
            test_acc, ci, source = h["test_acc"], h["test_acc_ci"], name
    entries = [e for e in (manifest.get("notebooks") or {}).values() if isinstance(e, dict)]
    if not model:
        model = next((e["parameters"]["MODEL"] for e in entries if (e.get("parameters") or {}).get("MODEL")), None)
    return {
        "run_id": manifest.get("run_id") or run_dir.name,
        "dir": run_dir.name,
        "profile": manifest.get("profile"),
        "data": (manifest.get("data") or {}),
        "model": model,
        "epochs": epochs,
        "test_acc": test_acc,
        "test_acc_ci": ci,
        "test_acc_from": source,
        "status": run_status(run_dir, manifest),
        "duration_seconds": manifest.get("duration_seconds"),
        "started_at": manifest.get("started_at") or "",
        "notebooks_ok": sum(e.get("status") == "ok" for e in entries),
        "notebooks_total": len(entries),
    }


def _data_text(data: dict) -> str:
    source = str(data.get("source") or "-")
    if data.get("path"):
        source = Path(str(data["path"])).name
    return source


# ------------------------------------------------------------------ one run
def write_run_dashboard(run_dir: str | os.PathLike) -> Path:
    """Write ``<run_dir>/index.html`` (and ``<run_dir>/figures/``) from the run's manifest and files."""
    run_dir = Path(run_dir)
    manifest = read_json(run_dir / run_folder.MANIFEST)
    if not isinstance(manifest, dict):
        raise FileNotFoundError(f"{run_dir} holds no readable manifest.json; is it a folder that run_all.py made?")
    status = run_status(run_dir, manifest)
    names = notebook_names(run_dir, manifest)
    run_id = manifest.get("run_id") or run_dir.name
    figures = {
        name: extract_captioned_figures(run_dir, name) for name in names if (run_dir / f"{name}.ipynb").is_file()
    }
    parts = [
        *_header(run_dir, manifest, run_id, status),
        *_book_and_headline(run_dir, manifest),
        kv_table(_summary_rows(manifest) + _session_rows(manifest)),
        *_notebooks_section(run_dir, manifest, names, status),
        *_figures_section(run_dir, figures),
        *_manifest_section(manifest, names),
    ]
    return files.atomic_write_text(run_dir / "index.html", page(f"cifarkit run {run_id}", "\n".join(parts)))


def _header(run_dir: Path, manifest: dict, run_id: str, status: str) -> list[str]:
    """The title, the run's status and profile, and a link to all runs."""
    index = run_dir.parent / "index.html"
    back = link("../index.html", "all runs") if index.exists() and written_by_cifarkit(index) else ""
    return [
        f"<h1>Run {esc(run_id)}</h1>",
        f'<p><span class="status-{esc(status)}">{esc(status)}</span> &middot; profile <b>{esc(manifest.get("profile"))}</b>'
        f" &middot; {back}</p>",
    ]


def _book_and_headline(run_dir: Path, manifest: dict) -> list[str]:
    """The study book's links and the run's headline numbers, in a box at the top of the page."""
    book = manifest.get("study_book") if isinstance(manifest.get("study_book"), dict) else {}
    links = [link(fname, f"{fname} ({label})") for fname, label in BOOK_FILES if (run_dir / fname).is_file()]
    if links:
        book_html = (
            "<p><b>Study book</b>: the whole study in one document, with methods, results and references: "
            + " &middot; ".join(f'<span class="big">{a}</span>' for a in links)
            + "</p>"
        )
        if book.get("pdf_skipped") and not (run_dir / "study.pdf").is_file():
            book_html += f'<p class="muted">study.pdf skipped: {esc(book["pdf_skipped"])}</p>'
    elif book.get("error"):
        book_html = f'<p><b>Study book</b>: <span class="error">not written: {esc(book["error"])}</span></p>'
    else:
        book_html = '<p class="muted">Study book: written when the run finishes (study.html, study.pdf, study.bib).</p>'
    rows = []
    for name in HEADLINE_NOTEBOOKS:
        metrics = run_folder.read_metrics(run_dir, name)
        h = headline_metrics(metrics)
        if h["test_acc"] is not None:
            n_test = metrics.get("n_test")
            on = f" on {n_test:,} test images" if isinstance(n_test, int) else ""
            rows.append((f"Test accuracy ({name})", esc(fmt_acc(h["test_acc"]) + fmt_ci(h["test_acc_ci"]) + on)))
            break
    train = headline_metrics(run_folder.read_metrics(run_dir, run_folder.TRAIN))
    if train["val_acc"] is not None:
        after = f" after {fmt_epochs(train['epochs'])}" if train["epochs"] is not None else ""
        rows.append((f"Validation accuracy ({run_folder.TRAIN})", esc(fmt_acc(train["val_acc"]) + after)))
    table = kv_table(rows) if rows else ""
    return [f'<div class="key">{book_html}{table}</div>']


def _summary_rows(manifest: dict) -> list[tuple[str, str]]:
    """What the run was started with: profile, data, model, seed, times, command, custom domain."""
    data = manifest.get("data") or {}
    sha = f' <span class="muted">sha256 {esc(data["sha256"])}</span>' if data.get("sha256") else ""
    rows = [
        ("Profile", esc(f"{manifest.get('profile', '-')}: {manifest.get('profile_description', '')}")),
        ("Data", esc(data.get("source")) + sha),
        ("Model", esc(manifest.get("model") or "-")),
        ("Seed", esc(manifest.get("seed"))),
        ("Started", esc(manifest.get("started_at"))),
        ("Finished", esc(manifest.get("finished_at") or "-")),
        ("Duration", esc(format_seconds(manifest.get("duration_seconds")))),
        ("Command", f"<code>{esc(manifest.get('command'))}</code>"),
    ]
    if manifest.get("image_size"):
        rows.append(("Image size", esc(f"{manifest['image_size']} px")))
    if manifest.get("class_names"):
        rows.append(("Class names", esc(", ".join(manifest["class_names"]))))
    return rows


def _session_rows(manifest: dict) -> list[tuple[str, str]]:
    """The sessions that resumed the run, the time spent executing and rendering, a skipped PDF."""
    rows = []
    for s in manifest.get("resumed_at") or []:
        took = s.get("duration_seconds")
        took = f' <span class="muted">({format_seconds(took)})</span>' if took is not None else ""
        rows.append(("Resumed", esc(f"{s.get('at')}: {s.get('command', '')}") + took))
    totals = manifest.get("totals") or {}
    if totals.get("execute_seconds"):
        pdf_time = f", PDF {format_seconds(totals['render_pdf_seconds'])}" if totals.get("render_pdf_seconds") else ""
        text = (
            f"notebooks executed in {format_seconds(totals['execute_seconds'])}; rendering: HTML "
            f"{format_seconds(totals.get('render_html_seconds'))}{pdf_time}"
            f" ({totals.get('render_percent_of_execute', 0):g}% of the execution time)"
        )
        rows.append(("Time", esc(text)))
    pdf_note = (manifest.get("renderers") or {}).get("pdf_skipped")
    if pdf_note:
        rows.append(("PDF reports", f'<span class="muted">skipped: {esc(pdf_note)}</span>'))
    return rows


def _notebooks_section(run_dir: Path, manifest: dict, names: list[str], status: str) -> list[str]:
    """The table of notebooks: status, headline metrics, timings and reports of each."""
    entries = manifest.get("notebooks") or {}
    titles = {s.name: s.title for s in profiles.NOTEBOOKS}
    rows = []
    for name in names:
        entry = entries.get(name) if isinstance(entries.get(name), dict) else {}
        rows.append(_notebook_row(run_dir, name, titles.get(name, ""), entry, status))
    return [
        "<h2>Notebooks and headline metrics</h2>",
        data_table(NOTEBOOK_COLUMNS, rows),
        '<p class="muted">Each number says its split: validation accuracies come from the validation split '
        "(carved out of the training data, used for every choice), test accuracies from the test split of the "
        "data named above (only scored). Brackets give the 95% bootstrap confidence interval where the notebook "
        "records one; gains are in percentage points (pp). The epochs are those recorded in each notebook's "
        "metrics; a tuning study's trials each ran the epochs shown per trial.</p>",
    ]


def _notebook_row(run_dir: Path, name: str, title: str, entry: dict, run_status: str) -> str:
    metrics = run_folder.read_metrics(run_dir, name)
    st = entry.get("status") or ("recorded" if metrics else "-")
    if st == "running" and run_status != "running":
        st = "interrupted"
    model = model_text(name, metrics) or (entry.get("parameters") or {}).get("MODEL") or ""
    status_html = f'<span class="status-{esc(st)}">{esc(st)}</span>'
    if entry.get("error"):
        status_html += f'<div class="error">{esc(readable(str(entry["error"])))}</div>'
    if entry.get("resumed"):
        status_html += f'<div class="muted">run when resumed ({esc(entry["resumed"])})</div>'
    cell = f'<b>{esc(name)}</b><br><span class="muted">{esc(title)}</span>'
    return (
        f'<tr class="{esc(st)}" id="nb-{esc(name)}"><td>{cell}</td><td>{status_html}</td><td>{esc(model)}</td>'
        + _result_cell(name, metrics)
        + _timing_cells(entry)
        + f"<td>{_report_links(run_dir, name, entry)}</td></tr>"
    )


def _result_cell(name: str, metrics: dict) -> str:
    """The notebook's headline numbers, one labelled line each (see :func:`result_lines`)."""
    lines = result_lines(name, metrics)
    body = "".join(f'<div><span class="lbl">{esc(label)}:</span> {esc(value)}</div>' for label, value in lines)
    return f'<td class="results">{body}</td>'


def _timing_cells(entry: dict) -> str:
    """Execution, HTML and PDF seconds (older runs recorded one number for rendering, the HTML's)."""
    rs = entry.get("render_seconds")
    rs_html, rs_pdf = (rs.get("html"), rs.get("pdf")) if isinstance(rs, dict) else (rs, None)
    return "".join(
        f'<td class="num">{esc(format_seconds(s) if s is not None else "")}</td>'
        for s in (entry.get("execute_seconds"), rs_html, rs_pdf)
    )


def _report_links(run_dir: Path, name: str, entry: dict) -> str:
    links = []
    for label, fname in (
        ("HTML", f"{name}.html"),
        ("PDF", f"{name}.pdf"),
        ("notebook", f"{name}.ipynb"),
        ("metrics", f"{run_folder.METRICS_DIR}/{name}.json"),
    ):
        if (run_dir / fname).is_file():
            links.append(link(fname, label))
    if entry.get("pdf_skipped") and not (run_dir / f"{name}.pdf").is_file():
        links.append(f'<span class="muted" title="{esc(entry["pdf_skipped"])}">PDF skipped</span>')
    return " &middot; ".join(links)


def _figures_section(run_dir: Path, figures: dict[str, list[tuple[Path, str]]]) -> list[str]:
    """Thumbnails of each notebook's figures (at most :data:`THUMBNAILS_PER_NOTEBOOK`), linked to the images and
    captioned with the heading they sit under in the notebook."""
    if not any(figures.values()):
        return []
    parts = ["<h2>Figures</h2>"]
    for name, pngs in figures.items():
        if not pngs:
            continue
        shown = pngs[:THUMBNAILS_PER_NOTEBOOK]
        more = ""
        if len(pngs) > len(shown):
            report = (run_dir / f"{name}.html").is_file()
            where = link(f"{name}.html", "the report") if report else f"{run_folder.FIGURES_DIR}/"
            more = f" &middot; showing {len(shown)} of {len(pngs)}; all in {where}"
        parts.append(f'<h3>{esc(name)}<span class="muted">{more}</span></h3><div class="thumbs">')
        for p, caption in shown:
            rel = f"{run_folder.FIGURES_DIR}/{p.name}"
            parts.append(
                f'<figure><a href="{quote(rel)}"><img src="{quote(rel)}" alt="{esc(caption)}"></a>'
                f'<figcaption title="{esc(p.name)}">{esc(caption)}</figcaption></figure>'
            )
        parts.append("</div>")
    return parts


def _manifest_section(manifest: dict, names: list[str]) -> list[str]:
    """The manifest in readable form: its sections, each notebook's entry, the resumed sessions."""
    parts = [
        "<h2>Manifest</h2>",
        f"<p>{link(run_folder.MANIFEST, run_folder.MANIFEST)} holds everything below.</p>",
    ]
    for section, key in (
        ("Data", "data"),
        ("Overrides", "overrides"),
        ("Git", "git"),
        ("Versions", "versions"),
        ("Hardware", "hardware"),
        ("Renderers", "renderers"),
        ("Totals", "totals"),
    ):
        if key in manifest:
            parts.append(f"<h3>{esc(section)}</h3>{value_html(manifest[key])}")
    entries = manifest.get("notebooks") or {}
    for name in names:
        entry = entries.get(name)
        if isinstance(entry, dict):
            parts.append(f"<h3>Notebook {esc(name)}</h3>{value_html(entry)}")
    if manifest.get("resumed_at"):
        parts.append(f"<h3>Sessions that resumed the run</h3>{value_html(manifest['resumed_at'])}")
    return parts


# ------------------------------------------------------------------ all runs
def find_runs(out_dir: str | os.PathLike) -> list[Path]:
    """Sub-folders of ``out_dir`` that hold a ``manifest.json``."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        return []
    return sorted(p for p in out_dir.iterdir() if p.is_dir() and (p / run_folder.MANIFEST).is_file())


def write_index(out_dir: str | os.PathLike) -> Path | None:
    """Write ``<out_dir>/index.html``: every run in ``out_dir``, newest first (by ``started_at``).

    A run without its own ``index.html`` gets one first, so every link resolves.
    An ``index.html`` that cifarkit did not write (see :func:`written_by_cifarkit`)
    is left alone: then nothing is written and ``None`` is returned.
    """
    out_dir = Path(out_dir)
    if not written_by_cifarkit(out_dir / "index.html"):
        return None
    rows = []
    for run_dir in find_runs(out_dir):
        summary = run_summary(run_dir)
        if summary is None:
            continue
        if not (run_dir / "index.html").is_file():
            try:
                write_run_dashboard(run_dir)
            except Exception:  # an unreadable run still gets its row, linked to its manifest
                pass
        page_name = "index.html" if (run_dir / "index.html").is_file() else run_folder.MANIFEST
        summary["href"] = f"{run_dir.name}/{page_name}"
        rows.append(summary)
    rows.sort(key=lambda r: (r["started_at"], r["run_id"]), reverse=True)
    table = data_table(INDEX_COLUMNS, [_index_row(r) for r in rows]) if rows else "<p>No runs here yet.</p>"
    text = (
        f"<h1>cifarkit runs in {esc(out_dir.resolve().name)}/</h1>"
        f'<p class="muted">{plural(len(rows), "run")}, newest first. Test accuracy is the first of '
        f"{', '.join(HEADLINE_NOTEBOOKS)} that recorded one; epochs and data are on each run's page.</p>"
        + table
        + comparisons_section(out_dir)
    )
    return files.atomic_write_text(out_dir / "index.html", page(f"cifarkit runs in {out_dir.name}", text))


def _index_row(r: dict) -> str:
    """One run's row in the runs index (``r``: a :func:`run_summary` with its ``href``)."""
    data = r["data"]
    data_cell = esc(_data_text(data)) + (
        f'<br><span class="muted">sha256 {esc(data["sha256"][:12])}</span>' if data.get("sha256") else ""
    )
    acc = fmt_acc(r["test_acc"]) + fmt_ci(r["test_acc_ci"])
    epochs = f", {fmt_epochs(r['epochs'])}" if r["epochs"] is not None else ""
    acc_cell = esc(acc) + (f'<br><span class="muted">{esc(r["test_acc_from"])}{esc(epochs)}</span>' if acc else "")
    duration = format_seconds(r["duration_seconds"]) if r["duration_seconds"] is not None else ""
    return (
        f'<tr class="{esc(r["status"])}"><td>{link(r["href"], r["run_id"])}</td><td>{esc(r["profile"])}</td>'
        f'<td title="{esc(data.get("source"))}">{data_cell}</td><td>{esc(r["model"] or "")}</td>'
        f'<td class="num">{acc_cell}</td><td><span class="status-{esc(r["status"])}">{esc(r["status"])}</span></td>'
        f'<td class="num">{r["notebooks_ok"]}/{r["notebooks_total"]}</td>'
        f'<td class="num">{esc(duration)}</td>'
        f"<td>{esc(r['started_at'])}</td></tr>"
    )


def rebuild(path: str | os.PathLike) -> list[Path | None]:
    """Rebuild the dashboards under ``path``: a folder of runs (every run and its index) or one run
    (that run and its folder's index). Returns the pages written (``None`` for an index left alone:
    not cifarkit's)."""
    path = Path(path)
    if (path / run_folder.MANIFEST).is_file():
        return [write_run_dashboard(path), write_index(path.parent)]
    if not path.is_dir():
        raise FileNotFoundError(f"{path} is not a folder. Pass a folder of runs (e.g. reports/) or one run's folder.")
    written = [write_run_dashboard(run) for run in find_runs(path)]
    return written + [write_index(path)]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m cifarkit.report.dashboard",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "path",
        nargs="?",
        default=str(paths.REPORTS_DIR),
        help="a folder of runs or one run's folder (default: reports/)",
    )
    args = p.parse_args(argv)
    try:
        pages = rebuild(args.path)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for written in pages:
        print(written or "note: the folder's index.html was not written by cifarkit; it is left as it is")
    return 0


if __name__ == "__main__":
    sys.exit(main())
