"""One run's parameters: what the notebook's `parameters` cell and a profile entry describe.

Every field is validated when the object is built, so a typo in a profile or a papermill `-p` fails
before any data is read, naming the parameter and the values it accepts. The checks are a table,
`FIELD_CHECKS`, one row per field (a new field needs its row, or building any RunConfig fails): a
plain table of the project's own `mixlib.checks` functions rather than pydantic, because the allowed
values of several fields live in the project's registries and every other validating class of the
project uses the same checks, so an error reads the same wherever it is raised.

The method is the one field only checked for its form here: `method` names a run recipe (a mixing method, or a
training recipe such as Proxy Attention, which adds callbacks), and recipes live above the training
engine, which itself reads a RunConfig. So `mixlib.runs.recipes.check_recipe` checks `method`,
`method_params` and `mix_probability` together; every place that takes a configuration from a user
(a profile, the training template) calls it before anything runs.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from mixlib.cams import CAM_METHODS
from mixlib.checks import (
    MAX_SEED,
    check_flag,
    check_int,
    check_mapping,
    check_range,
    check_text,
    choose,
    is_integer,
    is_number,
)
from mixlib.data import DATASETS
from mixlib.models import check_model_name
from mixlib.registry import Registry

OPTIMIZERS = ("sgd", "adamw")
DEVICES = ("auto", "cpu", "cuda")
AMP_DTYPES = ("bfloat16", "float16")
SHORT_CLASSES = ("fail", "drop")  # what a class with too few readable training images does to the run

# A check takes the field's name and value and raises a ValueError naming the field when it is bad.
Check = Callable[[str, Any], object]


def integer(low: int, high: int | None = None) -> Check:
    return lambda name, value: check_int(name, value, low, high)


def number(low: float, high: float = math.inf, low_open: bool = False, high_open: bool = False) -> Check:
    return lambda name, value: check_range(name, value, low, high, low_open, high_open)


def one_of(*allowed: str) -> Check:
    return lambda name, value: choose(name, value, allowed)


def registered(registry: Registry) -> Check:
    """A name in one of the project's registries."""
    return lambda name, value: registry.get(check_text(name, value), name)


def optional(check: Check) -> Check:
    return lambda name, value: None if value is None else check(name, value)


def model_name(name: str, value: Any) -> None:
    check_model_name(check_text(name, value))


def batch_size(name: str, value: Any) -> None:
    if value != "auto" and not (is_integer(value) and value >= 1):
        raise ValueError(f"{name} must be a positive integer or 'auto', got {value!r}")


def mix_probability(name: str, value: Any) -> None:
    if value is not None and not (is_number(value) and 0.0 <= value <= 1.0):
        raise ValueError(
            f"{name} must be null (each method's own default) or a number in [0, 1], got {value!r}"
        )


def parameter_mapping(name: str, value: Any) -> None:
    """A mapping with string keys; which keys and values the method takes is checked with the method."""
    if any(not isinstance(key, str) for key in check_mapping(name, value)):
        raise ValueError(f"{name} keys must be parameter names (strings), got {value!r}")


FIELD_CHECKS: dict[str, Check] = {
    # data
    "dataset": registered(DATASETS),
    "data_root": optional(check_text),
    "images_per_class": integer(1),
    "val_per_class": integer(1),
    "test_per_class": optional(integer(1)),
    "image_size": integer(16),
    "split_seed": integer(0),
    "crop_scale_min": number(0.0, 1.0, low_open=True),
    "color_jitter": number(0.0, high_open=True),
    "short_classes": one_of(*SHORT_CLASSES),
    # model
    "model": model_name,
    "small_input": check_flag,
    "min_feature_size": integer(1),
    # augmentation and losses
    "method": check_text,  # with method_params, by mixlib.runs.recipes (see the module docstring)
    "method_params": parameter_mapping,
    "mix_probability": mix_probability,
    "label_smoothing": number(0.0, 1.0, high_open=True),
    "lambda_ent": number(0.0, high_open=True),
    "lambda_con": number(0.0, high_open=True),
    "lambda_eq": number(0.0, high_open=True),
    "seam_scale": number(0.0, 1.0, low_open=True, high_open=True),
    # evaluation
    "cam_method": registered(CAM_METHODS),
    # optimisation
    "epochs": integer(1),
    "batch_size": batch_size,
    "optimizer": one_of(*OPTIMIZERS),
    "lr": number(0.0, low_open=True, high_open=True),
    "momentum": number(0.0, 1.0, high_open=True),
    "weight_decay": number(0.0, high_open=True),
    "warmup_epochs": integer(0),
    # execution
    "seed": integer(0, MAX_SEED),
    "deterministic": check_flag,
    "amp": check_flag,
    "amp_dtype": one_of(*AMP_DTYPES),
    "cpu_amp": check_flag,
    "torch_compile": check_flag,
    "device": one_of(*DEVICES),
    "num_workers": integer(0),
    "memory_budget_gib": number(0.0, low_open=True, high_open=True),
}


