"""`--data hf:<id>[:<config>]`: a Hugging Face hub dataset, streamed, tokenized once into the cache."""

from __future__ import annotations

from harness.core.errors import DataError
from harness.data.sources.text_source import TextSource
from harness.data.text import CorpusSource


class HubSource(TextSource):
    scheme = "hf"
    description = "a Hugging Face hub dataset, streamed (network needed for the first preparation)"
    example = "hf:HuggingFaceFW/fineweb-edu:sample-10BT"

    @classmethod
    def resolve(cls, spec: str, text_field: str) -> CorpusSource:
        ident, _, config = spec.split(":", 1)[1].partition(":")
        if not ident:
            raise DataError(f"malformed hub dataset {spec!r}: write hf:<id>[:<config>]")
        return CorpusSource(spec, "hub", text_field, ident, config or None)
