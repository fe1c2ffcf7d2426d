"""`harness env`: a doctor. What this machine has (GPU, driver, CUDA, NVML, free memory, other processes on
the GPU), whether the libraries behind each strategy really load, and which strategies can run here.
Exit status 1 when a strategy named with --strategies cannot run."""

from __future__ import annotations

import json
import os

import torch

import strategies
from harness.core.checks import Check
from harness.metrics import environment, nvml


def library_checks(cuda: bool) -> dict[str, list[Check]]:
    """Each strategy's own doctor checks, keyed by the strategy; a strategy whose library is missing
    gets none (it is reported as missing)."""
    return {
        name: plugin.doctor(cuda)
        for name, plugin in strategies.REGISTRY.items()
        if not plugin.missing_libraries()
    }


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


def machine_facts(cuda: bool) -> dict:
    facts = environment.capture(torch.device("cuda") if cuda else torch.device("cpu"))
    facts.pop("command", None)
    handle = nvml.handle() if cuda else None
    facts["nvml"] = handle is not None
    if cuda:
        free, _total = torch.cuda.mem_get_info()
        facts["gpu_free_gib"] = free / 2**30
        facts["other_gpu_processes"] = nvml.other_processes(handle, os.getpid())
    return facts


def run_doctor(requested: tuple[str, ...] | None, as_json: bool = False) -> int:
    cuda = torch.cuda.is_available()
    facts = machine_facts(cuda)
    checks = library_checks(cuda)
    readiness = strategy_readiness(cuda, checks)
    warnings = []
    if cuda and facts["other_gpu_processes"]:
        warnings.append("other processes hold GPU memory: they distort memory and speed figures")
    if cuda and not facts["nvml"]:
        warnings.append("NVML is unavailable: no NVML memory or energy figures")
    if not facts["host_energy_domains"]:
        warnings.append("the host's RAPL energy counters cannot be read: J/token will be GPU only")
    if not cuda:
        warnings.append("no CUDA device: runs use the CPU (fine for the tiny preset, not for the question)")
    blocked = {}
    for spec in (strategies.resolve(name) for name in requested or ()):
        reasons = [readiness[p.name] for p in spec.parts if not readiness[p.name].startswith("ready")]
        if reasons:
            blocked[spec.name] = "; ".join(reasons)
    if as_json:
        print(
            json.dumps(
                {
                    "machine": facts,
                    "checks": {name: [vars(c) for c in cs] for name, cs in checks.items()},
                    "strategies": readiness,
                    "warnings": warnings,
                    "blocked": blocked,
                },
                indent=2,
                default=str,
            )
        )
    else:
        _print_report(facts, checks, readiness, warnings, blocked)
    return 1 if blocked else 0


def _print_report(
    facts: dict,
    checks: dict[str, list[Check]],
    readiness: dict[str, str],
    warnings: list[str],
    blocked: dict[str, str],
) -> None:
    gpu = facts.get("gpu_name")
    if gpu:
        print(
            f"GPU        {gpu}, {facts['gpu_memory_gib']:.1f} GiB ({facts['gpu_free_gib']:.1f} GiB free), "
            f"compute {facts.get('gpu_capability')}, bf16 {facts.get('bf16_supported')}"
        )
        print(
            f"driver     {facts.get('driver')}, CUDA runtime {facts.get('cuda_runtime')}, NVML "
            f"{'available' if facts['nvml'] else 'unavailable'}"
        )
        for proc in facts["other_gpu_processes"]:
            print(f"           other process {proc['pid']} holds {proc['used_gib']:.1f} GiB")
    else:
        print("GPU        none visible to torch")
    print(f"CPU        {facts['cpu_model']}, {facts['cpu_cores']} cores, {facts['host_ram_gib']:.1f} GiB RAM")
    print(
        f"python     {facts['python']}; " + ", ".join(f"{k} {v}" for k, v in facts["libraries"].items() if v)
    )
    for check in (c for cs in checks.values() for c in cs):
        print(f"{'ok ' if check.ok else 'BAD'}        {check.name}: {check.detail}")
    print("strategies")
    for name, state in readiness.items():
        print(f"  {name:<14} {state}")
    for warning in warnings:
        print(f"warning: {warning}")
    for name, reason in blocked.items():
        print(f"cannot run {name}: {reason}")
