"""One isolated child process per run: a crash, an OOM or a hung library cannot take the sweep down, and
GPU memory is truly released between runs. The result comes back as data (result.json); if the child
dies without writing one, the launcher records the death as an `error` result with the log's last lines."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from harness.core.checkpoint_files import CHECKPOINT_DIR, checkpoints
from harness.core.errors import UserError
from harness.core.events import EVENT_FD_ENV, LOCK_FD_ENV
from harness.core.recipe import RunConfig
from harness.core.results import (
    CONFIG_FILE,
    LOG_FILE,
    RESULT_FILE,
    RESUME_FAILED_FILE,
    CorruptResult,
    RunResult,
    load_result,
    parse_result,
    write_json_atomic,
    write_result,
)
from harness.core.serialize import to_dict
from harness.orchestrate.launchers.run_control import LOCK_FILE, RunLock, StopSignal
from harness.orchestrate.progress import ProgressDisplay

__all__ = [
    "LOCK_FILE",
    "RunLock",
    "StopSignal",
    "create_run_dir",
    "create_run_dirs",
    "failed_result",
    "launch_one",
]

LOG_TAIL_LINES = 20


def log_tail(run_dir: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = (run_dir / LOG_FILE).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _describe_exit(returncode: int) -> str:
    if returncode < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-returncode).name}"
    return f"exited with status {returncode}"


def create_run_dirs(configs: list[RunConfig], runs_root: Path) -> list[Path]:
    """Every run's folder of a plan, before any run starts (`harness runs` shows the queue), or none: a
    folder that cannot be made (its id taken by another sweep, a full disk) refuses the plan in one line
    and takes back the folders made before it."""
    made: list[Path] = []
    try:
        for cfg in configs:
            made.append(create_run_dir(cfg, runs_root))
    except OSError as exc:
        for run_dir in made:
            shutil.rmtree(run_dir, ignore_errors=True)
        reason = "its id is taken" if isinstance(exc, FileExistsError) else exc.strerror or str(exc)
        raise UserError(
            f"cannot make the folder of run {cfg.run_id} under {runs_root} ({reason}); nothing was started: "
            "run the command again"
        ) from None
    return made


def create_run_dir(cfg: RunConfig, runs_root: Path) -> Path:
    """A new run's folder with its config.json: what the worker reads, and what `harness runs` lists."""
    run_dir = Path(runs_root) / cfg.run_id
    run_dir.mkdir(parents=True, exist_ok=False)
    write_json_atomic(run_dir / CONFIG_FILE, to_dict(cfg))
    return run_dir


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
    display = (
        ProgressDisplay(f"{cfg.strategy}/{cfg.recipe.preset}", cfg.recipe.budget_s) if show_progress else None
    )
    started = time.time()
    try:
        read_fd, child = _start_child(run_dir, resume, env or {}, lock.fileno())
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
        identity = _follow(read_fd, cfg.strategy, display)
        returncode = child.wait()
    finally:
        lock.release()
        stop.detach(child)
        if watchdog is not None:
            watchdog.cancel()
        if display is not None:
            display.close()
    timed_out = watchdog is not None and time.time() - started >= timeout_s
    ending = _Ending(returncode, started, timed_out, stop.requested, resume, child.pid in stop.forced)
    return _collect(run_dir, cfg, ending, identity)


def _start_child(
    run_dir: Path, resume: bool, extra_env: dict[str, str], lock_fd: int
) -> tuple[int, subprocess.Popen]:
    """The worker, in its own session (a terminal's Ctrl-C reaches the parent, which forwards it), its
    output into run.log, progress events on a pipe, the run folder's lock shared with it."""
    read_fd, write_fd = os.pipe()
    command = [sys.executable, "-m", "harness.engine.worker", str(run_dir), *(["--resume"] if resume else [])]
    env = {
        **os.environ,
        **extra_env,
        EVENT_FD_ENV: str(write_fd),
        LOCK_FD_ENV: str(lock_fd),
        "PYTHONUNBUFFERED": "1",
    }
    with open(run_dir / LOG_FILE, "ab") as log:
        child = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            pass_fds=(write_fd, lock_fd),
            env=env,
            start_new_session=True,
        )
    os.close(write_fd)
    return read_fd, child


