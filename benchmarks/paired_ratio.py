"""The ratio of two programs measured over the same steps and alternated (A B A B ...): the ratio of each
pair, then their median and spread. One pair's ratio carries the machine's drift between two runs; the
spread over the pairs says how far the third digit can be trusted.

    python benchmarks/paired_ratio.py --a-runs RUNS_DIR --a-strategy amp --b bare-1.json bare-2.json

A is a harness strategy (its runs' `steady_tokens_per_s`, in the order they started), B the bare loop
(`tokens_per_s` of each JSON file, in the order given); both use the harness's steady median.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def paired_ratio(a: list[float], b: list[float], steps_a: list[int], steps_b: list[int]) -> dict:
    """A/B per alternated pair (A's i-th run against B's i-th); refused when the pairs did not time the
    same number of steps, or when there is no pair."""
    if not a or len(a) != len(b):
        raise ValueError(f"{len(a)} runs of A and {len(b)} of B: alternate them in pairs (A B A B)")
    if steps_a != steps_b:
        raise ValueError(
            f"the pairs timed different steps ({steps_a} against {steps_b}): time the same steps"
        )
    ratios = [x / y for x, y in zip(a, b, strict=True)]
    return {
        "pairs": len(ratios),
        "ratios": ratios,
        "median": statistics.median(ratios),
        "min": min(ratios),
        "max": max(ratios),
        "a_tokens_per_s": a,
        "b_tokens_per_s": b,
        "steps": steps_a,
    }


def harness_runs(runs_dir: Path, strategy: str) -> tuple[list[float], list[int]]:
    """The steady tokens/s and timed steps of every finished run of `strategy`, in the order they started."""
    found = []
    for path in Path(runs_dir).glob("*/result.json"):
        result = json.loads(path.read_text())
        if result["strategy"]["name"] == strategy and result["status"] == "ok":
            found.append((result["started_at"], result["summary"]))
    found.sort(key=lambda item: item[0])
    return [s["steady_tokens_per_s"] for _, s in found], [s["timed_steps"] for _, s in found]


def bare_runs(paths: list[Path]) -> tuple[list[float], list[int]]:
    figures = [json.loads(Path(p).read_text()) for p in paths]
    return [f["tokens_per_s"] for f in figures], [f["steps"] for f in figures]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--a-runs", type=Path, required=True, help="the runs folder of A's harness runs")
    p.add_argument("--a-strategy", default="amp")
    p.add_argument("--b", type=Path, nargs="+", required=True, help="B's bare-loop JSON files, in order")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    try:
        figures = paired_ratio(*_values(args))
    except (ValueError, OSError, KeyError, json.JSONDecodeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    print(
        f"{args.a_strategy} / bare loop: {figures['median']:.3f} (median of {figures['pairs']} alternated "
        f"pairs of {figures['steps'][0]} steps; {figures['min']:.3f} - {figures['max']:.3f})"
    )
    return 0


def _values(args: argparse.Namespace) -> tuple[list[float], list[float], list[int], list[int]]:
    a, steps_a = harness_runs(args.a_runs, args.a_strategy)
    b, steps_b = bare_runs(args.b)
    return a, b, steps_a, steps_b


if __name__ == "__main__":
    sys.exit(main())
