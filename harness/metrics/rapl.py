"""Host energy from Linux RAPL (Running Average Power Limit) counters under /sys/class/powercap.

What is counted: every CPU package (`intel-rapl:N`, named `package-N`; on AMD the same files) and every
DRAM domain (`intel-rapl:N:M` named `dram`, which the package counter does not include). Core and uncore
domains are parts of their package and `psys` (the whole platform) overlaps all of them, so neither is
added. The counters cover the whole machine, not this run alone, and most kernels let only root read
them (`energy_uj` is mode 0400 since the 2020 RAPL side-channel fix): then there is no host figure and the
report says "GPU only".

Each counter wraps at its `max_energy_range_uj` (a few hundred kJ: minutes at full load), so the meter is
polled by the resource sampler (every 0.1 s) and adds each step of each counter modulo that range.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

POWERCAP = Path("/sys/class/powercap")


@dataclass
class _Counter:
    path: Path  # the domain's energy_uj
    range_uj: int  # where it wraps to 0
    last_uj: int


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _domains(root: Path) -> list[Path]:
    """The package and DRAM domains under `root`, each once."""
    chosen = []
    for zone in sorted(root.glob("intel-rapl:*")):
        try:
            name = (zone / "name").read_text().strip()
        except OSError:
            continue
        top = zone.name.count(":") == 1
        if (top and name.startswith("package")) or (not top and name == "dram"):
            chosen.append(zone)
    return chosen


class RaplMeter:
    """Joules used by the host's CPU packages and DRAM since the meter was made, or None where the
    counters are absent or unreadable."""

    def __init__(self, root: Path = POWERCAP) -> None:
        self._lock = threading.Lock()
        self._counters: list[_Counter] = []
        self._total_uj = 0
        for zone in _domains(root):
            now, top = _read_int(zone / "energy_uj"), _read_int(zone / "max_energy_range_uj")
            if now is not None and top:
                self._counters.append(_Counter(zone / "energy_uj", top, now))

    @property
    def available(self) -> bool:
        return bool(self._counters)

    @property
    def domains(self) -> list[str]:
        return [c.path.parent.name for c in self._counters]

    def poll(self) -> None:
        """Add what each counter moved since the last poll (modulo its range: it may have wrapped once)."""
        with self._lock:
            for counter in self._counters:
                now = _read_int(counter.path)
                if now is None:
                    continue
                self._total_uj += (now - counter.last_uj) % counter.range_uj
                counter.last_uj = now

    def joules(self) -> float | None:
        if not self._counters:
            return None
        self.poll()
        return self._total_uj / 1e6
