"""Learning rate as a function of the elapsed fraction of the time budget (not of a step count), so every
strategy anneals fully by its deadline and a faster strategy simply sees more tokens."""

from __future__ import annotations

import math


def lr_at(fraction: float, *, peak: float, warmup_frac: float, min_ratio: float) -> float:
    """Linear warm-up to `peak` over `warmup_frac` of the budget, then cosine decay to peak·min_ratio at 1."""
    fraction = min(max(fraction, 0.0), 1.0)
    floor = peak * min_ratio
    if fraction < warmup_frac:
        return peak * fraction / warmup_frac
    progress = (fraction - warmup_frac) / (1.0 - warmup_frac)
    return floor + (peak - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
