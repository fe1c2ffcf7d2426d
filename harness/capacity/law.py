"""The loss side of the answer: L(N, D) = E + A / N^alpha + B / D^beta, the loss a model of N parameters
reaches after D tokens, and how sure the answer is of it.

No law of this recipe on this data is fitted yet, so the answer uses a prior, labelled as one: the
replication's refit of Hoffmann et al.'s approach 3 (Besiroglu et al. 2024, "Chinchilla Scaling: A
Replication Attempt"), with Hoffmann's own estimates beside it. Both were fitted on MassiveText with its
tokenizer: they rank sizes against each other, not this recipe's loss. The prior's band spans both laws
and a quarter of their difference past each (`prior_samples`), so that a verdict that flips between them
shows as uncertain instead of speaking with one law's certainty."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from harness.core.units import format_count


@dataclass(frozen=True)
class Law:
    """One L(N, D), where it came from, and the sizes it was fitted on (beyond them it extrapolates)."""

    E: float
    A: float
    B: float
    alpha: float
    beta: float
    source: str
    fitted_params: tuple[float, float] = (70e6, 16e9)

    def loss(self, params: float, tokens: float) -> float:
        return self.E + self.A / params**self.alpha + self.B / tokens**self.beta

    def optimum(self, compute: float) -> tuple[float, float]:
        """(N, D) of the lowest loss at `compute` FLOPs, C = 6 N D (Hoffmann et al., eq. 4)."""
        a, b = self.alpha, self.beta
        g = (a * self.A / (b * self.B)) ** (1 / (a + b))
        params = g * (compute / 6) ** (b / (a + b))
        return params, compute / 6 / params

    def optimal_tokens(self, params: float) -> float:
        """The tokens at which `params` is the compute-optimal size (the inverse of `optimum`)."""
        a, b = self.alpha, self.beta
        g = (a * self.A / (b * self.B)) ** (1 / (a + b))
        return (params / g) ** ((a + b) / b) / params

    def to_dict(self) -> dict:
        return asdict(self)


HOFFMANN = Law(1.69, 406.4, 410.7, 0.34, 0.28, "Hoffmann et al. 2022, approach 3 (MassiveText)")
REPLICATION = Law(
    1.8172, 482.01, 2085.43, 0.3478, 0.3658,
    "Besiroglu et al. 2024, the replication's refit of Hoffmann's approach 3 (MassiveText)",
)  # fmt: skip
PRIOR = REPLICATION  # the point estimate a verdict states, until a law of this recipe is fitted
PRIOR_SOURCE = (
    f"a prior, not this recipe's law: {REPLICATION.source}; its band spans {HOFFMANN.source} and a quarter "
    "of their difference past each"
)
PRIOR_SPAN = (-0.25, 1.25)  # where between Hoffmann (0) and the replication (1) a drawn law lies


def between(u: float) -> Law:
    """The law a fraction `u` of the way from Hoffmann's to the replication's (E, A, B in logs, so that
    no draw is negative; the exponents linearly)."""
    h, r = HOFFMANN, REPLICATION
    log = lambda x, y: math.exp(math.log(x) + u * (math.log(y) - math.log(x)))  # noqa: E731
    lin = lambda x, y: x + u * (y - x)  # noqa: E731
    return Law(log(h.E, r.E), log(h.A, r.A), log(h.B, r.B), lin(h.alpha, r.alpha), lin(h.beta, r.beta),
               f"{u:.2f} of the way from Hoffmann's law to the replication's")  # fmt: skip


def prior_samples(count: int, seed: int = 0) -> list[Law]:
    """`count` laws drawn uniformly across the prior's span (fixed seed: an answer is reproducible)."""
    rng = np.random.default_rng(seed)
    return [between(float(u)) for u in rng.uniform(*PRIOR_SPAN, size=count)]


@dataclass(frozen=True)
class LawInUse:
    """The law a verdict reads: its central estimate, the laws its odds draw from (a fit's bootstrap
    refits; none for the prior, whose span `prior_samples` draws), where it came from, and the compute
    (6 N D FLOPs) its fitting runs spanned (beyond it a verdict extrapolates)."""

    law: Law
    source: str
    fitted: bool = False
    refits: tuple[Law, ...] = ()
    fitted_compute: tuple[float, float] | None = None

    def samples(self, count: int, seed: int = 0) -> list[Law]:
        """`count` laws for the odds: the prior's span, or the fit's refits drawn with replacement (a fitted
        law without refits: itself, no spread, rather than another law's)."""
        if not self.refits:
            return [self.law] * count if self.fitted else prior_samples(count, seed)
        picks = np.random.default_rng(seed).integers(0, len(self.refits), size=count)
        return [self.refits[i] for i in picks]

    def extrapolation(self, params: float, tokens: float) -> str | None:
        """A note where (params, tokens) lies outside the sizes, or the compute, the law was fitted on."""
        lo, hi = self.law.fitted_params
        notes = []
        if not lo <= params <= hi:
            notes.append(
                f"the law was fitted on models of {format_count(lo)} to {format_count(hi)} parameters"
            )
        if self.fitted_compute is not None and 6 * params * tokens > self.fitted_compute[1]:
            factor = 6 * params * tokens / self.fitted_compute[1]
            notes.append(f"its compute is {factor:.3g}x the largest the fit's runs spent")
        return None if not notes else "; ".join(notes) + ": it extrapolates here"


PRIOR_IN_USE = LawInUse(PRIOR, PRIOR_SOURCE)
