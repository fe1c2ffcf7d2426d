"""`harness list`: every strategy with its flags, every preset with its size, cost and the memory each
base strategy is predicted to need for it (micro-batch 1, bf16: the least a run of it takes)."""

from __future__ import annotations

import strategies
from harness.capacity.memory_model import GIB, predict
from harness.core.presets import PRESETS
from harness.model import flops_per_token, param_count

MEMORY_COLUMNS = ("amp", "adam8bit", "act_ckpt", "zero_offload", "zero_offload+act_ckpt")


def _strategy_lines() -> list[str]:
    lines = ["strategies (combine with +, e.g. adam8bit+act_ckpt):"]
    for name, plugin in strategies.REGISTRY.items():
        extras = []
        if plugin.requires:
            extras.append("needs " + ", ".join(plugin.requires))
        partners = strategies.partners(name)
        if partners:
            extras.append("composes with " + ", ".join(partners))
        if not plugin.runs_on_cpu:
            extras.append("CUDA only")
        if plugin.experimental:
            extras.append("experimental: not yet verified on a GPU")
        lines.append(f"  {name:<14} {plugin.description}" + (f" [{'; '.join(extras)}]" if extras else ""))
    return lines


def _preset_lines() -> list[str]:
    lines = ["presets:"]
    for p in PRESETS.values():
        m = p.model
        lines.append(
            f"  {p.name:<10} {param_count(m) / 1e6:>8.1f}M params,"
            f" {flops_per_token(m) / 1e6:>9,.1f} MFLOP/token,"
            f" L{m.n_layer} d{m.d_model} h{m.n_head} seq {m.seq_len}, batch {p.global_batch_tokens:,} tokens"
            f" — {p.description}"
        )
    return lines


def _memory_lines() -> list[str]:
    names = [n for n in MEMORY_COLUMNS if all(part in strategies.REGISTRY for part in n.split("+"))]
    header = f"  {'preset':<10}" + "".join(f" {n:>22}" for n in names)
    lines = [
        "predicted memory at micro-batch 1, bf16 (GPU / host GiB; eager, see `harness capacity`):",
        header,
    ]
    for p in PRESETS.values():
        cells = []
        for name in names:
            m = predict(p.model, name, 1, "bf16")
            cells.append(f" {m.gpu_bytes / GIB:>10.1f} / {m.host_bytes / GIB:>9.1f}")
        lines.append(f"  {p.name:<10}" + "".join(cells))
    return lines


def format_listing() -> str:
    return "\n".join([*_strategy_lines(), *_preset_lines(), *_memory_lines()])
