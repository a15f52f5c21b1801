"""Static dashboards of the study's runs: plain HTML with relative links, no script, no network.

``<out>/<run-id>/index.html``: one run -- its headline metrics (read from every
``metrics/*.json``, tolerant of absent keys), the status and timings of each
notebook (failed ones in red with their error), links to every report, a few
thumbnails of each notebook's figures and the manifest in readable form.

``<out>/index.html``: every run in ``<out>``, newest first, side by side.

The runner writes both at the end of every run (and the run's page after each
notebook). To rebuild them, e.g. after deleting runs::

    python -m cifarkit.dashboard reports/            # every run in reports/ and reports/index.html
    python -m cifarkit.dashboard reports/RUN-ID      # that run and its folder's index
"""

from __future__ import annotations

import argparse
import base64
import html
import json
import os
import socket
import sys
from pathlib import Path
from urllib.parse import quote

from cifarkit import config, reporting
from cifarkit.render import format_seconds

THUMBNAILS_PER_NOTEBOOK = 6
# Which notebook's test accuracy stands for the run, best first.
HEADLINE_NOTEBOOKS = ("04_evaluate", "06_architectures", "02_train")

CSS = """
body { font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; font-size: 14px; color: #212121;
  margin: 20px auto; max-width: 1200px; padding: 0 16px; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 17px; margin-top: 28px; border-bottom: 1px solid #cfd8dc; }
h3 { font-size: 14px; margin: 16px 0 6px 0; }
table { border-collapse: collapse; margin: 6px 0 12px 0; }
th, td { border: 1px solid #e0e0e0; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #eceff1; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.kv th { background: #f5f5f5; font-weight: 600; white-space: nowrap; }
table.kv td { overflow-wrap: anywhere; max-width: 900px; }
tr.failed td, tr.interrupted td { background: #ffebee; color: #b71c1c; }
tr.skipped td { background: #f5f5f5; color: #757575; font-style: italic; }
tr.running td { background: #fffde7; }
.status-ok { color: #1b5e20; font-weight: 600; } .status-failed, .status-interrupted { color: #b71c1c; font-weight: 600; }
.status-running { color: #f57f17; font-weight: 600; } .status-skipped { color: #757575; font-weight: 600; }
.error { font-family: "DejaVu Sans Mono", monospace; font-size: 12px; white-space: pre-wrap; }
.muted { color: #757575; font-size: 12px; }
.thumbs { display: flex; flex-wrap: wrap; gap: 10px; margin: 6px 0 14px 0; }
.thumbs figure { margin: 0; border: 1px solid #e0e0e0; padding: 4px; background: #fff; }
.thumbs img { display: block; width: 220px; height: 150px; object-fit: contain; }
.thumbs figcaption { font-size: 11px; color: #757575; text-align: center; }
code { font-size: 12px; }
"""


