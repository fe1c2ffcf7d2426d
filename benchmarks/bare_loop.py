"""The bare-loop reference: the floor of what the `amp` strategy can cost.

The same model from `harness/` (same preset, same init), the same fused AdamW with the recipe's groups,
bf16 autocast, torch.compile, the same micro-batch and gradient accumulation over the same global batch,
gradient clipping; and nothing else: no training clock, no prefetch thread, no metrics, no evaluation.
One batch of the synthetic corpus is generated up front and reused. Each step is timed with CUDA events
(no host synchronization between steps); the figure is the harness's own statistic, the steady median of
per-step throughput (`harness.metrics.definitions.steady_median`), so that it can be set beside `amp`'s
`steady_tokens_per_s` over the same number of steps. `--device cpu` times with the host clock instead
(a rehearsal of a GPU stage, not a measurement).

    python benchmarks/bare_loop.py --preset gpt2-124m --micro-batch 32 --steps 40 --json out.json

Compare its `tokens_per_s` with the harness's `steady_tokens_per_s` for `amp` at the same micro-batch,
alternating the two (benchmarks/paired_ratio.py).
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.core.errors import UserError
from harness.core.overrides import build_run_config
from harness.data import open_source
from harness.metrics.definitions import steady_median
from harness.metrics.peaks import mfu, peak_tflops
from harness.model import GPT, flops_per_token, param_groups


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="gpt2-124m")
    p.add_argument("--micro-batch", type=int, required=True, help="sequences per micro-batch")
    p.add_argument("--steps", type=int, default=40, help="timed optimizer steps")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (compile, allocator)")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--device", default="cuda", choices=("cuda", "cpu"), help="cpu: a rehearsal only")
    p.add_argument("--json", type=Path, default=None, help="write the figures here too")
    return p.parse_args(argv)


def build(preset: str, micro_batch: int, device: str = "cuda"):
    """Model, optimizer and one global batch, exactly as the recipe and `amp` define them."""
    recipe = build_run_config(strategy="amp", preset=preset).recipe
    seqs = recipe.global_batch_seqs
    if seqs % micro_batch:
        raise ValueError(f"--micro-batch {micro_batch} does not divide the global batch of {seqs} sequences")
    torch.manual_seed(recipe.seed)
    model = GPT(recipe.model).to(device)  # built on the host, as the harness builds it, then moved
    optimizer = torch.optim.AdamW(
        param_groups(model, recipe.weight_decay),
        lr=recipe.lr,
        betas=(recipe.beta1, recipe.beta2),
        eps=recipe.eps,
        fused=True if device == "cuda" else None,  # amp's choice: one kernel on CUDA, foreach elsewhere
    )
    tokens = open_source(recipe).train_batch(0, seqs, recipe.model.seq_len + 1)
    tokens = torch.from_numpy(tokens).long().to(device)
    x, y = tokens[:, :-1].contiguous(), tokens[:, 1:].contiguous()
    batches = list(zip(x.split(micro_batch), y.split(micro_batch), strict=True))
    return recipe, model, optimizer, batches


def train_step(forward, model, optimizer, batches, grad_clip: float, dtype=torch.bfloat16) -> None:
    """One optimizer step over the global batch; `dtype` None runs without autocast (fp32)."""
    for x, y in batches:
        with torch.autocast(x.device.type, dtype=dtype, enabled=dtype is not None):
            loss = forward(x, y)
        (loss / len(batches)).backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def timed_steps(args, recipe, forward, model, optimizer, batches) -> tuple[list[float], float]:
    """Per-step seconds (CUDA events on a GPU, no host synchronization between steps; the host clock on a
    CPU) and the wall seconds of all of them."""
    dtype = _dtype(args.device)
    step = lambda: train_step(forward, model, optimizer, batches, recipe.grad_clip, dtype)  # noqa: E731
    wall0 = time.perf_counter()
    if args.device != "cuda":
        marks = [time.perf_counter()]
        for _ in range(args.steps):
            step()
            marks.append(time.perf_counter())
        return [b - a for a, b in itertools.pairwise(marks)], time.perf_counter() - wall0
    events = [
        (torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
        for _ in range(args.steps)
    ]
    for start, end in events:
        start.record()
        step()
        end.record()
    torch.cuda.synchronize()
    return [start.elapsed_time(end) / 1000 for start, end in events], time.perf_counter() - wall0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print(
            "error: the bare loop measures a CUDA GPU and none is visible (--device cpu rehearses)",
            file=sys.stderr,
        )
        return 2
    try:
        recipe, model, optimizer, batches = build(args.preset, args.micro_batch, args.device)
    except (ValueError, UserError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    forward = torch.compile(model) if args.compile else model
    t0 = time.perf_counter()
    for _ in range(args.warmup):
        train_step(forward, model, optimizer, batches, recipe.grad_clip, dtype=_dtype(args.device))
    if args.device == "cuda":
        torch.cuda.synchronize()
    warmup_s = time.perf_counter() - t0
    step_s, wall_s = timed_steps(args, recipe, forward, model, optimizer, batches)
    tokens_per_step = recipe.global_batch_tokens
    steady_tps = steady_median([tokens_per_step / s for s in step_s])
    name = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    peak, source = peak_tflops(name)
    figures = {
        "preset": args.preset,
        "device": name,
        "torch": torch.__version__,
        "compile": args.compile,
        "micro_batch": args.micro_batch,
        "grad_accum": len(batches),
        "steps": args.steps,
        "warmup_steps": args.warmup,
        "warmup_s": warmup_s,
        "tokens_per_s": steady_tps,  # the harness's steady median of per-step throughput
        "statistic": "steady median of per-step tokens/s (the first 10% of steps dropped), as the harness's",
        "overall_tokens_per_s": tokens_per_step * args.steps / wall_s,
        "step_s": step_s,
        "step_s_min": min(step_s),
        "step_s_median": statistics.median(step_s),
        "step_s_max": max(step_s),
        "mfu": mfu(flops_per_token(recipe.model), steady_tps, peak),
        "peak_tflops": peak,
        "peak_tflops_source": source,
        "peak_allocated_gib": torch.cuda.max_memory_allocated() / 2**30 if args.device == "cuda" else None,
    }
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    mfu_text = "n/a" if figures["mfu"] is None else f"{100 * figures['mfu']:.1f}%"
    print(
        f"bare loop {args.preset} on {name}: {steady_tps:,.0f} tokens/s "
        f"(steady median of {args.steps} steps), "
        f"MFU {mfu_text}, micro-batch {args.micro_batch} x {len(batches)}, compile {args.compile}"
    )
    return 0


def _dtype(device: str):
    """bf16 autocast on a GPU, as `amp`; none on a CPU (amp computes in fp32 there)."""
    return torch.bfloat16 if device == "cuda" else None


if __name__ == "__main__":
    sys.exit(main())
