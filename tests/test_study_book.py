"""The study book (cifarkit.report.book): written into a copy of the smoke study's run folder, checked on the files.

The smoke study (``smoke_study`` in conftest) runs once per session and is shared, so
every test here writes its book into its own copy of the run folder. The assertions
read the rendered ``study.html``, ``study.pdf`` (through ``pdftotext``) and ``study.bib``.
"""

from __future__ import annotations

import html
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from cifarkit import escape
from cifarkit.report import book, safety

REPO = Path(__file__).resolve().parents[1]
PAYLOAD = "<img src=x onerror=alert(1)>"

pytestmark = pytest.mark.notebook


# ------------------------------------------------------------------ helpers
class _Page(HTMLParser):
    """Ids, links, headings and the TOC's links of a page."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids, self.hrefs, self.toc_hrefs, self.headings = set(), [], [], []
        self._in_toc = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"])
        if tag == "nav" and a.get("class") == "toc":
            self._in_toc = 1
        if tag == "a" and (a.get("href") or "").startswith("#"):
            self.hrefs.append(a["href"][1:])
            if self._in_toc:
                self.toc_hrefs.append(a["href"][1:])
        if tag in ("h2", "h3", "h4") and a.get("id") and not self._in_toc:
            self.headings.append(a["id"])

    def handle_endtag(self, tag):
        if tag == "nav":
            self._in_toc = 0


def _parse(page: str) -> _Page:
    parser = _Page()
    parser.feed(page)
    return parser


def _text(html_fragment: str) -> str:
    import html

    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", html_fragment)).split())


def _section(page: str, start_id: str, end_id: str) -> str:
    return page[page.index(f'id="{start_id}"') : page.index(f'id="{end_id}"')]


def _copy_run(smoke_study, tmp_path_factory, name: str) -> Path:
    target = tmp_path_factory.mktemp(name) / smoke_study.run_dir.name
    shutil.copytree(smoke_study.run_dir, target)
    for stale in ("study.html", "study.pdf", "study.bib"):
        (target / stale).unlink(missing_ok=True)
    return target


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def _require_pdf(result: dict):
    if result["pdf"] is None:
        if os.environ.get("CIFARKIT_REQUIRE_SERVICES") == "1":
            pytest.fail(f"the study book's PDF was skipped: {result['pdf_skipped']}")
        pytest.skip(f"no PDF: {result['pdf_skipped']}")
    if not shutil.which("pdftotext"):
        pytest.skip("pdftotext (poppler-utils) is not installed")


# ------------------------------------------------------------------ the book of the smoke study
@pytest.fixture(scope="module")
def written(smoke_study, tmp_path_factory):
    run_dir = _copy_run(smoke_study, tmp_path_factory, "book")
    result = book.write_study_book(run_dir)
    page = Path(result["html"]).read_text(encoding="utf-8")
    return run_dir, result, page


def test_files_written_and_returned(written):
    run_dir, result, page = written
    assert Path(result["html"]) == run_dir / "study.html"
    assert Path(result["bib"]) == run_dir / "study.bib"
    assert (result["pdf"] is None) == (result["pdf_skipped"] is not None)
    safety.check_html(page, allowed_scripts=[])  # no script at all
    assert "<script" not in page and "http://" not in page.split("<body", 1)[0]
    assert 'src="data:image/png;base64,' in page  # figures embedded, nothing fetched
    assert not list(run_dir.glob(".study.*.tmp"))


def test_toc_links_resolve_to_every_section(written):
    _, _, page = written
    parsed = _parse(page)
    assert parsed.toc_hrefs, "the page has no table of contents"
    unresolved = [h for h in parsed.hrefs if h not in parsed.ids]
    assert not unresolved, f"links to missing ids: {unresolved[:5]}"
    missing = [h for h in parsed.headings if h not in parsed.toc_hrefs]
    assert not missing, f"sections absent from the TOC: {missing}"
    for anchor in ("summary", "methods", "results", "limitations", "references", "appendix", "reproduce"):
        assert anchor in parsed.toc_hrefs
    order = [parsed.toc_hrefs.index(a) for a in ("summary", "methods", "results", "limitations", "references")]
    assert order == sorted(order)


def test_methods_hold_this_runs_numbers(written):
    run_dir, _, page = written
    m3 = _load(run_dir / "metrics" / "03_train.json")
    m1 = _load(run_dir / "metrics" / "01_explore_data.json")
    cfg = m3["config"]
    peak = cfg["lr"] * cfg["batch_size"] / cfg["base_batch_size"] if cfg["lr_scaling"] == "linear" else cfg["lr"]
    methods = _text(_section(page, "methods", "results"))
    assert f"{peak:.4g}" in methods
    assert f"{cfg['epochs']} planned, {m3['epochs_run']} run" in methods
    assert f"Batch size {cfg['batch_size']}" in methods
    for split, label in (("train", "training"), ("val", "validation"), ("test", "test")):
        assert f"{sum(m1['counts'][split].values()):,} {label}" in methods
    for name in m1["class_names"]:
        assert name in methods
    assert f"{m1['channel_mean'][0]:.4f}" in methods  # the training split's normalization


def test_summary_and_limitations_are_computed(written):
    run_dir, _, page = written
    m3 = _load(run_dir / "metrics" / "03_train.json")
    summary = _text(_section(page, "summary", "contents"))
    assert f"{100 * m3['test_acc']:.2f}%" in summary
    assert f"95% CI {100 * m3['test_acc_ci'][0]:.2f} to {100 * m3['test_acc_ci'][1]:.2f}%" in summary
    assert "All 6 notebooks ran" in summary
    limits = _text(_section(page, "limitations", "references"))
    subset = _load(run_dir / "manifest.json")["notebooks"]["03_train"]["parameters"]["DATA_SUBSET"]
    assert f"DATA_SUBSET = {subset}" in limits
    seeds = _load(run_dir / "metrics" / "06_architectures_and_ensembles.json")["seeds"]
    assert "One training seed" not in limits  # the smoke profile trains 03's model again with seed 1 in 06
    assert f"Over {seeds['n']} training seeds: {100 * seeds['mean']:.2f}%" in summary
    width = 100 * (m3["test_acc_ci"][1] - m3["test_acc_ci"][0])
    assert f"{width:.2f} points wide" in limits
    m5 = _load(run_dir / "metrics" / "05_baselines.json")
    gap = 100 * (m5["cnn"]["test_acc"] - m5["best_baseline"]["test_acc"])  # said as a distance and a side
    side = f"{abs(gap):.2f} points {'above' if gap > 0 else 'below'} it" if round(gap, 2) else "level with it"
    assert f"the CNN is {side}" in summary


def test_results_without_code_and_figures_numbered(written):
    _, _, page = written
    results = _section(page, "results", "limitations")
    assert "import matplotlib" not in results and "load_study_data(" not in results
    assert "RUN_DIR" not in results  # the papermill-injected parameters cell is left out
    assert "TqdmWarning" not in page and "Traceback" not in page
    figures = [int(n) for n in re.findall(r"<figcaption><b>Figure (\d+)\.</b>", page)]
    tables = [int(n) for n in re.findall(r"<figcaption><b>Table (\d+)\.</b>", page)]
    assert figures == list(range(1, len(figures) + 1)) and len(figures) >= 10
    assert tables == list(range(1, len(tables) + 1)) and tables
    assert re.search(r"Figure \d+\.</b> Confusion matrix \(04 Evaluation\)", page)
    listed = _section(page, "list-of-figures", "list-of-tables")
    assert len(re.findall(r'href="#fig-\d+"', listed)) == len(figures)


def test_references_and_bibtex(written):
    run_dir, result, page = written
    cited = set(re.findall(r'href="#ref-([\w-]+)"', page))
    listed = re.findall(r'<li id="ref-([\w-]+)"', page)
    assert cited and cited <= set(listed)
    assert set(listed) == cited | {"krizhevsky2009cifar"}
    refs = _text(_section(page, "references", "appendix"))
    assert "Krizhevsky, A. (2009). Learning Multiple Layers of Features from Tiny Images" in refs
    assert "[Efron & Tibshirani 1993]" in refs and "[McNemar 1947]" in refs
    bib = Path(result["bib"]).read_text()
    depth = 0
    for ch in bib:
        depth += {"{": 1, "}": -1}.get(ch, 0)
        assert depth >= 0
    assert depth == 0
    keys = re.findall(r"^@\w+\{([\w-]+),", bib, flags=re.M)
    assert sorted(keys) == sorted(listed) and len(keys) == len(set(keys))
    assert bib.count("@") == len(keys)


def test_appendix_holds_the_reproduce_command(written):
    run_dir, _, page = written
    manifest = _load(run_dir / "manifest.json")
    argv = book.reproduce_command(manifest)
    assert argv[:3] == ["run_all.py", "--profile", "smoke"]
    assert argv[argv.index("--data") + 1] == manifest["data"]["argument"]
    command = "python " + " ".join(shlex.quote(a) for a in argv)
    assert escape.html(command) in page[page.index('id="reproduce-command"') :]
    appendix = _text(page[page.index('id="appendix"') :])
    assert manifest["run_id"] in page and (manifest["git"].get("commit") or "unknown") in appendix
    for name, entry in manifest["notebooks"].items():
        assert name in appendix and entry["status"] in appendix


def test_pdf_title_page_and_no_noise(written):
    run_dir, result, _ = written
    _require_pdf(result)
    m3 = _load(run_dir / "metrics" / "03_train.json")
    first = " ".join(
        subprocess.run(
            ["pdftotext", "-f", "1", "-l", "1", result["pdf"], "-"], capture_output=True, text=True, check=True
        ).stdout.split()
    )
    assert "A CNN study: " + book.title(book.StudyRun.load(run_dir)) in first
    assert f"{100 * m3['test_acc']:.2f}%" in first
    pages = subprocess.run(["pdftotext", result["pdf"], "-"], capture_output=True, text=True, check=True).stdout.split(
        "\f"
    )
    assert len(pages) > 10
    for i, text in enumerate(pages, 1):
        for bad in ("Traceback", "it/s", "Warning"):
            assert bad not in text, f"page {i} of study.pdf holds {bad!r}"
    start = next(i for i, text in enumerate(pages) if "Each notebook's own results" in text)
    numbers = [int(n) for n in re.findall(r"^Figure (\d+)\. ", "\n".join(pages[start:]), flags=re.M)]
    assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) >= 10


# ------------------------------------------------------------------ variations of the run folder
def test_missing_notebook_is_said(smoke_study, tmp_path_factory, monkeypatch):
    """A notebook without metrics is named as missing; without Chromium the PDF is skipped and the result says why."""
    monkeypatch.setenv("CIFARKIT_CHROMIUM", "/nonexistent/chromium")
    run_dir = _copy_run(smoke_study, tmp_path_factory, "book-missing")
    (run_dir / "metrics" / "05_baselines.json").unlink()
    manifest = _load(run_dir / "manifest.json")
    manifest["notebooks"]["05_baselines"].update(status="failed", error="ValueError: the baselines broke")
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    result = book.write_study_book(run_dir)
    assert result["pdf"] is None and "Chromium" in result["pdf_skipped"]
    assert not (run_dir / "study.pdf").exists() and (run_dir / "study.bib").is_file()
    page = Path(result["html"]).read_text()
    summary = _text(_section(page, "summary", "contents"))
    assert "1 of 6 notebooks recorded no results" in summary
    assert "05_baselines (failed: ValueError: the baselines broke)" in summary
    assert "Missing notebook." in _text(_section(page, "limitations", "references"))


def test_text_from_data_is_escaped(smoke_study, tmp_path_factory):
    run_dir = _copy_run(smoke_study, tmp_path_factory, "book-hostile")
    manifest = _load(run_dir / "manifest.json")
    manifest["data"].update(source=f"/data/{PAYLOAD}.zip", path=f"/data/{PAYLOAD}.zip", argument=f"/data/{PAYLOAD}.zip")
    manifest["class_names"] = [PAYLOAD, "b"]
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    for path in (run_dir / "metrics").glob("*.json"):
        metrics = _load(path)
        if isinstance(metrics.get("data"), dict):
            metrics["data"]["source"] = f"/data/{PAYLOAD}.zip"
        if metrics.get("class_names"):
            first = metrics["class_names"][0]
            metrics["class_names"][0] = PAYLOAD
            for split in (metrics.get("counts") or {}).values():
                if isinstance(split, dict) and first in split:
                    split[PAYLOAD] = split.pop(first)
        path.write_text(json.dumps(metrics))
    result = book.write_study_book(run_dir, pdf=False)  # check_html ran before writing
    page = Path(result["html"]).read_text()
    safety.check_html(page, allowed_scripts=[])
    assert PAYLOAD not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "onerror=" not in page.replace("&lt;img src=x onerror=alert(1)&gt;", "")


def test_cli_refuses_a_folder_that_is_not_a_run(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "cifarkit.report.book", str(tmp_path)], capture_output=True, text=True, cwd=REPO
    )
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "not a run folder" in lines[0]
    assert not (tmp_path / "study.html").exists()


def test_reproduce_command_round_trips_parameters():
    """Every override is given back as a string that run_all.py reads as the same value."""
    sys.path.insert(0, str(REPO))
    try:
        import run_all
    finally:
        sys.path.remove(str(REPO))
    from cifarkit.report.plan import parse_value, split_parameters

    overrides = {
        "EPOCHS": 3,
        "LR": 1e-05,
        "MODEL": "resnet20",
        "TTA": False,
        "VAL_FRACTION": 0.2,
        "OVERRIDES": {"weight_decay": 0.0005},
        "CLASS_WEIGHT": "true",
        "STUDY_NAME": "a b'c",
    }
    manifest = {
        "profile": "quick",
        "data": {"argument": "/data/my images.zip"},
        "image_size": 64,
        "class_names": ["dent", "ok"],
        "overrides": overrides,
        # one notebook's own settings, as -p NOTEBOOK.NAME or a --budget plan left them
        "notebook_overrides": {"02_tune": {"N_TRIALS": 2}, "03_train": {"EPOCHS": 3, "LR": 0.25}},
        "notebooks": {},
    }
    argv = book.reproduce_command(manifest)
    args = run_all.build_parser().parse_args(argv[1:])
    assert args.profile == "quick" and args.data == "/data/my images.zip" and args.image_size == 64
    assert args.class_names == ["dent,ok"]
    parsed = {name: parse_value(value) for name, value in args.param}
    assert split_parameters(parsed) == (overrides, manifest["notebook_overrides"])
    assert shlex.split(book.reproduce_text(manifest))[1:] == argv


@pytest.mark.slow
def test_reproduce_command_reproduces_the_metrics(smoke_study, tmp_path):
    """The appendix's command, run from the repository root, gives the same accuracies and counts (run for the
    two notebooks it checks: 01's counts and 03's accuracies; the other four would add a minute to the suite)."""
    run_dir = smoke_study.run_dir
    manifest = _load(run_dir / "manifest.json")
    argv = book.reproduce_command(manifest)
    out = subprocess.run(
        [sys.executable, *argv, "--only", "01", "03", "--out", str(tmp_path), "--no-pdf"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    (new_run,) = [p for p in tmp_path.iterdir() if (p / "manifest.json").is_file()]
    old3, new3 = _load(run_dir / "metrics" / "03_train.json"), _load(new_run / "metrics" / "03_train.json")
    assert (new3["test_acc"], new3["val_acc"]) == (old3["test_acc"], old3["val_acc"])
    old1, new1 = (
        _load(run_dir / "metrics" / "01_explore_data.json"),
        _load(new_run / "metrics" / "01_explore_data.json"),
    )
    assert new1["counts"] == old1["counts"]


def test_the_book_the_runner_writes_knows_the_runs_duration(smoke_study):
    """run_all writes the book after the manifest holds the run's duration, so the book states it."""
    page = _text((smoke_study.run_dir / "study.html").read_text(encoding="utf-8"))
    duration = _load(smoke_study.run_dir / "manifest.json")["duration_seconds"]
    assert duration > 0 and "The run took " in page and "duration was not recorded" not in page


