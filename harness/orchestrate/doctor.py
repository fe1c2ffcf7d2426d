"""`harness env`'s findings: what this machine has (GPU, driver, CUDA, NVML, free memory, other processes on
the GPU), whether the libraries behind each strategy really load, and which strategies can run here (the
terminal text is harness.cli.text.doctor)."""

from __future__ import annotations

import os

import torch

import strategies
from harness.core.checks import Check
from harness.metrics import environment, nvml


def library_checks(cuda: bool) -> dict[str, list[Check]]:
    """Each strategy's own doctor checks, keyed by the strategy; a strategy whose library is missing
    gets none (it is reported as missing). Plug-ins that share a doctor (zero_offload and its fp32-
    accumulation variant, the torchao optimizers) run it once and share its findings."""
    done: dict[object, list[Check]] = {}
    out = {}
    for name, plugin in strategies.REGISTRY.items():
        if plugin.missing_libraries():
            continue
        doctor = plugin.doctor.__func__
        if doctor not in done:
            done[doctor] = plugin.doctor(cuda)
        out[name] = done[doctor]
    return out


def strategy_readiness(cuda: bool, checks: dict[str, list[Check]]) -> dict[str, str]:
    """'ready' or the reason a strategy cannot run here."""
    status = {}
    for name, plugin in strategies.REGISTRY.items():
        missing = plugin.missing_libraries()
        if missing:
            status[name] = f"missing {', '.join(missing)} ({plugin.install_hint})"
        elif not cuda and not plugin.runs_on_cpu:
            status[name] = "needs a CUDA device"
        elif any(not c.ok for c in checks.get(name, [])):
            failed = next(c for c in checks[name] if not c.ok)
            status[name] = f"{failed.name} {failed.detail}"
        else:
            status[name] = (
                "ready (experimental: not yet verified on a GPU)" if plugin.experimental else "ready"
            )
    return status


def describe_machine(cuda: bool) -> dict:
    machine = environment.capture(torch.device("cuda") if cuda else torch.device("cpu"))
    machine.pop("command", None)
    handle = nvml.handle() if cuda else None
    machine["nvml"] = handle is not None
    if cuda:
        free, _total = torch.cuda.mem_get_info()
        machine["gpu_free_gib"] = free / 2**30
        machine["other_gpu_processes"] = nvml.other_processes(handle, os.getpid())
    return machine


def examine(requested: tuple[str, ...] | None) -> dict:
    """The doctor's findings: the machine, each library check, each strategy's readiness, warnings, and
    the strategies among `requested` that cannot run here (with why)."""
    cuda = torch.cuda.is_available()
    machine = describe_machine(cuda)
    checks = library_checks(cuda)
    readiness = strategy_readiness(cuda, checks)
    warnings = []
    if cuda and machine["other_gpu_processes"]:
        warnings.append("other processes hold GPU memory: they distort memory and speed figures")
    if cuda and not machine["nvml"]:
        warnings.append("NVML is unavailable: no NVML memory or energy figures")
    if not machine["host_energy_domains"]:
        warnings.append("the host's RAPL energy counters cannot be read: J/token will be GPU only")
    if not cuda:
        warnings.append("no CUDA device: runs use the CPU (fine for the tiny preset, not for the question)")
    blocked = {}
    for spec in (strategies.resolve(name) for name in requested or ()):
        reasons = [readiness[p.name] for p in spec.parts if not readiness[p.name].startswith("ready")]
        if reasons:
            blocked[spec.name] = "; ".join(reasons)
    return {
        "machine": machine,
        "checks": {name: [vars(c) for c in cs] for name, cs in checks.items()},
        "strategies": readiness,
        "host_steps": host_steps(readiness),
        "warnings": warnings,
        "blocked": blocked,
    }


def host_steps(readiness: dict[str, str]) -> dict[str, dict]:
    """This machine's speed at each ready offloading executor's host step (`harness answer` adds it to a
    predicted step), benchmarked once and kept in the cache folder."""
    from harness.capacity.host_optimizer import host_step_timings

    ready = [plugin for name, plugin in strategies.REGISTRY.items() if readiness[name].startswith("ready")]
    return host_step_timings(p for p in ready if p.role == "executor")
