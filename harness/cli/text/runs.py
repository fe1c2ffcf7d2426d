"""`harness runs` as a terminal table: each run's state, training clock, ETA, steps and speed."""

from __future__ import annotations

from pathlib import Path

from harness.core.units import format_duration
from harness.orchestrate.runs_state import STATES, RunState


def _clock(state: RunState) -> str:
    if state.train_s is None:
        return "-"
    budget = f" / {format_duration(state.budget_s)}" if state.budget_s else ""
    return f"{format_duration(state.train_s)}{budget}"


def format_states(states: list[RunState], runs_dir: Path) -> str:
    if not states:
        return f"no runs under {runs_dir}"
    header = ("run", "strategy", "state", "training clock", "ETA", "steps", "tokens/s", "detail")
    rows = [
        (
            s.run_id,
            s.strategy,
            s.state,
            _clock(s),
            format_duration(s.eta_s) if s.eta_s is not None else "-",
            str(s.steps) if s.steps is not None else "-",
            f"{s.tokens_per_s:,.0f}" if s.tokens_per_s else "-",
            s.detail,
        )
        for s in states
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1]
        for r in [header, *rows]
    ]
    counts = {name: sum(s.state == name for s in states) for name in STATES}
    lines.append(f"{len(states)} runs: " + ", ".join(f"{n} {name}" for name, n in counts.items() if n))
    return "\n".join(line.rstrip() for line in lines)