def _follow(read_fd: int, label: str, display: ProgressDisplay | None) -> dict:
    """Read the child's events until it closes the pipe; return the identity it announced (if any)."""
    identity: dict = {}
    with os.fdopen(read_fd, "r", encoding="utf-8", errors="replace") as events:
        for line in events:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            if not isinstance(event, dict):
                continue
            if event.get("event") == "started":
                identity = event.get("result") or {}
            elif event.get("event") == "metric" and event.get("kind") == "train" and identity:
                # how far it trained, for the result of a run that is killed before it writes its own
                summary = identity.setdefault("summary", {})
                for key, figure in (("step", "steps"), ("tokens", "tokens"), ("train_s", "train_s")):
                    if key in event:
                        summary[figure] = event[key]
            if display is not None:
                display.handle(event)
            elif event.get("event") == "message":  # warnings show even without a progress display
                print(f"{label}: {event.get('text', '')}", file=sys.stderr, flush=True)
    return identity


@dataclass
class _Ending:
    """How the child ended, as the parent saw it."""

    returncode: int
    started: float
    timed_out: bool = False
    stopped: bool = False  # the parent forwarded a stop (SIGTERM/SIGINT) to it
    resume: bool = False
    forced: bool = False  # killed by the parent, still running long after the stop


def _resumable(run_dir: Path) -> str:
    """What a resume of a run killed mid-way would continue from: its last checkpoint, if any."""
    found = checkpoints(run_dir / CHECKPOINT_DIR)  # newest first
    return (
        f"a resume continues from its last checkpoint ({found[0].name})"
        if found
        else "nothing to resume from"
    )


def _fresh(path: Path, started: float) -> bool:
    return path.exists() and path.stat().st_mtime >= started - 1


def _collect(run_dir: Path, cfg: RunConfig, ending: _Ending, identity: dict) -> RunResult:
    """The run's result: the one the child wrote; else one that says how the child ended. A resume that
    failed before restoring anything leaves the interrupted run's result as it was."""
    path = run_dir / RESULT_FILE
    if _fresh(path, ending.started):
        try:
            return load_result(path)
        except CorruptResult as exc:
            reason = f"the worker wrote an unreadable result ({exc})"
    elif ending.resume and _fresh(run_dir / RESUME_FAILED_FILE, ending.started):
        with contextlib.suppress(CorruptResult):
            return load_result(run_dir / RESUME_FAILED_FILE)
        reason = "the resume failed"
    elif ending.timed_out:
        reason = "the worker hung past its time limit and was killed"
    else:
        reason = f"the worker process {_describe_exit(ending.returncode)} before writing a result"
    result = _from_identity(identity, cfg, run_dir)
    stopped_early = ending.stopped and ending.returncode in (-signal.SIGTERM, -signal.SIGINT)
    result.status = "interrupted" if stopped_early or ending.forced else "error"
    tail = log_tail(run_dir)
    if ending.forced:
        result.error = f"stopped, and killed when still running after its grace period: {_resumable(run_dir)}"
    elif stopped_early:
        result.error = "stopped before the run began"
    else:
        result.error = f"{reason}; last log lines:\n{tail}" if tail else reason
    result.finished_at = datetime.now(UTC).isoformat(timespec="seconds")
    if not ending.resume:  # an earlier session's result is never replaced by a failed resume's
        with contextlib.suppress(OSError):
            write_result(run_dir, result)
    return result


def failed_result(cfg: RunConfig, run_dir: Path, reason: str) -> RunResult:
    """The result of a run that could not be started or watched (written unless one is already there)."""
    result = _from_identity({}, cfg, run_dir)
    result.error = reason
    result.finished_at = datetime.now(UTC).isoformat(timespec="seconds")
    if not (run_dir / RESULT_FILE).exists():
        with contextlib.suppress(OSError):
            write_result(run_dir, result)
    return result


def _from_identity(identity: dict, cfg: RunConfig, run_dir: Path) -> RunResult:
    base = identity or {
        "run_id": cfg.run_id or run_dir.name,
        "status": "error",
        "strategy": {"name": cfg.strategy},
        "recipe": to_dict(cfg.recipe),
        "recipe_fingerprint": "",
    }
    try:
        return parse_result({**base, "schema_version": base.get("schema_version", 1)}, "started event")
    except CorruptResult:
        return RunResult(
            run_id=cfg.run_id or run_dir.name,
            status="error",
            strategy={"name": cfg.strategy},
            recipe=to_dict(cfg.recipe),
            recipe_fingerprint="",
        )
