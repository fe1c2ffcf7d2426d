"""Which candidates an answer measures: the ones that decide its verdict. Per strategy, the best by what is
known (measured speeds, else predicted ones), its neighbours on the ladder and the largest size that fits;
where nothing predicts a speed yet (a device of no known peak, and no run of it), the middle size first,
whose run then teaches the throughput model. Never a size the memory model does not fit, never one twice;
and nothing at all for a budget no candidate can spend a step in."""

from __future__ import annotations

from harness.capacity.ranking import Candidate
from harness.core.errors import UserError
from harness.core.presets import get_preset


def to_measure(candidates: list[Candidate], budget_s: float, ladder: list[str]) -> list[Candidate]:
    """The candidates still to measure, smallest first; [] when the verdict rests on measured figures."""
    chosen: list[Candidate] = []
    for name in dict.fromkeys(c.strategy for c in candidates):
        fitting = sorted(
            (c for c in candidates if c.strategy == name and c.fits), key=lambda c: ladder.index(c.preset)
        )
        if not fitting:
            continue
        known = [c for c in fitting if c.loss(budget_s) is not None]
        if not known:
            untried = [c for c in fitting if c.measured is None]
            chosen += untried[len(untried) // 2 : len(untried) // 2 + 1]  # one run to learn the device from
            continue
        i = fitting.index(min(known, key=lambda c: c.loss(budget_s)))
        chosen += [*fitting[max(0, i - 1) : i + 2], fitting[-1]]
    pending = [c for c in {id(c): c for c in chosen}.values() if c.measured is None]
    return sorted(pending, key=lambda c: (ladder.index(c.preset), c.strategy))


def check_budget(budget_s: float, candidates: list[Candidate]) -> None:
    """UserError, before anything is measured, for a budget shorter than one optimizer step of the
    fastest candidate (predicted): no candidate would train at all."""
    steps = [
        get_preset(c.preset).global_batch_tokens / c.speed["value"]
        for c in candidates
        if c.speed and isinstance(c.speed.get("value"), int | float) and c.speed["value"] > 0
    ]
    if steps and budget_s < min(steps):
        raise UserError(
            f"--budget of {budget_s:.3g} s is shorter than one optimizer step of the fastest candidate "
            f"({min(steps):.3g} s predicted): give a budget that trains, e.g. 1h"
        )
