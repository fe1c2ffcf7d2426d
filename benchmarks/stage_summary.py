"""The table a reference stage ends with (benchmarks/reference.sh), from the files its steps left: each run's
figures beside `amp`'s, the bare loop paired with `amp` over the same steps, the memory model's prediction
beside each measured peak, the capacity table, and what the stage's deadline left undone.

    python benchmarks/stage_summary.py WORK_DIR STAGE
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.paired_ratio import bare_runs, harness_runs, paired_ratio

GIB = 2**30
COLUMNS = ("run", "status", "steps", "steady tok/s", "vs amp", "MFU", "micro", "alloc GiB", "reserved GiB",
           "predicted GiB", "host GiB")  # fmt: skip


def _num(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _results(runs_dir: Path) -> list[dict]:
    found = []
    for path in sorted(runs_dir.glob("*/result.json")):
        try:
            found.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            found.append({"run_id": path.parent.name, "status": "unreadable", "strategy": {"name": "?"}})
    return sorted(found, key=lambda r: r.get("started_at") or "")


def run_rows(results: list[dict]) -> list[list[str]]:
    amp = [r["summary"]["steady_tokens_per_s"] for r in results if r["strategy"]["name"] == "amp"
           and r["status"] == "ok" and r["summary"].get("steady_tokens_per_s")]  # fmt: skip
    baseline = statistics.median(amp) if amp else None
    rows = []
    for r in results:
        s, settings = r.get("summary") or {}, r.get("settings") or {}
        tps = s.get("steady_tokens_per_s")
        predicted = (settings.get("memory_prediction") or {}).get("gpu_bytes")
        rows.append([
            r["strategy"]["name"], r["status"], _num(s.get("steps"), "d"), _num(tps, ",.0f"),
            _num(tps / baseline if tps and baseline else None, ".3f"), _num(s.get("mfu"), ".1%"),
            f"{settings.get('micro_batch', '-')} x {settings.get('grad_accum', '-')}",
            _num(s.get("peak_allocated_gib"), ".2f"), _num(s.get("peak_reserved_gib"), ".2f"),
            _num(None if predicted is None else predicted / GIB, ".2f"),
            _num(s.get("peak_host_rss_gib"), ".2f"),
        ])  # fmt: skip
    return rows


def table(rows: list[list[str]]) -> str:
    widths = [max(len(str(c)) for c in column) for column in zip(COLUMNS, *rows, strict=True)]
    lines = [
        " | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) for row in (COLUMNS, *rows)
    ]
    return "\n".join(line.rstrip() for line in lines)


def bare_line(work: Path) -> list[str]:
    files = sorted(work.glob("bare-*.json"))
    if not files:
        return []
    lines = []
    for path in files:
        f = json.loads(path.read_text())
        mfu = "-" if f.get("mfu") is None else f"{f['mfu']:.1%}"
        lines.append(f"{path.stem}: {f['tokens_per_s']:,.0f} tokens/s over {f['steps']} steps, MFU {mfu}")
    (amp, amp_steps), (bare, bare_steps) = harness_runs(work / "runs", "amp"), bare_runs(files)
    try:
        figures = paired_ratio(amp, bare, amp_steps, bare_steps)
    except ValueError as exc:
        return [*lines, f"amp / bare loop: not paired ({exc})"]
    ratios = ", ".join(f"{x:.3f}" for x in figures["ratios"])
    head = f"amp / bare loop: {figures['median']:.3f}, spread {figures['min']:.3f} - {figures['max']:.3f}"
    return [*lines, f"{head} ({figures['pairs']} alternated pairs of {figures['steps'][0]} steps: {ratios})"]


def summary(work: Path, stage: str) -> str:
    parts = [f"stage {stage}"]
    results = _results(work / "runs") if (work / "runs").is_dir() else []
    if results:
        parts.append(table(run_rows(results)))
    parts += bare_line(work)
    capacity = work / "capacity.json"
    if capacity.exists():
        from harness.cli.text.capacity import format_capacity

        parts.append(format_capacity(json.loads(capacity.read_text())))
    answer = work / "answer.json"
    if answer.exists():
        from harness.cli.text.answer import format_answer, format_prediction_check

        document = json.loads(answer.read_text())
        parts += [format_answer(document), format_prediction_check(document)]
    skipped = work / "skipped.txt"
    if skipped.exists():
        parts.append("not run (the stage's deadline came first): " + ", ".join(skipped.read_text().split()))
    return "\n".join(parts)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print("error: usage: python benchmarks/stage_summary.py WORK_DIR STAGE", file=sys.stderr)
        sys.exit(2)
    print(summary(Path(sys.argv[1]), sys.argv[2]))
