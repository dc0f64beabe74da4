"""The report's glossary: load and validate ``book/glossary.yml``, render it as one MyST page.

The page is a single Sphinx ``glossary`` directive, so every term (and every alias, rendered as an
extra term line) becomes a target of the ``{term}`` role anywhere in the book. Sphinx matches the
text case-insensitively against the term lines, so other pages write, for example::

    {term}`CutMix`
    {term}`FPR`
    {term}`the discriminative region problem <Discriminative Region Problem>`
    {term}`precision <precision (metric)>`

The text before ``<...>`` is what the reader sees; the target inside must be a term or alias of the
glossary exactly as written in the data file (up to case). A reference to anything else is an
"unknown term" warning, which the book build (``-W -n``) turns into an error. Generated pages can
build the same markup with :func:`term_role`. The entry ``key`` is the stable name used inside the
data file (``see_also``) and by code; the display name may change without breaking those.

Needed in the book's ``_config.yml``: ``parse.myst_enable_extensions`` must contain ``dollarmath``
(for ``$...$`` and ``$$...$$`` in definitions) and ``amsmath``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

TOP_LEVEL_FIELDS = ("seed", "entries")
REQUIRED_FIELDS = ("term", "key", "definition")
LIST_FIELDS = ("aliases", "see_also", "sources")

_KEY_PATTERN = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
# Sphinx reads "term : classifier" on a glossary term line and treats lines starting with ".. " as
# comments; a leading ":" would be taken by MyST as a directive option. Names must avoid all three.
_BAD_NAME_PATTERN = re.compile(r"^(?:\.\. |:)|\s:\s")
_TERM_ROLE_PATTERN = re.compile(r"\{term\}`([^`]+)`")
_EXPLICIT_TARGET_PATTERN = re.compile(r"<([^<>]+)>\s*$")
_BACKTICK_RUN_PATTERN = re.compile(r"`+")
_DEFINITION_INDENT = "  "

PAGE_INTRO = (
    "Terms used throughout the report. Other pages link to an entry with the `{term}` role, "
    "which accepts the term or any of the other names listed with it."
)


@dataclass(frozen=True)
class GlossaryEntry:
    term: str
    key: str
    definition: str
    aliases: tuple[str, ...] = ()
    see_also: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        """The term followed by its aliases: every text the `{term}` role can target."""
        return (self.term, *self.aliases)


def load_glossary(path: Path) -> list[GlossaryEntry]:
    """Read and validate a glossary data file; raise ValueError naming the entry and field at fault."""
    document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    raw_entries = _check_document(document, path)
    entries = [_parse_entry(index, raw) for index, raw in enumerate(raw_entries)]
    _check_unique(entries)
    _check_references(entries)
    return entries


def render_glossary_markdown(entries: Sequence[GlossaryEntry]) -> str:
    """One MyST page titled "Glossary": a single `glossary` directive, entries sorted by term."""
    by_key = {entry.key: entry for entry in entries}
    ordered = sorted(entries, key=lambda entry: entry.term.casefold())
    body = "\n\n".join(_render_entry(entry, by_key) for entry in ordered)
    fence = _fence_for(entry.definition for entry in entries)
    return f"# Glossary\n\n{PAGE_INTRO}\n\n{fence}{{glossary}}\n{body}\n{fence}\n"


def write_glossary_page(data_path: Path, out_path: Path) -> Path:
    """Validate `data_path`, render it and write the page to `out_path` (parents created)."""
    markdown = render_glossary_markdown(load_glossary(data_path))
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(markdown, encoding="utf-8")
    return out_path


def term_role(entry: GlossaryEntry, text: str | None = None) -> str:
    """MyST markup linking to `entry`, shown as `text` (default: the term itself)."""
    if text is None or text == entry.term:
        return f"{{term}}`{entry.term}`"
    return f"{{term}}`{text} <{entry.term}>`"


def _entry_error(label: str, field: str, message: str) -> ValueError:
    return ValueError(f"glossary entry {label} field {field!r}: {message}")


def _check_document(document: Any, path: Path) -> list[Any]:
    if not isinstance(document, dict):
        raise ValueError(f"{path}: the glossary file must be a mapping with fields {TOP_LEVEL_FIELDS}")
    unknown = sorted(set(document) - set(TOP_LEVEL_FIELDS))
    if unknown:
        raise ValueError(f"{path}: unknown top-level field(s) {unknown}; allowed: {TOP_LEVEL_FIELDS}")
    seed = document.get("seed")
    if not isinstance(seed, str) or not seed.strip():
        raise ValueError(f"{path}: field 'seed' must name the seed glossary file the data covers")
    raw_entries = document.get("entries")
    if not isinstance(raw_entries, list) or not raw_entries:
        raise ValueError(f"{path}: field 'entries' must be a non-empty list of entries")
    return raw_entries


def _parse_entry(index: int, raw: Any) -> GlossaryEntry:
    label = f"#{index}"
    if not isinstance(raw, dict):
        raise _entry_error(label, "-", f"must be a mapping, got {type(raw).__name__}")
    if isinstance(raw.get("key"), str):
        label = f"#{index} ({raw['key']!r})"
    unknown = sorted(set(raw) - set(REQUIRED_FIELDS) - set(LIST_FIELDS))
    if unknown:
        raise _entry_error(label, unknown[0], f"unknown field; allowed: {REQUIRED_FIELDS + LIST_FIELDS}")
    for field in REQUIRED_FIELDS:
        value = raw.get(field)
        if not isinstance(value, str) or not value.strip():
            raise _entry_error(label, field, "is required and must be a non-empty string")
    lists = {field: _string_list(raw.get(field, []), label, field) for field in LIST_FIELDS}
    if not _KEY_PATTERN.fullmatch(raw["key"]):
        raise _entry_error(label, "key", f"{raw['key']!r} is not a lowercase slug like 'f1-score'")
    for field, name in [("term", raw["term"])] + [("aliases", alias) for alias in lists["aliases"]]:
        if name != name.strip() or "\n" in name or _BAD_NAME_PATTERN.search(name):
            raise _entry_error(label, field, f"{name!r} cannot be a glossary term line")
    return GlossaryEntry(
        term=raw["term"],
        key=raw["key"],
        definition=raw["definition"].strip("\n"),
        aliases=lists["aliases"],
        see_also=lists["see_also"],
        sources=lists["sources"],
    )


def _string_list(value: Any, label: str, field: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value):
        raise _entry_error(label, field, "must be a list of non-empty strings")
    return tuple(value)


def _check_unique(entries: Sequence[GlossaryEntry]) -> None:
    seen_keys: set[str] = set()
    # Sphinx stores glossary terms lower-cased, so names that differ only in case collide.
    owner_of_name: dict[str, str] = {}
    for entry in entries:
        if entry.key in seen_keys:
            raise _entry_error(repr(entry.key), "key", "duplicate key")
        seen_keys.add(entry.key)
        for field, name in [("term", entry.term)] + [("aliases", alias) for alias in entry.aliases]:
            owner = owner_of_name.get(name.casefold())
            if owner is not None:
                raise _entry_error(
                    repr(entry.key), field, f"name {name!r} is already used (case-insensitively) by {owner!r}"
                )
            owner_of_name[name.casefold()] = entry.key


def _check_references(entries: Sequence[GlossaryEntry]) -> None:
    keys = {entry.key for entry in entries}
    names = {name.casefold() for entry in entries for name in entry.names}
    for entry in entries:
        for key in entry.see_also:
            if key not in keys or key == entry.key:
                raise _entry_error(repr(entry.key), "see_also", f"{key!r} is not the key of another entry")
        for target in _term_targets(entry.definition):
            if target.casefold() not in names:
                raise _entry_error(repr(entry.key), "definition", f"{{term}} target {target!r} is unknown")


def _term_targets(markdown: str) -> list[str]:
    targets = []
    for content in _TERM_ROLE_PATTERN.findall(markdown):
        explicit = _EXPLICIT_TARGET_PATTERN.search(content)
        targets.append((explicit.group(1) if explicit else content).strip())
    return targets


def _render_entry(entry: GlossaryEntry, by_key: dict[str, GlossaryEntry]) -> str:
    paragraphs = [entry.definition]
    if entry.see_also:
        links = ", ".join(term_role(by_key[key]) for key in entry.see_also)
        paragraphs.append(f"**See also:** {links}.")
    if entry.sources:
        paragraphs.append(f"**Sources:** {'; '.join(entry.sources)}.")
    # Sphinx's glossary takes unindented lines as terms and the indented block below them as the
    # definition, which it parses as MyST after removing the first line's indentation.
    definition = "\n".join(
        _DEFINITION_INDENT + line if line.strip() else "" for line in "\n\n".join(paragraphs).splitlines()
    )
    return "\n".join(entry.names) + "\n" + definition


def _fence_for(definitions: Iterable[str]) -> str:
    """A backtick fence longer than any backtick run inside, so code blocks cannot close it early."""
    longest = max(
        (len(run) for text in definitions for run in _BACKTICK_RUN_PATTERN.findall(text)), default=0
    )
    return "`" * max(3, longest + 1)
