"""The shared part of every source of real text: resolved into a CorpusSource, tokenized once into the
cache, opened from it."""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import replace

from harness.core.recipe import Recipe
from harness.data.base import DataSource, Progress, TokenSource
from harness.data.text import CorpusSource


class TextSource(DataSource):
    """A source of real text: resolved into a CorpusSource, tokenized once into the cache, opened from it."""

    @classmethod
    @abstractmethod
    def resolve(cls, spec: str, text_field: str) -> CorpusSource:
        """The `--data` value as a corpus; DataError (one line) for anything that cannot be one."""

    @classmethod
    def validate(cls, spec: str, recipe: Recipe) -> None:
        cls.resolve(spec, recipe.text_field)

    @classmethod
    def open(cls, recipe: Recipe, progress: Progress) -> TokenSource:
        from harness.data.corpus import open_corpus  # tokenizers and datasets load only when used

        source = replace(cls.resolve(recipe.data, recipe.text_field), doc_separator=recipe.doc_separator)
        return open_corpus(recipe, source, progress=progress)
