"""cifarkit.stats: bootstrap intervals and McNemar's test against known values and simulations."""

import math

import numpy as np
import pytest

from cifarkit.analysis import stats


def test_bootstrap_ci_covers_the_true_accuracy_about_95_percent_of_the_time():
    rng = np.random.default_rng(123)
    true_acc, n, reps = 0.7, 200, 200
    covered = 0
    for rep in range(reps):
        correct = rng.random(n) < true_acc
        lo, hi = stats.bootstrap_ci(correct, n_boot=400, seed=rep)
        covered += lo <= true_acc <= hi
    # a percentile bootstrap of a proportion at n=200 covers ~94%; 200 repetitions give +-3.4% (2 sd)
    assert 0.88 <= covered / reps <= 0.99, covered / reps


def test_bootstrap_ci_brackets_the_mean_and_narrows_with_more_data():
    rng = np.random.default_rng(0)
    small = rng.random(100) < 0.6
    large = rng.random(10_000) < 0.6
    lo_s, hi_s = stats.bootstrap_ci(small, n_boot=500, seed=1)
    lo_l, hi_l = stats.bootstrap_ci(large, n_boot=500, seed=1)
    assert lo_s <= small.mean() <= hi_s and lo_l <= large.mean() <= hi_l
    assert (hi_l - lo_l) < (hi_s - lo_s) / 5  # width shrinks like 1/sqrt(n): sqrt(100) = 10
    # normal-approximation width for n=10000, p=0.6: 2 * 1.96 * sqrt(0.24 / 10000) = 0.0192
    assert hi_l - lo_l == pytest.approx(2 * 1.96 * math.sqrt(0.24 / 10_000), rel=0.15)


def test_bootstrap_ci_is_deterministic_for_a_seed():
    c = np.arange(50) % 3 == 0
    assert stats.bootstrap_ci(c, n_boot=300, seed=5) == stats.bootstrap_ci(c, n_boot=300, seed=5)
    assert stats.bootstrap_ci(c, n_boot=300, seed=5) != stats.bootstrap_ci(c, n_boot=300, seed=6)


def test_accuracy_ci_and_paired_difference():
    y = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    a = np.array([0, 1, 2, 0, 1, 2, 0, 1, 0, 1])  # 8 right
    b = np.array([0, 1, 0, 1, 1, 2, 0, 0, 0, 1])  # 5 right
    acc = stats.accuracy_ci(y, a, n_boot=500)
    assert acc["accuracy"] == 0.8 and acc["n"] == 10
    assert acc["ci_low"] <= 0.8 <= acc["ci_high"]
    diff = stats.paired_difference_ci(y, a, b, n_boot=500)
    assert diff["difference"] == pytest.approx(0.3)
    assert diff["ci_low"] <= 0.3 <= diff["ci_high"]
    same = stats.paired_difference_ci(y, a, a, n_boot=100)
    assert (same["difference"], same["ci_low"], same["ci_high"]) == (0.0, 0.0, 0.0)


def test_mcnemar_chi2_with_continuity_correction_matches_the_textbook_value():
    r = stats.mcnemar_from_counts(10, 30)
    assert r["method"] == "chi2"  # b + c = 40 >= 25
    assert r["statistic"] == pytest.approx((abs(10 - 30) - 1) ** 2 / 40) == pytest.approx(9.025)
    # chi-squared with 1 degree of freedom: P(X > x) = erfc(sqrt(x / 2))
    assert r["p_value"] == pytest.approx(math.erfc(math.sqrt(9.025 / 2)), rel=1e-9)


def test_mcnemar_exact_binomial_matches_hand_computation():
    r = stats.mcnemar_from_counts(3, 12)
    assert r["method"] == "exact"
    # two-sided: 2 * P(X <= 3), X ~ Binomial(15, 1/2) = 2 * (1 + 15 + 105 + 455) / 2**15
    assert r["p_value"] == pytest.approx(0.03515625, abs=1e-12)
    assert stats.mcnemar_from_counts(5, 5)["p_value"] == pytest.approx(1.0)
    assert stats.mcnemar_from_counts(0, 0)["p_value"] == 1.0
    assert stats.mcnemar_from_counts(3, 12, exact=False)["method"] == "chi2"


def test_mcnemar_counts_the_discordant_pairs_from_predictions():
    y = np.zeros(20, dtype=int)
    a = np.zeros(20, dtype=int)
    b = np.zeros(20, dtype=int)
    a[:3] = 1  # A wrong, B right on 3 -> c = 3
    b[3:10] = 1  # B wrong, A right on 7 -> b = 7
    a[10:12] = b[10:12] = 1  # both wrong: not discordant
    r = stats.mcnemar(y, a, b)
    assert (r["b"], r["c"]) == (7, 3)
    assert r["p_value"] == pytest.approx(stats.mcnemar_from_counts(7, 3)["p_value"])


def test_errors_say_what_was_wrong():
    with pytest.raises(ValueError, match="same length"):
        stats.accuracy_ci([0, 1], [0])
    with pytest.raises(ValueError, match="empty"):
        stats.bootstrap_ci([])
    with pytest.raises(ValueError, match="level"):
        stats.bootstrap_ci([1, 0], level=1.5)
    with pytest.raises(ValueError, match="non-negative"):
        stats.mcnemar_from_counts(-1, 3)


def test_format_p():
    assert stats.format_p(0.0000123) == "p < 0.001"
    assert stats.format_p(0.0312) == "p = 0.031"
    assert stats.format_p(float("nan")) == "p = n/a"


def test_mean_of_present_skips_missing_values_and_is_none_when_nothing_is_left():
    assert stats.mean_of_present([0.5, None, 0.75, 1.0]) == pytest.approx(0.75)
    assert stats.mean_of_present(iter([2, 4])) == 3.0  # a generator, as the benchmarks pass
    assert stats.mean_of_present([None, None]) is None and stats.mean_of_present([]) is None
