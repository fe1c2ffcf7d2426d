"""Where one optimizer step's time goes, for any strategy: the harness's own step under torch.profiler.

The run is set up exactly as `harness bench` sets it up (same resolution, fit, strategy build and warm-up),
then a few global-batch steps run under the profiler with the device synchronized at each step's edges.
The output is a chrome trace (open it in chrome://tracing or Perfetto) and a table of the step's time by
kind: matrix multiplies, attention, compiled fused kernels, the loss, the optimizer on the device and on
the host, device<->host copies, other kernels, and the device's idle time within the step.

    python benchmarks/profile_step.py --strategy zero_offload --preset gpt2-124m --out profile/

On a GPU the categories are CUDA kernel times (and a strategy's optimizer step on the host, while the GPU
waits); on a CPU they are the operators' own (self) times. A kernel's name decides its category (see
CATEGORIES); what no rule names is "other kernels", listed by name in `top` so that a rule can be added.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from strategies.step_helpers import HOST_OPTIMIZER_STEP

# First match wins. Device kernel names (cuBLAS/CUTLASS/nvjet GEMMs, flash attention, Triton, bitsandbytes,
# multi-tensor Adam, memcpy) and CPU operator names both go through the same rules.
CATEGORIES: tuple[tuple[str, str], ...] = (
    ("copy device->host", r"memcpy dtoh|memcpy.*device -> (pinned|pageable)"),
    ("copy host->device", r"memcpy htod|memcpy.*(pinned|pageable) -> device"),
    ("copy on device", r"^memcpy|^memset|^aten::copy_$|^aten::_to_copy$"),
    ("attention", r"flash|fmha|attention|sdpa|scaled_dot_product"),
    ("optimizer (host)", rf"^{HOST_OPTIMIZER_STEP}$"),
    ("optimizer", r"adam|multi_tensor|foreach|koptimizer|optimizer"),
    ("loss", r"cross_entropy|nll_loss|log_softmax|liger"),
    ("layer norm", r"layer_norm|layernorm"),
    ("matmul", r"gemm|matmul|cutlass|xmma|nvjet|cublas|wgmma|^aten::(mm|addmm|bmm|linear)$|_scaled_mm"),
    ("fused kernels (compiled)", r"^triton_|^cpp_fused|^graph_\d+_cpp_fused"),
)
_RULES = tuple((name, re.compile(pattern, re.IGNORECASE)) for name, pattern in CATEGORIES)
OTHER = "other kernels"


def category(name: str) -> str:
    for label, rule in _RULES:
        if rule.search(name):
            return label
    return OTHER


@dataclass(frozen=True)
class Timed:
    """One profiled event, reduced to what the breakdown needs (times in microseconds)."""

    name: str
    on_device: bool  # a device kernel or copy; else a host operator
    start_us: float
    duration_us: float  # a kernel's duration; a host operator's self time


def busy_us(events: Iterable[Timed]) -> float:
    """Time covered by at least one device event (overlapping kernels on several streams count once)."""
    spans = sorted((e.start_us, e.start_us + e.duration_us) for e in events if e.on_device)
    total, end = 0.0, float("-inf")
    for start, stop in spans:
        if stop <= end:
            continue
        total += stop - max(start, end)
        end = stop
    return total


def breakdown(events: list[Timed], steps: int, step_s: float, on_device: bool, top: int = 15) -> dict:
    """Seconds per step by category and the largest names. With a device, device events make the categories
    (host operators only for the host optimizer, which the device waits on); without one, host self times."""
    per_category: dict[str, float] = defaultdict(float)
    per_name: dict[str, float] = defaultdict(float)
    for e in events:
        label = category(e.name)
        if on_device and not e.on_device and label != "optimizer (host)":
            continue  # host operators only launch what the device runs; its kernels carry the time
        per_category[label] += e.duration_us / 1e6 / steps
        per_name[e.name] += e.duration_us / 1e6 / steps
    figures: dict = {
        "step_s": step_s,
        "categories_s": dict(sorted(per_category.items(), key=lambda kv: -kv[1])),
    }
    if on_device:
        busy = busy_us(events) / 1e6 / steps
        figures["device_busy_s"] = busy
        figures["device_idle_s"] = max(step_s - busy, 0.0)
    else:  # Python, the autograd engine's bookkeeping, waits: the step's time outside every operator
        figures["outside_operators_s"] = max(step_s - sum(per_category.values()), 0.0)
    figures["shares"] = {k: v / step_s for k, v in figures["categories_s"].items()} if step_s > 0 else {}
    ranked = sorted(per_name.items(), key=lambda kv: -kv[1])[:top]
    figures["top"] = [{"name": n[:160], "category": category(n), "s_per_step": s} for n, s in ranked]
    return figures


def collected(prof, on_device: bool) -> list[Timed]:
    """The profiler's events as Timed: device kernels and copies with their durations, host operators with
    their self time (so nested operators are not counted twice). With a device, a strategy's host optimizer
    step counts whole (CPU Adam and the copies it waits on: the device's kernels do not show that time)."""
    out = []
    for e in prof.events():
        if e.device_type == torch.autograd.DeviceType.CUDA:
            out.append(Timed(e.name, True, e.time_range.start, e.time_range.elapsed_us()))
        elif on_device and e.name == HOST_OPTIMIZER_STEP:
            out.append(Timed(e.name, False, e.time_range.start, e.cpu_time_total))
        elif e.name != "profiled step":
            out.append(Timed(e.name, False, e.time_range.start, e.self_cpu_time_total))
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--strategy", default="amp")
    p.add_argument("--preset", default="gpt2-124m")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--micro-batch", type=int, default=None, help="default: fitted on CUDA, as in bench")
    p.add_argument("--steps", type=int, default=3, help="profiled optimizer steps (after the warm-up)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="recipe overrides")
    p.add_argument("--out", type=Path, required=True, help="folder for trace.json and profile.json")
    return p.parse_args(argv)


def _run_config(args: argparse.Namespace):
    from harness.core.overrides import build_run_config, parse_overrides

    return build_run_config(
        strategy=args.strategy,
        preset=args.preset,
        budget="1h",
        overrides=parse_overrides(args.set),
        device=args.device,
        micro_batch=args.micro_batch,
    )


def profile(args: argparse.Namespace) -> dict:
    """Set up as bench does, warm up, then profile `args.steps` steps; the figures (and the trace on disk)."""
    import strategies
    from harness.core.plugins import load_plugins
    from harness.engine.events import EventPipe
    from harness.engine.identity import resolve_run
    from harness.engine.runtime import synchronizer
    from harness.engine.session import fit_micro_batch, open_session
    from harness.metrics.peaks import mfu, peak_tflops
    from harness.model import flops_per_token

    load_plugins()
    cfg = _run_config(args)
    spec = strategies.resolve(cfg.strategy)
    events = EventPipe()
    resolved = resolve_run(cfg, spec.runs_on_cpu, progress=lambda _: None)
    session = open_session(cfg, spec, resolved, fit_micro_batch(cfg, spec, resolved, events))
    try:
        warmup_s = session.warm_up(events)
        recipe, sync = session.recipe, synchronizer(session.device)
        length, seqs = recipe.model.seq_len + 1, recipe.global_batch_seqs
        batches = [
            session.batches(torch.from_numpy(session.data.warmup_batch(1000 + i, seqs, length)).long())
            for i in range(args.steps)
        ]
        on_device = session.device.type == "cuda"
        activities = [torch.profiler.ProfilerActivity.CPU]
        if on_device:
            activities.append(torch.profiler.ProfilerActivity.CUDA)
        step_s = []
        with torch.profiler.profile(activities=activities) as prof:
            for step_batches in batches:
                sync()
                t0 = time.perf_counter()
                with torch.profiler.record_function("profiled step"):
                    session.strategy.train_step(step_batches, recipe.lr)
                sync()
                step_s.append(time.perf_counter() - t0)
        args.out.mkdir(parents=True, exist_ok=True)
        prof.export_chrome_trace(str(args.out / "trace.json"))
        median_s = statistics.median(step_s)
        name = torch.cuda.get_device_name(session.device) if on_device else "cpu"
        peak, _ = peak_tflops(name)
        tokens_per_s = recipe.global_batch_tokens / median_s
        return {
            "strategy": cfg.strategy,
            "preset": recipe.preset,
            "device": name,
            "torch": torch.__version__,
            "micro_batch": session.ctx.micro_batch,
            "grad_accum": session.ctx.grad_accum,
            "compile": session.ctx.compile,
            "warmup_s": warmup_s,
            "steps": args.steps,
            "step_s_each": step_s,
            "tokens_per_s": tokens_per_s,
            "mfu": mfu(flops_per_token(recipe.model), tokens_per_s, peak),
            **breakdown(collected(prof, on_device), args.steps, median_s, on_device),
        }
    finally:
        session.strategy.teardown()


def table(figures: dict) -> str:
    lines = [
        f"{figures['strategy']} on {figures['preset']}, {figures['device']}: step {figures['step_s']:.3f} s "
        f"(median of {figures['steps']}), {figures['tokens_per_s']:,.0f} tokens/s, micro-batch "
        f"{figures['micro_batch']} x {figures['grad_accum']}",
    ]
    rows = list(figures["categories_s"].items())
    if "device_idle_s" in figures:
        rows.append(("device idle within the step", figures["device_idle_s"]))
    if "outside_operators_s" in figures:
        rows.append(("outside any operator", figures["outside_operators_s"]))
    for label, seconds in rows:
        lines.append(f"  {label:<30} {seconds * 1e3:10.2f} ms  {100 * seconds / figures['step_s']:5.1f}%")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from harness.core.errors import UserError

    args = parse_args(argv)
    try:
        if args.steps < 1:
            raise UserError("--steps must be at least 1")
        figures = profile(args)
    except UserError as exc:  # bad input, refused before anything runs: one line, as the harness does
        print(f"error: {exc}", file=sys.stderr)
        return 2
    (args.out / "profile.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(table(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
