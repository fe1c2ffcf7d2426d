"""The terminal summary of a run, written from the metric records: each metric that names a terminal
line is printed on it, with its label and format."""

from __future__ import annotations

from pathlib import Path

from harness.core.results import RunResult
from harness.metrics.definitions import METRICS, TERMINAL_LINES


def _value(value, fmt: str) -> str:
    if value is None:
        return "n/a"
    try:
        return format(value, fmt)
    except (TypeError, ValueError):
        return str(value)


def format_summary(result: RunResult, run_dir: Path | None = None) -> str:
    head = f"{result.strategy.get('name', '?')}: {result.status}" + (
        f" — {result.error}" if result.error else ""
    )
    lines = [head]
    if result.status in ("ok", "interrupted"):
        for line in TERMINAL_LINES:
            items = [
                f"{m.label} {_value(result.summary.get(m.key), m.fmt)}"
                for m in METRICS.values()
                if m.terminal == line
            ]
            if items:
                lines.append(f"  {line:<19}" + ", ".join(items))
        st = result.settings
        lines.append(
            f"  {'settings':<19}micro-batch {st.get('micro_batch')} x {st.get('grad_accum')} accumulation,"
            f" precision {st.get('precision')}, compile {st.get('compile')}"
        )
    if run_dir is not None:
        lines.append(f"  run folder: {run_dir}")
    return "\n".join(lines)
