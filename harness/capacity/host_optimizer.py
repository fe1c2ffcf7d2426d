"""How fast this machine's CPU does an offloading executor's host step: a short benchmark of the executor's
own host step (`Executor.host_step_benchmark`: DeepSpeed's CPU Adam with its copy-back, torch's CPU AdamW),
in seconds per parameter. The throughput model adds it to the GPU's step for offload strategies."""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime

import torch

from harness.core.cache import cache_root
from harness.core.results import JSON_READ_ERRORS, write_json_atomic
from harness.core.schema import Number, Record, Text, problem
from harness.metrics.environment import cpu_model

CACHE_FILE = "host-steps.json"  # this machine's timings, kept so that an answer need not load the op again

BENCH_PARAMS = 8 * 2**20  # fp32 parameters stepped: 128 MiB of parameters, gradients and moments, past caches
BENCH_TENSORS = 8  # in this many tensors, as a model's are
BENCH_STEPS = 5  # timed steps (after one untimed): the fastest is kept, since other work only slows one


# A host step is never free: AdamW reads and writes about 16 bytes of fp32 state per parameter, which takes
# over 1e-12 s even at 1 TB/s of memory bandwidth; and no CPU that runs an optimizer takes 10 us per
# parameter (one slow core takes about 5 ns). A kept timing outside [1e-12, 1e-5] s is damage.
KEPT = Record(
    {
        "optimizer": Text(optional=False),
        "seconds_per_param": Number(low=1e-12, high=1e-5, optional=False),
        "params": Number(above=0, integer=True, optional=False),
        "steps": Number(above=0, integer=True, optional=False),
        "threads": Number(above=0, integer=True, optional=False),
        "source": Text(optional=False),
        "error": Text(),
        "measured_at": Text(),
    },
    required=("optimizer", "seconds_per_param", "params", "steps", "threads", "source"),
    optional=False,
)


@dataclass(frozen=True)
class HostTiming:
    """One executor's host step on this machine."""

    optimizer: str
    seconds_per_param: float | None  # None: the benchmark could not run (why: `error`)
    params: int
    steps: int
    threads: int
    source: str
    error: str | None = None
    measured_at: str | None = None
    set_aside: str | None = None  # a damaged timing kept here before, not used (why)

    def to_dict(self) -> dict:
        return asdict(self)


def time_host_step(executor: type, params: int = BENCH_PARAMS, steps: int = BENCH_STEPS) -> HostTiming:
    """The fastest of `steps` host steps of `executor` over `params` fp32 parameters, per parameter: the
    machine's capability, which a busy moment only hides (a step is never faster than the machine)."""
    threads = torch.get_num_threads()
    label = executor.host_step.optimizer
    source = (
        f"benchmarked on this machine ({os.cpu_count()} CPUs, {threads} torch threads): the fastest of "
        f"{steps} steps over {params / 2**20:.0f}M fp32 parameters"
    )
    try:
        tensors = [torch.zeros(params // BENCH_TENSORS, requires_grad=True) for _ in range(BENCH_TENSORS)]
        for t in tensors:
            t.grad = torch.randn_like(t)
        step = executor.host_step_benchmark(tensors)
        step()  # untimed: first-touch of the moments, a JIT op's load
        times = []
        for _ in range(steps):
            t0 = time.perf_counter()
            step()
            times.append(time.perf_counter() - t0)
    except Exception as exc:  # a library that will not load here: said, never a crash of the answer
        return HostTiming(label, None, params, steps, threads, source, f"{type(exc).__name__}: {exc}")
    per_param = min(times) / (BENCH_TENSORS * (params // BENCH_TENSORS))
    return HostTiming(label, per_param, params, steps, threads, source, measured_at=_now())


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def machine_key(executor: type) -> str:
    """What a timing holds for: the executor, this CPU, the threads torch uses and the libraries."""
    import importlib.metadata as metadata

    libraries = []
    for name in ("torch", *executor.requires):
        try:
            libraries.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            libraries.append(f"{name} ?")
    threads = f"{os.cpu_count()} CPUs, {torch.get_num_threads()} threads"
    bench = f"{BENCH_PARAMS} params in {BENCH_TENSORS} tensors, fastest of {BENCH_STEPS} steps"
    return f"{executor.name} | {cpu_model()} | {threads} | {', '.join(libraries)} | {bench}"


def host_step_timings(executors) -> dict[str, dict]:
    """Each offloading executor's timing among `executors` (once per executor), by its name."""
    return {
        e.name: host_step_timing(e).to_dict() for e in dict.fromkeys(executors) if e.host_step is not None
    }


def host_step_timing(executor: type) -> HostTiming:
    """This machine's timing of the executor's host step: benchmarked once, then read from the cache (the
    executor, CPU, thread count and library versions must all match); a failed benchmark is not kept."""
    path, key = cache_root() / CACHE_FILE, machine_key(executor)
    try:
        kept = json.loads(path.read_text(encoding="utf-8"))
    except JSON_READ_ERRORS:
        kept = {}
    damage = None
    if isinstance(kept, dict) and key in kept:
        damage = problem(KEPT, kept[key], f"{path}: {key.split(' | ')[0]}")
        if damage is None:
            timing = HostTiming(**{k: v for k, v in kept[key].items() if k in KEPT.fields})
            return replace(timing, source=f"{timing.source}, on {timing.measured_at} (kept in {path})")
    timing = time_host_step(executor)
    if timing.seconds_per_param is not None:
        with contextlib.suppress(OSError):  # an unwritable cache: the timing holds for this answer only
            write_json_atomic(path, {**(kept if isinstance(kept, dict) else {}), key: timing.to_dict()})
    if damage is not None:  # never used: said, and measured again (the good timing replaced it)
        timing = replace(timing, set_aside=f"host-step timing not used, measured again: {damage}")
    return timing