def test_the_methods_table_names_progressive_resizing_only_when_a_run_used_it():
    from cifarkit.report import book_methods

    class Cites:
        def cite(self, key):
            return f"[{key}]"

    class Run:
        cites = Cites()

        def train_facts(self):
            return {}

    config = {"epochs": 2, "batch_size": 256, "progressive_size": 16, "progressive_epochs": 1}
    rows = dict(book_methods._training_rows(Run(), {"model": "fastnet", "recipe": "fast"}, config))
    assert rows["Progressive resizing"] == (
        "the first epoch on images downscaled to 16 x 16 pixels, the rest at full size"
    )
    plain = dict(book_methods._training_rows(Run(), {"model": "fastnet"}, {**config, "progressive_size": 0}))
    assert "Progressive resizing" not in plain


def test_the_methods_table_names_the_allocator_settings_the_model_recorded():
    from cifarkit.report import book_methods

    class Run:
        cites = None

        def __init__(self, facts):
            self.facts = facts

        def train_facts(self):
            return self.facts

    facts = {"mixed_precision": "off", "device": "cpu", "torch_threads": 2}
    tuned = {"malloc": "tuned", "mmap_threshold": 32 << 20, "trim_threshold": 1 << 30}
    rows = dict(book_methods._training_rows(Run({**facts, "versions": {"allocator": tuned}}), {}, {}))
    assert rows["Precision and device"] == (
        "float32 on cpu, 2 torch threads; malloc thresholds set (mmap 32 MiB, trim 1024 MiB)"
    )
    hostile = {"malloc": "default", "why": "<b>x</b>"}
    rows = dict(book_methods._training_rows(Run({**facts, "versions": {"allocator": hostile}}), {}, {}))
    row = rows["Precision and device"]
    assert "<b>" not in row and html.unescape(row).endswith("malloc at the C library's defaults (<b>x</b>)")
    older = dict(book_methods._training_rows(Run(facts), {}, {}))  # a model trained before the allocator was tuned
    assert older["Precision and device"] == "float32 on cpu, 2 torch threads"


