"""What a comparison says in words, and what its table shows: a sentence per sweep (which strategy was
fastest, which reached the lowest loss, which held the least memory, and by how much), the columns worth
showing (one that no run of the group measured is left out, and named), and the runs each row aggregates
(a row that mixes runs of different commands says so)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from harness.core.units import finite_number
from harness.report.load import LoadedRun
from harness.report.table import Column

# The figures a sweep's sentence speaks of, in order: (better, format, and the ways to say it: key, words,
# unit), the first way with a figure being the one said. Memory is the GPU's where it was measured, else
# the host's.
VERDICT_FIGURES = (
    ("high", ",.0f", (("steady_tokens_per_s", "Fastest", " steady tokens/s"),)),
    ("low", ".4f", (("final_val_loss", "Lowest validation loss", ""),)),
    ("low", ".2f", (("peak_reserved_gib", "Least GPU memory", " GiB reserved"),
                    ("peak_host_rss_gib", "Least host RAM", " GiB"))),
)  # fmt: skip


def shown_columns(table: pd.DataFrame, columns: list[Column]) -> tuple[list[Column], list[str]]:
    """The columns with a figure for at least one strategy; the labels of the others (n/a for every run of
    the group: not measured on this device, or not asked for), which the page names in one line."""
    if table.empty:
        return columns, []
    shown, left_out = [], []
    for col in columns:
        measured = col.key in table and pd.to_numeric(table[col.key], errors="coerce").notna().any()
        if measured:
            shown.append(col)
        else:
            left_out.append(col.label)
    return shown, left_out


def _leader(table: pd.DataFrame, key: str, better: str) -> tuple[str, float, str | None, float | None] | None:
    """The best strategy by `key` among those that finished, its value, and the runner-up's."""
    if table.empty or key not in table:
        return None
    ok = table[table["status"] == "ok"]
    values = {s: finite_number(v) for s, v in ok[key].items()}
    ranked = sorted(((v, s) for s, v in values.items() if v is not None), reverse=better == "high")
    if not ranked:
        return None
    (best, name), runner = ranked[0], ranked[1] if len(ranked) > 1 else (None, None)
    return name, best, runner[1], runner[0]


def _first_said(table: pd.DataFrame, better: str, ways: tuple) -> tuple | None:
    """The first way of saying a figure that the table has a leader for: (words, unit, leader)."""
    for key, words, unit in ways:
        lead = _leader(table, key, better)
        if lead is not None:
            return words, unit, lead
    return None


def sweep_sentence(table: pd.DataFrame) -> str | None:
    """'Fastest: amp (106,416 steady tokens/s; next adam8bit at 0.97x). Lowest validation loss: ...': one
    clause per figure the group measured, each with its runner-up, so the table's story is read before its
    numbers; with one run per strategy, a word on noise."""
    clauses = []
    for better, spec, ways in VERDICT_FIGURES:
        found = _first_said(table, better, ways)
        if found is None:
            continue
        said, unit, (name, best, runner, second) = found
        figure = f"{format(best, spec)}{unit}"
        if runner is None:
            clauses.append(f"{said}: {name} ({figure}; nothing to compare it with).")
        elif better == "high" and best:
            clauses.append(f"{said}: {name} ({figure}; next {runner} at {second / best:.2f}x).")
        else:
            clauses.append(f"{said}: {name} ({figure}; next {runner}, {format(second - best, spec)} more).")
    if not clauses:
        return None
    if "runs" in table and (pd.to_numeric(table["runs"], errors="coerce") <= 1).all():
        clauses.append("One run each: a difference of a few percent may be noise (repeats give spreads).")
    return " ".join(clauses)


def runs_by_row(runs: list[LoadedRun]) -> dict[str, list[LoadedRun]]:
    """The runs each row of the table aggregates (a row per strategy: its finished runs, else all)."""
    rows: dict[str, list[LoadedRun]] = {}
    for run in runs:
        rows.setdefault(run.strategy, []).append(run)
    return {
        name: [r for r in members if r.result.status == "ok"] or members for name, members in rows.items()
    }


def mixed_rows(rows: dict[str, list[LoadedRun]]) -> list[str]:
    """A note for each row whose runs came from different commands (a quick-start `bench` and a sweep's
    repeat, say): the median mixes them, and the reader is told which."""
    notes = []
    for name, members in rows.items():
        commands = {command_of(r) for r in members}
        if len(members) > 1 and len(commands) > 1:
            listed = "; ".join(sorted(commands))
            notes.append(
                f"{name} aggregates {len(members)} runs started by {len(commands)} different commands "
                f"({listed}): its figures are their medians"
            )
    return notes


def command_of(run: LoadedRun) -> str:
    """The harness subcommand that started a run ('harness bench'), else its command line, shortened."""
    words = command_words(run.result.environment.get("command"))
    verb = next((w for w in words if w in ("bench", "sweep", "answer", "capacity", "parity")), None)
    return f"harness {verb}" if verb else " ".join(words)[:60]


def command_words(command: Any) -> list[str]:
    """A recorded command line as a user types it: the entry point's path ('.../harness/__main__.py') as
    `harness`, every word quoted where the shell would need it."""
    import shlex

    words = [str(w) for w in command] if isinstance(command, list) else [str(command or "unknown")]
    if words and words[0].endswith(("__main__.py", "/harness")):
        words[0] = "harness"
    return [words[0], *(shlex.quote(w) for w in words[1:])]
