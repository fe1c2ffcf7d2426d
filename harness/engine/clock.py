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
    Energy (joules) is accumulated per part (GPU, host) over training segments only, where a counter is
    available.
    """

    def __init__(
        self,
        sync: Callable[[], None],
        *,
        elapsed_s: float = 0.0,
        energy: dict[str, Callable[[], float | None]] | None = None,
        energy_j: dict[str, float] | None = None,
    ) -> None:
        self._sync = sync
        self._banked_s = elapsed_s
        self._segment_start: float | None = None
        self._last_lap: float | None = None
        self._energy = energy or {}  # part ("gpu", "host") -> a joule counter, None where unreadable
        self._energy_marks: dict[str, float | None] = {}
        self.energy_j: dict[str, float] = dict(energy_j or {})  # per part, earlier attempts included
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
        self._energy_marks = {part: read() for part, read in self._energy.items()}
        now = time.perf_counter()
        self._segment_start = self._last_lap = now

    def stop(self) -> None:
        if self._segment_start is None:
            return
        self._sync()
        self._banked_s += time.perf_counter() - self._segment_start
        self._segment_start = None
        for part, read in self._energy.items():
            reading, mark = read(), self._energy_marks.get(part)
            if reading is not None and mark is not None:
                self.energy_j[part] = self.energy_j.get(part, 0.0) + reading - mark

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
