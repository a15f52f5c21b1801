"""The ``replicate`` profile, checked without training: it asks for the papers' models, recipes, epochs and
data, and its time estimate is printed before anything runs."""

import json
import re

import pytest
from conftest import REPO

from cifarkit.analysis.compare_architectures import parse_architectures, published_results
from cifarkit.models import model_info
from cifarkit.report import estimate, profiles, runner
from cifarkit.training.recipes import resolve_recipe

PAPER_MODELS = {"resnet20", "resnet56", "resnet110", "densenet_bc_100"}


@pytest.fixture(scope="module")
def plan():
    return runner.plan_run("replicate")[1]


def _trained(plan) -> list[tuple[str, str, int]]:
    """``(model, recipe, epochs)`` of every training run the profile starts (0 epochs: the recipe's)."""
    by_name = {spec.name: params for spec, params in plan}
    runs = [(by_name["03_train"]["MODEL"], by_name["03_train"]["RECIPE"], by_name["03_train"]["EPOCHS"])]
    for spec in parse_architectures(by_name["06_architectures_and_ensembles"]["ARCHITECTURES"]):
        runs.append((spec.model, spec.recipe, spec.epochs))
    return runs


def test_it_runs_the_papers_models_on_all_the_data(plan):
    names = [spec.name for spec, _ in plan]
    assert names == ["01_explore_data", "03_train", "04_evaluate", "06_architectures_and_ensembles"]
    assert all(params.get("DATA_SUBSET", 0) == 0 for _, params in plan)  # the whole CIFAR-10
    assert all(not params.get("DATA") for _, params in plan)  # the official archive by default
    assert {model for model, _, _ in _trained(plan)} == PAPER_MODELS
    assert PAPER_MODELS <= set(published_results())  # each has a published error to stand beside


@pytest.mark.parametrize(
    "model, epochs, batch, nesterov, warmup",
    [
        ("resnet20", 164, 128, False, 0.0),  # He et al. 2016, section 4.2: 64k iterations at batch 128
        ("resnet56", 164, 128, False, 0.0),
        ("resnet110", 164, 128, False, 1.0),  # He et al. warm up ResNet-110 (0.01 until training error < 80%)
        ("densenet_bc_100", 300, 64, True, 0.0),  # Huang et al. 2017, section 4.2
    ],
)
def test_each_model_gets_its_papers_recipe(plan, model, epochs, batch, nesterov, warmup):
    (recipe, given) = [(r, e) for m, r, e in _trained(plan) if m == model][0]
    assert recipe == "paper" and given == 0
    config = resolve_recipe(recipe, model=model)
    assert (config.epochs, config.batch_size, config.nesterov) == (epochs, batch, nesterov)
    assert (config.lr, config.momentum, config.schedule) == (0.1, 0.9, "step")
    assert tuple(config.milestones) == (0.5, 0.75) and config.gamma == 0.1
    assert config.warmup_epochs == warmup
    assert config.epochs >= model_info(model)["reference_epochs"]  # so 06 can call the row a replication


def test_the_time_estimate_comes_before_any_training(plan):
    printed = []
    plan_time = estimate.estimate_run(plan, probe=False, log=printed.append)
    how = {name: e.how for name, e in plan_time.estimates.items()}
    assert how["03_train"].startswith("164 epochs of resnet20 (batch 128) on 45,000 images")
    assert "densenet_bc_100 300 ep" in how["06_architectures_and_ensembles"]
    # at the fixed rates this machine-free estimate assumes, weeks of CPU training rather than minutes
    assert plan_time.total > 24 * 3600
    assert " days) of execution" in plan_time.lines()[-1] or " h) of execution" in plan_time.lines()[-1]


def test_the_profile_says_it_is_meant_for_a_gpu():
    prof = profiles.load_profile("replicate")
    assert "GPU" in prof.description and "estimate" in prof.description
    assert set(prof.skip) == {"02_tune", "05_baselines", "07_cross_validation"}


CHECK = REPO / "benchmarks" / "results" / "replicate_estimate_epyc_avx512"
SECTION = "## The replicate and full profiles on the AVX-512 EPYC"


def _probe_rate(profile: str, precision: str, model: str) -> str:
    """The training rate an ``--estimate`` printout recorded for ``model`` ("-" where none was made)."""
    path = CHECK / f"estimate_{profile}_{precision}.txt"
    if not path.exists():
        return "-"
    name = "bfloat16" if precision == "bf16" else "float32"
    found = re.search(rf"{model} {name} batch \d+: ([\d,]+) img/s training", path.read_text())
    return found.group(1) if found else "-"


def test_the_one_epoch_check_of_the_estimate_holds_the_recorded_runs():
    """benchmarks/README.md's check of the replicate and full profiles' estimates states what was recorded: each
    one-epoch run's rate, time and memory, the probes' rates, and the totals the estimates printed."""
    section = (REPO / "benchmarks" / "README.md").read_text().split(SECTION)[1].split("\n## ")[0]
    rows = [line for line in section.splitlines() if line.startswith(("| ResNet", "| DenseNet"))]
    assert len(rows) == 4, rows
    for row in rows:
        cells = [c.strip().replace("*", "") for c in row.split("|")[1:-1]]
        label, precision = cells[0].split(", ")
        model = {"ResNet-56": "resnet56", "DenseNet-BC-100": "densenet_bc_100"}[label]
        run = json.loads((CHECK / f"one_epoch_{model}_{precision}.json").read_text())
        assert (run["model"], run["epochs"], run["device"]) == (model, 1, "cpu")
        assert run["mixed_precision"] == {"bf16": "bfloat16", "float32": "off"}[precision]
        assert cells[1] == f"{run['images_per_sec_mean']:.0f} ({run['train_seconds']:.1f} s)", row
        assert cells[2] == f"{_probe_rate('replicate', precision, model)} / {_probe_rate('full', precision, model)}"
        assert cells[3] == f"{run['peak_rss_mib'] / 1024:.1f} GiB", row
    for printout in sorted(CHECK.glob("estimate_*.txt")):
        (total,) = re.findall(r"^estimated total: [\d,]+ s \(([\d.]+ days)\)", printout.read_text(), re.M)
        assert f"**{total}**" in section, printout.name
