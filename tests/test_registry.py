import pytest

from mixlib.registry import Registry


def test_registry_returns_entries_and_lists_allowed_values_on_error():
    registry: Registry = Registry("widget")
    registry.register("b")(2)
    registry.register("a")(1)
    assert registry.get("a") == 1
    assert registry.names() == ["a", "b"]
    with pytest.raises(ValueError, match=r"unknown colour 'c'; allowed values: a, b"):
        registry.get("c", "colour")


def test_registry_refuses_duplicates():
    registry: Registry = Registry("widget")
    registry.register("a")(1)
    with pytest.raises(KeyError, match="twice"):
        registry.register("a")(2)
