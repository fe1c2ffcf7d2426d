"""`--data synthetic`: the embedded generative process with an exact Bayes-optimal floor."""

from __future__ import annotations

from harness.core.errors import DataError
from harness.core.recipe import Recipe
from harness.data.base import DataSource, Progress, TokenSource


class SyntheticSource(DataSource):
    scheme = "synthetic"
    description = "an infinite seeded token stream with long-range structure and a known loss floor"
    example = "synthetic"

    @classmethod
    def validate(cls, spec: str, recipe: Recipe) -> None:
        if recipe.tokenizer:
            raise DataError(
                "--tokenizer applies to a real corpus; the synthetic data has its own vocabulary: drop it, "
                "or give --data a corpus"
            )

    @classmethod
    def open(cls, recipe: Recipe, progress: Progress) -> TokenSource:
        from harness.data.synthetic import SyntheticProcess, SyntheticSpec

        spec = SyntheticSpec.for_model(recipe.model.vocab_size, recipe.model.seq_len)
        return SyntheticProcess(spec, recipe.seed)
