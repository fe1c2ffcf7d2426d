"""What `harness answer` is asked: the strategies, the budget, the GPU and its memory sizes, the ladder of
sizes, the data, and where its document goes (each field a flag, with its help)."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import strategies
from harness.core.options import INTERNAL_FIELD, check_fields, option
from harness.core.presets import CPU_PRESETS, LADDER
from harness.core.ranges import within
from harness.core.recipe import DEFAULT_BUDGET
from harness.orchestrate.plan import DEFAULT_RUNS_DIR


def default_strategies() -> tuple[str, ...]:
    """The mission's four and the two combinations that reach furthest: what an answer compares by default."""
    return (*strategies.default_sweep(), "adam8bit+act_ckpt", "zero_offload+act_ckpt")


@dataclass(frozen=True)
class AnswerPlan:
    strategies: tuple[str, ...] = field(
        default_factory=default_strategies,
        metadata=option(
            "comma-separated strategies to compare",
            shown_default="the mission's four, adam8bit+act_ckpt, zero_offload+act_ckpt",
        ),
    )
    budget: str = field(
        default=DEFAULT_BUDGET, metadata=option("the training budget, e.g. 24h, 7d", metavar="DURATION")
    )
    gpu_memory_gib: tuple[float, ...] = field(
        default=(),
        metadata=option("memory sizes to answer for, e.g. 24,40,80", shown_default="the GPU's memory"),
    )
    presets: tuple[str, ...] = field(
        default=(),
        metadata=option(
            "the ladder of sizes",
            shown_default=f"on a GPU the GPT family's {len(LADDER)}, on a CPU {','.join(CPU_PRESETS)}",
        ),
    )
    gpu: str | None = field(
        default=None,
        metadata=option(
            "answer for this GPU of the table (measured only if it is the one here; list: name them)"
        ),
    )
    predict_only: bool = field(
        default=False, metadata=option("predict every speed: measure nothing (any machine)")
    )
    host_memory_gib: float | None = field(
        default=None,
        metadata=option("host memory a size may use (default: what is free here; predict-only: no limit)"),
    )
    data: str = field(
        default="synthetic",
        metadata=option("the data: its fitted law (harness fit), its measuring runs and --train read it"),
    )
    fits: Path = field(
        default=Path("reports/fits"), metadata=option("the folder harness fit keeps its laws in")
    )
    train: bool = field(
        default=False,
        metadata=option(
            "then train the likeliest candidates for the budget, each a bench run (the backtest)"
        ),
    )
    top: int = field(
        default=3, metadata=option("how many --train trains: the best, then by P(best)", within(1, 20))
    )
    runs_dir: Path = field(
        default=DEFAULT_RUNS_DIR,
        metadata=option("measured runs to learn speeds from, and --train's run folder"),
    )
    out: Path = field(
        default=Path("reports/answer.json"), metadata=option("the answer document (answer.html beside it)")
    )
    quiet: bool = field(default=False, metadata=option("no live progress display"))
    command: tuple[str, ...] = field(default_factory=lambda: tuple(sys.argv), metadata=INTERNAL_FIELD)

    def __post_init__(self) -> None:
        check_fields(self)

    def ladder(self, kind: str) -> tuple[str, ...]:
        """The sizes to rank: as given, else the GPT family on a GPU, the CPU presets on a CPU."""
        return self.presets or (CPU_PRESETS if kind == "cpu" else LADDER)

    @property
    def measure_dir(self) -> Path:
        return self.out.parent / "answer-runs"