# ------------------------------------------------------------------ reading a run
def _load_json(path: Path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _num(value):
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def run_status(run_dir: Path, manifest: dict) -> str:
    """``ok``/``failed`` for a finished run, ``running`` while its runner is alive, else ``interrupted``."""
    lock = _load_json(Path(run_dir) / ".running.json")
    if isinstance(lock, dict) and lock.get("host") == socket.gethostname():
        try:
            os.kill(int(lock.get("pid")), 0)
            return "running"
        except PermissionError:
            return "running"
        except (TypeError, ValueError, ProcessLookupError):
            pass
    if manifest.get("status") and manifest.get("finished_at"):
        return manifest["status"]
    return "interrupted"


def extract_figures(run_dir: str | os.PathLike, name: str) -> list[Path]:
    """Write the PNG figures embedded in ``<run_dir>/<name>.ipynb`` to ``<run_dir>/figures/<name>_K.png``.

    Returns the paths, in the notebook's order (K from 1); figures of an earlier
    extraction that the notebook no longer has are removed.
    """
    run_dir = Path(run_dir)
    nb = _load_json(run_dir / f"{name}.ipynb")
    paths: list[Path] = []
    if isinstance(nb, dict):
        for cell in nb.get("cells", []):
            for output in cell.get("outputs", []) or []:
                data = (output.get("data") or {}).get("image/png") if isinstance(output, dict) else None
                if not data:
                    continue
                try:
                    png = base64.b64decode("".join(data) if isinstance(data, list) else data)
                except (ValueError, TypeError):
                    continue
                path = run_dir / "figures" / f"{name}_{len(paths) + 1}.png"
                if not (path.is_file() and path.read_bytes() == png):
                    reporting.atomic_write_bytes(path, png)
                paths.append(path)
    keep = set(paths)
    for old in (run_dir / "figures").glob(f"{name}_*.png"):
        if old not in keep and old.stem[len(name) + 1:].isdigit():
            old.unlink()
    return paths


def headline_metrics(metrics: dict) -> dict:
    """The headline numbers of one notebook's metrics, each ``None`` when absent.

    Returns ``{"model", "epochs", "test_acc", "test_acc_ci", "macro_f1", "best_baseline",
    "best_value", "ensemble_gain"}``; ``best_baseline`` is ``(name or None, accuracy or None)``.
    """
    m = metrics if isinstance(metrics, dict) else {}
    ci = m.get("test_acc_ci")
    if isinstance(ci, dict):
        ci = [ci.get("lo", ci.get("low")), ci.get("hi", ci.get("high"))]
    ci = [_num(v) for v in ci] if isinstance(ci, (list, tuple)) and len(ci) == 2 else None
    if ci and None in ci:
        ci = None
    return {
        "model": m.get("model") if isinstance(m.get("model"), str) else None,
        "epochs": m.get("epochs_run") if isinstance(m.get("epochs_run"), int) else None,
        "test_acc": _num(m.get("test_acc")),
        "test_acc_ci": ci,
        "macro_f1": _num(m.get("macro_f1")),
        "best_baseline": _best_baseline(m),
        "best_value": _num(m.get("best_value")),
        "ensemble_gain": _num(m.get("ensemble_gain")),
    }


def _acc_of(value):
    if isinstance(value, dict):
        for key in ("test_acc", "accuracy", "acc", "val_acc"):
            if _num(value.get(key)) is not None:
                return _num(value[key])
        return None
    return _num(value)


def _best_baseline(m: dict):
    best, table = m.get("best_baseline"), m.get("baselines")
    rows = []  # (name, accuracy)
    if isinstance(table, dict):
        rows = [(str(k), _acc_of(v)) for k, v in table.items()]
    elif isinstance(table, list):
        rows = [(str(r.get("name") or r.get("model") or r.get("baseline") or "?"), _acc_of(r))
                for r in table if isinstance(r, dict)]
    if isinstance(best, dict):
        name = best.get("name") or best.get("model") or best.get("baseline")
        return (str(name) if name else None, _acc_of(best))
    if isinstance(best, str):
        return (best, dict(rows).get(best))
    if _num(best) is not None:
        return (None, _num(best))
    scored = [r for r in rows if r[1] is not None]
    if scored:
        return max(scored, key=lambda r: r[1])
    return None


def _fmt_acc(value) -> str:
    if value is None:
        return ""
    return f"{100 * value:.2f}%" if 0 <= value <= 1 else f"{value:.4g}"


def _fmt_ci(ci) -> str:
    return f" [{_fmt_acc(ci[0])}, {_fmt_acc(ci[1])}]" if ci else ""


def _fmt_value(value) -> str:
    return "" if value is None else f"{value:.4g}"


def _fmt_gain(value) -> str:
    if value is None:
        return ""
    return f"{100 * value:+.2f} pp" if abs(value) <= 1 else f"{value:+.4g}"


def notebook_names(run_dir: Path, manifest: dict) -> list[str]:
    """The run's notebooks in the study's order: those in the manifest, then any other metrics file."""
    names = list((manifest.get("notebooks") or {}).keys())
    names += [p.stem for p in sorted((run_dir / "metrics").glob("*.json")) if p.stem not in names]
    order = [s.name for s in config.NOTEBOOKS]
    return sorted(names, key=lambda n: (order.index(n) if n in order else len(order), n))


def run_summary(run_dir: str | os.PathLike) -> dict | None:
    """One row of the runs index (``None`` when the folder holds no readable manifest)."""
    run_dir = Path(run_dir)
    manifest = _load_json(run_dir / "manifest.json")
    if not isinstance(manifest, dict):
        return None
    model = manifest.get("model")
    test_acc = ci = source = epochs = None
    for name in HEADLINE_NOTEBOOKS:
        h = headline_metrics(_load_json(reporting.metrics_path(run_dir, name)) or {})
        model = model or h["model"]
        epochs = epochs if epochs is not None else h["epochs"]
        if h["test_acc"] is not None and test_acc is None:
            test_acc, ci, source = h["test_acc"], h["test_acc_ci"], name
    if not model:
        model = next((e.get("parameters", {}).get("MODEL") for e in (manifest.get("notebooks") or {}).values()
                      if isinstance(e, dict) and (e.get("parameters") or {}).get("MODEL")), None)
    entries = [e for e in (manifest.get("notebooks") or {}).values() if isinstance(e, dict)]
    return {
        "run_id": manifest.get("run_id") or run_dir.name,
        "dir": run_dir.name,
        "profile": manifest.get("profile"),
        "data": (manifest.get("data") or {}),
        "model": model,
        "epochs": epochs,
        "test_acc": test_acc, "test_acc_ci": ci, "test_acc_from": source,
        "status": run_status(run_dir, manifest),
        "duration_seconds": manifest.get("duration_seconds"),
        "started_at": manifest.get("started_at") or "",
        "notebooks_ok": sum(e.get("status") == "ok" for e in entries),
        "notebooks_total": len(entries),
    }


# ------------------------------------------------------------------ HTML helpers
def _e(value) -> str:
    return html.escape("" if value is None else str(value))


def _link(href: str, text: str) -> str:
    return f'<a href="{quote(href)}">{_e(text)}</a>'


def _page(title: str, body: str) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n<title>{_e(title)}</title>\n'
            f"<style>{CSS}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n")


