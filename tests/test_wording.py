"""cifarkit.wording: counts and nouns agree in what the reports and the command line print."""

import pytest

from cifarkit.wording import plural


@pytest.mark.parametrize(
    "count, noun, many, expected",
    [
        (1, "epoch", None, "1 epoch"),
        (0, "epoch", None, "0 epochs"),
        (4, "epoch", None, "4 epochs"),
        ("1", "trial", None, "1 trial"),
        ("1.0", "epoch", None, "1.0 epoch"),
        ("0.5", "epoch", None, "0.5 epochs"),
        ("1,200", "image", None, "1,200 images"),
        ("?", "epoch", None, "? epochs"),
        (1, "class", "classes", "1 class"),
        (3, "class", "classes", "3 classes"),
    ],
)
def test_plural_agrees_with_the_count(count, noun, many, expected):
    assert plural(count, noun, many) == expected


def test_the_study_books_progressive_line_uses_the_singular_for_one():
    from cifarkit.report.book_methods import _first_epochs

    assert _first_epochs(1) == "the first epoch"
    assert _first_epochs(2) == "the first 2 epochs"
    assert _first_epochs("?") == "the first ? epochs"


def test_the_architectures_key_results_name_each_models_epochs_in_agreement():
    from cifarkit.report.key_results import key_results_html

    metrics = {
        "comparison": [
            {"model": "simple_cnn/default/1ep", "epochs": 1, "test_acc": 0.1, "val_acc": 0.11},
            {"model": "resnet20/default/6ep", "epochs": 6, "test_acc": 0.8, "val_acc": 0.79},
        ]
    }
    html = key_results_html("06_architectures_and_ensembles", metrics)
    assert "simple_cnn/default/1ep (1 epoch)" in html
    assert "resnet20/default/6ep (6 epochs)" in html
    assert "epochs)" not in html.split("resnet20")[0]


@pytest.mark.parametrize(
    "budget, expected",
    [
        (
            {"epochs_run": 12, "epochs_without_pruning": 20, "saved_fraction": 0.4},
            "12 epochs run, of 20 without pruning (pruning saved 40%)",
        ),
        (
            {"epochs_run": 1, "epochs_without_pruning": 1, "saved_fraction": 0.0},
            "1 epoch run, of 1 without pruning (pruning saved 0%)",
        ),
        (
            {"epochs_run": 0, "epochs_without_pruning": 0, "saved_fraction": None},
            "0 epochs run, of 0 without pruning (pruning saved n/a)",
        ),
    ],
)
def test_the_tuning_epoch_budget_reads_in_agreement(budget, expected):
    from cifarkit.analysis.tuning import budget_summary

    assert budget_summary(budget) == expected


def test_readable_tables_keep_small_floats_and_blank_missing_cells():
    # what 02's trial table shows: round(4) had turned a weight decay of 0.000189 into 0.0002
    import pandas as pd

    from cifarkit.analysis.plots import readable

    table = pd.DataFrame(
        {"state": ["complete", "pruned"], "weight_decay": [0.000189, 0.0133], "seconds": [8.191, float("nan")]},
        index=pd.Index([0, 1], name="trial"),
    )
    shown = readable(table)
    assert shown.to_dict("records") == [
        {"state": "complete", "weight_decay": "0.000189", "seconds": "8.191"},
        {"state": "pruned", "weight_decay": "0.0133", "seconds": ""},
    ]
    assert shown.index.name == "trial" and table["weight_decay"].iloc[0] == 0.000189  # the table itself unchanged
