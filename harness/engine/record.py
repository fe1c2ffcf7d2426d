"""A run's result, built in one place from what each phase returned: resolving (`ResolvedRun`), fitting
(`Fitted`), the strategy's own settings and memory facts, the training state, and how the run ended
(`Outcome`). A part a run never reached is None, and the result says only what was learned; a trained
run's figures come from its state, which carries every attempt's (a resumed run reports the whole run)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.core.recipe import RunConfig
from harness.core.results import RunResult, Summary
from harness.core.serialize import to_dict
from harness.engine.state import TrainState
from harness.metrics.definitions import RunMeasurements, compute_summary
from harness.model import flops_per_token, param_count


@dataclass(frozen=True)
class Outcome:
    """How a run ended: ok, oom, error or interrupted, and why (a fit that found no micro-batch that fits
    also hands over its probes)."""

    status: str = "error"
    error: str | None = None
    fit_probes: list[dict] | None = None


@dataclass
class RunRecord:
    """What one run has learned so far, each part as its phase returned it; only the trainer sets them."""

    cfg: RunConfig
    strategy: Any  # the strategy's spec (strategies.StrategySpec)
    run_id: str
    started_at: str
    resolved: Any = None  # identity.ResolvedRun, once resolved
    fitted: Any = None  # session.Fitted, once the micro-batch is chosen
    strategy_settings: dict[str, Any] = field(default_factory=dict)  # what the built strategy reports
    strategy_memory: dict[str, Any] = field(default_factory=dict)  # its memory facts at the end
    peaks: dict[str, float | None] = field(default_factory=dict)  # memory peaks the harness measured
    state: TrainState = field(default_factory=TrainState)
    trained: bool = False  # the training loop ran
    wall_s: float | None = None
    outcome: Outcome = field(default_factory=Outcome)


def settings(run: RunRecord) -> dict[str, Any]:
    """The run's effective settings: how it executed the recipe, as far as it got."""
    out: dict[str, Any] = {}
    fitted, resolved = run.fitted, run.resolved
    if fitted is not None:
        recipe = resolved.recipe
        out.update(
            device=str(resolved.device),
            precision=recipe.precision,
            compile=fitted.compiled,
            micro_batch=fitted.micro_batch,
            grad_accum=recipe.global_batch_seqs // fitted.micro_batch,
            warmup_steps=run.cfg.warmup_steps,
            max_steps=run.cfg.max_steps,
        )
        if fitted.report is not None:
            out.update(fit_probes=fitted.report.probes, fit_allowance_gib=fitted.report.allowance_gib)
        out["memory_prediction"] = fitted.memory_prediction
    elif resolved is not None:
        out["device"] = str(resolved.device)
    if run.outcome.fit_probes is not None:
        out["fit_probes"] = run.outcome.fit_probes
    out.update(run.strategy_settings)
    return out


def measurements(run: RunRecord) -> RunMeasurements:
    """The raw material of every metric, from the parts the run reached."""
    state, resolved = run.state, run.resolved
    m = RunMeasurements(wall_s=run.wall_s, memory=dict(run.peaks), strategy_memory=dict(run.strategy_memory))
    m.settings = settings(run)
    m.steps, m.tokens, m.train_s = state.step, state.tokens, state.train_s
    m.evals, m.last_loss, m.excluded_s = state.evals, state.last_loss, dict(state.excluded_s)
    if resolved is not None:
        recipe = resolved.recipe
        m.floor_loss, m.params = resolved.floor_loss, param_count(recipe.model)
        m.flops_per_token = flops_per_token(recipe.model)
        m.budget_s, m.global_batch_tokens, m.targets = (
            recipe.budget_s,
            recipe.global_batch_tokens,
            recipe.targets,
        )
        m.device_name = resolved.environment.get("gpu_name")
        m.train_tokens_available = resolved.data_identity.get("train_tokens")
    if run.trained:
        m.step_times_s, m.compiles_in_training = state.step_times_s, state.compiles_in_training
        m.energy_j, m.data_wait_s = state.energy_j, state.data_wait_s
        m.data_tokens_per_s = state.data_tokens / state.data_produce_s if state.data_produce_s > 0 else None
    return m


def build_result(run: RunRecord, finished_at: str | None = None) -> RunResult:
    """The result as the run stands: every field of result.json comes from here."""
    resolved = run.resolved
    precision = None if resolved is None else resolved.recipe.precision
    return RunResult(
        run_id=run.run_id,
        status=run.outcome.status,
        strategy=run.strategy.info(precision),
        recipe=to_dict(run.cfg.recipe if resolved is None else resolved.recipe),
        recipe_fingerprint="" if resolved is None else resolved.fingerprint,
        settings=settings(run),
        run_config=run.cfg.described(),
        data={} if resolved is None else dict(resolved.data_identity),
        environment={} if resolved is None else dict(resolved.environment),
        summary=Summary(compute_summary(measurements(run))),
        memory_facts=dict(run.strategy_memory),
        error=run.outcome.error,
        started_at=run.started_at,
        finished_at=finished_at,
        resumes=list(run.state.resumes),
    )