def _kv(rows) -> str:
    body = "".join(f"<tr><th>{_e(k)}</th><td>{v}</td></tr>" for k, v in rows)
    return f'<table class="kv">{body}</table>'


def _value_html(value) -> str:
    """Any JSON value as readable HTML: dicts become nested tables."""
    if isinstance(value, dict):
        return _kv((k, _value_html(v)) for k, v in value.items()) if value else '<span class="muted">none</span>'
    if isinstance(value, list):
        if all(not isinstance(v, (dict, list)) for v in value):
            return _e(", ".join(map(str, value))) if value else '<span class="muted">none</span>'
        return "".join(f"<div>{_value_html(v)}</div>" for v in value)
    if value is None:
        return '<span class="muted">-</span>'
    return _e(value)


def _data_text(data: dict) -> str:
    source = str(data.get("source") or "-")
    if data.get("path"):
        source = Path(str(data["path"])).name
    return source


# ------------------------------------------------------------------ one run
def write_run_dashboard(run_dir: str | os.PathLike) -> Path:
    """Write ``<run_dir>/index.html`` (and ``<run_dir>/figures/``) from the run's manifest and files."""
    run_dir = Path(run_dir)
    manifest = _load_json(run_dir / "manifest.json")
    if not isinstance(manifest, dict):
        raise FileNotFoundError(f"{run_dir} holds no readable manifest.json; is it a folder that run_all.py made?")
    status = run_status(run_dir, manifest)
    names = notebook_names(run_dir, manifest)
    specs = {s.name: s for s in config.NOTEBOOKS}
    entries = manifest.get("notebooks") or {}
    data = manifest.get("data") or {}
    totals = manifest.get("totals") or {}
    run_id = manifest.get("run_id") or run_dir.name

    parts = [f"<h1>Run {_e(run_id)}</h1>",
             f'<p><span class="status-{_e(status)}">{_e(status)}</span> &middot; profile <b>{_e(manifest.get("profile"))}</b>'
             f' &middot; {_link("../index.html", "all runs") if (run_dir.parent / "index.html").exists() else ""}</p>']
    summary = [
        ("Profile", _e(f"{manifest.get('profile', '-')}: {manifest.get('profile_description', '')}")),
        ("Data", _e(data.get("source")) + (f' <span class="muted">sha256 {_e(data["sha256"])}</span>'
                                           if data.get("sha256") else "")),
        ("Model", _e(manifest.get("model") or "-")),
        ("Seed", _e(manifest.get("seed"))),
        ("Started", _e(manifest.get("started_at"))),
        ("Finished", _e(manifest.get("finished_at") or "-")),
        ("Duration", _e(format_seconds(manifest.get("duration_seconds")))),
        ("Command", f"<code>{_e(manifest.get('command'))}</code>"),
    ]
    if manifest.get("image_size"):
        summary.append(("Image size", _e(f"{manifest['image_size']} px")))
    if manifest.get("class_names"):
        summary.append(("Class names", _e(", ".join(manifest["class_names"]))))
    for s in manifest.get("resumed_at") or []:
        summary.append(("Resumed", _e(f"{s.get('at')}: {s.get('command', '')}") +
                        (f' <span class="muted">({format_seconds(s["duration_seconds"])})</span>'
                         if s.get("duration_seconds") is not None else "")))
    if totals.get("execute_seconds"):
        pdf_time = (f", PDF {format_seconds(totals['render_pdf_seconds'])}" if totals.get("render_pdf_seconds")
                    else "")
        summary.append(("Time", _e(
            f"notebooks executed in {format_seconds(totals['execute_seconds'])}; rendering: HTML "
            f"{format_seconds(totals.get('render_html_seconds'))}{pdf_time}"
            f" ({totals.get('render_percent_of_execute', 0):g}% of the execution time)")))
    pdf_note = (manifest.get("renderers") or {}).get("pdf_skipped")
    if pdf_note:
        summary.append(("PDF reports", f'<span class="muted">skipped: {_e(pdf_note)}</span>'))
    parts.append(_kv(summary))

    # headline metrics and status of every notebook
    parts.append("<h2>Notebooks and headline metrics</h2>")
    head = ("Notebook", "Status", "Model", "Test accuracy", "Macro F1", "Best baseline", "Best tuned value",
            "Ensemble gain", "Execute", "HTML", "PDF", "Reports")
    rows = []
    figures: dict[str, list[Path]] = {}
    for name in names:
        entry = entries.get(name) if isinstance(entries.get(name), dict) else {}
        metrics = _load_json(reporting.metrics_path(run_dir, name)) or {}
        h = headline_metrics(metrics)
        st = entry.get("status") or ("recorded" if metrics else "-")
        if st == "running" and status != "running":
            st = "interrupted"
        params = entry.get("parameters") or {}
        model = h["model"] or params.get("MODEL") or ""
        if model and h["epochs"] is not None:
            model += f" ({h['epochs']} epoch{'s' if h['epochs'] != 1 else ''})"
        rs = entry.get("render_seconds")
        rs_html, rs_pdf = (rs.get("html"), rs.get("pdf")) if isinstance(rs, dict) else (rs, None)
        links = []
        for label, fname in (("HTML", f"{name}.html"), ("PDF", f"{name}.pdf"), ("notebook", f"{name}.ipynb"),
                             ("metrics", f"metrics/{name}.json")):
            if (run_dir / fname).is_file():
                links.append(_link(fname, label))
        if entry.get("pdf_skipped") and not (run_dir / f"{name}.pdf").is_file():
            links.append(f'<span class="muted" title="{_e(entry["pdf_skipped"])}">PDF skipped</span>')
        bb = h["best_baseline"]
        bb_text = "" if not bb else " ".join(x for x in (bb[0] or "", _fmt_acc(bb[1])) if x)
        title = specs[name].title if name in specs else ""
        cell = f"<b>{_e(name)}</b><br><span class=\"muted\">{_e(title)}</span>"
        status_html = f'<span class="status-{_e(st)}">{_e(st)}</span>'
        if entry.get("error"):
            status_html += f'<div class="error">{_e(entry["error"])}</div>'
        if entry.get("resumed"):
            status_html += f'<div class="muted">run when resumed ({_e(entry["resumed"])})</div>'
        rows.append(
            f'<tr class="{_e(st)}" id="nb-{_e(name)}"><td>{cell}</td><td>{status_html}</td><td>{_e(model)}</td>'
            f'<td class="num">{_e(_fmt_acc(h["test_acc"]) + _fmt_ci(h["test_acc_ci"]))}</td>'
            f'<td class="num">{_e(_fmt_acc(h["macro_f1"]))}</td><td>{_e(bb_text)}</td>'
            f'<td class="num">{_e(_fmt_value(h["best_value"]))}</td>'
            f'<td class="num">{_e(_fmt_gain(h["ensemble_gain"]))}</td>'
            f'<td class="num">{_e(format_seconds(entry.get("execute_seconds")) if entry.get("execute_seconds") is not None else "")}</td>'
            f'<td class="num">{_e(format_seconds(rs_html) if rs_html is not None else "")}</td>'
            f'<td class="num">{_e(format_seconds(rs_pdf) if rs_pdf is not None else "")}</td>'
            f'<td>{" &middot; ".join(links)}</td></tr>'
        )
        if (run_dir / f"{name}.ipynb").is_file():
            figures[name] = extract_figures(run_dir, name)
    parts.append("<table><thead><tr>" + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr></thead><tbody>"
                 + "".join(rows) + "</tbody></table>")
    parts.append('<p class="muted">Accuracies are on the test split of the data named above, after the epochs '
                 "recorded in each notebook's metrics; brackets give the confidence interval when the notebook "
                 "records one. Gains are in percentage points.</p>")

    # figures
    if any(figures.values()):
        parts.append("<h2>Figures</h2>")
        for name, paths in figures.items():
            if not paths:
                continue
            shown = paths[:THUMBNAILS_PER_NOTEBOOK]
            more = (f" &middot; showing {len(shown)} of {len(paths)}; all in "
                    + (_link(f"{name}.html", "the report") if (run_dir / f"{name}.html").is_file() else "figures/")
                    if len(paths) > len(shown) else "")
            parts.append(f"<h3>{_e(name)}<span class=\"muted\">{more}</span></h3><div class=\"thumbs\">")
            for p in shown:
                rel = f"figures/{p.name}"
                parts.append(f'<figure><a href="{quote(rel)}"><img src="{quote(rel)}" alt="{_e(p.stem)}"></a>'
                             f"<figcaption>{_e(p.name)}</figcaption></figure>")
            parts.append("</div>")

    # the manifest, readable
    parts.append("<h2>Manifest</h2>")
    parts.append(f'<p>{_link("manifest.json", "manifest.json")} holds everything below.</p>')
    for section, key in (("Data", "data"), ("Overrides", "overrides"), ("Git", "git"), ("Versions", "versions"),
                         ("Hardware", "hardware"), ("Renderers", "renderers"), ("Totals", "totals")):
        if key in manifest:
            parts.append(f"<h3>{_e(section)}</h3>{_value_html(manifest[key])}")
    for name in names:
        entry = entries.get(name)
        if isinstance(entry, dict):
            parts.append(f"<h3>Notebook {_e(name)}</h3>{_value_html(entry)}")
    if manifest.get("resumed_at"):
        parts.append(f"<h3>Sessions that resumed the run</h3>{_value_html(manifest['resumed_at'])}")

    return reporting.atomic_write_text(run_dir / "index.html", _page(f"cifarkit run {run_id}", "\n".join(parts)))


