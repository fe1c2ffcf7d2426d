"""Lines, and the stop, within the untimed phases of a run's setup: the fit's probes and the warm-up's
micro-batches. A CPU step of a big preset is minutes of micro-batches, which would otherwise pass without
a word after "warmup 2 steps"; and a stop asked then ends the run at once, since nothing is trained yet."""

from __future__ import annotations

import time
from collections.abc import Callable

from harness.core import stopping
from harness.engine.events import EventPipe

WARMUP_LINE_EVERY_S = 5.0  # at most one warm-up line this often (the parent prints each)


class Announced(list):
    """A step's micro-batches, as the strategy takes them: each one taken is announced first."""

    def __init__(self, items: list, on_take: Callable[[int], None]) -> None:
        super().__init__(items)
        self._on_take = on_take

    def __iter__(self):
        for index, item in enumerate(super().__iter__()):
            self._on_take(index)
            yield item


class WarmupProgress:
    """A warm-up line at most every `every_s` (step, micro-batch, seconds so far); the stop looked at
    before each micro-batch."""

    def __init__(self, events: EventPipe, steps: int, t0: float, every_s: float | None = None, clock=None):
        self.events, self.steps, self.clock = events, steps, clock or time.perf_counter
        self.every_s = WARMUP_LINE_EVERY_S if every_s is None else every_s
        self.t0 = self.last = t0

    def announced(self, step: int, batches: list) -> Announced:
        return Announced(batches, lambda index: self._take(step, index, len(batches)))

    def _take(self, step: int, index: int, count: int) -> None:
        stopping.check("warming up")
        now = self.clock()
        if now - self.last >= self.every_s:
            self.last = now
            detail = f"step {step + 1}/{self.steps}, micro-batch {index + 1}/{count}, {now - self.t0:.0f}s"
            self.events.emit("phase", phase="warmup", detail=detail)


def announced_probe(events: EventPipe, run_step: Callable[[int, bool], None]) -> Callable[[int, bool], None]:
    """Each fit probe (a real step of a fresh model) says which micro-batch it tries, after a look at the
    stop."""

    def probe(micro_batch: int, compiled: bool) -> None:
        stopping.check("fitting the micro-batch")
        kind = "compiled" if compiled else "eager"
        events.emit("phase", phase="fit", detail=f"trying micro-batch {micro_batch} ({kind})")
        run_step(micro_batch, compiled)

    return probe
