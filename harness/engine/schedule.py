"""Learning rate as a function of the elapsed fraction of the time budget (not of a step count), so every
strategy anneals fully by its deadline and a faster strategy simply sees more tokens."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

# A step's expected time is the median of the last few steps' times: one slow step does not move it.
RECENT_STEPS = 5


def lr_at(fraction: float, *, peak: float, warmup_frac: float, min_ratio: float) -> float:
    """Linear warm-up to `peak` over `warmup_frac` of the budget, then cosine decay to peak·min_ratio at 1."""
    fraction = min(max(fraction, 0.0), 1.0)
    floor = peak * min_ratio
    if fraction < warmup_frac:
        return peak * fraction / warmup_frac
    progress = (fraction - warmup_frac) / (1.0 - warmup_frac)
    return floor + (peak - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def budget_fraction(previous: float, train_s: float, step_times_s: Sequence[float], budget_s: float) -> float:
    """The fraction of the budget a step's learning rate is read at: where the step is expected to end (the
    training clock now, plus the median time of the last few steps), and never before the previous step's.
    So after warm-up the rate never goes back up, whatever the step times, and the last step before the
    deadline (expected to end at or past it) sits at the floor."""
    recent = step_times_s[-RECENT_STEPS:]
    expected_s = statistics.median(recent) if recent else 0.0
    return max(previous, (train_s + expected_s) / budget_s)
