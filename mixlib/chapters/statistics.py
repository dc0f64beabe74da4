"""Paired comparisons with a reference, the one statistics module every chapter of the book uses.

What is compared. Every run of a profile is scored on the same test images, and runs of different
configurations with the same seed share the initial weights, so a comparison is paired twice: by
seed and by test image. The estimate of a configuration's effect on a score is the mean over seeds of
the per-seed difference D_s = M(c, s) - M(r, s) from its reference r (a ratio, such as a step time,
is compared on the log scale and exponentiated).

Two sources of noise (Bouthillier et al. 2021, "Accounting for variance in machine learning
benchmarks", MLSys): another training seed moves a score (weights, batch order, mixing draws), and so
would another sample of test images of the same size. The variance of the estimate is

    V = V_seed + V_test

- V_seed = 2 s^2 / S, with s^2 the residual variance of the two-way table of scores (configurations x
  seeds, an additive model M = configuration + seed + residual) pooled over every configuration of the
  family, on (K - 1)(S - 1) degrees of freedom: the randomised-block analysis behind Dunnett's
  many-to-one comparisons (Dunnett 1955, JASA 50). Pooling is what makes 2-3 seeds usable: a
  configuration's own variance from two seeds has one degree of freedom, whose t quantile at Holm's
  level for 16 configurations is about 200. Pooling assumes every configuration's seed noise is alike
  (the results chapter shows each configuration's spread). Against a reference without seed noise
  (the centre guess), V_seed = s_w^2 / S with s_w^2 the pooled within-configuration variance.
  V_seed is never below what per-image flips alone cause (v_w - c_b below, divided by S): the seed
  variance of D_s holds that part plus a run-level part that cannot be negative.
- V_test, the test-sample part: the test images are resampled with replacement B times, one resample
  for every configuration and seed so the pairing survives (a paired bootstrap), and each run's score
  recomputed from its per-image predictions (`mixlib.chapters.image_scores`). With D*_s the resampled
  differences, v_w is the mean over seeds of Var(D*_s) and c_b the mean over pairs of seeds of
  Cov(D*_s, D*_t): the part of the image noise the seeds share, which averaging over seeds cannot
  remove (Var of a crossed seed x image design: s_a^2/S + s_b^2/N + s_e^2/(SN), and c_b estimates
  s_b^2/N). Seeds are not resampled: a bootstrap over 2-3 seeds takes at most S^S values and shrinks
  their variance by (S - 1)/S; they enter through V_seed instead.

No finite data gives a zero-width interval: V is at least `floor`, the variance one test image's
worth of score gives a resampled mean (range / N)^2, and a comparison with no variation at all is
"not resolved", never certain. The interval is estimate +- t(df) sqrt(V) with Satterthwaite's degrees
of freedom (Satterthwaite 1946) over the two parts.

The configurations of a profile are a family of tests against the same reference, so each interval's
confidence is Holm-corrected (Holm 1979): the test with the i-th smallest p-value of m gets level
1 - a/(m - i + 1), and once one test is not rejected every later one keeps that level; a corrected
interval excludes the null value exactly when Holm's adjusted p-value is below a. Verdict words:
"better" / "worse" (or "higher" / "lower" for a score without a good direction) when the corrected
interval excludes no difference, "no detectable difference" when it does not, "not resolved" (with
the reason) when it cannot be computed. A non-significant comparison is never read as "no effect":
the detectable difference says how large an effect could have gone unseen.

The detectable difference is the true difference this run would call with 80 % power at Holm's
strictest level a/m, from the noncentral t distribution (scipy.stats.nct) with the run's own variance
estimate: an estimate from few seeds, and said to be one wherever it is shown.
"""

from __future__ import annotations

import functools
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, stats

CONFIDENCE = 0.95
POWER = 0.8  # of the detectable difference
MIN_PAIRED_SEEDS = 2
DIRECTIONS = ("higher", "lower", None)  # which way a score is better; None: neither
NOT_RESOLVED = "not resolved"
NO_DIFFERENCE = "no detectable difference"
ROUNDING_VARIANCE = 1e-20  # a variance this small is floating-point rounding of equal scores, not noise
NORMAL_DF = 1e4  # above this many degrees of freedom the t distributions are taken as normal
DETECTABLE_RULE = (
    "the true difference this run would call with 80 % power at Holm's strictest level, estimated "
    "from its own few seeds and test images"
)
TOO_FEW_SEEDS = f"fewer than {MIN_PAIRED_SEEDS} paired seeds: seed noise cannot be estimated"
NO_VARIATION = "no variation between seeds or test images to estimate noise from"