def test_a_budgeted_run_says_what_its_budget_lowered(smoke_study, tmp_path_factory):
    """A run planned by --budget (here the plan a standard run under --budget 60 recorded on the AVX-512 EPYC,
    benchmarks/results/standard_budget60_epyc_avx512/manifest.json) says so in the summary and the limitations."""
    run_dir = _copy_run(smoke_study, tmp_path_factory, "book-budget")
    recorded = _load(REPO / "benchmarks" / "results" / "standard_budget60_epyc_avx512" / "manifest.json")
    budget = recorded["time_plan"]["budget"]
    assert budget["minutes"] == 60 and len(budget["changes"]) == 5
    manifest = _load(run_dir / "manifest.json")
    assert not (manifest.get("time_plan") or {}).get("budget")
    page = Path(book.write_study_book(run_dir, pdf=False)["html"]).read_text()
    assert "Time budget." not in _text(_section(page, "summary", "contents"))  # no budget, nothing said
    manifest["time_plan"]["budget"] = budget
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    page = Path(book.write_study_book(run_dir, pdf=False)["html"]).read_text()
    summary = _text(_section(page, "summary", "contents"))
    assert (
        "Time budget. The run was planned to fit a budget of 60 minutes on its machine (the profile's own settings "
        "needed about 110 minutes there), so these settings were lowered: 01_explore_data TSNE_SAMPLES: 2000 -> 500; "
        "04_evaluate CORRUPTION_SAMPLES: 2000 -> 200; 05_baselines MAX_TRAIN: 45000 -> 2000; "
        "06_architectures_and_ensembles epochs of each compared architecture (at most): 6 -> 1; 03_train EPOCHS: "
        "18 -> 10. Every number in this book comes from the lowered settings, not the profile's."
    ) in summary
    limits = _text(_section(page, "limitations", "references"))
    assert "Settings lowered to fit a time budget. 5 settings of the profile were lowered" in limits
    # a budget that fit the profile changed nothing and is not a limitation
    manifest["time_plan"]["budget"] = dict(budget, changes=[])
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    page = Path(book.write_study_book(run_dir, pdf=False)["html"]).read_text()
    assert "Time budget." not in page and "Settings lowered" not in page
    # 02 picked slower settings than the plan assumed: what the runner lowered before 03 is said too
    replan = {"changes": [{"notebook": "03_train", "parameter": "EPOCHS", "from": 4, "to": 3, "why": "w"}]}
    manifest["time_plan"]["budget"] = dict(budget, changes=[], before_seconds=3000.0)  # the profile fit 60 minutes
    manifest["time_plan"]["retimed"] = [{"why": "02's tuned settings apply to 03_train", "budget_replan": replan}]
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    page = Path(book.write_study_book(run_dir, pdf=False)["html"]).read_text()
    assert (
        "The run was planned to fit a budget of 60 minutes on its machine; the profile's own settings fit it (about "
        "50 minutes there), but once the tuning had picked settings that train the model slower than planned, these "
        "were lowered before training: 03_train EPOCHS: 4 -> 3. Every number"
    ) in _text(_section(page, "summary", "contents"))
    assert "1 setting of the profile was lowered" in _text(_section(page, "limitations", "references"))
    manifest["time_plan"]["budget"] = budget  # lowered at the start and again before 03
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    page = Path(book.write_study_book(run_dir, pdf=False)["html"]).read_text()
    assert "03_train EPOCHS: 18 -> 10; and once the tuning had picked settings" in _text(page)
    assert "6 settings of the profile were lowered" in _text(_section(page, "limitations", "references"))


