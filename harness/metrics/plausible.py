"""Physics a run's figures must obey before they count: a speed the device could have reached, memory the
machine has, a loss between the data's floor and a uniform guess. A figure that breaks one is set aside by
its readers (the report, the answer's calibrations, `harness runs`): named in a warning, never starred,
ranked or learnt from. No torch here: the report reads these checks too."""

from __future__ import annotations

import math
from typing import Any

from harness.core.units import finite_number
from harness.metrics.peaks import peak_tflops

MIN_FLOP_RATE = 1e6  # FLOP/s: no machine that trains a model is slower; below it a figure is not a speed
LOSS_NOISE = 0.05  # nats: how far an evaluation's sample may sit below the data's entropy (the floor)
SPEEDS = ("tokens_per_s", "steady_tokens_per_s")
GPU_MEMORY = ("peak_allocated_gib", "peak_reserved_gib", "peak_nvml_used_gib")
HOST_MEMORY = ("peak_host_rss_gib", "lifetime_host_rss_gib", "pinned_host_gib")
LOSSES = ("final_train_loss", "final_val_loss")


def speed_problem(tokens_per_s: Any, flops_per_token: Any, device: str | None) -> str | None:
    """Why a tokens/s figure cannot be (its implied model FLOP rate above the device's dense peak, or below
    any machine's), or None. Model FLOPs only: what a run recomputes comes on top, so the bound is safe."""
    speed, flops = finite_number(tokens_per_s), finite_number(flops_per_token)
    if speed is None or speed <= 0:
        return f"{tokens_per_s!r} is not a positive speed"
    if not flops:
        return None
    rate = speed * flops
    peak, _ = peak_tflops(device or "")
    if peak is not None and rate > peak * 1e12:
        return (
            f"{speed:,.0f} tokens/s needs {rate / 1e12:,.0f} TFLOP/s, above the {device}'s dense peak of "
            f"{peak:g} TFLOP/s"
        )
    if rate < MIN_FLOP_RATE:
        return f"{speed:.3g} tokens/s is {rate:.3g} FLOP/s, slower than any machine that trains a model"
    return None


def _memory_problem(key: str, value: float, total: Any, where: str) -> str | None:
    limit = finite_number(total)
    if limit is not None and value > limit * 1.01:  # 1%: a peak read beside the total's rounding
        return f"{value:.4g} GiB is more than the {limit:.4g} GiB the {where} has"
    return None


def _loss_problem(key: str, value: float, floor: Any, vocab: Any) -> str | None:
    floor, vocab = finite_number(floor), finite_number(vocab)
    if floor is not None and value < floor - LOSS_NOISE:
        return f"{value:.4g} nats is below the data's floor of {floor:.4g} nats"
    if vocab and vocab > 1 and value > math.log(vocab) + 1:  # a fresh model starts near ln(vocab)
        uniform = math.log(vocab)
        return f"{value:.4g} nats is worse than a uniform guess over {vocab:.0f} tokens ({uniform:.3g})"
    return None


def implausible(summary: dict, recipe: dict, environment: dict) -> dict[str, str]:
    """The figures of a result that physics rules out, each with why."""
    found: dict[str, str] = {}
    device = environment.get("gpu_name") if isinstance(environment.get("gpu_name"), str) else None
    for key in SPEEDS:
        if finite_number(summary.get(key)) is not None:
            why = speed_problem(summary[key], summary.get("flops_per_token"), device)
            if why and summary[key] != 0:  # 0: a run that never timed a step says so itself
                found[key] = why
    for keys, total, where in (
        (GPU_MEMORY, environment.get("gpu_memory_gib"), "GPU"),
        (HOST_MEMORY, environment.get("host_ram_gib"), "host"),
    ):
        for key in keys:
            value = finite_number(summary.get(key))
            why = None if value is None else _memory_problem(key, value, total, where)
            if why:
                found[key] = why
    model = recipe.get("model") if isinstance(recipe.get("model"), dict) else {}
    for key in LOSSES:
        value = finite_number(summary.get(key))
        floor = summary.get("floor_loss")
        why = None if value is None else _loss_problem(key, value, floor, model.get("vocab_size"))
        if why:
            found[key] = why
    gap = finite_number(summary.get("gap_to_floor"))
    if gap is not None and gap < -LOSS_NOISE:
        found["gap_to_floor"] = f"{gap:.4g} nats: a loss below the data's floor"
    for source, derived in DERIVED.items():
        for key in derived if source in found else ():
            found.setdefault(key, f"computed from {source}, set aside")
    return found


DERIVED = {"final_val_loss": ("val_ppl", "gap_to_floor"), "steady_tokens_per_s": ("mfu",)}
