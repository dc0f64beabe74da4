import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mixlib.chapters.statistics import (
    NO_DIFFERENCE,
    NOT_RESOLVED,
    TOO_FEW_SEEDS,
    FixedReference,
    PairedTest,
    compare_with_reference,
    correct,
    detectable_effect,
    holm_adjusted,
    holm_confidences,
    image_noise,
    pooled_seed_variance,
)


def long_form(table: dict[str, list[float]], metric: str = "accuracy") -> pd.DataFrame:
    """Runs in long form from {configuration: [score of seed 0, seed 1, ...]}."""
    return pd.DataFrame(
        [
            {"configuration": name, "seed": seed, metric: value}
            for name, values in table.items()
            for seed, value in enumerate(values)
        ]
    )


def test_holm_adjustment_on_the_textbook_example():
    # Holm (1979) as usually taught: p = 0.01, 0.04, 0.03, 0.005 at a = 0.05 rejects H1 and H4 only
    p = [0.01, 0.04, 0.03, 0.005]
    assert holm_adjusted(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    levels = holm_confidences(p, 0.95)
    assert levels == pytest.approx([1 - 0.05 / 3, 1 - 0.05 / 2, 1 - 0.05 / 2, 1 - 0.05 / 4])
    rejected = [pi < 1 - level for pi, level in zip(p, levels, strict=True)]
    assert rejected == [True, False, False, True]


def test_the_seed_part_is_the_two_way_residual_variance():
    # scores of 3 configurations x 3 seeds; by hand: residuals of the additive model, SS / ((3-1)(3-1))
    table = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [2.0, 2.0, 5.0], "c": [0.0, 1.0, 1.0]})
    values = table.to_numpy()
    residual = values - values.mean(0) - values.mean(1, keepdims=True) + values.mean()
    assert pooled_seed_variance(table, paired=True) == pytest.approx(((residual**2).sum() / 4, 4.0))
    # against a fixed reference the seed's shared part does not cancel: within-configuration variance
    within = np.mean([np.var(values[:, k], ddof=1) for k in range(3)])
    assert pooled_seed_variance(table, paired=False) == pytest.approx((within, 6.0))


def test_seed_only_interval_is_the_pooled_t_interval():
    runs = long_form({"baseline": [0.60, 0.62, 0.58], "a": [0.66, 0.65, 0.63], "b": [0.61, 0.60, 0.60]})
    table = compare_with_reference(runs, "accuracy", "baseline")
    variance, df = pooled_seed_variance(
        runs.pivot(index="seed", columns="configuration", values="accuracy"), True
    )
    difference = np.array([0.06, 0.03, 0.05])
    half = stats.t.ppf(1 - (1 - table.loc["a", "confidence"]) / 2, df) * np.sqrt(2 * variance / 3)
    assert (table.loc["a", "low"], table.loc["a", "high"]) == pytest.approx(
        (difference.mean() - half, difference.mean() + half)
    )


def test_equal_differences_on_every_seed_are_never_certain():
    # two seeds, each exactly one of 200 test images better: the old test said p = 0 and [+0.5, +0.5]
    runs = long_form({"baseline": [0.600, 0.650], "a": [0.605, 0.655]})
    flips = np.zeros((2, 200))
    resampled = {}
    counts = np.random.default_rng(0).multinomial(200, np.full(200, 1 / 200), size=500)
    for seed in range(2):
        base = (np.arange(200) < 120 + 10 * seed).astype(float)
        better = base.copy()
        better[150 + seed] = 1.0  # another image on each seed
        flips[seed] = better - base
        resampled[("baseline", seed)] = counts @ base / 200
        resampled[("a", seed)] = counts @ better / 200
    table = compare_with_reference(runs, "accuracy", "baseline", "higher", resampled, 200, (1 / 200) ** 2)
    row = table.loc["a"]
    assert row["high"] - row["low"] > 0.01
    assert row["p_value"] > 0
    assert row["verdict"] == NO_DIFFERENCE


def test_image_noise_separates_shared_from_per_seed_noise():
    generator = np.random.default_rng(1)
    shared = generator.normal(0, 2.0, 20_000)
    draws = np.stack([shared + generator.normal(0, 1.0, 20_000) for _ in range(3)])
    within, between = image_noise(draws)
    assert within == pytest.approx(5.0, rel=0.05)
    assert between == pytest.approx(4.0, rel=0.05)