def test_a_budgeted_run_says_whether_it_kept_its_budget(smoke_study, tmp_path_factory):
    """The budget counts measuring the machine and the run: the AVX2 EPYC's standard run under --budget 60 took
    54.56 s to measure and 3,758.97 s from its estimate on (63 min 34 s: over by 3 min 34 s, 6%); the AVX-512
    EPYC's 27.07 s and 3,370.76 s (56 min 38 s: within). Both from their recorded manifests."""
    run_dir = _copy_run(smoke_study, tmp_path_factory, "book-budget-kept")
    manifest = _load(run_dir / "manifest.json")
    for machine, verdict in (
        ("avx2", "It took 63 min 34 s, measuring the machine included: 3 min 34 s (6%) over the budget."),
        ("avx512", "It took 56 min 38 s, measuring the machine included: within the budget."),
    ):
        recorded = _load(REPO / "benchmarks" / "results" / f"standard_budget60_epyc_{machine}" / "manifest.json")
        manifest["time_plan"] = dict(
            manifest["time_plan"],
            budget=recorded["time_plan"]["budget"],
            seconds_to_estimate=recorded["time_plan"]["seconds_to_estimate"],
        )
        manifest["duration_seconds"] = recorded["duration_seconds"]
        (run_dir / "manifest.json").write_text(json.dumps(manifest))
        page = Path(book.write_study_book(run_dir, pdf=False)["html"]).read_text()
        summary = _text(_section(page, "summary", "contents"))
        assert "not the profile's. " + verdict in summary, (machine, summary)
    # with the plan's margin (the AVX2 EPYC's second --budget 60 run, 45.68 s measuring + 3,500.64 s: within)
    recorded = _load(REPO / "benchmarks" / "results" / "standard_budget60_margin_epyc_avx2" / "manifest.json")
    assert recorded["time_plan"]["budget"]["margin_seconds"] == 353.1
    manifest["time_plan"] = dict(
        manifest["time_plan"], **{k: recorded["time_plan"][k] for k in ("budget", "seconds_to_estimate")}
    )
    manifest["duration_seconds"] = recorded["duration_seconds"]
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    summary = _text(
        _section(Path(book.write_study_book(run_dir, pdf=False)["html"]).read_text(), "summary", "contents")
    )
    assert (
        "03_train EPOCHS: 10 -> 1. Every number in this book comes from the lowered settings, not the profile's. The "
        "plan kept 5 min 53 s of the budget unplanned in case the machine ran slower than measured. It took 59 min "
        "06 s, measuring the machine included: within the budget."
    ) in summary
    manifest["resumed_at"] = [{"at": "x"}]  # sessions apart: their sum is no wall time to hold against the budget
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    page = Path(book.write_study_book(run_dir, pdf=False)["html"]).read_text()
    assert "measuring the machine included" not in page


