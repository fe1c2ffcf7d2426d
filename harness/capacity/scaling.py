"""The day's best loss, estimated: tokens a model sees in the budget at a measured speed, against the
law's compute-optimal tokens for its size, and the loss the law predicts for them (`law.PRIOR`: a
published law from another corpus and tokenizer, labelled as such; it says which size/speed trade wins,
not what this recipe's loss will be)."""

from __future__ import annotations

from dataclasses import dataclass

from harness.capacity.law import PRIOR, PRIOR_SOURCE

LAW_SOURCE = PRIOR_SOURCE


def estimated_loss(params: float, tokens: float) -> float:
    return PRIOR.loss(params, tokens)


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
            "compute_optimal_tokens": PRIOR.optimal_tokens(self.params),
            "estimated_loss": self.estimated_loss,
            "loss_source": LAW_SOURCE,
            "why_missing": None if self.tokens_per_s is not None else "no measured speed (predict-only)",
        }
