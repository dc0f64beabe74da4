"""Proxy Attention's parameters: parsed and checked once, with errors that name the parameter.

`method_params` of a `method: proxy` run is the whole of these settings; `ProxySettings.from_params`
is the single place that reads them (the Proxy Attention recipe of `mixlib.runs.recipes` builds its
batch transform and its callback from them).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mixlib.cams import CAM_METHODS
from mixlib.checks import check_flag, check_int, check_range, choose, is_integer
from mixlib.mixing import MIXING, create_batch_transform
from mixlib.proxy.rules import REPLACEMENTS, SELECTIONS

PROXY = "p"  # the thesis's marker for a proxy epoch in a schedule list
EVERY_COUNT_KEYS = ("every", "count")
CAM_CLASSES = ("predicted", "true")
REFERENCE_SCHEDULE = (5, PROXY, 9, PROXY, 9, PROXY, 9, PROXY, 4)
SCHEDULE_FORMS = (
    'a list of positive integers (normal epochs) and "p" (one proxy epoch) that starts with an integer '
    'and covers exactly `epochs` epochs, e.g. [5, "p", 9, "p", 4] for 20 epochs; or a mapping '
    "{every: k, count: n} with integers k >= 2, n >= 1 and k * n <= epochs: epochs k, 2k, ..., nk are "
    "proxy epochs"
)


@dataclass(frozen=True)
class Schedule:
    """Which epochs (1-based) are proxy epochs; `length` is the epoch count a list form covers."""

    proxy_epochs: tuple[int, ...]
    length: int | None

    def check_fits(self, epochs: int) -> None:
        last = self.proxy_epochs[-1] if self.proxy_epochs else 0
        if (self.length is not None and self.length != epochs) or last > epochs:
            covered = self.length if self.length is not None else last
            raise ValueError(
                f"method_params.schedule covers {covered} epochs but the run has epochs = {epochs}; "
                f"allowed forms: {SCHEDULE_FORMS}"
            )


def parse_schedule(schedule: Any) -> Schedule:
    """The thesis form (`[5, "p", 9, ...]`) or the `{every, count}` form, as a `Schedule`."""
    if isinstance(schedule, Mapping):
        return _every_count(schedule)
    if isinstance(schedule, (list, tuple)) and schedule:
        return _thesis_form(schedule)
    raise ValueError(f"method_params.schedule must be {SCHEDULE_FORMS}; got {schedule!r}")


def _thesis_form(schedule: list | tuple) -> Schedule:
    proxy_epochs, epoch = [], 0
    for position, item in enumerate(schedule):
        if item == PROXY and position > 0:
            epoch += 1
            proxy_epochs.append(epoch)
        elif is_integer(item) and item >= 1:
            epoch += item
        else:
            problem = "starts with a proxy epoch" if item == PROXY else f"has {item!r} at position {position}"
            raise ValueError(
                f"method_params.schedule {list(schedule)!r} {problem}; it must be {SCHEDULE_FORMS} "
                "(a proxy epoch makes its images from the model trained so far, so normal epochs come first)"
            )
    return Schedule(tuple(proxy_epochs), epoch)


def _every_count(schedule: Mapping) -> Schedule:
    if set(schedule) != set(EVERY_COUNT_KEYS):
        unknown = sorted(map(str, set(schedule) - set(EVERY_COUNT_KEYS)))
        missing = [key for key in EVERY_COUNT_KEYS if key not in schedule]
        raise ValueError(
            f"method_params.schedule mapping needs exactly the keys {list(EVERY_COUNT_KEYS)} "
            f"(unknown: {unknown}, missing: {missing}); allowed forms: {SCHEDULE_FORMS}"
        )
    every, count = schedule["every"], schedule["count"]
    if not (is_integer(every) and every >= 2 and is_integer(count) and count >= 1):
        raise ValueError(
            f"method_params.schedule {dict(schedule)!r} needs integers every >= 2 and count >= 1; "
            f"allowed forms: {SCHEDULE_FORMS}"
        )
    return Schedule(tuple(every * step for step in range(1, count + 1)), None)


@dataclass(frozen=True)
class ProxySettings:
    """Every Proxy Attention parameter; see the table in `mixlib.proxy` for defaults and their sources."""

    schedule: Any = REFERENCE_SCHEDULE
    fraction: float = 0.2
    selection: str = "first"
    cam_method: str = "gradcam++"
    cam_class: str = "predicted"
    threshold: float = 0.85
    weight: float = 0.1
    replacement: str = "blended"
    clear_every_step: bool = False
    cam_batch_size: int | None = None
    mixing: str = "none"
    mixing_params: dict = field(default_factory=dict)

    @classmethod
    def from_params(cls, params: Any, epochs: int | None = None) -> ProxySettings:
        """Validated settings from `method_params`; with `epochs`, the schedule must also fit the run."""
        if not isinstance(params, Mapping):
            raise ValueError(f"method_params of method 'proxy' must be a mapping; got {params!r}")
        allowed = list(cls.__dataclass_fields__)
        unknown = sorted(map(str, set(params) - set(allowed)))
        if unknown:
            raise ValueError(
                f"unknown method_params {unknown} for method 'proxy'; allowed: {', '.join(allowed)}"
            )
        settings = cls(**params)
        if epochs is not None:
            settings.parsed_schedule.check_fits(epochs)
        return settings

    def __post_init__(self) -> None:
        parse_schedule(self.schedule)
        check_range("method_params.fraction", self.fraction, 0.0, 1.0, low_open=True)
        check_range("method_params.threshold", self.threshold, 0.0, 1.0)
        check_range("method_params.weight", self.weight, 0.0, 1.0)
        SELECTIONS.get(self.selection, "method_params.selection")
        REPLACEMENTS.get(self.replacement, "method_params.replacement")
        choose("method_params.cam_class", self.cam_class, CAM_CLASSES)
        CAM_METHODS.get(self.cam_method, "method_params.cam_method")
        check_flag("method_params.clear_every_step", self.clear_every_step)
        if self.cam_batch_size is not None:
            check_int("method_params.cam_batch_size (an integer or null)", self.cam_batch_size, 1)
        MIXING.get(self.mixing, "method_params.mixing")  # a batch transform: Proxy Attention is not one
        if not isinstance(self.mixing_params, Mapping):
            raise ValueError(f"method_params.mixing_params must be a mapping; got {self.mixing_params!r}")
        try:
            create_batch_transform(self.mixing, **self.mixing_params)
        except (TypeError, ValueError) as error:
            raise ValueError(f"method_params.mixing / mixing_params: {error}") from error

    @property
    def parsed_schedule(self) -> Schedule:
        return parse_schedule(self.schedule)

    def chosen_count(self, misclassified: int) -> int:
        """How many of the misclassified images become proxies: ceil(fraction * count), as the reference."""
        return math.ceil(self.fraction * misclassified)
