"""A run's result as every reader takes it (the report, the answer's calibrations, `harness runs`): the
fields readers use checked against their schema (a file that fails is skipped, naming the field), each
summary figure against its metric's spec and against physics (`plausible`). A figure that fails is set to
None ("not known") and named, so it is never shown as measured, starred, ranked or learnt from."""

from __future__ import annotations

from pathlib import Path

from harness.core.results import CorruptResult, RunResult, load_result
from harness.core.schema import COUNT, POSITIVE, TEXT, Invalid, Items, Number, Record, check
from harness.metrics.definitions import METRICS
from harness.metrics.plausible import implausible

WHOLE = Number(above=0, integer=True)
MODEL = Record({k: WHOLE for k in ("n_layer", "n_head", "d_model", "seq_len", "vocab_size")})
RESULT = Record(
    {
        "strategy": Record(
            {"name": TEXT, "changes_math": TEXT, "notes": Items(TEXT), "experimental": Items(TEXT)}
        ),
        "recipe": Record(
            {
                "preset": TEXT,
                "model": MODEL,
                "budget_s": POSITIVE,
                "global_batch_tokens": WHOLE,
                "precision": TEXT,
            }
        ),
        "environment": Record({"gpu_name": TEXT, "gpu_memory_gib": POSITIVE, "host_ram_gib": POSITIVE}),
        "settings": Record({"micro_batch": COUNT}),
    }
)


def checked(result: RunResult, origin: str) -> list[str]:
    """Check `result` in place: CorruptResult if a field readers use is malformed; else every figure its
    metric or physics rules out set to None, and one warning per figure naming it and why."""
    try:
        check(RESULT, result.__dict__)
    except Invalid as exc:
        raise CorruptResult(f"{origin}: {exc}") from None
    notes = []
    if result.dropped_figures:
        notes.append(f"{origin}: not finite, read as unknown: {', '.join(result.dropped_figures)}")
    summary = result.summary
    for key, value in list(summary.items()):
        metric = METRICS.get(key)
        if metric is None or value is None:
            continue
        try:
            check(metric.figure_spec(), value, f"summary.{key}")
        except Invalid as exc:
            summary[key] = None
            notes.append(f"{origin}: set aside {exc}")
    for key, why in implausible(summary, result.recipe, result.environment).items():
        if summary.get(key) is not None:
            summary[key] = None
            notes.append(f"{origin}: set aside summary.{key} as impossible: {why}")
    return notes


def read_result(path: Path) -> tuple[RunResult, list[str]]:
    """One result.json, checked: (the result, warnings about figures set aside); CorruptResult (naming the
    file and field) for a file no reader should use."""
    result = load_result(path)
    return result, checked(result, str(path))
