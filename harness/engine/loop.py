"""The budgeted training loop, top to bottom, and the three things that happen beside it at their own
cadence: evaluation and checkpoints (both outside the training clock) and metric rows."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

import numpy as np
import torch

from harness.core import stopping
from harness.data.prefetch import Prefetcher, ProcessPrefetcher
from harness.engine.checkpoint import Checkpointer
from harness.engine.clock import TrainingClock
from harness.engine.events import EventPipe
from harness.engine.metric_log import MetricLogger
from harness.engine.runtime import compiled_graph_count
from harness.engine.schedule import budget_fraction, lr_at
from harness.engine.session import Session, micro_batches
from harness.engine.state import TrainState

log = logging.getLogger("harness.train")


class Evaluator:
    """Validation loss on the fixed held-out tokens at `eval_points` evenly spaced points of the budget."""

    def __init__(self, session: Session, clock: TrainingClock, logger: MetricLogger, floor: float | None):
        self.session, self.clock, self.logger, self.floor = session, clock, logger, floor
        self.every_s = session.recipe.budget_s / session.recipe.eval_points

    def due(self, state: TrainState) -> bool:
        return state.train_s >= state.next_eval_s

    def run(self, state: TrainState, events: EventPipe) -> None:
        events.emit("phase", phase="eval")
        session = self.session
        with self.clock.excluded("eval"):
            tokens = torch.from_numpy(session.val_tokens.astype(np.int64))
            total, count = torch.zeros((), device=session.device), 0
            for x, y in micro_batches(tokens.to(session.device), session.ctx.micro_batch):
                total += session.strategy.eval_loss(x, y) * x.shape[0]
                count += x.shape[0]
            val_loss = float(total / count)
        row = self.logger.eval_row(state.step, state.tokens, state.train_s, val_loss, self.floor)
        state.evals.append(row)
        state.next_eval_s = (math.floor(state.train_s / self.every_s) + 1) * self.every_s
        events.emit("phase", phase="train")


class CheckpointPolicy:
    """A checkpoint every `every_s` of training clock (outside it); a failed save is reported and training
    goes on, because the previous checkpoint stays."""

    def __init__(
        self,
        checkpointer: Checkpointer,
        every_s: float,
        budget_s: float,
        clock: TrainingClock,
        wall_s: Callable[[], float],
        carry: Callable[[TrainState], None],
    ):
        self.checkpointer, self.every_s, self.clock, self.wall_s = checkpointer, every_s, clock, wall_s
        self.budget_s = budget_s  # none at or past the budget: the stop's own checkpoint comes then
        self.carry = carry  # brings the state's whole-run figures up to date before it is saved
        self.last_s = 0.0
        self.failures: list[str] = []

    def due(self, state: TrainState) -> bool:
        return state.train_s - self.last_s >= self.every_s and state.train_s < self.budget_s

    def save(self, state: TrainState, strategy, logger: MetricLogger, events: EventPipe) -> None:
        events.emit("phase", phase="checkpoint")
        with self.clock.excluded("checkpoint"):
            state.metrics_rows = logger.rows
            state.wall_s = self.wall_s()
            self.carry(state)
            try:
                self.checkpointer.save(strategy, state)
            except (OSError, RuntimeError) as exc:
                if not isinstance(exc, OSError) and "write" not in str(exc).lower():
                    raise  # a fault of the strategy, not of the disk (torch.save's write errors say "write")
                text = f"checkpoint at step {state.step} not written ({exc}); the previous one stays"
                log.warning(text)
                events.emit("message", text=text)
                self.failures.append(str(exc))
        self.last_s = state.train_s
        events.emit("phase", phase="train")


class TrainingLoop:
    """Steps until the budget (or max_steps, or a stop request); the LR follows the budget's elapsed
    fraction. Owns the clock and the prefetcher for the duration of the loop."""

    def __init__(
        self,
        session: Session,
        logger: MetricLogger,
        checkpoints: CheckpointPolicy,
        evaluator: Evaluator,
        clock: TrainingClock,
        prefetch: Prefetcher | ProcessPrefetcher,
        events: EventPipe,
    ) -> None:
        self.session, self.logger, self.checkpoints = session, logger, checkpoints
        self.evaluator, self.clock, self.prefetch, self.events = evaluator, clock, prefetch, events
        self._graphs_before = compiled_graph_count()
        self._last_step_s = 0.0

    def run(self, state: TrainState) -> None:
        session, clock, logger = self.session, self.clock, self.logger
        tokens_per_step = session.recipe.global_batch_tokens
        logger.start_window(state.train_s, state.tokens)
        self._graphs_before = compiled_graph_count()
        self.events.emit("phase", phase="train")
        clock.start()
        while True:
            if self.evaluator.due(state) and not stopping.requested():  # a stopped run ends, unevaluated
                self.evaluator.run(state, self.events)
            if self._should_stop(state):
                break
            lr = self._lr(state)
            index, tokens = self.prefetch.next()
            if index != state.step:
                raise RuntimeError(f"data position {index} does not match step {state.step}")
            out = session.strategy.train_step(session.batches(tokens), lr)
            self._last_step_s = clock.lap()
            state.step_times_s.append(self._last_step_s)
            state.step += 1
            state.tokens += tokens_per_step
            state.train_s = clock.elapsed_s
            logger.step(out.loss, lr, out.grad_norm)
            if logger.due(state.train_s):
                self._log(state)
            if self.checkpoints.due(state):
                self._log(state)  # the metrics file then holds exactly the steps the checkpoint holds
                self.checkpoints.save(state, session.strategy, logger, self.events)
        clock.stop()
        self._log(state)
        self._finish(state)

    def compiles_so_far(self) -> int:
        """Graphs torch.compile built since the loop started (0 when warm-up compiled everything)."""
        return compiled_graph_count() - self._graphs_before

    def _should_stop(self, state: TrainState) -> bool:
        """At the first step that ended at or past the budget (the clock as the last step left it, so the
        training clock ends within one step of the budget, by that step's own measured time)."""
        max_steps = self.session.cfg.max_steps
        return (
            stopping.requested()
            or state.train_s >= self.session.recipe.budget_s
            or bool(max_steps and state.step >= max_steps)
        )

    def _lr(self, state: TrainState) -> float:
        """At this step's expected end, never going back (`budget_fraction`). A step-budgeted run (max_steps,
        for parity checks) follows steps, so it is repeatable exactly."""
        recipe, max_steps = self.session.recipe, self.session.cfg.max_steps
        if max_steps:
            fraction = (state.step + 1) / max_steps
        else:
            state.lr_fraction = budget_fraction(
                state.lr_fraction, state.train_s, state.step_times_s, recipe.budget_s
            )
            fraction = state.lr_fraction
        return lr_at(fraction, peak=recipe.lr, warmup_frac=recipe.warmup_frac, min_ratio=recipe.min_lr_ratio)

    def _log(self, state: TrainState) -> None:
        loss = self.logger.train_row(state.step, state.tokens, state.train_s, self._last_step_s)
        if loss is not None:
            state.last_loss = loss

    def _finish(self, state: TrainState) -> None:
        """A stopped run checkpoints where it stopped; a finished one ends with an evaluation."""
        if stopping.requested():
            if state.step:
                self.checkpoints.save(state, self.session.strategy, self.logger, self.events)
        elif not state.evals or state.evals[-1]["step"] != state.step:
            self.evaluator.run(state, self.events)


def wall_clock(prior_s: float, start: float) -> Callable[[], float]:
    """Wall seconds of the run so far, across attempts: earlier attempts' plus this one's (since `start`)."""
    return lambda: prior_s + time.perf_counter() - start
