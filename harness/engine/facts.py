"""The facts a run gathered, handed to the metric definitions: the loop's (steps, clock, step times,
energy, data), or, when the run ended before its loop, what the checkpointed state holds."""

from __future__ import annotations

from harness.data.prefetch import Prefetcher
from harness.engine.clock import TrainingClock
from harness.engine.loop import TrainingLoop
from harness.engine.state import TrainState
from harness.metrics.definitions import RunFacts


def gather(
    f: RunFacts,
    state: TrainState,
    settings: dict,
    loop: TrainingLoop | None,
    clock: TrainingClock | None,
    prefetch: Prefetcher | None,
) -> None:
    f.steps, f.tokens, f.train_s = state.step, state.tokens, state.train_s
    f.evals, f.last_loss, f.settings = state.evals, state.last_loss, settings
    if loop is None or clock is None or prefetch is None:
        f.excluded_s = dict(state.excluded_s)
        return
    f.step_times_s, f.compiles_in_training = loop.step_times_s, loop.compiles
    f.excluded_s, f.energy_j = dict(clock.excluded_s), clock.energy_j
    f.data_wait_s, f.data_tokens_per_s = prefetch.wait_s, prefetch.tokens_per_s
