"""One run's parameters: what the notebook's `parameters` cell and a profile entry describe.

Every field is validated when the object is built, so a typo in a profile or a papermill `-p` fails
before any data is read, naming the parameter and the values it accepts.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

OPTIMIZERS = ("sgd", "adamw")
DEVICES = ("auto", "cpu", "cuda")
AMP_DTYPES = ("bfloat16", "float16")


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
    # model
    model: str = "resnet10t"
    small_input: bool = True
    min_feature_size: int = 8
    # augmentation and losses
    method: str = "none"
    method_params: dict = field(default_factory=dict)
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
    torch_compile: bool = False  # torch.compile the forward pass (see `python -m mixlib bench training`)
    device: str = "auto"
    num_workers: int = 0
    memory_budget_gib: float = 4.0  # training splits larger than this stream from disk

    def __post_init__(self) -> None:
        from mixlib.cams import CAM_METHODS, create_loss_terms
        from mixlib.data import DATASETS
        from mixlib.mixing import MIXING
        from mixlib.models import check_model_name
        from mixlib.proxy import create_method_callbacks

        DATASETS.get(self.dataset, "dataset")
        MIXING.get(self.method, "method")
        CAM_METHODS.get(self.cam_method, "cam_method")
        create_loss_terms(self.lambda_ent, self.lambda_con, self.lambda_eq, self.seam_scale)
        check_model_name(self.model)
        choose("optimizer", self.optimizer, OPTIMIZERS)
        choose("device", self.device, DEVICES)
        choose("amp_dtype", self.amp_dtype, AMP_DTYPES)
        at_least("images_per_class", self.images_per_class, 1)
        at_least("val_per_class", self.val_per_class, 1)
        at_least("image_size", self.image_size, 16)
        at_least("epochs", self.epochs, 1)
        at_least("warmup_epochs", self.warmup_epochs, 0)
        at_least("num_workers", self.num_workers, 0)
        if self.test_per_class is not None:
            at_least("test_per_class", self.test_per_class, 1)
        if not (self.batch_size == "auto" or (isinstance(self.batch_size, int) and self.batch_size >= 1)):
            raise ValueError(f"batch_size must be a positive integer or 'auto', got {self.batch_size!r}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if not 0.0 < self.crop_scale_min <= 1.0:
            raise ValueError(f"crop_scale_min must be in (0, 1], got {self.crop_scale_min}")
        if self.lr <= 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if not (isinstance(self.memory_budget_gib, (int, float)) and self.memory_budget_gib > 0):
            raise ValueError(f"memory_budget_gib must be a positive number, got {self.memory_budget_gib!r}")
        create_method_callbacks(self.method, self.method_params, self.epochs)  # validates method_params

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
            values["method_params"] = json.loads(values["method_params"] or "{}")
        return cls(**values)

    @classmethod
    def from_namespace(cls, namespace: dict[str, Any]) -> RunConfig:
        """Pick this class's fields out of a namespace, e.g. a notebook's `globals()` after papermill."""
        return cls.from_parameters({f.name: namespace[f.name] for f in fields(cls) if f.name in namespace})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def replace(self, **changes: Any) -> RunConfig:
        return RunConfig(**{**self.to_dict(), **changes})


def choose(parameter: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"unknown {parameter} {value!r}; allowed values: {', '.join(allowed)}")


def at_least(parameter: str, value: int, minimum: int) -> None:
    if not isinstance(value, int) or value < minimum:
        raise ValueError(f"{parameter} must be an integer >= {minimum}, got {value!r}")


# Code that cannot change a trained model or its metrics: editing it must not retrain anything.
NOT_TRAINING_CODE = (
    "report/",
    "latency/",
    "bench.py",
    "cli.py",
    "__main__.py",
    "mixing/bench.py",
    "cams/bench.py",
    "training_bench.py",
)


def code_version(training_only: bool = False) -> str:
    """Hash of the package's source: a run is only reused when the code that made it is unchanged.

    `training_only` leaves out the report, latency and benchmark code, so that a run folder survives
    an edit of a plot; the report runner hashes everything, so such an edit still rebuilds chapters.
    """
    package = Path(__file__).parent
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
