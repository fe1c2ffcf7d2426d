"""Token sources: `synthetic` (embedded, default) or a real corpus, chosen by the `--data` value's scheme.
Each gives batches by index, so the data order is a pure function of (seed, step) and identical across
strategies and across resume."""

from __future__ import annotations

from harness.core.recipe import Recipe
from harness.data.base import Progress, TokenSource
from harness.data.sources import source_for

__all__ = ["TokenSource", "open_source", "validate_source"]


def open_source(recipe: Recipe, *, progress: Progress | None = None) -> TokenSource:
    """The recipe's token source; a real corpus is prepared (tokenized, cached) on first use."""
    return source_for(recipe.data).open(recipe, progress or (lambda _text: None))


def validate_source(recipe: Recipe) -> None:
    """In the parent, before any run: DataError (one line) for a `--data` value that cannot work."""
    source_for(recipe.data).validate(recipe.data, recipe)
