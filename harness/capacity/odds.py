"""How sure a verdict is: each candidate's estimated loss as an interval, and its chance of being the best,
from joint draws of the loss law (the prior's span, or a fitted law's bootstrap refits) and of each
candidate's speed (its own band: a measured speed's is narrow, a predicted one's wide). Every draw ranks
the candidates; a candidate's P(best) is the share of draws it wins. Fixed seeds: the same inputs give the
same odds."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from harness.capacity.law import PRIOR_IN_USE, LawInUse

DRAWS = 2000
# The relative error that holds 90% of a speed's draws. A measuring run times few steps, so its spread is
# stated, not measured; a prediction carries its model's error (the CPU ladder's check bounds it at 15%).
SPEED_BAND = {"measured": 0.03, "predicted": 0.15}
CONTENDER = 0.10  # P(best) from which a candidate is named beside the best
Z90 = 1.645  # a normal's 90% half-width in standard deviations


@dataclass(frozen=True)
class Odds:
    """One candidate's odds: P(best), and the 5th and 95th percentiles of its estimated loss."""

    p_best: float
    low: float
    high: float


def speed_band(speed: dict) -> float:
    return SPEED_BAND["measured" if speed.get("source") == "measured" else "predicted"]


def speed_factors(band: float, draws: int, rng: np.random.Generator) -> np.ndarray:
    """Draws of a speed's error as a factor: lognormal, 90% of them within [1/(1+band), 1+band]."""
    return np.exp(rng.normal(0.0, math.log1p(band) / Z90, size=draws))


def odds(
    entries: list[tuple[float, float, float]], draws: int = DRAWS, seed: int = 0, law: LawInUse = PRIOR_IN_USE
) -> list[Odds]:
    """The odds of each (params, tokens, band) entry: `tokens` at its speed's central value, `band` the
    relative error that holds 90% of its speed; the law drawn from `law` (the prior's span, or a fit's
    refits). An exact tie in a draw (two candidates of one size at one speed) goes to the first listed."""
    if not entries:
        return []
    laws = law.samples(draws, seed)
    E, A, B, alpha, beta = (
        np.array([getattr(law, k) for law in laws]) for k in ("E", "A", "B", "alpha", "beta")
    )
    rng = np.random.default_rng(seed + 1)
    losses = np.empty((draws, len(entries)))
    for j, (params, tokens, band) in enumerate(entries):
        losses[:, j] = E + A / params**alpha + B / (tokens * speed_factors(band, draws, rng)) ** beta
    counts = np.bincount(np.argmin(losses, axis=1), minlength=len(entries))
    low, high = np.percentile(losses, [5, 95], axis=0)
    return [Odds(float(counts[j] / draws), float(low[j]), float(high[j])) for j in range(len(entries))]
