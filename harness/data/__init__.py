"""Token sources: `synthetic` (embedded, default) or a real corpus. Each gives batches by index, so the
data order is a pure function of (seed, step) and identical across strategies and across resume."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from harness.config import Recipe


class TokenSource(Protocol):
    def train_batch(self, index: int, n_seqs: int, length: int) -> np.ndarray: ...

    def warmup_batch(self, index: int, n_seqs: int, length: int) -> np.ndarray: ...

    def val_tokens(self, n_seqs: int, length: int) -> np.ndarray: ...

    def floor_loss(self, val_tokens: np.ndarray) -> float | None:
        """The best achievable validation loss, where the generating process is known."""

    def describe(self) -> dict: ...


def open_source(recipe: Recipe, *, progress=None) -> TokenSource:
    """The recipe's token source; a real corpus is prepared (tokenized, cached) on first use."""
    if recipe.data == "synthetic":
        from harness.data.synthetic import SyntheticProcess, SyntheticSpec

        spec = SyntheticSpec.for_model(recipe.model.vocab_size, recipe.model.seq_len)
        return SyntheticProcess(spec, recipe.seed)
    from harness.data.corpus import open_corpus

    return open_corpus(recipe, progress=progress)