@dataclass(frozen=True)
class PairedTest:
    """One configuration against its reference: the estimate, the variance of its two parts and
    their degrees of freedom (see the module docstring)."""

    estimate: float
    seed_variance: float
    seed_df: float
    test_variance: float
    test_df: float
    seeds: int
    null: float = 0.0
    log_scale: bool = False
    reason: str = ""  # why the test cannot be made; empty when it can

    @property
    def variance(self) -> float:
        return self.seed_variance + self.test_variance

    @property
    def df(self) -> float:
        """Satterthwaite's degrees of freedom of the summed variance."""
        parts = [
            (v, df) for v, df in ((self.seed_variance, self.seed_df), (self.test_variance, self.test_df))
        ]
        denominator = sum(v**2 / df for v, df in parts if v > 0)
        return self.variance**2 / denominator if denominator > 0 else float("inf")

    @property
    def resolved(self) -> bool:
        return not self.reason

    @property
    def p_value(self) -> float:
        if not self.resolved:
            return float("nan")
        statistic = abs(self.estimate - self.log_null) / np.sqrt(self.variance)
        return float(2 * stats.t.sf(statistic, self.df))

    @property
    def log_null(self) -> float:
        return np.log(self.null) if self.log_scale else self.null

    def interval(self, confidence: float) -> tuple[float, float]:
        if not self.resolved:
            return float("nan"), float("nan")
        half = stats.t.ppf(1 - (1 - confidence) / 2, self.df) * np.sqrt(self.variance)
        return self.shown(self.estimate - half), self.shown(self.estimate + half)

    def detectable(self, alpha: float) -> float:
        """The true difference found with probability POWER by a two-sided test at level `alpha`."""
        if not self.resolved:
            return float("nan")
        # three significant digits of df move the effect by under 0.1 % and let the solutions be cached
        effect = detectable_effect(alpha, float(f"{self.df:.3g}")) * np.sqrt(self.variance)
        return float(np.exp(effect)) if self.log_scale else float(effect)

    def shown(self, value: float) -> float:
        return float(np.exp(value)) if self.log_scale else float(value)


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
    reason: str = ""  # why a comparison is not resolved

    def text(self, scale: float = 1.0, digits: int = 2, unit: str = "") -> str:
        """The verdict with its interval, e.g. 'better, +3.10 [+1.20, +5.00] pts'."""
        if self.verdict == NOT_RESOLVED:
            return f"{NOT_RESOLVED} ({self.reason})"
        low, high = (f"{v * scale:+.{digits}f}" for v in (self.low, self.high))
        if self.verdict == NO_DIFFERENCE:
            return f"{NO_DIFFERENCE}, interval [{low}, {high}]{unit}"
        return f"{self.verdict}, {self.estimate * scale:+.{digits}f} [{low}, {high}]{unit}"


@functools.cache
def detectable_effect(alpha: float, df: float, power: float = POWER) -> float:
    """The noncentrality (effect / standard error) at which a two-sided t-test at level `alpha` on
    `df` degrees of freedom rejects with probability `power`."""
    critical = stats.t.ppf(1 - alpha / 2, df)

    def shortfall(noncentrality: float) -> float:
        if (
            df > NORMAL_DF
        ):  # scipy's noncentral t fails at infinite degrees of freedom; the normal is its limit
            return stats.norm.sf(critical - noncentrality) + stats.norm.cdf(-critical - noncentrality) - power
        # the far tail's cdf comes back NaN where it is below 1e-20: it adds nothing to the power
        far_tail = np.nan_to_num(stats.nct.cdf(-critical, df, noncentrality))
        return stats.nct.sf(critical, df, noncentrality) + far_tail - power

    return float(optimize.brentq(shortfall, 0.0, critical + 100.0, xtol=1e-6))


# --------------------------------------------------------------------------- the two noise parts


