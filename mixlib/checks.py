"""The one set of parameter checks: each returns the value or raises a ValueError naming the parameter.

Every validating class of the project (`RunConfig`, the mixing methods, Proxy Attention's settings,
the synthetic data set's spec) checks its values with these functions, so a bad value reads the same
wherever it is caught: `<name> must be <what is allowed>, got <value>`. The module imports nothing
from the package, so any module may use it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any


def is_number(value: Any) -> bool:
    """A real number that is not a bool (True is an int to Python, never a sensible rate) nor NaN."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)


def is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_range(
    name: str, value: float, low: float, high: float, low_open: bool = False, high_open: bool = False
) -> float:
    """`value` as a float, or a ValueError naming the parameter and the allowed interval."""
    if (
        not is_number(value)
        or (value <= low if low_open else value < low)
        or (value >= high if high_open else value > high)
    ):
        interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise ValueError(f"{name} must be a number in {interval}, got {value!r}")
    return float(value)


def check_positive(name: str, value: float) -> float:
    return check_range(name, value, 0.0, math.inf, low_open=True, high_open=True)


def check_probability(name: str, value: float) -> float:
    return check_range(name, value, 0.0, 1.0)


def check_int(name: str, value: int, low: int, high: int | None = None) -> int:
    if not is_integer(value) or value < low or (high is not None and value > high):
        allowed = f"an integer >= {low}" if high is None else f"an integer in [{low}, {high}]"
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return value


def check_interval(name: str, value: tuple[float, float], low: float, high: float) -> tuple[float, float]:
    """A (min, max) pair inside [low, high] with min <= max."""
    pair = tuple(value) if isinstance(value, (tuple, list)) else ()
    if not (len(pair) == 2 and all(map(is_number, pair))) or not low <= pair[0] <= pair[1] <= high:
        raise ValueError(
            f"{name} must be a pair (min, max) with {low} <= min <= max <= {high}, got {value!r}"
        )
    return float(pair[0]), float(pair[1])


def check_flag(name: str, value: bool) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return value


def check_text(name: str, value: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    return value


def check_mapping(name: str, value: Mapping) -> Mapping:
    if not isinstance(value, Mapping):
        raise ValueError(f"{name} must be a mapping (name: value), got {value!r}")
    return value


MAX_SEED = 2**32 - 1  # numpy's seed range, the narrowest of the generators a seed reaches


def check_seeds(name: str, value: Any) -> tuple[int, ...]:
    """A non-empty list of distinct seeds, each an integer (not a bool) in numpy's range [0, 2**32 - 1]."""
    seeds = value if isinstance(value, (list, tuple)) else ()
    if (
        not seeds
        or not all(is_integer(s) and 0 <= s <= MAX_SEED for s in seeds)
        or len(set(seeds)) < len(seeds)
    ):
        raise ValueError(
            f"{name} must be a non-empty list of distinct integers in [0, {MAX_SEED}], got {value!r}"
        )
    return tuple(seeds)


def choose(name: str, value: Any, allowed: Iterable[str]) -> Any:
    allowed = tuple(allowed)
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"unknown {name} {value!r}; allowed values: {', '.join(allowed)}")
    return value
