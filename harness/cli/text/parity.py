"""A parity check as a terminal table: each strategy's loss curve against the baseline's, with its bound."""

from __future__ import annotations

from harness.orchestrate.parity import ParityOutcome


def format_parity(outcome: ParityOutcome) -> str:
    lines = [f"{'strategy':<24} {'status':<11} {'max rel diff':>13} {'final':>10} {'bound':>8}  verdict"]
    for i, row in enumerate(outcome.rows):
        verdict = {True: "within", False: "OUTSIDE", None: "baseline" if i == 0 else "n/a"}
        lines.append(
            f"{row.strategy:<24} {row.status:<11} {_num(row.max_rel_diff):>13} {_num(row.final_rel_diff):>10}"
            f" {_num(row.bound):>8}  {verdict[row.within_bound]}" + (f" ({row.error})" if row.error else "")
        )
    return "\n".join(lines)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.2e}"