@dataclass(frozen=True)
class RunConfig:
    # data
    dataset: str = "synthetic"
    data_root: str | None = None
    images_per_class: int = 300
    val_per_class: int = 50
    test_per_class: int | None = None
    image_size: int = 64
    split_seed: int = 0
    crop_scale_min: float = 0.35
    color_jitter: float = 0.4
    short_classes: str = "fail"  # or "drop": classes with too few readable training images leave the run
    # model
    model: str = "resnet10t"
    small_input: bool = True
    min_feature_size: int = 8
    # augmentation and losses
    method: str = "none"
    method_params: dict = field(default_factory=dict)
    # probability that a batch is mixed, the same for every mixed-sample method of a profile;
    # None: each method's own default (its published value) or method_params.p
    mix_probability: float | None = None
    label_smoothing: float = 0.0
    lambda_ent: float = 0.0  # Mixup-CAM class-wise entropy weight
    lambda_con: float = 0.0  # Mixup-CAM spatial concentration weight
    lambda_eq: float = 0.0  # SEAM equivariance weight
    seam_scale: float = 0.3
    # evaluation
    cam_method: str = "gradcam"
    # optimisation
    epochs: int = 30
    batch_size: int | str = 64
    optimizer: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup_epochs: int = 2
    # execution
    seed: int = 0
    deterministic: bool = True
    amp: bool = True  # autocast on CUDA in `amp_dtype` (float16 keeps the gradient scaler)
    amp_dtype: str = "bfloat16"  # falls back to float16 on GPUs without bfloat16
    cpu_amp: bool = False  # bfloat16 autocast on the CPU (pays only on CPUs with bf16 instructions)
    # torch.compile the forward pass; off by default and in every profile: `python -m mixlib bench training
    # --compile` measured its step at 0.99x the eager one on the 2-core CPU (GPU not measured yet)
    torch_compile: bool = False
    device: str = "auto"
    num_workers: int = 0
    memory_budget_gib: float = 4.0  # training splits larger than this stream from disk

    def __post_init__(self) -> None:
        unchecked = [f.name for f in fields(self) if f.name not in FIELD_CHECKS]
        if unchecked:
            raise TypeError(f"RunConfig field(s) {unchecked} have no row in FIELD_CHECKS; add one each")
        problems = []
        for item in fields(self):  # every bad field is named at once, not one per attempt
            try:
                FIELD_CHECKS[item.name](item.name, getattr(self, item.name))
            except ValueError as error:
                problems.append(str(error))
        if problems:
            raise ValueError("; ".join(problems))

    @classmethod
    def from_parameters(cls, params: dict[str, Any]) -> RunConfig:
        """Build from a notebook/profile parameter dict; unknown keys are an error, JSON strings are parsed.

        papermill's `-p name value` passes dicts as strings, hence the JSON parsing of dict fields.
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(params) - known)
        if unknown:
            raise ValueError(f"unknown run parameter(s) {unknown}; allowed: {', '.join(sorted(known))}")
        values = dict(params)
        if isinstance(values.get("method_params"), str):
            values["method_params"] = parse_json_mapping("method_params", values["method_params"])
        return cls(**values)

    @classmethod
    def from_namespace(cls, namespace: dict[str, Any]) -> RunConfig:
        """Pick this class's fields out of a namespace, e.g. a notebook's `globals()` after papermill."""
        return cls.from_parameters({f.name: namespace[f.name] for f in fields(cls) if f.name in namespace})

    @classmethod
    def from_notebook(
        cls, namespace: dict[str, Any], parameter_names: set[str], template_parameters: tuple[str, ...]
    ) -> RunConfig:
        """`from_namespace` for a template: every name its parameters cell and papermill defined must be
        a RunConfig field or one of the template's own parameters, so `-p epoch 3` fails, not ignored.

        `parameter_names` is what the kernel's namespace gained from the start of the parameters cell
        to the end of papermill's injected cell (IPython's own `_` names are left out).
        """
        allowed = {f.name for f in fields(cls)} | set(template_parameters)
        unknown = sorted(n for n in parameter_names if not n.startswith("_") and n not in allowed)
        if unknown:
            raise ValueError(
                f"unknown notebook parameter(s) {unknown}; allowed: {', '.join(sorted(allowed))}"
            )
        return cls.from_namespace(namespace)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def replace(self, **changes: Any) -> RunConfig:
        return RunConfig(**{**self.to_dict(), **changes})


def parse_json(name: str, text: str, expected: str) -> Any:
    """A template parameter papermill passed as text (`-p seeds "[0, 1]"`), parsed; the error names it."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{name} must be {expected} or its JSON text, got {text!r} ({error})") from None


def parse_json_mapping(name: str, text: str) -> dict:
    value = parse_json(name, text or "{}", "a mapping")
    check_mapping(name, value)
    return value


PACKAGE = Path(__file__).parent
# Code that cannot change a trained model or its metrics: editing it must not retrain anything.
NOT_TRAINING_CODE = ("chapters/", "sweep/", "profiles/", "latency/", "bench/", "cli.py", "__main__.py")


def code_version(training_only: bool = False, package: Path = PACKAGE) -> str:
    """Hash of the package's source: a run is only reused when the code that made it is unchanged.

    `training_only` leaves out the report, latency and benchmark code, so that a run folder survives
    an edit of a plot; the report runner hashes everything, so such an edit still rebuilds chapters.
    """
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package).as_posix()
        if training_only and relative.startswith(NOT_TRAINING_CODE):
            continue
        digest.update(relative.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def fingerprint(payload: dict[str, Any]) -> str:
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