def test_the_robustness_summary_of_a_model_at_chance_says_it_measures_nothing(tmp_path):
    from cifarkit import run_folder
    from cifarkit.report import book_parts

    def robustness(clean, at_chance, n=200, html=False):
        m4 = {
            "robustness_mean_acc": 0.1,
            "robustness_clean_acc": clean,
            "robustness_n": n,
            "robustness": {"gaussian_noise": {"1": 0.1, "2": 0.1}, "fog": {"1": 0.5, "2": 0.1}},
            "corruptions_at_chance": at_chance,
        }
        explore = {"class_names": [f"c{i}" for i in range(10)]}
        run = book_parts.StudyRun(tmp_path, {}, {run_folder.EVALUATE: m4, run_folder.EXPLORE: explore})
        return book_parts._robustness(run) if html else _text(book_parts._robustness(run))

    cells = ["gaussian noise at severity 1", "gaussian noise at severity 2", "fog at severity 2"]
    untrained = robustness(0.10, cells)  # 10 classes, 200 images: 10% is guessing
    assert "at chance level on the clean images already" in untrained and "3 of 4" not in untrained
    trained = robustness(0.60, cells)
    grouped = "3 of 4 corruption settings bring it to chance level: gaussian noise (severities 1-2); fog (severity 2)."
    assert grouped in trained
    assert "already" not in trained
    assert "1 of 4 corruption settings brings it to chance level: fog (severity 2)." in robustness(0.60, cells[2:])
    six = [f"<i>{name}</i> at severity 5" for name in "abcdef"]  # past four corruptions the rest are counted
    assert "&lt;i&gt;d&lt;/i&gt; (severity 5); and 2 more corruptions." in robustness(0.60, six, html=True)
    assert "on the same 1,480 clean test images" in robustness(0.60, [], n=1480)  # the count as counts are written


