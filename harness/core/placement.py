"""Where a run's process runs on its node: one GPU, a set of CPU cores. The launcher decides (the placement
planner, `harness.orchestrate.placement`) and passes the decision in the child's environment; the worker
applies it to itself before anything heavy loads (thread pools size themselves at import) and records it
in its result, beside the runs that ran next to it."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass

PLACEMENT_ENV = "HARNESS_PLACEMENT"
# Signals that mean "stop, checkpoint, end as interrupted" besides SIGTERM/SIGINT: a cluster may signal
# every process of a job (Slurm's time-limit warning), and a signal the worker does not handle kills it.
STOP_SIGNALS_ENV = "HARNESS_STOP_SIGNALS"
# OpenMP (torch's CPU kernels, DeepSpeed's CPU Adam) and MKL size their pools from these at load time.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


@dataclass(frozen=True)
class Placement:
    slot: int = 0
    gpu_index: int | None = None  # the GPU's index as the launching process numbers them
    gpu_uuid: str | None = None  # what CUDA_VISIBLE_DEVICES names: the same GPU whatever the ordering
    cpu_cores: tuple[int, ...] | None = None  # None: not pinned (the cores the launcher has)
    launcher: str = "local"

    def child_env(self) -> dict[str, str]:
        """The variables that put a child process on this placement."""
        env = {PLACEMENT_ENV: json.dumps(asdict(self))}
        if self.gpu_index is not None:
            env["CUDA_VISIBLE_DEVICES"] = self.gpu_uuid or str(self.gpu_index)
        if self.cpu_cores:
            env.update(dict.fromkeys(THREAD_VARIABLES, str(len(self.cpu_cores))))
        return env


def from_env(environ: Mapping[str, str] | None = None) -> Placement | None:
    """The placement a launcher gave this process, or None (started by hand, or unreadable)."""
    text = (os.environ if environ is None else environ).get(PLACEMENT_ENV)
    if not text:
        return None
    try:
        data = json.loads(text)
        cores = data.get("cpu_cores")
        return Placement(**{**data, "cpu_cores": None if cores is None else tuple(int(c) for c in cores)})
    except (ValueError, TypeError):
        return None


def apply_to_this_process(placement: Placement | None) -> None:
    """Pin this process (and what it starts later: the data process, compiler workers) to its cores."""
    if placement is not None and placement.cpu_cores and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, placement.cpu_cores)


def format_cores(cores: tuple[int, ...] | list[int] | None) -> str:
    """0,1,2,3,8 -> '0-3,8'; None -> 'all' (not pinned)."""
    if not cores:
        return "all"
    runs: list[list[int]] = []
    for core in sorted(set(cores)):
        if runs and core == runs[-1][-1] + 1:
            runs[-1].append(core)
        else:
            runs.append([core])
    return ",".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs)
