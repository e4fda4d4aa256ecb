"""Nested mappings (configs, metrics records) as one flat {dotted key: value} view."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def leaves(value: Any, prefix: str = "", *, into_lists: bool = False) -> dict[str, Any]:
    """{"a.b": leaf} for every leaf under value, in its order. A leaf is anything but a non-empty mapping (an
    empty one is a leaf: a key set to {} is still set); lists are leaves too, unless into_lists walks them by
    index ("rows.0.x"). A value that is not a mapping is its own leaf, under prefix."""
    if into_lists and isinstance(value, list | tuple):
        children = enumerate(value)
    elif isinstance(value, Mapping):
        children = value.items()
    else:
        return {prefix: value}
    if prefix and not value:
        return {prefix: value}
    found: dict[str, Any] = {}
    for name, item in children:
        found.update(leaves(item, f"{prefix}.{name}" if prefix else str(name), into_lists=into_lists))
    return found
