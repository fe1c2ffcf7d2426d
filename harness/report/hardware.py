"""Hardware in the report: runs are compared only on the same hardware (one GPU model, one memory cap, or
the CPU); where one recipe ran on several, a strategy x hardware matrix puts each hardware's figures side
by side, so that a reader sees how the ranking moves from a 24 GB card to an H100. And which runs were
measured with other runs beside them on their node."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from harness.core.fingerprints import recipe_fingerprint
from harness.core.results import RunResult
from harness.core.units import finite_number
from harness.metrics.definitions import METRICS

# The matrix's figures: speed, how much of the GPU it used, what it took in memory, what it reached.
MATRIX_KEYS = ("tokens_per_s", "mfu", "peak_allocated_gib", "final_val_loss")


@dataclass(frozen=True)
class Hardware:
    device: str  # the GPU's name, or the CPU's model
    cap_gib: float | None = None  # --gpu-memory-gib: a smaller card emulated on this one
    memory_gib: float | None = field(default=None, compare=False)  # what the card has

    @property
    def label(self) -> str:
        return self.device + (f", capped at {self.cap_gib:g} GiB" if self.cap_gib else "")

    def sort_key(self) -> tuple:
        """Smallest memory first (a capped card counts as its cap), so the matrix reads from the smaller
        cards to the larger; the CPU and unknown sizes last."""
        memory = self.cap_gib or self.memory_gib
        return (math.inf if memory is None else memory, self.device)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def hardware_of(result: RunResult) -> Hardware:
    env = result.environment
    gpu = _text(env.get("gpu_name"))
    device = gpu or f"CPU ({_text(env.get('cpu_model')) or 'unknown model'})"
    memory = finite_number(env.get("gpu_memory_gib")) if gpu else None
    return Hardware(device, finite_number(env.get("gpu_memory_cap_gib")), memory)


def recipe_key(result: RunResult) -> str:
    """The recipe a run trained, whatever the hardware: its fingerprint without the memory cap. Results
    whose recipe or data facts cannot be read keep their own fingerprint, and so their own group."""
    try:
        return recipe_fingerprint(result.recipe, result.data)
    except (AttributeError, TypeError, ValueError):
        return result.recipe_fingerprint


def neighbours_of(result: RunResult) -> list[str]:
    """The strategies of the runs that ran beside this one on its node (as its launcher recorded them)."""
    placement = result.environment.get("placement")
    beside = placement.get("neighbours") if isinstance(placement, dict) else None
    if not isinstance(beside, list):
        return []
    return [str(n.get("strategy", "?")) if isinstance(n, dict) else "?" for n in beside]


@dataclass
class Matrix:
    """One recipe's figures per strategy (rows) and hardware (columns), one table per figure."""

    recipe: dict[str, Any]
    hardware: list[str]
    strategies: list[str]
    metrics: list[tuple[str, str, str, str | None]]  # key, label, format, better
    cells: dict[tuple[str, str, str], float] = field(default_factory=dict)  # (key, strategy, hardware)
    best: set[tuple[str, str, str]] = field(default_factory=set)  # the best of each hardware's column
    shared: set[tuple[str, str]] = field(default_factory=set)  # (strategy, hardware) measured beside others

    def value(self, key: str, strategy: str, hardware: str) -> float | None:
        return self.cells.get((key, strategy, hardware))


def _matrix_metrics() -> list[tuple[str, str, str, str | None]]:
    return [(k, METRICS[k].label, METRICS[k].fmt, METRICS[k].better) for k in MATRIX_KEYS if k in METRICS]


def build_matrix(recipe: dict[str, Any], tables: list[tuple[str, Any]]) -> Matrix:
    """From each hardware's comparison table (label, table with one row per strategy, medians)."""
    strategies = list(dict.fromkeys(s for _, table in tables for s in table.index))
    matrix = Matrix(recipe, [label for label, _ in tables], strategies, _matrix_metrics())
    for hardware, table in tables:
        if "with_neighbours" in table.columns:
            matrix.shared.update((s, hardware) for s in table.index if table.loc[s, "with_neighbours"])
    for key, _label, _fmt, better in matrix.metrics:
        for hardware, table in tables:
            column = {}
            for strategy in table.index:
                value = table.loc[strategy].get(key) if key in table.columns else None
                if isinstance(value, int | float) and math.isfinite(value):
                    column[strategy] = matrix.cells[(key, strategy, hardware)] = float(value)
            if better and column:
                pick = max if better == "high" else min
                top = pick(column.values())
                matrix.best.update((key, s, hardware) for s, v in column.items() if v == top)
    return matrix
