"""A run as a submitit job: the callable that submitit pickles, ships (to a local process, or to a Slurm
node) and calls there. It starts the run's worker as every launcher does (a child process in the run's
folder) and turns a preemption into the harness's own stop: the worker gets SIGTERM, checkpoints and ends
as `interrupted`; then submitit requeues the job, and the requeued job resumes the run from its folder.

Everything the job needs is on disk (config.json, checkpoints, metrics.jsonl), so a job started again for
any reason, by submitit or by the scheduler itself, does the right thing: it resumes from the newest intact
checkpoint, starts over when there is none, and does nothing when the run already finished."""

from __future__ import annotations

import contextlib
import signal
import subprocess
from pathlib import Path

from submitit.core.job_environment import JobEnvironment
from submitit.helpers import Checkpointable, DelayedSubmission

from harness.core.checkpoint_files import CHECKPOINT_DIR, newest_intact
from harness.core.placement import STOP_SIGNALS_ENV, Placement
from harness.core.results import (
    CONFIG_FILE,
    LOG_FILE,
    RESULT_FILE,
    CorruptResult,
    load_result,
    read_run_config,
)
from harness.orchestrate.launchers.base import watchdog_s
from harness.orchestrate.launchers.process import launch_one
from harness.orchestrate.launchers.run_control import LOCK_FILE, StopSignal

KEPT_ON_RESTART = {CONFIG_FILE, LOG_FILE, LOCK_FILE}
JOBS_FOLDER = ".submitit"  # submitit's pickles and logs, inside the runs folder (shared with the nodes)


def jobs_folder(runs_dir: Path) -> Path:
    return Path(runs_dir).absolute() / JOBS_FOLDER / "%j"


def preemption_signal() -> signal.Signals:
    """The signal submitit's clusters send before a time limit or a preemption (USR2 unless set)."""
    return JobEnvironment._usr_sig()


def start_afresh(run_dir: Path) -> None:
    """A run that never checkpointed starts over in its folder: what an earlier attempt left (metric rows,
    a result, unusable checkpoints) goes; its config, its log and its lock stay."""
    import shutil

    for path in run_dir.iterdir():
        if path.name in KEPT_ON_RESTART:
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


class RunJob(Checkpointable):
    def __init__(self, run_dir: str, placement: Placement | None = None, grace_s: float | None = None):
        self.run_dir = str(run_dir)
        self.placement = placement
        self.grace_s = grace_s  # how long the worker has to checkpoint after a preemption signal
        self._stop: StopSignal | None = None

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_stop"}  # a process handle is not data

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, _stop=None)

    def __call__(self) -> str:
        """Run, resume or leave alone the run in `run_dir`; its status."""
        run_dir = Path(self.run_dir)
        cfg = read_run_config(run_dir)
        if _status(run_dir) == "ok":
            return "ok"  # started again after it had finished: nothing left to do
        resume = newest_intact(run_dir / CHECKPOINT_DIR) is not None
        if not resume:
            start_afresh(run_dir)
        env = (self.placement or Placement(launcher="submitit")).child_env()
        env[STOP_SIGNALS_ENV] = preemption_signal().name.removeprefix("SIG")
        self._stop = StopSignal()
        with _preemption_is_a_checkpoint(self._stop):
            result = launch_one(
                cfg,
                run_dir,
                resume=resume,
                stop=self._stop,
                show_progress=False,
                timeout_s=watchdog_s(cfg.recipe.budget_s),
                env=env,
            )
        return result.status

    def checkpoint(self, *args, **kwargs) -> DelayedSubmission:
        """Called by submitit on preemption or near the time limit: stop the worker through the harness's
        own SIGTERM path, wait while it checkpoints, then hand submitit this job again, to requeue."""
        stop = self._stop
        if stop is not None:
            stop.requested = True
            stop.forward(signal.SIGTERM)
            for child in tuple(stop.children):
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.wait(timeout=self.grace_s)
        return DelayedSubmission(RunJob(self.run_dir, self.placement, self.grace_s))


def _status(run_dir: Path) -> str | None:
    try:
        return load_result(run_dir / RESULT_FILE).status if (run_dir / RESULT_FILE).exists() else None
    except CorruptResult:
        return None


@contextlib.contextmanager
def _preemption_is_a_checkpoint(stop: StopSignal):
    """Inside a submitit job, SIGTERM (what a scheduler sends on preemption, and what stops a container)
    takes submitit's preemption path: checkpoint, then requeue. submitit itself only logs a SIGTERM.
    SIGINT (a cancelled job) stops the run without a requeue. Outside a job, SIGTERM simply stops."""
    preempt = signal.getsignal(preemption_signal())
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    signal.signal(signal.SIGTERM, preempt if callable(preempt) else stop.handle)
    signal.signal(signal.SIGINT, stop.handle)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
