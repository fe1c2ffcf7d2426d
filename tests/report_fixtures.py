"""Hand-made result files with known numbers, for report tests."""

from __future__ import annotations

import json
from pathlib import Path

from harness.core.results import RunResult, Summary, write_result


def write_run(
    runs_dir: Path,
    run_id: str,
    strategy: str,
    *,
    fingerprint: str = "fp-a",
    status: str = "ok",
    error: str | None = None,
    preset: str = "tiny",
    budget_s: float = 60.0,
    changes_math=None,
    gpu: str | None = "NVIDIA H100 80GB HBM3",
    started: str = "2026-11-01T00:00:00+00:00",
    dir_name: str | None = None,
    data: dict | None = None,
    experimental: list | None = None,
    env: dict | None = None,
    **summary,
) -> Path:
    run_dir = runs_dir / (dir_name or run_id)
    run_dir.mkdir(parents=True)
    defaults = {"steps": 10, "tokens": 40960, "train_s": budget_s, "budget_s": budget_s, "floor_loss": 1.3}
    result = RunResult(
        run_id=run_id,
        status=status,
        error=error,
        strategy={
            "name": strategy,
            "parts": strategy.split("+"),
            "changes_math": changes_math,
            "experimental": experimental or [],
        },
        recipe={"preset": preset, "budget_s": budget_s, "data": "synthetic"},
        recipe_fingerprint=fingerprint,
        settings={"micro_batch": summary.pop("micro_batch", 16)},
        environment={"gpu_name": gpu, "python": "3.11", "libraries": {"torch": "2.13.0"}, **(env or {})},
        summary=Summary(**{**defaults, **summary}),
        started_at=started,
        finished_at=started,
        data=data or {},
    )
    write_result(run_dir, result)
    rows = [
        {"kind": "eval", "step": 0, "tokens": 0, "train_s": 0.0, "val_loss": 6.0},
        {
            "kind": "train",
            "step": 5,
            "tokens": 20480,
            "train_s": budget_s / 2,
            "loss": 3.0,
            "lr": 1e-3,
            "tokens_per_s": 1000.0,
        },
        {
            "kind": "eval",
            "step": 10,
            "tokens": 40960,
            "train_s": budget_s,
            "val_loss": summary.get("final_val_loss") or 2.0,
        },
        {
            "kind": "train",
            "step": 10,
            "tokens": 40960,
            "train_s": budget_s,
            "loss": 2.0,
            "lr": 1e-4,
            "tokens_per_s": 1000.0,
        },
    ]
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return run_dir
