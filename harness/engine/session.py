"""A run's setup, before its clock starts: the recipe resolved against this machine, the token source,
the micro-batch (fitted on CUDA), and the strategy built around the seed's initial model. Every second
spent here is reported, none counts against the budget."""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, replace

import numpy as np
import torch

import strategies
from harness.core import stopping
from harness.core.presets import PRESETS
from harness.core.recipe import Recipe, RunConfig
from harness.data import TokenSource
from harness.engine import fit, identity
from harness.engine.events import EventPipe
from harness.engine.phase_progress import WarmupProgress, announced_probe
from harness.engine.runtime import synchronizer
from harness.model import GPT
from strategies.base import OptimizerSettings, Strategy, StrategyContext


def micro_batches(tokens: torch.Tensor, micro_batch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Sequences of length T+1 -> (input, target) pairs of `micro_batch` sequences each."""
    x, y = tokens[:, :-1].contiguous(), tokens[:, 1:].contiguous()
    return list(zip(x.split(micro_batch), y.split(micro_batch), strict=True))


class InitialModel:
    """The seed's initial model, built in fp32 on the host for every use. On the host, so that every
    strategy, device and session starts from bit-identical weights (CPU and CUDA generators differ), and
    so that a strategy that keeps only 16-bit weights on the GPU never needs room there for the fp32 copy.
    Built afresh each time rather than copied from a kept template: a template would hold a second fp32
    model in host memory through the fit, which a multi-billion-parameter offload run cannot spare."""

    def __init__(self, recipe: Recipe) -> None:
        self.recipe = recipe

    def build(self) -> GPT:
        """The seed's model, built afresh (for a fit probe, or for the run itself)."""
        torch.manual_seed(self.recipe.seed)
        return GPT(self.recipe.model)


@dataclass
class Session:
    cfg: RunConfig  # with its recipe resolved against this machine (precision and compile made concrete)
    spec: strategies.StrategySpec
    device: torch.device
    data: TokenSource
    val_tokens: np.ndarray
    ctx: StrategyContext
    strategy: Strategy

    @property
    def recipe(self) -> Recipe:
        return self.cfg.recipe

    def batches(self, tokens: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return micro_batches(tokens.to(self.device, non_blocking=True), self.ctx.micro_batch)

    def warm_up(self, events: EventPipe) -> float:
        """Compile/JIT warm-up on a separate data stream at lr 0, then the optimizer forgets it; evaluation's
        own programs (no gradients, each batch shape) are compiled here too, not inside an eval."""
        steps = self.cfg.warmup_steps
        if not steps:
            return 0.0
        events.emit("phase", phase="warmup", detail=f"{steps} steps (not timed)")
        sync = synchronizer(self.device)
        t0 = time.perf_counter()
        progress = WarmupProgress(events, steps, t0)
        for i in range(steps):
            tokens = warmup_tokens(self.data, i, self.recipe.global_batch_seqs, self.recipe)
            self.strategy.train_step(progress.announced(i, self.batches(tokens)), 0.0)
            sync()
        self.strategy.reset_optimizer_state()
        val = micro_batches(torch.from_numpy(self.val_tokens).long(), self.ctx.micro_batch)
        for x, y in {x.shape[0]: (x, y) for x, y in val}.values():
            self.strategy.eval_loss(x.to(self.device), y.to(self.device))
        sync()
        return time.perf_counter() - t0


def warmup_tokens(data, index: int, seqs: int, recipe: Recipe) -> torch.Tensor:
    """Batch `index` of the data's warm-up stream (never the training stream): `seqs` sequences of
    seq_len + 1 tokens, as the int64 a step takes."""
    return torch.from_numpy(data.warmup_batch(index, seqs, recipe.model.seq_len + 1)).long()


# A fit probe's step: this many micro-batches, then the optimizer step. The probe's context says so, so
# that DeepSpeed, which steps only at its accumulation boundary, reaches it (where its buffers peak).
PROBE_MICRO_BATCHES = 2


def context(
    recipe: Recipe, device: torch.device, micro_batch: int, compiled: bool, grad_accum: int | None = None
) -> StrategyContext:
    """The strategy's view of the run; `grad_accum` defaults to the recipe's (global batch / micro-batch)."""
    if grad_accum is None:
        grad_accum = recipe.global_batch_seqs // micro_batch
    return StrategyContext(
        device=device,
        precision=recipe.precision,
        optimizer=OptimizerSettings(
            (recipe.beta1, recipe.beta2), recipe.eps, recipe.weight_decay, recipe.grad_clip
        ),
        micro_batch=micro_batch,
        grad_accum=grad_accum,
        compile=compiled,
    )


@dataclass(frozen=True)
class Fitted:
    """The micro-batch the run takes, and how it was chosen."""

    micro_batch: int
    compiled: bool  # the timed program is torch.compile'd
    report: fit.FitReport | None  # the probes, where it was fitted on CUDA
    seconds: float  # the fit's own time (outside the budget)
    memory_prediction: dict  # the memory model's figures at this micro-batch


def fit_micro_batch(cfg: RunConfig, spec, resolved: identity.ResolvedRun, events: EventPipe) -> Fitted:
    """As asked; else fitted on CUDA (each probe one real step of a fresh model); else the preset's."""
    t0 = time.perf_counter()
    recipe, device = resolved.recipe, resolved.device
    compiled = bool(recipe.compile and spec.executor.supports_compile)
    if device.type == "cuda" and cfg.micro_batch is None:
        events.emit("phase", phase="fit", detail="finding the largest micro-batch that fits")
    probe = functools.partial(fit_probe_step, spec, InitialModel(recipe), resolved)
    micro_batch, report = fit.micro_batch_for_run(
        cfg.micro_batch,
        device,
        recipe.global_batch_seqs,
        PRESETS[recipe.preset].micro_batch if recipe.preset in PRESETS else 1,
        announced_probe(events, probe),
        compiled=compiled,
        compiled_only=spec.needs_compile,
        cap_bytes=None if cfg.gpu_memory_gib is None else int(cfg.gpu_memory_gib * 2**30),
    )
    prediction = _predicted_memory(recipe, spec.name, micro_batch)
    return Fitted(micro_batch, compiled, report, time.perf_counter() - t0, prediction)


def open_session(
    cfg: RunConfig, spec: strategies.StrategySpec, resolved: identity.ResolvedRun, fitted: Fitted
) -> Session:
    """Build the strategy around the seed's initial model, at the fitted micro-batch."""
    recipe, device = resolved.recipe, resolved.device
    ctx = context(recipe, device, fitted.micro_batch, fitted.compiled)
    stopping.check("building the strategy")  # its setup (DeepSpeed's, a JIT op build) can take minutes
    strategy = spec.build()
    strategy.setup(InitialModel(recipe).build(), ctx)
    resolved_cfg = replace(cfg, recipe=recipe)  # one recipe from here on: the one this run trains
    return Session(resolved_cfg, spec, device, resolved.data, resolved.val_tokens, ctx, strategy)


def _predicted_memory(recipe: Recipe, strategy: str, micro_batch: int) -> dict:
    """The memory model's figures for this run, stored beside what the run measures."""
    from harness.capacity.memory_model import predict

    return predict(recipe.model, strategy, micro_batch, recipe.precision).to_dict()


def fit_probe_step(spec, initial: InitialModel, resolved, micro_batch: int, compiled: bool) -> None:
    """One real step of a fresh model at this micro-batch (two micro-batches through the accumulation
    boundary, the optimizer stepping at lr 0), then teardown."""
    recipe, device = resolved.recipe, resolved.device
    strategy = spec.build()
    try:
        ctx = context(recipe, device, micro_batch, compiled, grad_accum=PROBE_MICRO_BATCHES)
        strategy.setup(initial.build(), ctx)
        tokens = warmup_tokens(resolved.data, 0, PROBE_MICRO_BATCHES * micro_batch, recipe)
        strategy.train_step(micro_batches(tokens.to(device), micro_batch), 0.0)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    finally:
        strategy.teardown()
        del strategy
        if compiled:
            torch._dynamo.reset()  # forget the probe's graphs: a later shape would compile as dynamic
