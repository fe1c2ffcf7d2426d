"""The data-source axis: what a token source gives the engine, and what a `--data` scheme must provide.
A source is one file in `harness/data/sources/` and one line in its registry."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import ClassVar, Protocol

import numpy as np

from harness.core.recipe import Recipe

Progress = Callable[[str], None]


class TokenSource(Protocol):
    """Batches by index, so the data order is a pure function of (seed, step): identical across strategies
    and across a resume."""

    def train_batch(self, index: int, n_seqs: int, length: int) -> np.ndarray: ...

    def warmup_batch(self, index: int, n_seqs: int, length: int) -> np.ndarray: ...

    def val_tokens(self, n_seqs: int, length: int) -> np.ndarray: ...

    def floor_loss(self, val_tokens: np.ndarray) -> float | None:
        """The best achievable validation loss, where the generating process is known."""

    def describe(self) -> dict: ...


class DataSource(ABC):
    """One kind of `--data` value (a scheme): how to recognise it, check it in the parent before any run
    starts, and open it as a TokenSource (preparing it once, outside every clock)."""

    scheme: ClassVar[str]
    description: ClassVar[str]
    example: ClassVar[str]

    @classmethod
    def claims(cls, spec: str) -> bool:
        """Whether this `--data` value is this source's: the scheme alone, or `scheme:...`."""
        return spec == cls.scheme or spec.startswith(f"{cls.scheme}:")

    @classmethod
    def validate(cls, spec: str, recipe: Recipe) -> None:
        """Fail fast, in the parent, on a value that cannot work (DataError, one line). Optional."""
        return

    @classmethod
    @abstractmethod
    def open(cls, recipe: Recipe, progress: Progress) -> TokenSource:
        """The recipe's tokens (a real corpus is tokenized and cached on first use)."""
