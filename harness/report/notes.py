"""What a comparison says beside its table: a budget shorter than the question's day, what each strategy
changes or has not yet proven, how validation was held out, repeated data, slow data, neighbours on the
node, and energy that covers the GPU only."""

from __future__ import annotations

from harness.core.units import format_duration
from harness.report.hardware import neighbours_of
from harness.report.load import LoadedRun

ONE_DAY_S = 86400.0


def _holdout_note(run) -> str | None:
    """How validation was held out, when it is not the recipe's whole documents."""
    data = run.result.data
    holdout, val = data.get("holdout"), data.get("val_tokens", "?")
    if holdout == "tail":
        return (
            f"{run.strategy}: the corpus has too few documents to hold out whole ones, so validation is "
            f"the last {val} tokens of its stream."
        )
    if holdout == "documents+tail":
        return (
            f"{run.strategy}: the held-out documents were too few tokens for one evaluation, so the "
            f"training stream's last {data.get('holdout_extended_tokens', '?')} tokens were held out too "
            f"({val} in all)."
        )
    return None


def group_notes(recipe: dict, runs: list[LoadedRun]) -> list[str]:
    """The notes of one comparison: its recipe and its runs."""
    notes = []
    budget = recipe.get("budget_s")
    if isinstance(budget, int | float) and budget < ONE_DAY_S:
        notes.append(
            f"The budget ({format_duration(budget)}) is shorter than the one day of the question: "
            "setup-like costs weigh more and the ranking at 24 h can differ."
        )
    for run in runs:
        said = [run.result.strategy.get("changes_math"), *(run.result.strategy.get("notes") or [])]
        experimental = run.result.strategy.get("experimental") or []
        if experimental:
            said.append(
                f"experimental ({', '.join(experimental)}): its CUDA path has not yet passed its GPU tests "
                "on a real GPU"
            )
        for text in filter(None, said):
            note = f"{run.strategy}: {text}."
            if note not in notes:  # once per strategy, however many repeats
                notes.append(note)
    for run in runs:
        s = run.result.summary
        note = _holdout_note(run)
        if note and note not in notes:
            notes.append(note)
        if s.epochs is not None and s.epochs > 1:
            notes.append(
                f"{run.strategy} ({run.result.run_id}) repeated data: {s.epochs:.2f} epochs of the corpus."
            )
        if s.data_tokens_per_s and s.tokens_per_s and s.data_tokens_per_s < 10 * s.tokens_per_s:
            notes.append(
                f"{run.strategy} ({run.result.run_id}): data arrived at {s.data_tokens_per_s:,.0f} tokens/s,"
                f" less than 10x training ({s.tokens_per_s:,.0f}); data may have slowed it."
            )
    notes.extend(_neighbour_notes(runs))
    notes.extend(_energy_notes(runs))
    return notes


def _energy_notes(runs: list[LoadedRun]) -> list[str]:
    """Energy figures say what they cover: a run whose host counters could not be read is GPU only."""
    gpu_only = [
        r.strategy
        for r in runs
        if r.result.status == "ok"
        and r.result.summary.get("energy_j") is not None
        and r.result.summary.get("host_energy_j") is None
    ]
    if not gpu_only:
        return []
    return [
        f"J/token of {', '.join(dict.fromkeys(gpu_only))} is GPU only: the host's energy counters (RAPL, "
        "/sys/class/powercap) could not be read, so CPU work such as an offloaded optimizer step is not "
        "in it and no energy column is marked best."
    ]


def _neighbour_notes(runs: list[LoadedRun]) -> list[str]:
    """Figures measured while other runs shared the node (its CPU, memory bandwidth, PCIe) say so."""
    notes = []
    for strategy in dict.fromkeys(r.strategy for r in runs):
        own = [r for r in runs if r.strategy == strategy and r.result.status == "ok"]
        shared = [r for r in own if neighbours_of(r.result)]
        if shared:
            beside = sorted({n for r in shared for n in neighbours_of(r.result)})
            notes.append(
                f"{strategy}: {len(shared)} of {len(own)} runs were measured with other runs beside it on "
                f"the node ({', '.join(beside)}); they shared its CPU, memory bandwidth and PCIe (‡)."
            )
    return notes
