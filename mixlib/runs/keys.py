"""The keys a run's two stages are reused by.

- *Training* (checkpoint, history, training record) is keyed by the run's parameters, less those only
  evaluation reads (`RunConfig.training_parameters`), and by the code training executes: the modules that
  `mixlib.runs.train` imports (`mixlib.code_keys`), walking past every other method's own code
  (`Recipe.code`), so a CutMix run is retrained when `mixing/cutmix.py` or the shared code changes and
  not when `mixing/fmix.py` does.
- *Evaluation* (metrics.json, predictions.csv) is keyed by the checkpoint's content (SHA-256 of its
  bytes), every run parameter and the code evaluation executes (what `mixlib.runs.evaluate` imports,
  no method's own code). An edited CAM score re-evaluates every checkpoint and trains nothing.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

from mixlib.code_keys import PACKAGE, code_key, import_graph, imported_closure, package_modules
from mixlib.config import RunConfig, fingerprint
from mixlib.runs.recipes import create_recipe, every_method_code

TRAINING_CODE = "mixlib.runs.train"
EVALUATION_CODE = "mixlib.runs.evaluate"


def training_fingerprint(config: RunConfig, package: Path = PACKAGE) -> str:
    """The key of a run's checkpoint: its training parameters and the code that training runs (that of
    `package`, a copy of the package in tests)."""
    return fingerprint({"config": config.training_parameters(), "code": training_code(config, package)})


def training_code(config: RunConfig, package: Path = PACKAGE) -> str:
    own = private_modules(create_recipe(config).code, package)
    modules = imported_closure(
        [TRAINING_CODE, *own], import_graph(package), other_methods_modules(config, package)
    )
    return code_key(modules, package)


def other_methods_modules(config: RunConfig, package: Path = PACKAGE) -> frozenset[str]:
    """The modules other methods own and this configuration's run never executes."""
    return every_method_module(package) - private_modules(create_recipe(config).code, package)


def evaluation_fingerprint(config: RunConfig, checkpoint: Path, package: Path = PACKAGE) -> str:
    """The key of a run's metrics and predictions: the checkpoint's bytes, the run's parameters and the
    code that evaluation runs."""
    code = evaluation_code(package)
    return fingerprint({"config": config.to_dict(), "checkpoint": file_digest(checkpoint), "code": code})


def evaluation_code(package: Path = PACKAGE) -> str:
    modules = imported_closure([EVALUATION_CODE], import_graph(package), every_method_module(package))
    return code_key(modules, package)


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def private_modules(code: tuple[str, ...], package: Path = PACKAGE) -> frozenset[str]:
    """The package modules a recipe's `code` names: each module, and every module below a package."""
    names = package_modules(package)
    return frozenset(m for m in names if any(m == name or m.startswith(f"{name}.") for name in code))


@cache
def every_method_module(package: Path = PACKAGE) -> frozenset[str]:
    """The modules some method owns (`every_method_code`)."""
    return private_modules(tuple(every_method_code()), package)
