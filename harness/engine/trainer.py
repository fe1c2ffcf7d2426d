"""One run, start to result. The harness owns WHAT is computed and WHEN: model and init, data order, the
learning rate per step, the clock and the deadline, evaluation, metrics and checkpoints. The strategy
owns HOW one optimizer step executes.

    set up (resolve, fit, build) -> warm up (untimed, undone) -> resume? -> train (budgeted) -> record
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from pathlib import Path

import strategies
from harness.core import stopping
from harness.core.checkpoint_files import CHECKPOINT_DIR
from harness.core.errors import HOST_OUT_OF_MEMORY, UserError
from harness.core.recipe import RunConfig
from harness.core.results import RunResult
from harness.data.prefetch import Prefetcher, ProcessPrefetcher, prefetcher_for
from harness.engine import fit, identity
from harness.engine.checkpoint import Checkpointer
from harness.engine.clock import TrainingClock
from harness.engine.events import EventPipe
from harness.engine.loop import CheckpointPolicy, Evaluator, TrainingLoop, wall_clock
from harness.engine.metric_log import MetricLogger
from harness.engine.record import Outcome, RunRecord, build_result
from harness.engine.runtime import is_host_out_of_memory, is_out_of_memory, synchronizer
from harness.engine.session import Session, fit_micro_batch, open_session
from harness.engine.state import PriorAttempts, TrainState
from harness.metrics import resources

log = logging.getLogger("harness.train")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Trainer:
    def __init__(
        self, cfg: RunConfig, run_dir: Path, events: EventPipe | None = None, *, resume: bool = False
    ):
        self.cfg, self.run_dir, self.resume = cfg, Path(run_dir), resume
        self.events = events or EventPipe()
        self.spec = strategies.resolve(cfg.strategy)
        self.record = RunRecord(cfg, self.spec, cfg.run_id or self.run_dir.name, _now())
        self.session: Session | None = None
        self.logger: MetricLogger | None = None
        self.loop: TrainingLoop | None = None
        self.sampler: resources.ResourceSampler | None = None
        self.prefetch: Prefetcher | ProcessPrefetcher | None = None

    # ---- the run, end to end -------------------------------------------------------------------------

    def run(self) -> RunResult:
        started = time.perf_counter()
        wall = wall_clock(0.0, started)
        try:
            self.spec.require_libraries()
            self.session = self._set_up()
            warmup_s = self.session.warm_up(self.events)
            self.logger = MetricLogger(
                self.run_dir, self.cfg.trackers, self.events, self.cfg.log_every_s, self.cfg.recipe.budget_s
            )
            checkpointer = Checkpointer(self.run_dir / CHECKPOINT_DIR, keep=self.cfg.keep_checkpoints)
            # Resume after warm-up: warm-up resets the optimizer, the checkpoint then restores it.
            self.record.state = self._restore(checkpointer) if self.resume else self._start_new()
            wall = wall_clock(self.record.state.wall_s, started)
            outside = {"setup": self.setup_s, "fit": self.record.fitted.seconds, "warmup": warmup_s}
            for what, seconds in outside.items():
                self.record.state.excluded_s[what] = self.record.state.excluded_s.get(what, 0.0) + seconds
            self._train(checkpointer, wall)
        except Exception as exc:
            self.record.outcome = classify(exc, self.resume)
        finally:
            self.record.wall_s = wall()
            result = self._record()
            self._teardown()
        return result

    def _set_up(self) -> Session:
        """Resolve, fit, announce the run, build the strategy: each phase's answer goes into the record."""
        t0 = time.perf_counter()
        self.events.emit("phase", phase="setup", detail=self.spec.first_use())
        data_progress = lambda text: self.events.emit("phase", phase="data", detail=text)  # noqa: E731
        self.record.resolved = identity.resolve_run(self.cfg, self.spec.runs_on_cpu, data_progress)
        self.record.fitted = fit_micro_batch(self.cfg, self.spec, self.record.resolved, self.events)
        self.events.emit("started", result=build_result(self.record).to_dict())
        session = open_session(self.cfg, self.spec, self.record.resolved, self.record.fitted)
        self.record.strategy_settings = session.strategy.setup_settings()
        self.setup_s = time.perf_counter() - t0 - self.record.fitted.seconds
        return session

    def _start_new(self) -> TrainState:
        self.logger.open()
        return TrainState()

    def _restore(self, checkpointer: Checkpointer) -> TrainState:
        self.events.emit("phase", phase="resume")
        state, path = checkpointer.load_latest(self.session.strategy, warn=self._warn)
        self.logger.open(resume_rows=state.metrics_rows, resume_step=state.step)
        state.resumes.append(
            {"from_step": state.step, "train_s": state.train_s, "checkpoint": path.name, "at": _now()}
        )
        return state

    def _train(self, checkpointer: Checkpointer, wall) -> None:
        session, state = self.session, self.record.state
        resources.reset_device_peaks(session.device)
        self.sampler = resources.ResourceSampler().start()
        clock = TrainingClock(
            synchronizer(session.device),
            elapsed_s=state.train_s,
            energy=self.sampler.energy_meters(),
            energy_j=state.energy_j,
        )
        clock.excluded_s.update(state.excluded_s)
        recipe, on_gpu = session.recipe, session.device.type == "cuda"
        self.prefetch = prefetcher_for(
            session.data, recipe.global_batch_seqs, recipe.model.seq_len + 1, state.step, pin=on_gpu
        )
        self._prior = PriorAttempts.read_from(state)
        every_s, budget_s = self.cfg.checkpoint_every_s, session.recipe.budget_s
        policy = CheckpointPolicy(checkpointer, every_s, budget_s, clock, wall, self._carry)
        policy.last_s = state.train_s
        evaluator = Evaluator(session, clock, self.logger, self.record.resolved.floor_loss)
        self.loop = TrainingLoop(session, self.logger, policy, evaluator, clock, self.prefetch, self.events)
        self.loop.run(state)
        stopped = stopping.requested()  # the worker's signal handler sets it (harness.core.stopping)
        failed = policy.failures[-1] if stopped and policy.failures else None
        why = failed and f"interrupted, but the last checkpoint failed: {failed}"
        self.record.outcome = Outcome("interrupted" if stopped else "ok", why)

    # ---- failures and the record -----------------------------------------------------------------------

    def _warn(self, text: str) -> None:
        log.warning(text)
        self.events.emit("message", text=text)

    def _carry(self, state: TrainState, final: bool = False) -> None:
        """The state's whole-run figures: earlier attempts' with this one's so far (before every save)."""
        device = self.session.device
        peaks = resources.memory_peaks(device, self.sampler, final=final)
        compiles = self.loop.compiles_so_far() if self.loop is not None else 0
        p = self.prefetch
        self._prior.add_to(
            state,
            produce_s=p.produce_s,
            tokens=p.produced_tokens,
            wait_s=p.wait_s,
            peaks=peaks,
            compiles=compiles,
        )
        state.energy_j = dict(self.loop.clock.energy_j)
        state.excluded_s = dict(self.loop.clock.excluded_s)

    def _record(self) -> RunResult:
        """The result from what the run learned so far (also after a failure)."""
        strategy = self.session.strategy if self.session is not None else None
        resolved = self.record.resolved
        if self.loop is not None:
            self._carry(self.record.state, final=True)
            self.record.peaks = dict(self.record.state.peaks)
        else:
            device = self.session.device if self.session is not None else resolved and resolved.device
            self.record.peaks = resources.memory_peaks(device, self.sampler)
        self.record.trained = self.loop is not None
        self.record.strategy_memory = resources.strategy_memory(strategy)
        result = build_result(self.record, finished_at=_now())
        if self.logger is not None:
            self.logger.finish(dict(result.summary))
        return result

    def _teardown(self) -> None:
        if self.prefetch is not None:
            self.prefetch.close()
        if self.sampler is not None:
            self.sampler.stop()
        if self.logger is not None:
            self.logger.close()
        if self.session is not None:
            try:
                self.session.strategy.teardown()
            except Exception:
                log.exception("strategy teardown failed")
            # Libraries hook into the model's parameters (DeepSpeed does): drop both, so memory can be freed.
            self.session.strategy = None


def classify(exc: Exception, resumed: bool = False) -> Outcome:
    """Out of memory, wherever it happens, is a result ("does not fit"), not a crash."""
    if isinstance(exc, stopping.Stopped):  # before this session trained: it saved no checkpoint
        kept = "its checkpoints are as they were" if resumed else "nothing to resume from"
        return Outcome("interrupted", f"{exc}: {kept}")
    if isinstance(exc, fit.DoesNotFit):
        return Outcome("oom", str(exc), exc.probes)
    if is_out_of_memory(exc):
        where = HOST_OUT_OF_MEMORY if is_host_out_of_memory(exc) else "out of memory"
        return Outcome("oom", f"{where}: {(str(exc).splitlines() or [type(exc).__name__])[0][:300]}")
    if not isinstance(exc, UserError):
        log.exception("run failed")
    return Outcome("error", f"{type(exc).__name__}: {exc}")