def test_the_corruption_limitation_groups_the_cells_by_corruption(tmp_path):
    """The smoke run's book listed all 75 cells one by one ("gaussian noise at severity 1, gaussian noise at
    severity 2, ..."): half a page for a model at chance on clean images too."""
    from cifarkit import run_folder
    from cifarkit.report import book_parts

    def limitation(clean, cells):
        m4 = {"robustness_clean_acc": clean, "robustness_n": 200, "corruptions_at_chance": cells}
        explore = {"class_names": [f"c{i}" for i in range(10)]}
        run = book_parts.StudyRun(tmp_path, {}, {run_folder.EVALUATE: m4, run_folder.EXPLORE: explore})
        return _text(book_parts._limit_corruptions(run))

    cells = [f"gaussian noise at severity {s}" for s in (1, 2, 3, 5)] + ["<b>fog</b> at severity 5", "odd cell"]
    assert limitation(0.60, cells) == (
        "Corruptions that bring the model to chance. 6 corruption settings: gaussian noise (severities 1-3 and 5); "
        "<b>fog</b> (severity 5); odd cell."
    )
    assert "<b>fog</b>" not in book_parts._limit_corruptions(
        book_parts.StudyRun(
            tmp_path,
            {},
            {run_folder.EVALUATE: {"corruptions_at_chance": cells}, run_folder.EXPLORE: {"class_names": ["a", "b"]}},
        )
    )  # escaped in the HTML
    assert limitation(0.10, cells) == (
        "Robustness not measured. The model is at chance level on the clean images already, so the 6 corruption "
        "settings at chance say nothing about corruptions."
    )
    assert limitation(0.10, cells[:1]).endswith("the 1 corruption setting at chance says nothing about corruptions.")
    nothing = book_parts.StudyRun(tmp_path, {}, {run_folder.EVALUATE: {"corruptions_at_chance": []}})
    assert book_parts._limit_corruptions(nothing) is None
    assert book_parts.group_corruption_cells(
        ["snow at severity 1", "snow at severity 3", "snow at severity 4", "fog at severity 2"]
    ) == ["snow (severities 1 and 3-4)", "fog (severity 2)"]


