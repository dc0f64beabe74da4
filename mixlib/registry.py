"""A tiny name -> factory registry, in the spirit of timm's model registry.

Every pluggable family (datasets, mixing methods, CAM methods, ...) keeps one `Registry`, so a
configuration names a component by string and an unknown name fails early with the allowed values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(entry: T) -> T:
            if name in self._entries:
                raise KeyError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = entry
            return entry

        return add

    def get(self, name: str, parameter: str | None = None) -> T:
        if name not in self._entries:
            raise ValueError(
                f"unknown {parameter or self.kind} {name!r}; allowed values: {', '.join(self.names())}"
            )
        return self._entries[name]

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