def test_fewer_than_two_seeds_is_not_resolved_and_says_why():
    runs = long_form({"baseline": [0.6], "a": [0.7]})
    row = compare_with_reference(runs, "accuracy", "baseline").loc["a"]
    assert row["verdict"] == NOT_RESOLVED and row["reason"] == TOO_FEW_SEEDS
    assert np.isnan(row["low"]) and np.isnan(row["p_value"])


def test_a_configuration_identical_to_the_baseline_is_never_better():
    runs = long_form({"baseline": [0.61, 0.58, 0.64], "same": [0.61, 0.58, 0.64], "b": [0.6, 0.6, 0.6]})
    row = compare_with_reference(runs, "accuracy", "baseline").loc["same"]
    assert row["verdict"] == NO_DIFFERENCE and row["estimate"] == 0.0


def test_corrected_interval_agrees_with_the_adjusted_p_value():
    generator = np.random.default_rng(3)
    baseline = generator.normal(0.6, 0.02, 5)
    runs = long_form(
        {"baseline": list(baseline)}
        | {
            f"c{k}": list(baseline + shift + generator.normal(0, 0.01, 5))
            for k, shift in enumerate((0, 0.02, 0.05))
        }
    )
    table = compare_with_reference(runs, "accuracy", "baseline")
    for _, row in table.iterrows():
        assert (row["low"] > 0 or row["high"] < 0) == (row["adjusted_p"] < 0.05)
        assert row["confidence"] >= 0.95


@pytest.mark.parametrize(
    ("direction", "up", "down"),
    [("higher", "better", "worse"), ("lower", "worse", "better"), (None, "higher", "lower")],
)
def test_direction_decides_the_words(direction, up, down):
    runs = long_form({"baseline": [0.5, 0.52, 0.51], "up": [0.7, 0.73, 0.71], "down": [0.3, 0.31, 0.33]})
    table = compare_with_reference(runs, "accuracy", "baseline", direction)
    assert table.loc["up", "verdict"] == up and table.loc["down", "verdict"] == down


def test_detectable_difference_has_the_stated_power():
    test = PairedTest(0.0, seed_variance=4e-4, seed_df=6, test_variance=1e-4, test_df=499, seeds=3)
    alpha = 0.05 / 4
    effect = test.detectable(alpha)
    noncentrality = effect / np.sqrt(test.variance)
    critical = stats.t.ppf(1 - alpha / 2, test.df)
    power = stats.nct.sf(critical, test.df, noncentrality) + stats.nct.cdf(-critical, test.df, noncentrality)
    assert power == pytest.approx(0.8, abs=1e-3)
    # the normal approximation the old page used understates it at few degrees of freedom
    assert effect > (stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(0.8)) * np.sqrt(test.variance)
    assert detectable_effect(alpha, 1e9) == pytest.approx(
        stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(0.8), rel=1e-3
    )


def test_ratio_is_a_geometric_mean_compared_on_the_log_scale():
    runs = long_form(
        {"baseline": [10.0, 12.0, 11.0], "slow": [20.0, 24.5, 21.5], "same": [10.1, 11.9, 11.0]}, "seconds"
    )
    table = compare_with_reference(runs, "seconds", "baseline", "lower", log_scale=True)
    expected = np.exp(np.mean(np.log([20 / 10, 24.5 / 12, 21.5 / 11])))
    assert table.loc["slow", "estimate"] == pytest.approx(expected)
    assert table.loc["slow", "verdict"] == "worse"
    assert table.loc["same", "low"] < 1 < table.loc["same", "high"]


def test_a_fixed_reference_is_compared_with_each_configuration():
    runs = long_form({"a": [60.0, 62.0, 61.0], "b": [40.0, 41.0, 43.0]}, "max_box_acc_v2")
    table = compare_with_reference(runs, "max_box_acc_v2", FixedReference("centre", 50.0))
    assert list(table.index) == ["a", "b"]
    assert table.loc["a", "estimate"] == pytest.approx(11.0) and table.loc["a", "verdict"] == "better"
    assert table.loc["b", "verdict"] == "worse"


def test_bad_direction_and_confidence_are_refused():
    with pytest.raises(ValueError, match="direction"):
        correct({}, "up")
    with pytest.raises(ValueError, match="confidence"):
        correct({}, "higher", 1.5)
