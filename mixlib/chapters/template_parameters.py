"""The summary templates' list and mapping parameters, checked where a template starts.

papermill's `-p seeds "[0, 1]"` passes a list as text, and a bad text would otherwise fail deep inside
a chapter with a bare JSONDecodeError; here it fails first, naming the parameter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mixlib.checks import check_seeds
from mixlib.config import parse_json


def as_list(name: str, value: Any, expected: str) -> list:
    """`value` as a list, parsed from its JSON text where papermill passed text."""
    parsed = parse_json(name, value, expected) if isinstance(value, str) else value
    if not isinstance(parsed, Sequence) or isinstance(parsed, str):
        raise ValueError(f"{name} must be {expected}, got {value!r}")
    return list(parsed)


def summary_parameters(
    configurations: Any, seeds: Any, profile_sizing: Any
) -> tuple[list[str], list[int], dict]:
    """The parameters every summary template takes, checked: configuration names, seeds, sizing."""
    names = as_list("configurations", configurations, "a list of configuration names")
    if not all(isinstance(name, str) and name for name in names):
        raise ValueError(f"configurations must be a list of configuration names, got {configurations!r}")
    checked_seeds = list(check_seeds("seeds", as_list("seeds", seeds, "a list of seeds")))
    sizing = (
        parse_json("profile_sizing", profile_sizing, "a mapping")
        if isinstance(profile_sizing, str)
        else profile_sizing
    )
    if not isinstance(sizing, Mapping):
        raise ValueError(f"profile_sizing must be a mapping, got {profile_sizing!r}")
    return names, checked_seeds, dict(sizing)
