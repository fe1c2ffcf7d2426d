"""`harness capacity`: per strategy and GPU memory size, the largest model of the ladder that trains with
the recipe's global batch, predicted by the memory model and (on CUDA) confirmed by real runs of a few
steps, each in its own child process; then what that model could reach in the budget.

The document it writes (capacity.json) says how every figure was obtained."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import strategies
from harness.capacity.memory_model import GIB
from harness.capacity.scaling import DayOutlook
from harness.capacity.search import HEADROOM, CapacityAnswer, Probe, find_largest, probe_fits, probe_verdict
from harness.core.errors import HOST_OUT_OF_MEMORY, UserError
from harness.core.presets import LADDER, get_preset
from harness.core.recipe import DEFAULT_BUDGET, command_budget_s
from harness.core.results import document_head, write_atomic
from harness.model import param_count
from harness.orchestrate.plan import Plan, check_device
from harness.orchestrate.preflight import check_document, check_folder

KILLED = "was killed by SIGKILL"  # how a run's error says the kernel ended its worker
CAPACITY_KIND = "capacity"
SCHEMA_VERSION = 1
PROBE_WARMUP_STEPS, PROBE_STEPS = 1, 2  # a confirming run: one untimed step (compile), then timed ones
THROUGHPUT_METHOD = (
    f"a real run at the fitted micro-batch: {PROBE_WARMUP_STEPS} untimed warm-up step, then "
    f"{PROBE_STEPS} timed optimizer steps of the full global batch; their tokens/s, not extrapolated"
)


# The memory sizes a capacity question may name, GPU or host: none that trains a language model has less
# than half a GiB, and none has more than 4 TiB.
MEMORY_GIB = (0.5, 4096.0)


@dataclass(frozen=True)
class CapacityPlan:
    strategies: tuple[str, ...]
    gpu_memory_gib: tuple[float, ...]
    presets: tuple[str, ...] = LADDER
    predict_only: bool = False
    host_memory_gib: float | None = None  # None: this machine's available memory (not applied predict-only)
    precision: str = "bf16"
    budget: str = DEFAULT_BUDGET
    out: Path = Path("reports/capacity.json")
    quiet: bool = False
    command: tuple[str, ...] = field(default_factory=lambda: tuple(sys.argv))

    @property
    def probe_runs_dir(self) -> Path:
        return self.out.parent / "capacity-runs"


def validate(plan: CapacityPlan) -> tuple[list[str], float]:
    """Canonical strategy names and the budget in seconds; UserError for anything that cannot work."""
    names = [strategies.resolve(s).name for s in plan.strategies]
    if not names:
        raise UserError("--strategies is empty: name at least one, e.g. amp,zero_offload")
    once("--strategies", names)
    once("--presets", plan.presets)
    once("--gpu-memory-gib", plan.gpu_memory_gib)
    for preset in plan.presets:
        get_preset(preset)
    if not plan.gpu_memory_gib:
        raise UserError("--gpu-memory-gib is empty: give sizes in GiB, e.g. 24,40,80")
    for size in (*plan.gpu_memory_gib, *([plan.host_memory_gib] if plan.host_memory_gib else [])):
        if not math.isfinite(size) or not MEMORY_GIB[0] <= size <= MEMORY_GIB[1]:
            raise UserError(
                f"memory size {size:g} GiB is out of range: give a size a machine has, from "
                f"{MEMORY_GIB[0]:g} to {MEMORY_GIB[1]:g} GiB, e.g. 24"
            )
    if plan.precision not in ("bf16", "fp16", "fp32"):
        raise UserError(f"--precision must be bf16, fp16 or fp32, got {plan.precision!r}")
    budget_s = command_budget_s(plan.budget)
    check_document(plan.out, "capacity")
    if not plan.predict_only:
        import torch

        if not torch.cuda.is_available():
            raise UserError("confirming needs a CUDA GPU and torch sees none here: add --predict-only")
        check_caps_fit_the_device(plan.gpu_memory_gib, torch.cuda.get_device_properties(0).total_memory)
        check_device("cuda", names)
        for name in names:
            strategies.resolve(name).require_libraries()
        check_folder(plan.probe_runs_dir, "--out")
    return names, budget_s


def once(flag: str, items) -> None:
    """Each item named once (two spellings of one strategy are one strategy)."""
    twice = sorted({str(x) for i, x in enumerate(items) if x in items[:i]})
    if twice:
        raise UserError(f"{flag} names {', '.join(twice)} twice: name each once")


def check_caps_fit_the_device(sizes: tuple[float, ...], device_bytes: int) -> None:
    """A cap above the device's memory cannot be confirmed there (each probe would be refused): say so
    before anything runs."""
    over = [size for size in sizes if size * GIB > device_bytes]
    if over:
        raise UserError(
            f"--gpu-memory-gib {','.join(f'{s:g}' for s in over)} is more than this GPU's "
            f"{device_bytes / GIB:.1f} GiB (as torch counts it): confirm sizes up to that here, "
            "or add --predict-only"
        )


def host_limit(plan: CapacityPlan) -> float:
    """Host bytes a size may need: as given; when confirming, also no more than what is free here."""
    if plan.predict_only:
        return math.inf if plan.host_memory_gib is None else plan.host_memory_gib * GIB
    import psutil

    available = psutil.virtual_memory().available
    return available if plan.host_memory_gib is None else min(available, plan.host_memory_gib * GIB)


def probe_with_runs(plan: CapacityPlan, strategy: str, gpu_memory_gib: float) -> Probe:
    """A probe that trains the preset for a few real steps in a child process under the memory cap."""
    from harness.orchestrate.sweep import run_plan

    def probe(preset: str) -> dict | None:
        print(f"capacity: {strategy} at {gpu_memory_gib:g} GiB: trying {preset}", file=sys.stderr)
        run = Plan.of(
            (strategy,),
            preset=preset,
            budget="24h",
            precision=plan.precision,
            max_steps=PROBE_STEPS,
            warmup_steps=PROBE_WARMUP_STEPS,
            gpu_memory_gib=gpu_memory_gib,
            runs_dir=plan.probe_runs_dir,
            quiet=plan.quiet,
        )
        outcome = run_plan(run)
        if outcome.stopped:  # the user's stop: the command ends (130), keeping every confirmation that ended
            raise KeyboardInterrupt
        return probe_outcome(outcome.results[0])

    return probe


def probe_outcome(result) -> dict | None:
    """A confirming run's verdict: its measured record when it trained; None when the GPU ran out; else a
    record saying why not. A run the kernel killed (SIGKILL: its out-of-memory killer) or whose host
    allocation failed does not fit the host; any other failure is recorded as an error, and the search
    goes on."""
    if result.status == "ok":
        return measured_record(result)
    error = result.error or ""
    host = error.startswith(HOST_OUT_OF_MEMORY) or (result.status == "error" and KILLED in error)
    if result.status == "oom" and not host:
        return None
    return {
        "run_id": result.run_id,
        "outcome": "host" if host else "error",
        "error": (error.splitlines() or [""])[0][:300],
        "peak_host_rss_gib": result.summary.peak_host_rss_gib,
    }


def measured_record(result) -> dict:
    s = result.summary
    return {
        "run_id": result.run_id,
        "micro_batch": result.settings.get("micro_batch"),
        "peak_allocated_gib": s.peak_allocated_gib,
        "peak_reserved_gib": s.peak_reserved_gib,
        "peak_host_rss_gib": s.peak_host_rss_gib,
        "tokens_per_s": s.steady_tokens_per_s or s.tokens_per_s,
        "mfu": s.mfu,
    }


def run_capacity(
    plan: CapacityPlan,
    probe_for: Callable[[str, float], Probe] | None = None,
    environment: dict | None = None,
) -> dict:
    """Answer every (strategy, memory size); write the capacity document after every probe (atomically:
    a killed command keeps every confirmation that ended) and return it complete."""
    names, budget_s = validate(plan)
    host = host_limit(plan)
    if probe_for is None and not plan.predict_only:
        probe_for = lambda s, g: probe_with_runs(plan, s, g)  # noqa: E731
    environment = environment if environment is not None else _environment(plan)
    entries: list[dict] = []

    def write(in_progress: CapacityAnswer | None = None) -> dict:
        partial = [] if in_progress is None else [entry(in_progress, budget_s)]
        document = _document(plan, budget_s, host, environment, entries + partial, in_progress is None)
        write_atomic(plan.out, _dumps(document))
        return document

    for name in names:
        for size in plan.gpu_memory_gib:
            probe = None if plan.predict_only or probe_for is None else probe_for(name, size)
            answer = find_largest(name, plan.presets, size, host, plan.precision, probe, on_probe=write)
            entries.append(entry(answer, budget_s))
    return write()


def _document(
    plan: CapacityPlan, budget_s: float, host: float, environment: dict, entries: list[dict], complete: bool
) -> dict:
    return {
        **document_head(CAPACITY_KIND, SCHEMA_VERSION, plan.command, complete),
        "predict_only": plan.predict_only,
        "precision": plan.precision,
        "budget_s": budget_s,
        "ladder": list(plan.presets),
        "gpu_headroom": HEADROOM,
        "host_memory_gib": None if math.isinf(host) else host / GIB,
        "method": {
            "prediction": "memory model: each strategy's declared state footprint plus the model's "
            "saved activations at the largest micro-batch that fits (eager mode), against "
            f"the memory size less {HEADROOM:.0%} headroom",
            "confirmation": None if plan.predict_only else "bisection on the ladder with real runs",
            "throughput": None if plan.predict_only else THROUGHPUT_METHOD,
            "host": "not limited (predict-only without --host-memory-gib)"
            if math.isinf(host)
            else "a size whose predicted host need exceeds the limit is refused, never run; a confirming "
            "run the host could not hold (killed, or a host allocation failed) does not fit the host",
        },
        "environment": environment,
        "results": entries,
    }


def entry(answer: CapacityAnswer, budget_s: float) -> dict:
    """One (strategy, memory size): the largest size, its figures, and every size's verdict."""
    sizes = []
    for check in answer.checks:
        probed = check.preset in answer.probes
        record = answer.probes.get(check.preset)
        sizes.append(
            {
                "preset": check.preset,
                "params": param_count(get_preset(check.preset).model),
                "predicted": None if check.prediction is None else check.prediction.to_dict(),
                "host_refusal": check.host_refusal,
                "measured": record if probed and probe_fits(record) else None,
                "probed": probed,
                "outcome": probe_verdict(record) if probed else "not run",
                "failure": record if probed and record is not None and not probe_fits(record) else None,
            }
        )
    best = next((s for s in sizes if s["preset"] == answer.largest), None)
    speed = (best or {}).get("measured") or {}
    outlook = None if best is None else DayOutlook(best["params"], budget_s, speed.get("tokens_per_s"))
    return {
        "strategy": answer.strategy,
        "gpu_memory_gib": answer.gpu_memory_gib,
        "largest": answer.largest,
        "limited_by": answer.limited_by,
        "confirmed": bool(best and best["measured"]),
        "best": best,
        "outlook": None if outlook is None else outlook.to_dict(),
        "sizes": sizes,
    }


def _environment(plan: CapacityPlan) -> dict:
    import platform

    import psutil

    env = {"host_ram_gib": psutil.virtual_memory().total / GIB, "platform": platform.platform()}
    if not plan.predict_only:
        import torch

        props = torch.cuda.get_device_properties(0)
        env.update(gpu_name=props.name, gpu_memory_gib=props.total_memory / GIB)
    return env


def _dumps(document: dict) -> str:
    import json

    return json.dumps(document, indent=2, allow_nan=False) + "\n"