def test_the_methods_name_the_severities_04_measured(tmp_path):
    """The methods said "15 corruptions at three severities" (the old private protocol's wording) under the
    CIFAR-10-C protocol's five."""
    from cifarkit import run_folder
    from cifarkit.report import book_methods, book_parts

    def methods(robustness):
        m4 = {"robustness": robustness, "robustness_n": 1000, "ece_bins": 15}
        return _text(book_methods._evaluation(book_parts.StudyRun(tmp_path, {}, {run_folder.EVALUATE: m4})))

    five = {name: {str(s): 0.5 for s in range(1, 6)} for name in ("gaussian_noise", "fog", "snow")}
    assert "under 3 corruptions at severities 1-5, generated with the published CIFAR-10-C definitions" in methods(five)
    assert "under 1 corruption at severity 3," in methods({"fog": {"3": 0.5}})
    assert "at severities 1 and 4-5," in methods({"fog": {"1": 0.5, "4": 0.5}, "snow": {"5": 0.5}})
    assert "three severities" not in methods(five)


def test_the_replication_limitation_names_each_reason_once(tmp_path):
    """The AVX2 EPYC's standard run under --budget 60 trained ResNet-20 for 6 of the paper's 164 epochs with the
    default recipe (its recorded 06 metrics); the limitation said the epochs twice and "1 of 1 ... are"."""
    from cifarkit import run_folder
    from cifarkit.report import book_parts

    recorded = _load(
        REPO / "benchmarks" / "results" / "standard_budget60_epyc_avx2" / f"{run_folder.ARCHITECTURES}.json"
    )
    rows = recorded["replication"]
    assert [r["model"] for r in rows] == ["resnet20"]

    def limitation(rows):
        return book_parts._limit_training(
            book_parts.StudyRun(tmp_path, {}, {run_folder.ARCHITECTURES: {"replication": rows}})
        )

    assert _text(limitation(rows)) == (
        "Training far shorter than the papers' recipes. The published architecture trained is not a replication: "
        "resnet20 (6 of the paper's 164 epochs; recipe 'default', not the paper's). Its published error is for "
        "reference only."
    )
    full = dict(rows[0], model="resnet56", comparison="replication")
    short = dict(rows[0], model="<b>x</b>", comparison="for reference only: not the full CIFAR-10")
    assert _text(limitation([rows[0], full])) == (
        "Training far shorter than the papers' recipes. 1 of 2 published architectures is not a replication: "
        "resnet20 (6 of the paper's 164 epochs; recipe 'default', not the paper's). Its published error is for "
        "reference only."
    )
    text = limitation([rows[0], full, short])
    assert "<b>x</b>" not in text and _text(text).startswith(
        "Training far shorter than the papers' recipes. 2 of 3 published architectures are not replications: "
        "resnet20 (6 of the paper's 164 epochs; recipe 'default', not the paper's); <b>x</b> (not the full CIFAR-10). "
        "Their published errors are for reference only."
    )
    assert limitation([full]) is None
    # runs recorded since then carry the reasons as a list, which the book reads instead of the sentence
    listed = dict(rows[0], comparison="reference only, see the list", reasons=["12 of the paper's 164 epochs"])
    assert "(12 of the paper's 164 epochs)" in _text(limitation([listed]))
    assert limitation([dict(rows[0], reasons=[])]) is None  # the list decides, not the sentence


