"""Paired comparisons with a reference, the one statistics module every chapter of the book uses.

Runs of different configurations with the same seed share the train/validation/test split and the
initial weights, so the unit of comparison is the *per-seed difference* d_i = x_i - r_i of a
configuration's score x and its reference's score r on seed i (a paired design). For a score that is
a mean over seeds the estimate is the mean difference with the textbook 95 % t-interval

    d_bar +- t(1 - a/2, n - 1) * s_d / sqrt(n)        (scipy.stats.ttest_1samp on the d_i).

A ratio (the epoch time of a configuration over the baseline's) is not a mean, so it is compared on
the log scale, where its estimate is the mean of the per-seed log ratios, and the interval is
exponentiated (`mean_ratio`). A bootstrap is not used: with the 2-5 seeds of a profile a percentile
bootstrap cannot reach 95 % (see `mean_ratio`).

The configurations of a profile are a family of tests against the same baseline, so the confidence
of each interval is Holm-corrected (Holm 1979, "A simple sequentially rejective multiple test
procedure"): the test with the i-th smallest p-value of m gets level 1 - a/(m - i + 1), and once one
test is not rejected every later one keeps that test's level. A corrected interval then excludes the
null value exactly when Holm's adjusted p-value is below a, and the verdict words come from it:
"better" / "worse" (or "higher" / "lower" for a score without a good direction) when the interval
excludes no difference, "no detectable difference" when it does not, and "not resolved" with fewer
than two paired seeds.

The smallest detectable difference reported with each comparison is the power-based minimum
detectable effect of a paired t-test (Bloom 1995, "Minimum detectable effects", Evaluation Review
19(5)): (t(1 - a'/2, n - 1) + t(power, n - 1)) * s_d / sqrt(n) with power 0.8 and a' = a/m, the
level of Holm's first step, i.e. the true difference this run would call with 80 % probability even
as the family's most significant test. For a ratio it is that difference on the log scale,
exponentiated (a factor).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

CONFIDENCE = 0.95
POWER = 0.8  # of the minimum detectable effect
MIN_PAIRED_SEEDS = 2
CONSTANT_TOLERANCE = 1e-9  # per-seed differences closer than this are equal (floating-point rounding)
DIRECTIONS = ("higher", "lower", None)  # which way a score is better; None: neither
NOT_RESOLVED = "not resolved"
DETECTABLE_RULE = (
    "the median over configurations of the difference that a paired t-test at Holm's strictest level "
    "would detect with 80 % power"
)
NO_DIFFERENCE = "no detectable difference"


@dataclass(frozen=True)
class PairedTest:
    """One configuration against its reference over the seeds both have.

    `interval(confidence)` and `detectable(alpha)` give the interval of the estimate and the smallest
    detectable difference at any level; `null` is the estimate's value under no difference.
    """

    estimate: float
    p_value: float
    seeds: int
    null: float
    interval: Callable[[float], tuple[float, float]]
    detectable: Callable[[float], float]


@dataclass(frozen=True)
class Comparison:
    """A paired test after the family's Holm correction, with its verdict."""

    estimate: float
    low: float
    high: float
    confidence: float  # the corrected level of [low, high]
    p_value: float
    adjusted_p: float  # Holm
    seeds: int
    detectable: float
    verdict: str  # better / worse / higher / lower / no detectable difference / not resolved

    def text(self, scale: float = 1.0, digits: int = 2, unit: str = "") -> str:
        """The verdict with its interval, e.g. 'better, +3.10 [+1.20, +5.00] pts'."""
        if self.verdict == NOT_RESOLVED:
            return f"{NOT_RESOLVED} (fewer than {MIN_PAIRED_SEEDS} paired seeds)"
        low, high = (f"{v * scale:+.{digits}f}" for v in (self.low, self.high))
        if self.verdict == NO_DIFFERENCE:
            return f"{NO_DIFFERENCE}, interval [{low}, {high}]{unit}"
        return f"{self.verdict}, {self.estimate * scale:+.{digits}f} [{low}, {high}]{unit}"


# --------------------------------------------------------------------------- one paired test


