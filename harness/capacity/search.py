"""The largest model of the ladder a strategy trains within a GPU memory size: predicted by the memory
model, then (when a probe is given) confirmed by real steps, bisecting on the ladder. Sizes whose
predicted host need exceeds the host's memory are refused with the figure and never probed."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from harness.capacity.memory_model import GIB, MemoryPrediction, predict
from harness.core.presets import get_preset
from harness.core.recipe import divisors_at_most

HEADROOM = 0.08  # the share of GPU memory kept free for fragmentation and spikes, as the fit does

# preset -> a measured record ({"micro_batch", "peak_allocated_gib", ...}), None when it does not fit the
# GPU, or a record with an "outcome" other than "ok": "host" (the host could not hold it), "error"
Probe = Callable[[str], dict | None]


def probe_fits(record: dict | None) -> bool:
    return record is not None and record.get("outcome", "ok") == "ok"


def probe_verdict(record: dict | None) -> str:
    """ "fits", "gpu" (out of GPU memory), "host" (the host could not hold it) or "error"."""
    if record is None:
        return "gpu"
    outcome = record.get("outcome", "ok")
    return "fits" if outcome == "ok" else outcome


@dataclass
class SizeCheck:
    preset: str
    prediction: MemoryPrediction | None  # at the largest micro-batch predicted to fit (None: not even 1)
    host_refusal: str | None = None  # why it is never attempted


@dataclass
class CapacityAnswer:
    strategy: str
    gpu_memory_gib: float
    largest: str | None  # the largest preset that trains (confirmed when probed)
    checks: list[SizeCheck] = field(default_factory=list)
    probes: dict[str, dict | None] = field(default_factory=dict)  # in the order they ran
    limited_by: str = ""  # "gpu" | "host" | "ladder" (the largest preset fits)

    def check(self, preset: str) -> SizeCheck:
        return next(c for c in self.checks if c.preset == preset)


def largest_micro_batch(
    strategy: str, preset: str, gpu_bytes: float, precision: str
) -> MemoryPrediction | None:
    """The prediction at the largest micro-batch (a divisor of the global batch) that fits `gpu_bytes`."""
    p = get_preset(preset)
    global_seqs = p.global_batch_tokens // p.model.seq_len
    fitting = None
    for m in sorted(divisors_at_most(global_seqs, global_seqs)):
        prediction = predict(p.model, strategy, m, precision)
        if prediction.gpu_bytes > gpu_bytes:
            break
        fitting = prediction
    return fitting


def check_sizes(
    strategy: str, ladder: Sequence[str], gpu_memory_gib: float, host_bytes: float, precision: str
) -> list[SizeCheck]:
    usable = gpu_memory_gib * GIB * (1 - HEADROOM)
    checks = []
    for preset in ladder:
        prediction = largest_micro_batch(strategy, preset, usable, precision)
        at_one = prediction or predict(get_preset(preset).model, strategy, 1, precision)
        refusal = None
        if at_one.host_bytes > host_bytes:
            refusal = (
                f"needs {at_one.host_bytes / GIB:.1f} GiB of host memory (predicted), "
                f"more than the {host_bytes / GIB:.1f} GiB available"
            )
        checks.append(SizeCheck(preset, prediction, refusal))
    return checks


def find_largest(
    strategy: str,
    ladder: Sequence[str],
    gpu_memory_gib: float,
    host_bytes: float,
    precision: str = "bf16",
    probe: Probe | None = None,
    on_probe: Callable[[CapacityAnswer], object] | None = None,
) -> CapacityAnswer:
    """`on_probe(answer)` is called after every probe, with the answer so far (to record it)."""
    checks = check_sizes(strategy, ladder, gpu_memory_gib, host_bytes, precision)
    answer = CapacityAnswer(strategy, gpu_memory_gib, None, checks)
    # Sizes past the first one the host cannot hold are out of reach whatever the GPU says.
    reachable = next((i for i, c in enumerate(checks) if c.host_refusal), len(checks))
    predicted = max((i for i, c in enumerate(checks[:reachable]) if c.prediction), default=-1)
    best = predicted if probe is None else _bisect(answer, probe, predicted, reachable, on_probe)
    answer.largest = ladder[best] if best >= 0 else None
    above = ladder[best + 1] if best + 1 < len(ladder) else None
    if best == len(ladder) - 1:
        answer.limited_by = "ladder"
    elif above in answer.probes and probe_verdict(answer.probes[above]) in ("host", "error"):
        answer.limited_by = probe_verdict(answer.probes[above])  # the next size's confirming run said so
    elif best + 1 == reachable and checks[reachable].prediction is not None:
        answer.limited_by = "host"  # the next size fits the GPU, not the host
    else:
        answer.limited_by = "gpu"
    return answer


def _bisect(
    answer: CapacityAnswer, probe: Probe, start: int, reachable: int, on_probe: Callable | None
) -> int:
    """The largest index below `reachable` whose probe fits (fitting assumed monotone in size), starting
    from the predicted one."""
    ladder = [c.preset for c in answer.checks]

    def fits(i: int) -> bool:
        if ladder[i] not in answer.probes:
            answer.probes[ladder[i]] = probe(ladder[i])
            if on_probe is not None:
                on_probe(answer)
        return probe_fits(answer.probes[ladder[i]])

    lo, hi = -1, reachable  # lo fits (or none), hi does not (or is out of reach)
    if start >= 0:
        if fits(start):
            lo = start
        else:
            hi = start
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid
    return lo