@dataclass(frozen=True)
class FixedReference:
    """A reference without seed noise, such as the centre-Gaussian guess that uses no model: its score
    on the test images and, when known, on each of their resamples (one value per resample)."""

    name: str
    score: float
    resampled: np.ndarray | None = None


def pooled_seed_variance(table: pd.DataFrame, paired: bool) -> tuple[float, float]:
    """(variance, degrees of freedom) of one run's seed noise, pooled over the configurations (the
    columns of a complete seeds x configurations table): the two-way residual when the comparisons are
    paired by seed with another configuration (the seed's shared part cancels), else the within-
    configuration variance (against a fixed reference nothing cancels)."""
    values = table.to_numpy(float)
    seeds, configurations = values.shape
    if paired:
        residual = values - values.mean(0) - values.mean(1, keepdims=True) + values.mean()
        df = (seeds - 1) * (configurations - 1)
    else:
        residual = values - values.mean(0)
        df = (seeds - 1) * configurations
    return (float((residual**2).sum() / df), float(df)) if df > 0 else (float("nan"), 0.0)


def image_noise(differences: np.ndarray) -> tuple[float, float]:
    """(v_w, c_b) of the module docstring from resampled per-seed differences, shape (S, B): the mean
    variance of one seed's difference over test-image resamples, and the mean covariance of two seeds'
    (the part of the image noise that averaging over seeds keeps; clipped at 0)."""
    covariance = np.atleast_2d(np.cov(differences))
    seeds = len(differences)
    within = float(np.mean(np.diag(covariance)))
    if seeds < 2:
        return within, within
    shared = (covariance.sum() - np.trace(covariance)) / (seeds * (seeds - 1))
    return within, float(max(shared, 0.0))


