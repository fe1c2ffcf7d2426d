"""One isolated child process per run: a crash, an OOM or a hung library cannot take the sweep down, and
GPU memory is truly released between runs. This module ties the parts together: the run folder's lock and
the stop signals (run_control), the worker process and its events (worker_process), a hung worker's
deadline, and the result as the launcher saw the run end (ending: the worker's own result.json, or one
that says how it died, with its log's last lines)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from harness.core.recipe import RunConfig
from harness.core.results import RunResult
from harness.orchestrate.launchers.ending import Ending, collect_result
from harness.orchestrate.launchers.run_control import RunLock, StopSignal
from harness.orchestrate.launchers.worker_process import follow_events, start_worker
from harness.orchestrate.progress import ProgressDisplay


def launch_one(
    cfg: RunConfig,
    run_dir: Path,
    *,
    resume: bool = False,
    stop: StopSignal | None = None,
    show_progress: bool = True,
    timeout_s: float | None = None,
    env: dict[str, str] | None = None,
    lock: RunLock | None = None,
) -> RunResult:
    """Run one configuration in a child process, in its folder (from `create_run_dir`); return its result
    (never raises for a failed run). `env` adds to the child's environment (its placement)."""
    stop = stop or StopSignal()
    lock = lock or RunLock(run_dir)  # released when the child has ended (two processes would mix the folder)
    label = f"{cfg.strategy}/{cfg.recipe.preset}"
    display = ProgressDisplay(label, cfg.recipe.budget_s, max_steps=cfg.max_steps) if show_progress else None
    started = time.time()
    try:
        read_fd, child = start_worker(run_dir, resume, env or {}, lock.fileno())
    except BaseException:
        lock.release()
        raise
    stop.attach(child)
    # A hung library must not hang the sweep: past the deadline the child is killed and recorded as an error.
    watchdog = threading.Timer(timeout_s, child.kill) if timeout_s else None
    if watchdog is not None:
        watchdog.daemon = True
        watchdog.start()
    try:
        identity = follow_events(read_fd, cfg.strategy, display)
        returncode = child.wait()
    finally:
        lock.release()
        stop.detach(child)
        if watchdog is not None:
            watchdog.cancel()
        if display is not None:
            display.close()
    timed_out = watchdog is not None and time.time() - started >= timeout_s
    ending = Ending(returncode, started, timed_out, stop.requested, resume, child.pid in stop.forced)
    return collect_result(run_dir, cfg, ending, identity)
