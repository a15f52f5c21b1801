"""Notebook 05's analysis, non-CNN baselines: do CNNs really win?

Classic scikit-learn classifiers trained on the same splits as the CNN put a
number on what convolutional networks add: ``features`` (raw pixels, HOG,
colour histograms, PCA), ``methods`` (a name -> method registry; every
hyperparameter is fixed a priori or chosen on the validation split) and
``compare`` (the run's CNNs scored on the same splits, McNemar's test, the verdict).
The test split is never used to choose anything.
"""

from cifarkit.analysis.baselines.compare import (
    best_by_validation,
    check_same_data,
    cnn_beats_all,
    compare_with_cnn,
    comparison_frame,
    conclusion,
    evaluate_cnns,
    format_comparison,
)
from cifarkit.analysis.baselines.features import (
    PCAFeatures,
    colour_histograms,
    hog_cell_size,
    hog_colour_features,
    hog_feature_length,
    hog_features,
    raw_pixels,
)
from cifarkit.analysis.baselines.methods import (
    DEFAULT_METHODS,
    METHODS,
    Baseline,
    BaselineMethod,
    knn_vote,
    list_methods,
    parse_methods,
    public_result,
    run_baselines,
)
from cifarkit.data.splits import stratified_subsample

__all__ = [
    "DEFAULT_METHODS",
    "METHODS",
    "Baseline",
    "BaselineMethod",
    "PCAFeatures",
    "best_by_validation",
    "check_same_data",
    "cnn_beats_all",
    "colour_histograms",
    "compare_with_cnn",
    "comparison_frame",
    "conclusion",
    "evaluate_cnns",
    "format_comparison",
    "hog_cell_size",
    "hog_colour_features",
    "hog_feature_length",
    "hog_features",
    "knn_vote",
    "list_methods",
    "parse_methods",
    "public_result",
    "raw_pixels",
    "run_baselines",
    "stratified_subsample",
]
