"""Hyperparameter tuning with Optuna (notebook 02_tune and ``python -m cifarkit tune``).

Named search spaces, pruned trials scored on validation accuracy only, resumable
studies in SQLite or a shared database, and the tuned settings handed to training.
Modules, bottom up: ``spaces`` (what is searched), ``storage`` (where a study lives,
sampler and pruner), ``results`` and ``plots`` (what a study found), ``trials`` (one
trial) and ``study`` (:func:`tune`).
"""

from cifarkit.analysis.tuning.plots import PLOTS, plot_study, plot_study_interactive, show
from cifarkit.analysis.tuning.results import (
    BEST_PARAMS_NAME,
    TuneResult,
    best_trial_record,
    budget_summary,
    describe_signal,
    epoch_budget,
    importances,
    record_signal,
    trial_counts,
    trials_table,
    tuned_settings,
    tuning_signal,
    write_best_params,
)
from cifarkit.analysis.tuning.spaces import (
    SPACES,
    Param,
    SearchSpace,
    TuneError,
    describe_space,
    get_space,
    list_spaces,
    matching_trial,
    merge_settings,
    params_to_settings,
    recipe_params,
    register_space,
    resolve_space,
)
from cifarkit.analysis.tuning.storage import (
    OBJECTIVE,
    PRUNERS,
    default_storage,
    load_study,
    make_pruner,
    mask_url,
    open_storage,
)
from cifarkit.analysis.tuning.study import check_arguments, default_study_name, tune
from cifarkit.analysis.tuning.trials import trial_val_predictions, validation_only

__all__ = [
    "BEST_PARAMS_NAME",
    "OBJECTIVE",
    "PLOTS",
    "PRUNERS",
    "SPACES",
    "Param",
    "SearchSpace",
    "TuneError",
    "TuneResult",
    "register_space",
    "list_spaces",
    "get_space",
    "resolve_space",
    "describe_space",
    "recipe_params",
    "matching_trial",
    "params_to_settings",
    "merge_settings",
    "make_pruner",
    "open_storage",
    "default_storage",
    "mask_url",
    "validation_only",
    "check_arguments",
    "default_study_name",
    "tune",
    "trial_counts",
    "budget_summary",
    "epoch_budget",
    "trials_table",
    "best_trial_record",
    "describe_signal",
    "record_signal",
    "tuning_signal",
    "trial_val_predictions",
    "write_best_params",
    "load_study",
    "plot_study",
    "plot_study_interactive",
    "show",
    "importances",
    "tuned_settings",
]
