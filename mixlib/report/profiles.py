"""Experiment profiles: YAML files that list the configurations the report runs.

A profile has a `name`, a `title`, `seeds`, `defaults` (RunConfig fields shared by all
configurations) and `configurations`, each a `name` plus the RunConfig fields it changes. Every
configuration is validated as a RunConfig, with its run recipe, when the profile is loaded, before
anything runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mixlib.config import RunConfig
from mixlib.data import check_data_root
from mixlib.runs import check_recipe

PROFILE_DIR = Path(__file__).resolve().parent.parent / "profiles"
# `tuning` and `pilot` document how `defaults` were chosen (written by `python -m mixlib tune` and
# `python -m mixlib pilot`); the findings page shows them
SIZING_COMMANDS = {"pilot": "pilot", "tuning": "tune"}  # section -> the command that writes it
PROFILE_KEYS = {
    "name",
    "title",
    "description",
    "seeds",
    "defaults",
    "configurations",
    "requires_data_root",
    "tuning",
    "pilot",
}
CONFIGURATION_KEYS = {"name", "title"}
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]*")


@dataclass(frozen=True)
class Configuration:
    name: str
    title: str
    config: RunConfig

    def parameters(self) -> dict[str, Any]:
        return self.config.to_dict()


@dataclass(frozen=True)
class Profile:
    name: str
    title: str
    description: str
    seeds: tuple[int, ...]
    configurations: tuple[Configuration, ...]
    sizing: dict[str, Any] = field(default_factory=dict)  # its `pilot` and `tuning` sections, as written


def available_profiles() -> list[str]:
    return sorted(path.stem for path in PROFILE_DIR.glob("*.yml"))


def profile_path(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if path.suffix in {".yml", ".yaml"}:
        if not path.is_file():
            raise FileNotFoundError(f"profile file {str(path)!r} does not exist")
        return path
    if name_or_path not in available_profiles():
        raise ValueError(
            f"unknown profile {name_or_path!r}; allowed values: {', '.join(available_profiles())} "
            "or a path to a .yml file"
        )
    return PROFILE_DIR / f"{name_or_path}.yml"


def load_profile(name_or_path: str, data_root: str | None = None) -> Profile:
    """Read and validate a profile; `data_root` overrides the profile's own."""
    path = profile_path(name_or_path)
    try:
        document = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ValueError(f"profile {str(path)!r} is not valid YAML: {error}") from error
    if not isinstance(document, dict):
        raise ValueError(f"profile {str(path)!r} must be a mapping with keys {sorted(PROFILE_KEYS)}")
    unknown = set(document) - PROFILE_KEYS
    if unknown:
        raise ValueError(
            f"profile {str(path)!r} has unknown key(s) {sorted(unknown)}; allowed: {sorted(PROFILE_KEYS)}"
        )
    defaults = dict(document.get("defaults") or {})
    if data_root is not None:
        defaults["data_root"] = data_root
    if document.get("requires_data_root") and not defaults.get("data_root"):
        raise ValueError(
            f"profile {document.get('name', path.stem)!r} needs --data-root (the dataset folder)"
        )
    raw_configurations = document.get("configurations")
    if not isinstance(raw_configurations, list) or not raw_configurations:
        raise ValueError(f"profile {str(path)!r} needs a non-empty list 'configurations'")
    configurations = tuple(parse_configuration(item, defaults, path) for item in raw_configurations)
    names = [c.name for c in configurations]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ValueError(f"profile {str(path)!r} repeats configuration name(s) {duplicated}")
    check_data_roots(configurations, path)
    seeds = document.get("seeds", [0])
    if not (isinstance(seeds, list) and seeds and all(isinstance(s, int) for s in seeds)):
        raise ValueError(
            f"profile {str(path)!r}: 'seeds' must be a non-empty list of integers, got {seeds!r}"
        )
    return Profile(
        name=str(document.get("name", path.stem)),
        title=str(document.get("title", path.stem)),
        description=str(document.get("description", "")),
        seeds=tuple(seeds),
        configurations=configurations,
        sizing=sizing_sections(document, path),
    )


def sizing_sections(document: dict[str, Any], path: Path) -> dict[str, Any]:
    sizing = {key: document[key] for key in SIZING_COMMANDS if key in document}
    for key, section in sizing.items():
        if not isinstance(section, dict):
            raise ValueError(
                f"profile {str(path)!r}: {key!r} must be a mapping, as `python -m mixlib "
                f"{SIZING_COMMANDS[key]}` writes it"
            )
    return sizing


def parse_configuration(item: Any, defaults: dict[str, Any], path: Path) -> Configuration:
    if not isinstance(item, dict) or not isinstance(item.get("name"), str):
        raise ValueError(f"profile {str(path)!r}: every configuration needs a 'name', got {item!r}")
    name = item["name"]
    if not NAME_PATTERN.fullmatch(name):
        raise ValueError(f"configuration name {name!r} must match {NAME_PATTERN.pattern} (it names a folder)")
    fields = {k: v for k, v in item.items() if k not in CONFIGURATION_KEYS}
    try:
        config = check_recipe(RunConfig.from_parameters({**defaults, **fields}))
    except (TypeError, ValueError) as error:
        raise ValueError(f"profile {str(path)!r}, configuration {name!r}: {error}") from error
    return Configuration(name=name, title=str(item.get("title", name)), config=config)


def check_data_roots(configurations: tuple[Configuration, ...], path: Path) -> None:
    """Each dataset folder the profile names must exist with its dataset's layout, before anything runs."""
    for dataset, data_root in sorted(
        {(c.config.dataset, c.config.data_root) for c in configurations}, key=str
    ):
        try:
            check_data_root(dataset, data_root)
        except (OSError, ValueError) as error:
            raise ValueError(f"profile {str(path)!r}, dataset {dataset!r}: {error}") from error


def profile_line(name: str, title: str, configurations: list[str], seeds: list[int]) -> str:
    """The one line a chapter opens with about the profile it was built from (MyST), pointing to the
    findings page, which describes the profile once for the whole book."""
    seed_list = ", ".join(str(seed) for seed in seeds)
    return (
        f"Profile **{name}** ({title}): {len(configurations)} configuration(s), seed(s) {seed_list}; "
        "see {doc}`the findings <findings>` for what it is and how it was sized."
    )
