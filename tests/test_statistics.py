import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mixlib.report import statistics
from mixlib.report.statistics import (
    NO_DIFFERENCE,
    NOT_RESOLVED,
    compare_with_reference,
    correct,
    holm_adjusted,
    holm_confidences,
    mean_difference,
    mean_ratio,
)

# Student's sleep data (Cushny and Peebles 1905), R's `sleep`: extra hours of sleep of the same ten
# patients under two drugs. R's t.test(extra ~ group, paired = TRUE) prints mean difference -1.58,
# t = -4.0621, df = 9, p-value = 0.002833, 95 percent confidence interval -2.4598858 -0.7001142.
DRUG_1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0]
DRUG_2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4]


def by_seed(values):
    return pd.Series(values, index=range(len(values)), dtype=float)


def test_paired_t_interval_matches_the_textbook_sleep_example():
    test = mean_difference(by_seed(DRUG_1), by_seed(DRUG_2))
    assert test.seeds == 10
    assert test.estimate == pytest.approx(-1.58)
    assert test.p_value == pytest.approx(0.002833, abs=1e-6)
    assert test.interval(0.95) == pytest.approx((-2.4598858, -0.7001142), abs=1e-6)
    # by hand: d_bar +- t(0.975, 9) s_d / sqrt(10), s_d = 1.229995
    half_width = stats.t.ppf(0.975, 9) * 1.229995 / np.sqrt(10)
    assert test.interval(0.95) == pytest.approx((-1.58 - half_width, -1.58 + half_width), abs=1e-5)


def test_pairing_is_by_seed_not_by_position():
    values = pd.Series([0.9, 0.5], index=[7, 3])
    reference = pd.Series([0.4, 0.8, 0.1], index=[3, 7, 11])  # seed 11 has no partner
    x, r = statistics.paired_seeds(values, reference)
    assert x.tolist() == [0.5, 0.9] and r.tolist() == [0.4, 0.8]
    assert mean_difference(values, reference).seeds == 2


def test_minimum_detectable_effect_is_the_power_formula():
    test = mean_difference(by_seed(DRUG_1), by_seed(DRUG_2))
    expected = (stats.t.ppf(1 - 0.01 / 2, 9) + stats.t.ppf(0.8, 9)) * 1.229995 / np.sqrt(10)
    assert test.detectable(0.01) == pytest.approx(expected, rel=1e-5)