def paired_test(
    differences: np.ndarray,
    seed_noise: tuple[float, float],
    resampled: np.ndarray | None,
    images: int,
    floor: float,
    log_scale: bool = False,
) -> PairedTest:
    """One comparison from its per-seed differences (S,), the family's pooled seed variance of one
    difference with its degrees of freedom, and the resampled differences (S, B) when the score has a
    per-image form."""
    seeds = len(differences)
    null = 1.0 if log_scale else 0.0
    estimate = float(np.mean(differences)) if seeds else float("nan")
    if seeds < MIN_PAIRED_SEEDS or not np.isfinite(seed_noise[0]):
        return PairedTest(estimate, np.nan, 0, np.nan, 0, seeds, null, log_scale, TOO_FEW_SEEDS)
    seed_variance, seed_df = seed_noise[0] / seeds, seed_noise[1]
    test_variance, test_df = 0.0, float(max(images - 1, 1))
    if resampled is not None:
        within, shared = image_noise(resampled)
        if (within - shared) / seeds > seed_variance:  # flips alone are noisier than the pooled estimate
            seed_variance, seed_df = (within - shared) / seeds, test_df
        test_variance = shared
    if seed_variance + test_variance < floor:
        test_variance, test_df = floor - seed_variance, float("inf")
    if seed_variance + test_variance <= ROUNDING_VARIANCE:
        return PairedTest(estimate, 0.0, seed_df, 0.0, test_df, seeds, null, log_scale, NO_VARIATION)
    return PairedTest(estimate, seed_variance, seed_df, test_variance, test_df, seeds, null, log_scale)


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
    """Holm-correct a family of paired tests and word each verdict; tests that cannot be made are
    'not resolved' (with their reason) and do not count in the family."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    resolved = [key for key, test in tests.items() if test.resolved]
    p_values = [tests[key].p_value for key in resolved]
    levels = dict(zip(resolved, holm_confidences(p_values, confidence), strict=True))
    adjusted = dict(zip(resolved, holm_adjusted(p_values), strict=True))
    first_step_alpha = (1 - confidence) / max(len(resolved), 1)
    results = {}
    for key, test in tests.items():
        estimate = test.shown(test.estimate)
        if key not in levels:
            missing = float("nan")
            results[key] = Comparison(
                estimate,
                missing,
                missing,
                missing,
                missing,
                missing,
                test.seeds,
                missing,
                NOT_RESOLVED,
                test.reason,
            )
            continue
        low, high = test.interval(levels[key])
        results[key] = Comparison(
            estimate=estimate,
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


# --------------------------------------------------------------------------- runs against a reference

Resampled = Mapping[tuple[str, int], np.ndarray]  # (configuration, seed) -> the score on each resample


def compare_pairs(
    runs: pd.DataFrame,
    metric: str,
    pairs: Sequence[tuple[str, str | FixedReference]],
    direction: str | None = "higher",
    resampled: Resampled | None = None,
    images: int = 0,
    floor: float = 0.0,
    log_scale: bool = False,
    confidence: float = CONFIDENCE,
) -> dict[tuple[str, str], Comparison]:
    """Each (configuration, reference) pair of `runs` (one row per configuration and seed) on `metric`,
    one Holm family; keyed by (configuration, reference name).

    `resampled` holds the metric on the same test-image resamples for every run (and a fixed
    reference carries its own), `images` the test images behind them and `floor` the smallest variance
    of one comparison; without `resampled` only seed noise is counted (for scores with no per-image
    form, which the chapters say).
    """
    wide = runs.pivot(index="seed", columns="configuration", values=metric).astype(float)
    if log_scale:
        if (wide <= 0).any().any():
            raise ValueError(f"{metric} needs positive values on the log scale; got zero or negative ones")
        wide = np.log(wide)
    named = [name for name, _ in pairs] + [ref for _, ref in pairs if isinstance(ref, str)]
    scored = wide[[n for n in dict.fromkeys(named) if wide[n].notna().any()]]
    # the seed noise is pooled over the configurations that have every seed; a configuration that
    # misses some is still compared on the seeds it shares with its reference
    complete = scored.loc[:, scored.notna().all()]
    paired = any(isinstance(ref, str) for _, ref in pairs)
    seed_noise = pooled_seed_variance(complete, paired) if len(complete.columns) else (np.nan, 0.0)
    tests = {}
    for name, reference in pairs:
        key = (name, reference if isinstance(reference, str) else reference.name)
        tests[key] = pair_test(scored, name, reference, seed_noise, resampled, images, floor, log_scale)
    return correct(tests, direction, confidence)


def pair_test(
    scored: pd.DataFrame,
    name: str,
    reference: str | FixedReference,
    seed_noise: tuple[float, float],
    resampled: Resampled | None,
    images: int,
    floor: float,
    log_scale: bool,
) -> PairedTest:
    fixed = isinstance(reference, FixedReference)
    if name not in scored or (not fixed and reference not in scored):
        return PairedTest(np.nan, np.nan, 0, np.nan, 0, 0, 1.0 if log_scale else 0.0, log_scale, "no score")
    both = scored[[name]] if fixed else scored[[name, reference]]
    both = both.dropna()
    reference_values = reference.score if fixed else both[reference]
    differences = (both[name] - reference_values).to_numpy()
    # against a configuration the difference holds two runs' seed noise, against a fixed guess one
    noise = (seed_noise[0] * (1 if fixed else 2), seed_noise[1])
    per_image = None
    if resampled is not None and (not fixed or reference.resampled is not None):
        reference_draws = [reference.resampled if fixed else resampled[(reference, s)] for s in both.index]
        per_image = np.stack(
            [resampled[(name, s)] - r for s, r in zip(both.index, reference_draws, strict=True)]
        )
    return paired_test(differences, noise, per_image, images, floor, log_scale)


def compare_with_reference(
    runs: pd.DataFrame,
    metric: str,
    reference: str | FixedReference,
    direction: str | None = "higher",
    resampled: Resampled | None = None,
    images: int = 0,
    floor: float = 0.0,
    log_scale: bool = False,
    confidence: float = CONFIDENCE,
) -> pd.DataFrame:
    """Every other configuration of `runs` against `reference` (`compare_pairs`), one row per
    configuration in the runs' order."""
    if isinstance(reference, str) and reference not in set(runs["configuration"]):
        raise ValueError(f"reference configuration {reference!r} has no runs")
    names = [n for n in dict.fromkeys(runs["configuration"]) if n != reference]
    pairs = [(name, reference) for name in names]
    results = compare_pairs(runs, metric, pairs, direction, resampled, images, floor, log_scale, confidence)
    return comparison_frame({name: result for (name, _), result in results.items()})


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
