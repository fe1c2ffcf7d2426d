"""`harness env` as terminal text: the machine, each library check, each strategy's readiness."""

from __future__ import annotations


def format_doctor(findings: dict) -> str:
    machine, lines = findings["machine"], []
    gpu = machine.get("gpu_name")
    if gpu:
        memory = f"{machine['gpu_memory_gib']:.1f} GiB ({machine['gpu_free_gib']:.1f} GiB free)"
        lines.append(
            f"GPU        {gpu}, {memory}, "
            f"compute {machine.get('gpu_capability')}, bf16 {machine.get('bf16_supported')}"
        )
        lines.append(
            f"driver     {machine.get('driver')}, CUDA runtime {machine.get('cuda_runtime')}, NVML "
            f"{'available' if machine['nvml'] else 'unavailable'}"
        )
        for proc in machine["other_gpu_processes"]:
            lines.append(f"           other process {proc['pid']} holds {proc['used_gib']:.1f} GiB")
    else:
        lines.append("GPU        none visible to torch")
    cores, ram = machine["cpu_cores"], machine["host_ram_gib"]
    lines.append(f"CPU        {machine['cpu_model']}, {cores} cores, {ram:.1f} GiB RAM")
    libraries = ", ".join(f"{k} {v}" for k, v in machine["libraries"].items() if v)
    lines.append(f"python     {machine['python']}; {libraries}")
    checks = {(c["name"], c["ok"], c["detail"]): c for cs in findings["checks"].values() for c in cs}
    for check in checks.values():  # each once, though several strategies share it
        lines.append(f"{'ok ' if check['ok'] else 'BAD'}        {check['name']}: {check['detail']}")
    lines.append("strategies")
    lines += [f"  {name:<14} {state}" for name, state in findings["strategies"].items()]
    for name, timing in findings.get("host_steps", {}).items():
        per_param = timing["seconds_per_param"]
        speed = (
            "could not run: " + str(timing["error"])
            if per_param is None
            else f"{per_param * 1e9:.2f} ns/parameter"
        )
        lines.append(f"host step  {name}: {speed} ({timing['optimizer']})")
    lines += [f"warning: {warning}" for warning in findings["warnings"]]
    lines += [f"cannot run {name}: {reason}" for name, reason in findings["blocked"].items()]
    return "\n".join(lines)
