"""The study book: one document per run that a student hands in and a team lead reads.

``write_study_book(run_dir)`` writes ``study.html`` (self-contained: CSS inline, figures
as data URIs, no script, no network), ``study.pdf`` (printed by Chromium with
:func:`cifarkit.report.render.render_pdf`) and ``study.bib`` into the run folder. The
book holds, in order: a title page, an executive summary computed from the metrics,
the table of contents with the lists of figures and tables, Methods, the notebooks'
own Results (their prose and outputs, no code, figures and tables numbered),
Limitations computed from the run, References, and an Appendix with the provenance
and the exact command that reproduces the run (:func:`reproduce_command`)::

    python -m cifarkit.report.book reports/<run-id> [--no-pdf]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from datetime import datetime
from pathlib import Path

from cifarkit import escape, files, run_folder
from cifarkit.report import profiles, references, render, safety
from cifarkit.report.book_methods import cpu_text, is_cifar10, methods_html
from cifarkit.report.book_parts import (
    NAMES,
    TITLES,
    NotARunError,
    StudyRun,
    cross_validated_text,
    headline_text,
    json_text,
    kv_table,
    limitations_html,
    p,
    summary_html,
)
from cifarkit.report.book_results import Numbering, Outline, notebook_blocks, render_blocks
from cifarkit.report.book_style import BOOK_CSS

BOOK_HTML, BOOK_PDF, BOOK_BIB = "study.html", "study.pdf", "study.bib"

__all__ = ["NotARunError", "build_book", "reproduce_command", "reproduce_text", "write_study_book", "main"]


# ------------------------------------------------------------------ reproducing the run
def _param_text(value) -> str:
    """``value`` as a ``-p NAME VALUE`` string that ``run_all.py`` reads back as the same value."""
    from cifarkit.report.plan import parse_value

    candidates = [value] if isinstance(value, str) else []
    if isinstance(value, float):
        text = repr(value)
        candidates.append(text if "." in text or "e" not in text else text.replace("e", ".0e", 1))
    candidates.append(json.dumps(value))
    return next((c for c in candidates if parse_value(c) == value), candidates[-1])


def _only_notebooks(manifest: dict) -> list[str]:
    """``--only`` numbers when the run executed other notebooks than its profile would (else ``[]``)."""
    ran = [n for n in NAMES if n in (manifest.get("notebooks") or {})]
    try:
        skipped = set(profiles.load_profile(manifest.get("profile")).skip)
    except (ValueError, OSError, TypeError, AttributeError):
        return []
    planned = [s.name for s in profiles.NOTEBOOKS if s.name not in skipped and s.name.split("_")[0] not in skipped]
    return [] if not ran or ran == planned else [n.split("_", 1)[0] for n in ran]


def reproduce_command(manifest: dict) -> list[str]:
    """The argv (without the leading ``python``) that re-runs this study from the repository root.

    ``run_all.py --profile P [--data ABSOLUTE_DATA] [--image-size N] [--class-names a,b]
    [--only NN ...] [-p NAME VALUE ...] [-p NOTEBOOK.NAME VALUE ...]``, from what the manifest recorded.
    """
    argv = ["run_all.py", "--profile", str(manifest.get("profile") or profiles.DEFAULT_PROFILE)]
    data = (manifest.get("data") or {}).get("argument")
    if data:
        argv += ["--data", str(data)]
    if manifest.get("image_size") is not None:
        argv += ["--image-size", str(manifest["image_size"])]
    if manifest.get("class_names"):
        argv += ["--class-names", ",".join(map(str, manifest["class_names"]))]
    only = _only_notebooks(manifest)
    if only:
        argv += ["--only", *only]
    for name, value in (manifest.get("overrides") or {}).items():
        argv += ["-p", str(name), _param_text(value)]
    # one notebook's own settings (-p NOTEBOOK.NAME, and what a --budget planned on that machine: pinned here,
    # not planned again, so that the command reproduces the settings rather than the budget)
    for notebook, params in (manifest.get("notebook_overrides") or {}).items():
        for name, value in params.items():
            argv += ["-p", f"{notebook}.{name}", _param_text(value)]
    return argv


def reproduce_text(manifest: dict) -> str:
    return "python " + " ".join(shlex.quote(a) for a in reproduce_command(manifest))


# ------------------------------------------------------------------ the parts of the book
def _data_title(run: StudyRun) -> str:
    source = str((run.manifest.get("data") or {}).get("source") or run.data().get("source") or "")
    if source.startswith("cifar10 (official"):
        return "CIFAR-10"
    name = Path(source).name if ("/" in source or os.sep in source) else source
    return f"CIFAR-10 ({name})" if is_cifar10(run) else (name or "unknown data")


def _date(text) -> str:
    try:
        when = datetime.strptime(str(text), "%Y-%m-%dT%H:%M:%S%z")
    except ValueError:
        return str(text or "-")
    return when.strftime("%d %B %Y, %H:%M ") + (when.tzname() or "")


def _commit_text(manifest: dict) -> str:
    git = manifest.get("git") or {}
    text = str(git.get("commit") or "unknown (not a git checkout)")
    if git.get("dirty"):
        text += " (with uncommitted changes)"
    version = (manifest.get("versions") or {}).get("cifarkit")
    return (f"cifarkit {version}, git commit " if version else "git commit ") + text


def _machine(manifest: dict) -> str:
    hw = manifest.get("hardware") or {}
    text = cpu_text(hw, unknown="unknown CPU")
    if hw.get("memory_gib"):
        text += f", {hw['memory_gib']} GiB"
    return text + "; GPU: " + (", ".join(hw.get("gpus") or []) or "none")


def title(run: StudyRun) -> str:
    model = run.m(run_folder.TRAIN).get("model") or run.manifest.get("model") or "CNN"
    return f"{model} on {_data_title(run)}"


def _title_page(run: StudyRun) -> str:
    man = run.manifest
    rows = [
        ("Run", escape.html(man.get("run_id", run.run_dir.name))),
        ("Date", escape.html(_date(man.get("started_at")))),
        ("Profile", escape.html(f"{man.get('profile', '-')}: {man.get('profile_description') or ''}".rstrip(": "))),
        ("Data", escape.html((man.get("data") or {}).get("source") or "-")),
        ("Machine", escape.html(_machine(man))),
        ("Software", escape.html(_commit_text(man))),
    ]
    return (
        '<section class="title-page"><p class="kicker">cifarkit study book</p>'
        f'<h1 id="top">A CNN study: {escape.html(title(run))}</h1>'
        f'<p class="headline">Test accuracy of the trained model: <b>{headline_text(run)}</b>'
        + (f"<br>Cross-validated accuracy: <b>{cross_validated_text(run)}</b>" if cross_validated_text(run) else "")
        + "</p>"
        + kv_table(rows, "kv facts")
        + "</section>"
    )


def _toc(outline: Outline, numbering: Numbering) -> str:
    items = []
    for depth, number, title_html, anchor in outline.entries:
        num = f'<span class="num">{number}</span> ' if number else ""
        items.append(f'<li class="toc{depth}"><a href="#{anchor}">{num}{references_free(title_html)}</a></li>')
    if numbering.figures:
        items.insert(1, '<li class="toc0"><a href="#list-of-figures">List of figures</a></li>')
    if numbering.tables:
        items.insert(1 + bool(numbering.figures), '<li class="toc0"><a href="#list-of-tables">List of tables</a></li>')
    return '<nav class="toc" id="contents"><h2>Contents</h2><ul>' + "".join(items) + "</ul></nav>"


def references_free(title_html: str) -> str:
    """A heading's HTML for the TOC: links inside a heading would nest in the TOC's own link."""
    import re

    return re.sub(r"</?a\b[^>]*>", "", title_html)


def _lists(numbering: Numbering) -> str:
    parts = []
    for kind, items, anchor in (
        ("Figure", numbering.figures, "list-of-figures"),
        ("Table", numbering.tables, "list-of-tables"),
    ):
        if items:
            rows = "".join(f'<li><a href="#{a}">{kind} {n}.</a> {caption}</li>' for n, a, caption in items)
            parts.append(
                f'<section class="lof"><h2 id="{anchor}">List of {kind.lower()}s</h2><ul>{rows}</ul></section>'
            )
    return "".join(parts)


def _results(run: StudyRun, outline: Outline, numbering: Numbering) -> str:
    parts = [
        outline.heading(2, "Results", anchor="results"),
        p(
            "Each notebook's own results, in the order the study ran them: its text and its outputs, without "
            "code. Figures and tables are numbered through the book; each caption names the notebook section it "
            "comes from."
        ),
    ]
    for name in run.expected():
        label = f"{name[:2]} {TITLES[name]}"
        parts.append(outline.heading(3, escape.html(f"{TITLES[name]} ({name})"), anchor=f"results-{name}"))
        status, path = run.status(name), run.run_dir / f"{name}.ipynb"
        if status not in ("ok",) or not path.is_file():
            error = str(run.entry(name).get("error") or "").strip().splitlines()
            why = status + (f": {error[0][:200]}" if error else "")
            parts.append(p(f"<b>Missing.</b> This notebook's results are missing from this run ({escape.html(why)})."))
            if status != "failed" or not path.is_file():
                continue
            parts.append(p("What it showed before it failed follows."))
        try:
            blocks = notebook_blocks(path)
        except Exception as exc:  # a damaged notebook costs its section, not the book
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            parts.append(
                p(
                    f"<b>Unreadable.</b> The executed notebook {escape.html(path.name)} could not be read "
                    f"({escape.html(first)})."
                )
            )
            continue
        parts.append(render_blocks(blocks, label, outline, numbering))
    return "\n".join(parts)


def _provenance(run: StudyRun) -> str:
    man = run.manifest
    data = man.get("data") or {}
    rows = [
        ("Command run", f"<code>{escape.html(man.get('command') or '-')}</code>"),
        ("Started / finished", escape.html(f"{man.get('started_at', '-')} / {man.get('finished_at', '-')}")),
        ("Software", escape.html(_commit_text(man))),
        ("Data", escape.html(data.get("path") or data.get("source") or "-")),
        ("Data sha256", escape.html(data.get("sha256") or "- (not a single file)")),
        ("Versions", escape.html(", ".join(f"{k} {v}" for k, v in (man.get("versions") or {}).items()))),
        ("Hardware", escape.html(", ".join(f"{k}: {v}" for k, v in (man.get("hardware") or {}).items()))),
        ("Renderers", escape.html(", ".join(f"{k}: {v}" for k, v in (man.get("renderers") or {}).items() if v))),
    ]
    for resumed in man.get("resumed_at") or []:
        rows.append(("Resumed", escape.html(f"{resumed.get('at', '-')}: {resumed.get('command', '')}")))
    return kv_table(rows)


def _notebook_table(run: StudyRun) -> str:
    head = "<tr><th>notebook</th><th>status</th><th>executed</th><th>render (HTML / PDF)</th><th>parameters</th></tr>"
    rows = []
    for name in run.expected():
        e = run.entry(name)
        rs = e.get("render_seconds") if isinstance(e.get("render_seconds"), dict) else {}
        params = {k: v for k, v in (e.get("parameters") or {}).items() if k != "RUN_DIR"}
        rows.append(
            f"<tr><td>{escape.html(name)}</td><td>{escape.html(run.status(name))}</td>"
            f"<td>{escape.html(render.format_seconds(e.get('execute_seconds')))}</td>"
            f"<td>{escape.html(render.format_seconds(rs.get('html')))} / {escape.html(render.format_seconds(rs.get('pdf')))}</td>"
            f'<td class="params">{json_text(params)}</td></tr>'
        )
    return f'<table class="grid nbs">{head}{"".join(rows)}</table>'


def _appendix(run: StudyRun, outline: Outline) -> str:
    man, git = run.manifest, run.manifest.get("git") or {}
    note = (
        " The working tree had uncommitted changes when the run started, so the commit alone may not hold the "
        "code that ran."
        if git.get("dirty")
        else ""
    )
    if (man.get("time_plan") or {}).get("budget") and man.get("notebook_overrides"):
        note += (
            " The run was planned to fit a time budget on its machine; the command pins the settings that plan "
            "chose (<code>-p NOTEBOOK.NAME</code>) rather than planning again on yours."
        )
    return "\n".join(
        [
            outline.heading(2, "Appendix", anchor="appendix"),
            outline.heading(3, "Provenance", anchor="provenance"),
            _provenance(run),
            outline.heading(3, "Notebooks: parameters and timings", anchor="notebook-timings"),
            p("Each notebook's parameters as the run set them (RUN_DIR left out) and its timings, from manifest.json."),
            _notebook_table(run),
            '<div class="keep">'
            + outline.heading(3, "Reproducing this run", anchor="reproduce")
            + p(
                (
                    f"From the repository root, at git commit <code>{escape.html(git['commit'])}</code>, "
                    if git.get("commit")
                    else "From the repository root (the run recorded no git commit: it did not run from a git "
                    "checkout), "
                )
                + "this command runs the study again with "
                "the same profile, data, options and parameters, and produces the same metrics (the data path is "
                f"absolute; add <code>--out DIR</code> to choose where the new run goes).{note}"
            )
            + f'<pre class="command" id="reproduce-command">{escape.html(reproduce_text(man))}</pre></div>',
        ]
    )


def _references(run: StudyRun, outline: Outline) -> str:
    entries = "".join(references.entry_html(r) for r in run.cites.listed())
    return outline.heading(2, "References", anchor="references") + f'<ol class="refs">{entries}</ol>'


# ------------------------------------------------------------------ assembly
def build_book(run_dir) -> tuple[str, str]:
    """``(html, bibtex)`` of the run's book; raises :class:`NotARunError` for a folder that holds no run."""
    run = StudyRun.load(run_dir)
    outline, numbering = Outline(), Numbering()
    summary = outline.heading(2, "Executive summary", anchor="summary") + summary_html(run)
    body = [
        f'<section class="chapter">{methods_html(run, outline)}</section>',
        f'<section class="chapter">{_results(run, outline, numbering)}</section>',
        '<section class="chapter">'
        + outline.heading(2, "Limitations", anchor="limitations")
        + p("What this run cannot show, each with the number it rests on.")
        + limitations_html(run)
        + "</section>",
    ]
    refs = f'<section class="chapter refs-chapter">{_references(run, outline)}</section>'
    appendix = f'<section class="chapter">{_appendix(run, outline)}</section>'
    page = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape.html(title(run))}: study book</title><style>{BOOK_CSS}</style></head><body>"
        + _title_page(run)
        + f'<section class="summary-page">{summary}</section>'
        + f'<section class="front">{_toc(outline, numbering)}{_lists(numbering)}</section>'
        + "".join(body)
        + refs
        + appendix
        + "</body></html>"
    )
    return page, references.bibtex(run.cites.listed())


