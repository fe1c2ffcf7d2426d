"""Data sources by scheme, tried in order: the first that claims a `--data` value opens it. Adding one is
a `DataSource` subclass in this folder and one line here (before `file`, which claims any path)."""

from __future__ import annotations

from harness.data.base import DataSource
from harness.data.sources.hub import HubSource
from harness.data.sources.local import LocalSource
from harness.data.sources.synthetic import SyntheticSource

SOURCES: dict[str, type[DataSource]] = {
    "synthetic": SyntheticSource,
    "hf": HubSource,
    "file": LocalSource,
}


def register(source: type[DataSource]) -> type[DataSource]:
    """Add a source ahead of the path fallback (`file`), keeping the registry's order otherwise."""
    items = [(k, v) for k, v in SOURCES.items() if k != "file"]
    SOURCES.clear()
    SOURCES.update([*items, (source.scheme, source), ("file", LocalSource)])
    return source


def source_for(spec: str) -> type[DataSource]:
    return next(source for source in SOURCES.values() if source.claims(spec))