# ------------------------------------------------------------------ all runs
def find_runs(out_dir: str | os.PathLike) -> list[Path]:
    """Sub-folders of ``out_dir`` that hold a ``manifest.json``."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        return []
    return sorted(p for p in out_dir.iterdir() if p.is_dir() and (p / "manifest.json").is_file())


def write_index(out_dir: str | os.PathLike) -> Path:
    """Write ``<out_dir>/index.html``: every run in ``out_dir``, newest first (by ``started_at``).

    A run without its own ``index.html`` gets one first, so every link resolves.
    """
    out_dir = Path(out_dir)
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
        summary["href"] = f"{run_dir.name}/index.html" if (run_dir / "index.html").is_file() \
            else f"{run_dir.name}/manifest.json"
        rows.append(summary)
    rows.sort(key=lambda r: (r["started_at"], r["run_id"]), reverse=True)
    head = ("Run", "Profile", "Data", "Model", "Test accuracy", "Status", "Notebooks ok", "Duration", "Started")
    body = []
    for r in rows:
        data = r["data"]
        data_cell = _e(_data_text(data)) + (f'<br><span class="muted">sha256 {_e(data["sha256"][:12])}</span>'
                                             if data.get("sha256") else "")
        acc = _fmt_acc(r["test_acc"]) + _fmt_ci(r["test_acc_ci"])
        epochs = f", {r['epochs']} epoch{'s' if r['epochs'] != 1 else ''}" if r["epochs"] is not None else ""
        acc_cell = _e(acc) + (f'<br><span class="muted">{_e(r["test_acc_from"])}{_e(epochs)}</span>' if acc else "")
        body.append(
            f'<tr class="{_e(r["status"])}"><td>{_link(r["href"], r["run_id"])}</td><td>{_e(r["profile"])}</td>'
            f'<td title="{_e(data.get("source"))}">{data_cell}</td><td>{_e(r["model"] or "")}</td>'
            f'<td class="num">{acc_cell}</td><td><span class="status-{_e(r["status"])}">{_e(r["status"])}</span></td>'
            f'<td class="num">{r["notebooks_ok"]}/{r["notebooks_total"]}</td>'
            f'<td class="num">{_e(format_seconds(r["duration_seconds"]) if r["duration_seconds"] is not None else "")}</td>'
            f'<td>{_e(r["started_at"])}</td></tr>'
        )
    table = ("<table><thead><tr>" + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr></thead><tbody>"
             + "".join(body) + "</tbody></table>") if body else "<p>No runs here yet.</p>"
    text = (f"<h1>cifarkit runs in {_e(out_dir.resolve().name)}/</h1>"
            f'<p class="muted">{len(rows)} run(s), newest first. Test accuracy is the first of '
            f'{", ".join(HEADLINE_NOTEBOOKS)} that recorded one; epochs and data are on each run\'s page.</p>'
            + table)
    return reporting.atomic_write_text(out_dir / "index.html", _page(f"cifarkit runs in {out_dir.name}", text))


def rebuild(path: str | os.PathLike) -> list[Path]:
    """Rebuild the dashboards under ``path``: a folder of runs (every run and its index) or one run
    (that run and its folder's index). Returns the pages written."""
    path = Path(path)
    if (path / "manifest.json").is_file():
        return [write_run_dashboard(path), write_index(path.parent)]
    if not path.is_dir():
        raise FileNotFoundError(f"{path} is not a folder. Pass a folder of runs (e.g. reports/) or one run's folder.")
    written = [write_run_dashboard(run) for run in find_runs(path)]
    return written + [write_index(path)]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m cifarkit.dashboard", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("path", nargs="?", default=str(config.REPORTS_DIR),
                   help="a folder of runs or one run's folder (default: reports/)")
    args = p.parse_args(argv)
    try:
        pages = rebuild(args.path)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for page in pages:
        print(page)
    return 0


if __name__ == "__main__":
    sys.exit(main())
