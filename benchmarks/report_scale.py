"""How long `harness report` takes over many runs: N run folders (each a result and a metrics log of a
day-long run's size: 600 logged steps, 50 evaluations), rendered twice, timed with the comparison, the
charts and every run page. Prints the seconds; `--json` keeps them.

    python benchmarks/report_scale.py --runs 300
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

from harness.core.results import RunResult, Summary, write_result
from harness.report import render_report

STRATEGIES = ("amp", "adam8bit", "zero_offload", "act_ckpt")


def write_runs(runs_dir: Path, n: int, steps: int = 600, evals: int = 50) -> None:
    for i in range(n):
        strategy = STRATEGIES[i % len(STRATEGIES)]
        run_dir = runs_dir / f"run-{i:04d}-{strategy}"
        run_dir.mkdir(parents=True)
        speed = 1000.0 * (1 + 0.01 * (i % 7))
        summary = {"steps": steps, "tokens": steps * 4096, "train_s": 86400.0, "budget_s": 86400.0,
                   "tokens_per_s": speed, "steady_tokens_per_s": speed, "final_val_loss": 3.0 + 0.001 * i,
                   "floor_loss": 1.3, "peak_reserved_gib": 20.0}  # fmt: skip
        result = RunResult(
            run_id=run_dir.name, status="ok", error=None,
            strategy={"name": strategy, "parts": [strategy], "changes_math": None, "experimental": []},
            recipe={"preset": "gpt2-124m", "budget_s": 86400.0, "data": "synthetic"},
            recipe_fingerprint="fp-scale", settings={"micro_batch": 16},
            environment={"gpu_name": "NVIDIA H100 80GB HBM3", "python": "3.11"},
            summary=Summary(summary), started_at="2026-12-01T00:00:00+00:00",
            finished_at="2026-12-02T00:00:00+00:00", data={},
        )  # fmt: skip
        write_result(run_dir, result)
        rows = []
        for step in range(1, steps + 1):
            t, loss = 86400.0 * step / steps, 3.0 + 3.0 * math.exp(-step / 100)
            rows.append({"kind": "train", "step": step, "tokens": step * 4096, "train_s": t,
                         "loss": loss, "lr": 3e-4, "tokens_per_s": speed})  # fmt: skip
            if step % (steps // evals) == 0:
                rows.append({"kind": "eval", "step": step, "tokens": step * 4096, "train_s": t,
                             "val_loss": 3.1 + 3.0 * math.exp(-step / 100)})  # fmt: skip
        (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300, help="how many run folders")
    parser.add_argument("--json", type=Path, default=None, help="write the timings here")
    args = parser.parse_args(argv)
    if args.runs < 1:
        print("error: --runs must be at least 1", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        runs_dir = Path(tmp) / "runs"
        write_runs(runs_dir, args.runs)
        seconds = []
        for _ in range(2):
            t0 = time.perf_counter()
            render_report(runs_dir, Path(tmp) / "site" / "index.html")
            seconds.append(time.perf_counter() - t0)
        pages = len(list((Path(tmp) / "site" / "run_pages").iterdir()))
    figures = {
        "runs": args.runs,
        "run_pages": pages,
        "seconds": seconds,
        "per_run_s": min(seconds) / args.runs,
    }
    print(f"{args.runs} runs, {pages} run pages: {seconds[0]:.1f} s, then {seconds[1]:.1f} s "
          f"({figures['per_run_s'] * 1000:.0f} ms per run)")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