def write_study_book(run_dir, *, pdf: bool = True) -> dict:
    """Write ``study.html``, ``study.pdf`` and ``study.bib`` into ``run_dir`` (each atomically).

    Returns:
        ``{"html": path, "pdf": path or None, "bib": path, "pdf_skipped": reason or None}``.

    Raises:
        NotARunError: ``run_dir`` holds no run (no readable ``manifest.json``).
        UnsafeReportError: the page would hold script or an event handler (text from data reached it unescaped).
    """
    run_dir = Path(run_dir)
    page, bib = build_book(run_dir)
    safety.check_html(page, allowed_scripts=[])
    bib_path = files.atomic_write_text(run_dir / BOOK_BIB, bib)
    html_path = files.atomic_write_text(run_dir / BOOK_HTML, page)
    out = {"html": html_path, "pdf": None, "bib": bib_path, "pdf_skipped": None}
    if not pdf:
        out["pdf_skipped"] = "PDF not requested"
        return out
    try:
        out["pdf"] = render.render_pdf(html_path, run_dir / BOOK_PDF)
    except render.ChromiumNotFound as exc:
        out["pdf_skipped"] = str(exc)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cifarkit.report.book", description="Write a run's study book: study.html, study.pdf, study.bib."
    )
    parser.add_argument("run_dir", help="a run folder made by run_all.py, e.g. reports/<run-id>")
    parser.add_argument("--no-pdf", action="store_true", help="write the HTML and BibTeX only")
    args = parser.parse_args(argv)
    try:
        out = write_study_book(args.run_dir, pdf=not args.no_pdf)
    except NotARunError as exc:
        print(f"cifarkit.report.book: error: {exc}", file=sys.stderr)
        return 2
    for key in ("html", "pdf", "bib"):
        if out[key]:
            print(f"{key}: {out[key]}")
    if out["pdf_skipped"]:
        print(f"pdf skipped: {out['pdf_skipped']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
