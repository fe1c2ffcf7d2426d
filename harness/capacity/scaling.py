"""The day's best loss, estimated: tokens a model sees in the budget at a measured speed, against the
compute-optimal ~20 tokens per parameter, and the loss a published scaling law predicts for them.

The law is Hoffmann et al. 2022 ("Training Compute-Optimal Large Language Models"), approach 3:
L(N, D) = E + A / N^alpha + B / D^beta, fitted on MassiveText with its tokenizer. On another corpus and
tokenizer the numbers differ; they say which size/speed trade wins, not what this recipe's loss will be.
"""

from __future__ import annotations

from dataclasses import dataclass

CHINCHILLA_TOKENS_PER_PARAM = 20.0
LAW = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
LAW_FITTED_PARAMS = (70e6, 16e9)  # the sizes of the models the law was fitted on (over 400 of them)
LAW_SOURCE = (
    "Hoffmann et al. 2022, approach 3 (MassiveText): an estimate from another corpus, indicative only"
)


def outside_the_law(params: float) -> str | None:
    """A note when a size lies outside the models the law was fitted on: it extrapolates there."""
    lo, hi = LAW_FITTED_PARAMS
    if lo <= params <= hi:
        return None
    return (
        f"the law was fitted on models of {lo / 1e6:.0f}M to {hi / 1e9:.0f}B parameters: it extrapolates here"
    )


def estimated_loss(params: float, tokens: float) -> float:
    return LAW["E"] + LAW["A"] / params ** LAW["alpha"] + LAW["B"] / tokens ** LAW["beta"]


@dataclass(frozen=True)
class DayOutlook:
    """What one (strategy, size) reaches in the budget; None where no speed was measured."""

    params: int
    budget_s: float
    tokens_per_s: float | None

    @property
    def tokens(self) -> float | None:
        return None if self.tokens_per_s is None else self.tokens_per_s * self.budget_s

    @property
    def tokens_per_param(self) -> float | None:
        return None if self.tokens is None else self.tokens / self.params

    @property
    def estimated_loss(self) -> float | None:
        return None if self.tokens is None else estimated_loss(self.params, self.tokens)

    def to_dict(self) -> dict:
        return {
            "budget_s": self.budget_s,
            "tokens_per_s": self.tokens_per_s,
            "tokens": self.tokens,
            "tokens_per_param": self.tokens_per_param,
            "compute_optimal_tokens": CHINCHILLA_TOKENS_PER_PARAM * self.params,
            "estimated_loss": self.estimated_loss,
            "loss_source": LAW_SOURCE,
            "why_missing": None if self.tokens_per_s is not None else "no measured speed (predict-only)",
        }
