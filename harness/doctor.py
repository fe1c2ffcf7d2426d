"""`harness env`: what this machine has, and which strategies can run on it."""

from __future__ import annotations

import json
import os

import torch

import strategies
from harness import environment, nvml


def strategy_readiness(cuda: bool) -> dict[str, str]:
    """'ready' or the reason a strategy cannot run here."""
    status = {}
    for name, plugin in strategies.REGISTRY.items():
        missing = plugin.missing_libraries()
        if missing:
            status[name] = f"missing {', '.join(missing)} (run `make setup`)"
        elif not cuda and not plugin.runs_on_cpu:
            status[name] = "needs a CUDA device"
        else:
            status[name] = "ready"
    return status


def run_doctor(requested: str | None) -> int:
    cuda = torch.cuda.is_available()
    device = torch.device("cuda") if cuda else torch.device("cpu")
    facts = environment.capture(device)
    facts.pop("command", None)
    if cuda:
        free, _total = torch.cuda.mem_get_info()
        facts["gpu_free_gib"] = free / 2**30
        facts["other_gpu_processes"] = nvml.other_processes(nvml.handle(), os.getpid())
    readiness = strategy_readiness(cuda)
    print(json.dumps({"machine": facts, "strategies": readiness}, indent=2, default=str))
    if cuda and facts.get("other_gpu_processes"):
        print("warning: other processes hold GPU memory; they distort memory and speed figures")
    if requested:
        blocked = {}
        for name in (n.strip() for n in requested.split(",") if n.strip()):
            spec = strategies.resolve(name)
            reasons = [readiness[p.name] for p in spec.parts if readiness[p.name] != "ready"]
            if reasons:
                blocked[spec.name] = "; ".join(reasons)
        for name, reason in blocked.items():
            print(f"cannot run {name}: {reason}")
        return 1 if blocked else 0
    return 0
