"""What a run measured, handed to the metric definitions. A trained run's figures come from its state,
which carries every session's (a resumed run reports the whole run); a run that ended before its loop has
only what setup learned."""

from __future__ import annotations

from harness.engine.state import TrainState
from harness.metrics.definitions import RunMeasurements


def gather(f: RunMeasurements, state: TrainState, settings: dict, *, trained: bool) -> None:
    f.steps, f.tokens, f.train_s = state.step, state.tokens, state.train_s
    f.evals, f.last_loss, f.settings = state.evals, state.last_loss, dict(settings)
    f.excluded_s = dict(state.excluded_s)
    if not trained:
        return
    f.step_times_s, f.compiles_in_training = state.step_times_s, state.compiles_in_training
    f.energy_j, f.data_wait_s = state.energy_j, state.data_wait_s
    f.data_tokens_per_s = state.data_tokens / state.data_produce_s if state.data_produce_s > 0 else None