def test_the_methods_name_the_optimizer_the_run_trained_with():
    from cifarkit.report.book_methods import _optimizer_text

    assert _optimizer_text({"optimizer": "sgd", "momentum": 0.85, "nesterov": True}) == "SGD, momentum 0.85, Nesterov"
    assert _optimizer_text({"optimizer": "adamw", "momentum": 0.9}) == "AdamW (beta1 0.9)"
    muon = _optimizer_text(
        {"optimizer": "muon", "muon_lr": 0.08, "muon_momentum": 0.6, "momentum": 0.85, "nesterov": True}
    )
    assert muon.startswith("Muon for the convolution kernels (orthogonalized Nesterov momentum 0.6, learning rate 0.08")
    assert muon.endswith("for the other parameters SGD, momentum 0.85, Nesterov")
    deep = _optimizer_text({"optimizer": "muon", "muon_lr": 0.08, "muon_min_filters": 128, "momentum": 0.85})
    assert deep.startswith("Muon for the convolution kernels of 128 or more filters (orthogonalized")
    # a key an older recorded config lacks reads as TrainConfig's default (SGD, momentum 0.9, Nesterov)
    assert _optimizer_text({}) == "SGD, momentum 0.9, Nesterov"
    assert _optimizer_text({"nesterov": False}) == "SGD, momentum 0.9"
    assert "momentum 0.6, learning rate 0.24 x" in _optimizer_text({"optimizer": "muon"})


@pytest.mark.parametrize(
    "origin, sentence, carved",
    [
        (
            "given train/test; val from train; at most 20 per class per split",
            "The source gives the training and test splits; the validation split is carved from the training images; "
            "at most 20 images per class in each split",
            True,
        ),
        ("given train/val/test", "The source gives the training, validation and test splits", False),
        (
            "given train/val; test from train",
            "The source gives the training and validation splits; the test split is carved from the training images",
            False,
        ),
        (
            "given train only; val and test from train",
            "The source gives the training split; the validation and test splits are carved from the training images",
            True,
        ),
        (
            "stratified split of unsplit folder; at most 5 per class per split",
            "The folder has no split folders: the training, validation and test splits are drawn from its images, "
            "stratified by class; at most 5 images per class in each split",
            True,
        ),
        (
            "stratified group split of unsplit folder; whole groups per split (12 groups, from the file names)",
            "The folder has no split folders: the training, validation and test splits are drawn from its images "
            "group by group, stratified by class; each group's images lie in one split only (12 groups, from the file "
            "names)",
            True,
        ),
        (
            "stratified split of a synthetic pool",
            "The training, validation and test splits are drawn from one pool of synthetic images, stratified by class",
            True,
        ),
        (
            "given train/val/test; labels from the labels.csv",
            "The source gives the training, validation and test splits; labels from the labels.csv",
            False,
        ),
        ("cross-validation fold 2 of 5", "Cross-validation fold 2 of 5", True),
        ("", "Not recorded", True),
    ],
)
def test_the_methods_tell_the_split_in_words(origin, sentence, carved):
    from cifarkit.data import split_record

    assert split_record.sentence(origin) == sentence
    # the share of validation is stated only where it was carved
    assert split_record.carves_validation(origin) is carved


def test_every_split_record_the_loaders_write_is_read_in_words():
    from cifarkit.data import split_record as r

    written = [r.given(s) for s in ({"train"}, {"train", "test"}, {"train", "val"}, {"train", "val", "test"})]
    written += [r.UNSPLIT, r.GROUP_UNSPLIT + r.whole_groups(3, "groups file"), r.SYNTHETIC + r.subset_note(7)]
    for record in written:
        words = r.sentence(record)
        for part in record.split("; "):
            assert part not in words.lower(), (record, words)  # no part of the record passes through unread
    # the two forms that read as they stand
    assert r.sentence(r.given({"train", "val", "test"}) + r.labels_from("labels.csv")).endswith(
        "; labels from the labels.csv"
    )
    assert r.sentence(r.fold(2, 5)) == "Cross-validation fold 2 of 5"
