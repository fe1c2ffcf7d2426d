"""`harness env` as terminal text: the machine, each library check, each strategy's readiness."""

from __future__ import annotations


def format_doctor(findings: dict) -> str:
    facts, lines = findings["machine"], []
    gpu = facts.get("gpu_name")
    if gpu:
        lines.append(
            f"GPU        {gpu}, {facts['gpu_memory_gib']:.1f} GiB ({facts['gpu_free_gib']:.1f} GiB free), "
            f"compute {facts.get('gpu_capability')}, bf16 {facts.get('bf16_supported')}"
        )
        lines.append(
            f"driver     {facts.get('driver')}, CUDA runtime {facts.get('cuda_runtime')}, NVML "
            f"{'available' if facts['nvml'] else 'unavailable'}"
        )
        for proc in facts["other_gpu_processes"]:
            lines.append(f"           other process {proc['pid']} holds {proc['used_gib']:.1f} GiB")
    else:
        lines.append("GPU        none visible to torch")
    lines.append(
        f"CPU        {facts['cpu_model']}, {facts['cpu_cores']} cores, {facts['host_ram_gib']:.1f} GiB RAM"
    )
    libraries = ", ".join(f"{k} {v}" for k, v in facts["libraries"].items() if v)
    lines.append(f"python     {facts['python']}; {libraries}")
    for check in (c for cs in findings["checks"].values() for c in cs):
        lines.append(f"{'ok ' if check['ok'] else 'BAD'}        {check['name']}: {check['detail']}")
    lines.append("strategies")
    lines += [f"  {name:<14} {state}" for name, state in findings["strategies"].items()]
    lines += [f"warning: {warning}" for warning in findings["warnings"]]
    lines += [f"cannot run {name}: {reason}" for name, reason in findings["blocked"].items()]
    return "\n".join(lines)