def test_holm_adjustment_on_the_textbook_example():
    # Holm (1979) as usually taught: p = 0.01, 0.04, 0.03, 0.005 at a = 0.05 rejects H1 and H4 only
    p = [0.01, 0.04, 0.03, 0.005]
    assert holm_adjusted(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    levels = holm_confidences(p, 0.95)
    # ranks: 0.005 -> a/4, 0.01 -> a/3, 0.03 -> a/2 not rejected; 0.04 keeps a/2
    assert levels == pytest.approx([1 - 0.05 / 3, 1 - 0.05 / 2, 1 - 0.05 / 2, 1 - 0.05 / 4])
    rejected = [pi < 1 - level for pi, level in zip(p, levels, strict=True)]
    assert rejected == [True, False, False, True]


def test_corrected_interval_agrees_with_the_adjusted_p_value():
    rng = np.random.default_rng(3)
    baseline = by_seed(rng.normal(0.6, 0.02, 5))
    tests = {
        f"c{k}": mean_difference(baseline + shift + by_seed(rng.normal(0, 0.01, 5)), baseline)
        for k, shift in enumerate((0.0, 0.01, 0.02, 0.03, 0.05))
    }
    for comparison in correct(tests).values():
        excludes_zero = comparison.low > 0 or comparison.high < 0
        assert excludes_zero == (comparison.adjusted_p < 0.05)
        assert comparison.confidence >= 0.95


def test_a_method_identical_to_the_baseline_is_never_better():
    baseline = by_seed([0.61, 0.58, 0.64])
    result = correct({"same": mean_difference(baseline.copy(), baseline)})["same"]
    assert result.verdict == NO_DIFFERENCE
    assert result.text(100) == "no detectable difference, interval [+0.00, +0.00]"


def test_methods_no_different_from_the_baseline_are_rarely_called_different():
    """A family of five configurations drawn like the baseline (same seeds, same spread): Holm keeps
    the share of families with any 'better' or 'worse' at about 5 % or below."""
    rng = np.random.default_rng(0)
    flagged = 0
    families = 100
    for _ in range(families):
        seed_effect = rng.normal(0.6, 0.03, 3)  # the split and initial weights of each seed
        baseline = by_seed(seed_effect + rng.normal(0, 0.01, 3))
        tests = {
            k: mean_difference(by_seed(seed_effect + rng.normal(0, 0.01, 3)), baseline) for k in range(5)
        }
        flagged += any(c.verdict != NO_DIFFERENCE for c in correct(tests).values())
    assert flagged / families <= 0.08


def test_fewer_than_two_paired_seeds_is_not_resolved_and_leaves_the_family():
    tests = {
        "one": mean_difference(by_seed([0.9]), by_seed([0.1])),
        "two": mean_difference(by_seed([0.80, 0.81]), by_seed([0.60, 0.62])),
    }
    results = correct(tests)
    assert results["one"].verdict == NOT_RESOLVED
    assert results["one"].text().startswith("not resolved")
    assert results["two"].confidence == pytest.approx(0.95)  # a family of one
    assert results["two"].verdict == "better"


def test_direction_decides_the_words():
    lower = mean_difference(by_seed([0.05, 0.06, 0.05]), by_seed([0.10, 0.12, 0.11]))
    assert correct({"x": lower}, direction="lower")["x"].verdict == "better"
    assert correct({"x": lower}, direction="higher")["x"].verdict == "worse"
    assert correct({"x": lower}, direction=None)["x"].verdict == "lower"
    with pytest.raises(ValueError, match="direction"):
        correct({"x": lower}, direction="up")


def test_ratio_is_a_geometric_mean_with_a_t_interval_on_the_log_scale():
    reference = by_seed([10.0, 12.0, 11.0, 13.0])
    doubled = mean_ratio(reference * 2, reference)
    assert doubled.estimate == pytest.approx(2.0) and doubled.null == 1.0
    assert doubled.interval(0.95) == pytest.approx((2.0, 2.0)) and doubled.p_value == 0.0
    values = by_seed([10.0, 14.0, 9.0, 13.0])
    noisy = mean_ratio(values, reference)
    logs = np.log(values / reference)
    assert noisy.estimate == pytest.approx(np.exp(logs.mean()))
    textbook = stats.ttest_1samp(logs, 0.0).confidence_interval(0.95)
    assert noisy.interval(0.95) == pytest.approx((np.exp(textbook.low), np.exp(textbook.high)))
    with pytest.raises(ValueError, match="positive"):
        mean_ratio(by_seed([0.0, 1.0]), by_seed([1.0, 1.0]))


def test_two_seeds_on_one_side_are_not_enough_for_a_slower_verdict():
    """Both seeds slower by a few percent: a bootstrap would call it certain, the t-interval does not."""
    result = correct({"x": mean_ratio(by_seed([10.5, 12.1]), by_seed([10.0, 12.0]))}, "lower")["x"]
    assert result.verdict == NO_DIFFERENCE and result.low < 1.0 < result.high


def test_compare_with_reference_reads_runs_in_long_form():
    runs = pd.DataFrame(
        {
            "configuration": ["baseline"] * 3 + ["mixup"] * 3,
            "seed": [0, 1, 2] * 2,
            "accuracy": [0.60, 0.62, 0.58, 0.70, 0.71, 0.69],
        }
    )
    table = compare_with_reference(runs, "accuracy", "baseline")
    assert list(table.index) == ["mixup"]
    assert table.loc["mixup", "estimate"] == pytest.approx(0.10, abs=1e-9)
    assert table.loc["mixup", "verdict"] == "better"
    with pytest.raises(ValueError, match="reference configuration 'vanilla'"):
        compare_with_reference(runs, "accuracy", "vanilla")