def paired_seeds(values: pd.Series, reference: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """The two score series (indexed by seed) on the seeds where both have a value, in seed order."""
    both = pd.concat({"values": values, "reference": reference}, axis=1).dropna().sort_index()
    return both["values"].to_numpy(float), both["reference"].to_numpy(float)


def mean_difference(values: pd.Series, reference: pd.Series) -> PairedTest:
    """Paired t-test of the mean per-seed difference `values - reference` (both indexed by seed)."""
    x, r = paired_seeds(values, reference)
    differences = x - r
    n = len(differences)
    mean = float(differences.mean()) if n else float("nan")
    spread = float(differences.std(ddof=1)) if n >= MIN_PAIRED_SEEDS else float("nan")
    # every seed moved by the same amount (up to rounding): scipy's t statistic would be 0/0 or inf
    constant = n >= MIN_PAIRED_SEEDS and np.ptp(differences) <= CONSTANT_TOLERANCE * max(1.0, abs(mean))
    if constant:
        spread = 0.0
    textbook = stats.ttest_1samp(differences, 0.0) if n >= MIN_PAIRED_SEEDS and not constant else None
    if n < MIN_PAIRED_SEEDS:
        p_value = float("nan")
    elif textbook is None:
        p_value = 1.0 if mean == 0.0 else 0.0
    else:
        p_value = float(textbook.pvalue)

    def interval(confidence: float) -> tuple[float, float]:
        if n < MIN_PAIRED_SEEDS:
            return float("nan"), float("nan")
        if textbook is None:
            return mean, mean
        result = textbook.confidence_interval(confidence)
        return float(result.low), float(result.high)

    def detectable(alpha: float) -> float:
        if n < MIN_PAIRED_SEEDS:
            return float("nan")
        quantiles = stats.t.ppf(1 - alpha / 2, n - 1) + stats.t.ppf(POWER, n - 1)
        return float(quantiles * spread / np.sqrt(n))

    return PairedTest(mean, p_value, n, 0.0, interval, detectable)


def mean_ratio(values: pd.Series, reference: pd.Series) -> PairedTest:
    """Geometric mean over paired seeds of `values / reference` (e.g. epoch times), with the paired
    t-interval of the mean log ratio, exponentiated; no difference is a ratio of 1.

    A ratio is not a mean, but its logarithm's average is, so the t-interval applies on the log scale.
    A percentile bootstrap of the ratio of means would not do with a handful of seeds: whenever all n
    seeds fall on one side of 1 (probability 2^(1 - n) with no difference: 50 % at 2 seeds, 6 % at 5)
    every resample does too, and the bootstrap calls the difference certain.
    """
    x, r = paired_seeds(values, reference)
    if (x <= 0).any() or (r <= 0).any():
        raise ValueError("mean_ratio needs positive values (times, sizes); got zero or negative ones")
    on_log_scale = mean_difference(pd.Series(np.log(x)), pd.Series(np.log(r)))

    def interval(confidence: float) -> tuple[float, float]:
        low, high = on_log_scale.interval(confidence)
        return float(np.exp(low)), float(np.exp(high))

    return PairedTest(
        estimate=float(np.exp(on_log_scale.estimate)),
        p_value=on_log_scale.p_value,
        seeds=on_log_scale.seeds,
        null=1.0,
        interval=interval,
        detectable=lambda alpha: float(np.exp(on_log_scale.detectable(alpha))),
    )


# --------------------------------------------------------------------------- a family of tests


def holm_adjusted(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values: max over j <= i of min(1, (m - j + 1) p_(j)), in input order.

    Written here because scipy has no Holm correction (only false_discovery_control, for BH/BY), and
    statsmodels would be a dependency for ten lines.
    """
    p = np.asarray(p_values, float)
    order = np.argsort(p, kind="stable")
    m = len(p)
    stepped = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.maximum.accumulate(stepped)
    return adjusted


def holm_confidences(p_values: Sequence[float], confidence: float = CONFIDENCE) -> np.ndarray:
    """The corrected confidence level of each test's interval (see the module docstring), in input order."""
    p = np.asarray(p_values, float)
    alpha, m = 1 - confidence, len(p)
    order = np.argsort(p, kind="stable")
    levels = np.empty(m)
    for rank, index in enumerate(order):
        step_alpha = alpha / (m - rank)
        if p[index] >= step_alpha:  # not rejected: this and every later test keep this level
            levels[order[rank:]] = 1 - step_alpha
            return levels
        levels[index] = 1 - step_alpha
    return levels


def correct(
    tests: Mapping[Hashable, PairedTest], direction: str | None = "higher", confidence: float = CONFIDENCE
) -> dict[Hashable, Comparison]:
    """Holm-correct a family of paired tests and word each verdict; tests with fewer than
    MIN_PAIRED_SEEDS seeds are 'not resolved' and do not count in the family."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    resolved = [key for key, test in tests.items() if test.seeds >= MIN_PAIRED_SEEDS]
    p_values = [tests[key].p_value for key in resolved]
    levels = dict(zip(resolved, holm_confidences(p_values, confidence), strict=True))
    adjusted = dict(zip(resolved, holm_adjusted(p_values), strict=True))
    first_step_alpha = (1 - confidence) / max(len(resolved), 1)
    results = {}
    for key, test in tests.items():
        if key not in levels:
            missing = float("nan")
            results[key] = Comparison(
                test.estimate, missing, missing, missing, missing, missing, test.seeds, missing, NOT_RESOLVED
            )
            continue
        low, high = test.interval(levels[key])
        results[key] = Comparison(
            estimate=test.estimate,
            low=low,
            high=high,
            confidence=levels[key],
            p_value=test.p_value,
            adjusted_p=adjusted[key],
            seeds=test.seeds,
            detectable=test.detectable(first_step_alpha),
            verdict=verdict(low, high, test.null, direction),
        )
    return results


def verdict(low: float, high: float, null: float, direction: str | None) -> str:
    """Verdict words from a (corrected) interval of the estimate and its value under no difference."""
    if low > null:
        return {"higher": "better", "lower": "worse", None: "higher"}[direction]
    if high < null:
        return {"higher": "worse", "lower": "better", None: "lower"}[direction]
    return NO_DIFFERENCE


def compare_with_reference(
    runs: pd.DataFrame,
    metric: str,
    reference: str,
    direction: str | None = "higher",
    test: Callable[[pd.Series, pd.Series], PairedTest] = mean_difference,
    confidence: float = CONFIDENCE,
) -> pd.DataFrame:
    """Every other configuration of `runs` (one row per configuration and seed) against `reference`,
    paired by seed and Holm-corrected across the configurations; one row per configuration, in order."""
    if reference not in set(runs["configuration"]):
        raise ValueError(f"reference configuration {reference!r} has no runs")
    wide = runs.pivot(index="seed", columns="configuration", values=metric)
    names = [n for n in dict.fromkeys(runs["configuration"]) if n != reference]
    tests = {name: test(wide[name], wide[reference]) for name in names}
    return comparison_frame(correct(tests, direction, confidence))


def comparison_frame(comparisons: Mapping[Hashable, Comparison]) -> pd.DataFrame:
    return pd.DataFrame(
        [vars(c) for c in comparisons.values()],
        index=list(comparisons),
        columns=list(Comparison.__annotations__),
    )


def comparison_texts(table: pd.DataFrame, scale: float = 1.0, digits: int = 2, unit: str = "") -> pd.Series:
    """`Comparison.text` of every row of a `comparison_frame`."""
    return pd.Series(
        [Comparison(**row).text(scale, digits, unit) for _, row in table.iterrows()],
        index=table.index,
        dtype=object,
    )


def smallest_detectable(detectable: pd.Series) -> float:
    """The run's smallest detectable difference for one metric: the median over its comparisons."""
    values = detectable.dropna()
    return float(values.median()) if len(values) else float("nan")


# --------------------------------------------------------------------------- description over seeds


def per_configuration(runs: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """Seeds, method, and mean and sample std of each metric per configuration, in the runs' order."""
    grouped = runs.groupby("configuration", sort=False)
    table = grouped[list(metrics)].agg(["mean", "std"])
    table.columns = [f"{metric}_{stat}" for metric, stat in table.columns]
    table.insert(0, "seeds", grouped.size())
    table.insert(0, "method", grouped["method"].first())
    return table


def best_on_validation(runs: pd.DataFrame) -> str:
    """The configuration with the highest mean final validation accuracy over seeds (the first of a
    tie): every choice the book makes is made on validation, never on test results."""
    return str(runs.groupby("configuration", sort=False)["val_accuracy"].mean().idxmax())


def describe(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean, sample standard deviation (NaN for a single value) and count of each column of a frame
    with one row per seed."""
    return pd.DataFrame({"mean": frame.mean(), "std": frame.std(ddof=1), "seeds": frame.count()})


def mean_std_text(mean: float, std: float, digits: int = 2, scale: float = 1.0) -> str:
    """'mean ± std' (the std left out where there is none, '–' without a value)."""
    if not np.isfinite(mean):
        return "–"
    if not np.isfinite(std):
        return f"{mean * scale:.{digits}f}"
    return f"{mean * scale:.{digits}f} ± {std * scale:.{digits}f}"
