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

import torch

import strategies
from harness.core import stopping
from harness.core.checkpoint_files import CHECKPOINT_DIR
from harness.core.errors import HOST_OUT_OF_MEMORY, UserError
from harness.core.recipe import RunConfig
from harness.core.results import RunResult, Summary
from harness.core.serialize import to_dict
from harness.data.prefetch import Prefetcher, ProcessPrefetcher, prefetcher_for
from harness.engine import fit, measurements
from harness.engine.checkpoint import Checkpointer
from harness.engine.clock import TrainingClock
from harness.engine.events import EventPipe
from harness.engine.loop import CheckpointPolicy, Evaluator, TrainingLoop, wall_clock
from harness.engine.metric_log import MetricLogger
from harness.engine.runtime import is_host_out_of_memory, is_out_of_memory, synchronizer
from harness.engine.session import Session, open_session
from harness.engine.state import PriorAttempts, TrainState
from harness.metrics import resources
from harness.metrics.definitions import RunMeasurements, compute_summary

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
        self.result = RunResult(
            run_id=cfg.run_id or self.run_dir.name,
            status="error",
            strategy=self.spec.info(),
            recipe=to_dict(cfg.recipe),
            recipe_fingerprint="",
            started_at=_now(),
        )
        self.measured = RunMeasurements()
        self.state = TrainState()
        self.session: Session | None = None
        self.logger: MetricLogger | None = None
        self.loop: TrainingLoop | None = None
        self.sampler: resources.ResourceSampler | None = None
        self.prefetch: Prefetcher | ProcessPrefetcher | None = None
        self.clock: TrainingClock | None = None

    # ---- the run, end to end -------------------------------------------------------------------------

    def run(self) -> RunResult:
        started = time.perf_counter()
        wall = wall_clock(0.0, started)
        try:
            self.spec.require_libraries()
            self.session = open_session(self.cfg, self.spec, self.result, self.measured, self.events)
            warmup_s = self.session.warm_up(self.events)
            self.logger = MetricLogger(
                self.run_dir, self.cfg.trackers, self.events, self.cfg.log_every_s, self.cfg.recipe.budget_s
            )
            checkpointer = Checkpointer(self.run_dir / CHECKPOINT_DIR, keep=self.cfg.keep_checkpoints)
            # Resume after warm-up: warm-up resets the optimizer, the checkpoint then restores it.
            self.state = self._restore(checkpointer) if self.resume else self._start_new()
            wall = wall_clock(self.state.wall_s, started)
            for what, seconds in (
                ("setup", self.session.setup_s),
                ("fit", self.session.fit_s),
                ("warmup", warmup_s),
            ):
                self.state.excluded_s[what] = self.state.excluded_s.get(what, 0.0) + seconds
            self._train(checkpointer, wall)
        except Exception as exc:
            classify(exc, self.result, self.resume)
        finally:
            self.measured.wall_s = wall()
            self._record()
            self._teardown()
        return self.result

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
        session, state = self.session, self.state
        resources.reset_device_peaks(session.device)
        self.sampler = resources.ResourceSampler().start()
        clock = TrainingClock(
            synchronizer(session.device),
            elapsed_s=state.train_s,
            energy=self.sampler.energy_meters(),
            energy_j=state.energy_j,
        )
        clock.excluded_s.update(state.excluded_s)
        length = session.recipe.model.seq_len + 1
        self.prefetch = prefetcher_for(
            session.data,
            session.recipe.global_batch_seqs,
            length,
            state.step,
            pin=session.device.type == "cuda",
        )
        self._prior = PriorAttempts.read_from(state)
        every_s, budget_s = self.cfg.checkpoint_every_s, session.recipe.budget_s
        policy = CheckpointPolicy(checkpointer, every_s, budget_s, clock, wall, self._carry)
        policy.last_s = state.train_s
        evaluator = Evaluator(session, clock, self.logger, self.measured.floor_loss)
        self.loop = TrainingLoop(session, self.logger, policy, evaluator, clock, self.prefetch, self.events)
        self.clock = clock
        self.loop.run(state, last_step_s=0.0)
        stopped = stopping.requested()  # the worker's signal handler sets it (harness.core.stopping)
        self.result.status = "interrupted" if stopped else "ok"
        if stopped and policy.failures:
            self.result.error = f"interrupted, but the last checkpoint failed: {policy.failures[-1]}"

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
        state.energy_j = dict(self.clock.energy_j)
        state.excluded_s = dict(self.clock.excluded_s)

    def _record(self) -> None:
        """Every figure of the result, from what was measured so far (also after a failure)."""
        strategy = self.session.strategy if self.session is not None else None
        device = self.session.device if self.session is not None else _device(self.result.settings)
        if self.loop is not None:
            self._carry(self.state, final=True)
            self.measured.memory = dict(self.state.peaks)
        else:
            self.measured.memory = resources.memory_peaks(device, self.sampler)
        measurements.gather(self.measured, self.state, self.result.settings, trained=self.loop is not None)
        self.measured.strategy_memory = resources.strategy_memory(strategy)
        self.result.memory_facts = self.measured.strategy_memory
        self.result.summary = Summary(compute_summary(self.measured))
        self.result.resumes = self.state.resumes
        self.result.finished_at = _now()
        if self.logger is not None:
            self.logger.finish(dict(self.result.summary))

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


def _device(settings: dict) -> torch.device | None:
    """The run's device when setup failed before the session existed (e.g. out of memory building it)."""
    return torch.device(settings["device"]) if settings.get("device") else None


def classify(exc: Exception, result: RunResult, resumed: bool = False) -> None:
    """Out of memory, wherever it happens, is a result ("does not fit"), not a crash."""
    if isinstance(exc, stopping.Stopped):  # before this session trained: it saved no checkpoint
        kept = "its checkpoints are as they were" if resumed else "nothing to resume from"
        result.status, result.error = "interrupted", f"{exc}: {kept}"
    elif isinstance(exc, fit.DoesNotFit):
        result.status, result.error = "oom", str(exc)
        result.settings["fit_probes"] = exc.probes
    elif is_out_of_memory(exc):
        result.status = "oom"
        where = HOST_OUT_OF_MEMORY if is_host_out_of_memory(exc) else "out of memory"
        result.error = f"{where}: {(str(exc).splitlines() or [type(exc).__name__])[0][:300]}"
    else:
        result.status = "error"
        result.error = f"{type(exc).__name__}: {exc}"
        if not isinstance(exc, UserError):
            log.exception("run failed")
