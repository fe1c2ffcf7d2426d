"""What a run is, before it trains: its recipe resolved against this machine, the environment, the data's
description, and the recipe fingerprint that decides which runs may be compared with which."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch

from harness.core import fingerprints
from harness.core.errors import UserError
from harness.core.recipe import Recipe, RunConfig
from harness.data import TokenSource, open_source
from harness.engine.runtime import apply_memory_cap, resolve_compile, resolve_device, resolve_precision
from harness.metrics import environment


@dataclass
class ResolvedRun:
    """The run as this machine runs it: everything known before the micro-batch is chosen."""

    device: torch.device
    recipe: Recipe  # precision and compile made concrete
    data: TokenSource
    val_tokens: np.ndarray
    environment: dict  # this machine and its libraries, as result.json records them
    data_identity: dict  # the corpus (and tokenizer) the run reads
    fingerprint: str  # what decides comparability
    floor_loss: float | None  # the data's Bayes-optimal validation loss, where it is known


def recipe_fingerprint(recipe: Recipe, data_identity: dict, gpu_memory_gib: float | None = None) -> str:
    """What decides comparability (see `harness.core.fingerprints`)."""
    return fingerprints.recipe_fingerprint(asdict(recipe), data_identity, gpu_memory_gib)


def resolve_run(cfg: RunConfig, runs_on_cpu: bool, progress: Callable[[str], None]) -> ResolvedRun:
    """Resolve the run's device, recipe and data; describe the machine and the corpus."""
    device = resolve_device(cfg.device)
    if device.type == "cpu" and not runs_on_cpu:
        raise UserError(f"strategy {cfg.strategy} needs a CUDA device")
    cap_gib = apply_memory_cap(device, cfg.gpu_memory_gib)
    recipe = replace(
        cfg.recipe,
        precision=resolve_precision(cfg.recipe.precision, device),
        compile=resolve_compile(cfg.recipe.compile, device),
    )
    machine = environment.capture(device, seed=recipe.seed, command=cfg.command)
    machine["gpu_memory_cap_gib"] = cap_gib
    data = open_source(recipe, progress=progress)
    described = data.describe()
    val_tokens = data.val_tokens(recipe.eval_seqs, recipe.eval_window)
    return ResolvedRun(
        device=device,
        recipe=recipe,
        data=data,
        val_tokens=val_tokens,
        environment=machine,
        data_identity=described,
        fingerprint=recipe_fingerprint(recipe, described, cfg.gpu_memory_gib),
        floor_loss=data.floor_loss(val_tokens),
    )
