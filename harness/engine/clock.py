"""The training clock: counts training time only, synchronizing the device at every edge."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class TrainingClock:
    """Training seconds, excluding whatever runs inside `excluded(...)` (eval, checkpoints).

    The device is synchronized at each edge so that queued GPU work is charged to the segment that
    launched it. `elapsed_s` may start above zero when a run resumes: the budget is carried across.
    Energy (joules) is accumulated over training segments only, where a counter is available.
    """

    def __init__(
        self,
        sync: Callable[[], None],
        *,
        elapsed_s: float = 0.0,
        energy_mj: Callable[[], float | None] | None = None,
        energy_j: float | None = None,
    ) -> None:
        self._sync = sync
        self._banked_s = elapsed_s
        self._segment_start: float | None = None
        self._last_lap: float | None = None
        self._energy_mj = energy_mj or (lambda: None)
        self._energy_mark: float | None = None
        self.energy_j: float | None = energy_j  # carried from earlier sessions of a resumed run
        self.excluded_s: dict[str, float] = defaultdict(float)

    @property
    def running(self) -> bool:
        return self._segment_start is not None

    @property
    def elapsed_s(self) -> float:
        """Training seconds so far (exact right after `lap`, which synchronizes)."""
        if self._segment_start is None:
            return self._banked_s
        return self._banked_s + time.perf_counter() - self._segment_start

    def start(self) -> None:
        self._sync()
        self._energy_mark = self._energy_mj()
        now = time.perf_counter()
        self._segment_start = self._last_lap = now

    def stop(self) -> None:
        if self._segment_start is None:
            return
        self._sync()
        self._banked_s += time.perf_counter() - self._segment_start
        self._segment_start = None
        reading = self._energy_mj()
        if reading is not None and self._energy_mark is not None:
            self.energy_j = (self.energy_j or 0.0) + (reading - self._energy_mark) / 1000.0

    def lap(self) -> float:
        """Seconds since the previous lap (or since the clock last started), after synchronizing."""
        self._sync()
        now = time.perf_counter()
        duration = now - self._last_lap
        self._last_lap = now
        return duration

    @contextmanager
    def excluded(self, what: str) -> Iterator[None]:
        """Stop the training clock around work that the budget must not count; time it under `what`."""
        was_running = self.running
        self.stop()
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self._sync()
            self.excluded_s[what] += time.perf_counter() - t0
            if was_running:
                self.start()
