"""Experiment profiles: YAML files that list the configurations the report runs.

A profile has a `name`, a `title`, `seeds`, `defaults` (RunConfig fields shared by all
configurations) and `configurations`, each a `name` plus the RunConfig fields it changes. Every
configuration is validated as a RunConfig, with its run recipe, when the profile is loaded, before
anything runs: the whole profile is checked there (its name is a plain folder name, `defaults` and
every configuration mappings, the seeds distinct integers in numpy's range), so a bad profile is
refused before any folder is created. An optional `chapters` section sets summary chapters' own
template parameters (`chapters: {latency: {reference_models: []}}`): how long the timed chapters
measure is the profile's choice; the runner checks the names against the templates.

The loader sits here, beside the YAML files it reads and below both the sweep that runs a profile
(`mixlib.sweep`) and the chapters that describe one (`mixlib.chapters`), so a chapter reads a profile
without loading the sweep. `pilot.py` and `tuning.py` are the commands that size a profile's
`defaults` (its `pilot` and `tuning` sections); they train runs in this process and use no Dask.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from mixlib.checks import check_seeds
from mixlib.config import RunConfig
from mixlib.data import check_data_root
from mixlib.runs import RunFolder, check_recipe, run_folder

PROFILE_DIR = Path(__file__).resolve().parent
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
    "chapters",
}
CONFIGURATION_KEYS = {"name", "title"}
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]*")
# a profile's name names runs/<name>/: one folder name, no separator, not "." or ".."
PROFILE_NAME_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
DAY_HOURS = 24  # a profile estimated at more than a day of training here is worth a warning


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
    # chapter name -> the template parameters the profile sets for it (its `chapters` section)
    chapter_settings: dict[str, dict[str, Any]] = field(default_factory=dict)


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
    name = profile_name(document, path)
    defaults = document.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise ValueError(
            f"profile {str(path)!r}: 'defaults' must be a mapping of run parameters, got {defaults!r}"
        )
    defaults = dict(defaults)
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
    try:
        seeds = check_seeds("'seeds'", document.get("seeds", [0]))
    except ValueError as error:
        raise ValueError(f"profile {str(path)!r}: {error}") from None
    check_data_roots(configurations, path)
    return Profile(
        name=name,
        title=str(document.get("title", path.stem)),
        description=str(document.get("description", "")),
        seeds=seeds,
        configurations=configurations,
        sizing=sizing_sections(document, path),
        chapter_settings=chapter_settings(document, path),
    )


def profile_name(document: dict[str, Any], path: Path) -> str:
    """The profile's `name` (default: the file's stem), refused unless it is one plain folder name."""
    name = document.get("name", path.stem)
    if not (isinstance(name, str) and PROFILE_NAME_PATTERN.fullmatch(name) and name not in {".", ".."}):
        raise ValueError(
            f"profile {str(path)!r}: 'name' must be a plain folder name matching "
            f"{PROFILE_NAME_PATTERN.pattern} (it names runs/<name>/), got {name!r}"
        )
    return name


def sizing_sections(document: dict[str, Any], path: Path) -> dict[str, Any]:
    sizing = {key: document[key] for key in SIZING_COMMANDS if key in document}
    for key, section in sizing.items():
        if not isinstance(section, dict):
            raise ValueError(
                f"profile {str(path)!r}: {key!r} must be a mapping, as `python -m mixlib "
                f"{SIZING_COMMANDS[key]}` writes it"
            )
    return sizing


def chapter_settings(document: dict[str, Any], path: Path) -> dict[str, dict[str, Any]]:
    settings = document.get("chapters") or {}
    if not isinstance(settings, dict) or not all(isinstance(v, dict) for v in settings.values()):
        raise ValueError(
            f"profile {str(path)!r}: 'chapters' must map chapter names to mappings of their template "
            f"parameters, got {settings!r}"
        )
    return {str(name): dict(parameters) for name, parameters in settings.items()}


def parse_configuration(item: Any, defaults: dict[str, Any], path: Path) -> Configuration:
    if not isinstance(item, dict) or not isinstance(item.get("name"), str):
        raise ValueError(
            f"profile {str(path)!r}: every configuration must be a mapping with a 'name', got {item!r}"
        )
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


def wall_time_warning(profile: Profile, runs_dir: Path) -> str | None:
    """A warning naming the estimated training time of `profile` when it is more than a day, else None.

    Each configuration's cost per epoch is measured when it can be: the mean `epoch_seconds` of its
    runs already in `runs_dir` (trained on this machine), else the profile's pilot cost line for it
    (or the mean of the pilot's lines); a profile with neither is not estimated.
    """
    lines = cost_lines(profile, runs_dir)
    if not lines:
        return None
    seconds = sum(
        len(profile.seeds) * (lines[c.name]["fixed"] + lines[c.name]["per_epoch"] * c.config.epochs)
        for c in profile.configurations
    )
    hours = seconds / 3600
    if hours <= DAY_HOURS:
        return None
    sources = ", ".join(sorted({line["source"] for line in lines.values()}))
    return (
        f"profile {profile.name!r} needs about {hours:.0f} h of training ({len(profile.configurations)} "
        f"configuration(s) x {len(profile.seeds)} seed(s), cost per epoch from {sources}): more than this "
        "machine finishes in a day"
    )


def cost_lines(profile: Profile, runs_dir: Path) -> dict[str, dict[str, Any]]:
    """Per configuration `{fixed, per_epoch, source}` in seconds; empty unless every one is known."""
    piloted = pilot_lines(profile)
    lines = {}
    for configuration in profile.configurations:
        folders = [run_folder(runs_dir, configuration.name, seed) for seed in profile.seeds]
        measured = measured_epoch_seconds(folders)
        if measured is not None:
            lines[configuration.name] = {
                "fixed": 0.0,
                "per_epoch": measured,
                "source": "epochs measured here",
            }
        elif piloted:
            line = piloted.get(configuration.name) or mean_line(list(piloted.values()))
            lines[configuration.name] = {**line, "source": "the profile's pilot"}
        else:
            return {}
    return lines


def pilot_lines(profile: Profile) -> dict[str, dict[str, float]]:
    """The pilot section's `seconds = fixed + per_epoch x epochs` lines; none when it has no readable ones."""
    seconds = profile.sizing.get("pilot", {}).get("seconds")
    try:
        return {
            str(name): {"fixed": float(line["fixed"]), "per_epoch": float(line["per_epoch"])}
            for name, line in seconds.items()
        }
    except (AttributeError, KeyError, TypeError, ValueError):  # hand-edited or absent: nothing to go by
        return {}


def mean_line(lines: list[dict[str, float]]) -> dict[str, float]:
    """A configuration the pilot left out costs what the piloted ones cost on average."""
    return {key: sum(line[key] for line in lines) / len(lines) for key in ("fixed", "per_epoch")}


def measured_epoch_seconds(folders: list[RunFolder]) -> float | None:
    """The mean `epoch_seconds` of the epochs these run folders' histories hold, None without any."""
    seconds = []
    for folder in folders:
        try:
            seconds.extend(pd.read_csv(folder.history_file)["epoch_seconds"].dropna().tolist())
        except (OSError, ValueError, KeyError):  # no run yet, or a damaged history: nothing measured
            continue
    return sum(seconds) / len(seconds) if seconds else None


def profile_line(name: str, title: str, configurations: list[str], seeds: list[int]) -> str:
    """The one line a chapter opens with about the profile it was built from (MyST), pointing to the
    findings page, which describes the profile once for the whole book."""
    seed_list = ", ".join(str(seed) for seed in seeds)
    return (
        f"Profile **{name}** ({title}): {len(configurations)} configuration(s), seed(s) {seed_list}; "
        "see {doc}`the findings <findings>` for what it is and how it was sized."
    )
