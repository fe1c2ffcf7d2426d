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
from harness.core.results import RunResult
from harness.core.serialize import to_dict
from harness.data import TokenSource, open_source
from harness.engine.runtime import apply_memory_cap, resolve_compile, resolve_device, resolve_precision
from harness.metrics import environment
from harness.metrics.definitions import RunMeasurements
from harness.model import flops_per_token, param_count


@dataclass
class ResolvedRun:
    device: torch.device
    recipe: Recipe  # precision and compile made concrete
    data: TokenSource
    val_tokens: np.ndarray


def recipe_fingerprint(recipe: Recipe, data_identity: dict, gpu_memory_gib: float | None = None) -> str:
    """What decides comparability (see `harness.core.fingerprints`)."""
    return fingerprints.recipe_fingerprint(asdict(recipe), data_identity, gpu_memory_gib)


def resolve_run(
    cfg: RunConfig,
    runs_on_cpu: bool,
    result: RunResult,
    measured: RunMeasurements,
    progress: Callable[[str], None],
) -> ResolvedRun:
    """Resolve the run; record in `result` and `measured` everything known before training starts."""
    device = resolve_device(cfg.device)
    if device.type == "cpu" and not runs_on_cpu:
        raise UserError(f"strategy {cfg.strategy} needs a CUDA device")
    cap_gib = apply_memory_cap(device, cfg.gpu_memory_gib)
    recipe = replace(
        cfg.recipe,
        precision=resolve_precision(cfg.recipe.precision, device),
        compile=resolve_compile(cfg.recipe.compile, device),
    )
    result.recipe = to_dict(recipe)
    result.environment = environment.capture(device, seed=recipe.seed, command=cfg.command)
    result.environment["gpu_memory_cap_gib"] = cap_gib
    data = open_source(recipe, progress=progress)
    result.data = data.describe()
    result.recipe_fingerprint = recipe_fingerprint(recipe, result.data, cfg.gpu_memory_gib)
    val_tokens = data.val_tokens(recipe.eval_seqs, recipe.eval_window)
    measured.floor_loss = data.floor_loss(val_tokens)
    measured.params = param_count(recipe.model)
    measured.flops_per_token = flops_per_token(recipe.model)
    measured.budget_s = recipe.budget_s
    measured.global_batch_tokens = recipe.global_batch_tokens
    measured.targets = recipe.targets
    measured.device_name = result.environment.get("gpu_name")
    measured.train_tokens_available = result.data.get("train_tokens")
    return ResolvedRun(device, recipe, data, val_tokens)
