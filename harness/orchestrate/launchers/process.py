"""One isolated child process per run: a crash, an OOM or a hung library cannot take the sweep down, and
GPU memory is truly released between runs. The result comes back as data (result.json); if the child
dies without writing one, the launcher records the death as an `error` result with the log's last lines."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from harness.core.errors import UserError
from harness.core.events import EVENT_FD_ENV
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
from harness.orchestrate.progress import ProgressDisplay

LOG_TAIL_LINES = 20
LOCK_FILE = ".lock"


def log_tail(run_dir: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = (run_dir / LOG_FILE).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class StopSignal:
    """Parent-side signal handling: forward the first SIGINT/SIGTERM as SIGTERM to every run in flight (each
    checkpoints and stops), a second as SIGKILL; remember that a stop was asked so that no further run
    starts."""

    requested: bool = False
    children: set[subprocess.Popen] = field(default_factory=set)
    count: int = 0
    _previous: dict = field(default_factory=dict)

    def __enter__(self) -> StopSignal:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self.handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def attach(self, child: subprocess.Popen) -> None:
        self.children.add(child)
        if self.requested:  # a stop that came while this child was starting reaches it too
            self.forward(signal.SIGTERM)

    def detach(self, child: subprocess.Popen) -> None:
        self.children.discard(child)

    def forward(self, sig: int) -> None:
        # tuple() copies the set in one step under the GIL: launcher threads may add or drop children.
        for child in tuple(self.children):
            if child.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    child.send_signal(sig)

    def handle(self, signum: int, _frame) -> None:
        self.requested = True
        self.count += 1
        self.forward(signal.SIGTERM if self.count == 1 else signal.SIGKILL)


class RunLock:
    """An OS lock on a run folder for as long as a process runs in it: a second resume of the same run
    (or a resume of a run still in progress) is refused in one line instead of mixing checkpoints."""

    def __init__(self, run_dir: Path) -> None:
        import fcntl

        self._file = open(run_dir / LOCK_FILE, "a+")  # noqa: SIM115 (held until release)
        try:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.seek(0)
            holder = self._file.read().strip() or "another process"
            self._file.close()
            raise UserError(
                f"run {run_dir.name} is in use by {holder}: wait for it to end, or stop it first"
            ) from None
        self._file.seek(0)
        self._file.truncate()
        # Who holds it, for the refusal above and for `harness runs` (which cannot take the lock to ask).
        self._file.write(f"process {os.getpid()} on {socket.gethostname()}")
        self._file.flush()

    def release(self) -> None:
        if not self._file.closed:
            self._file.truncate(0)  # no holder any more
            self._file.close()  # closing the file releases the lock


def _describe_exit(returncode: int) -> str:
    if returncode < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-returncode).name}"
    return f"exited with status {returncode}"


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
        read_fd, child = _start_child(run_dir, resume, env or {})
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
    ending = _Ending(returncode, started, timed_out, stop.requested, resume)
    return _collect(run_dir, cfg, ending, identity)


def _start_child(run_dir: Path, resume: bool, extra_env: dict[str, str]) -> tuple[int, subprocess.Popen]:
    """The worker, in its own session (a terminal's Ctrl-C reaches the parent, which forwards it), its
    output into run.log, progress events on a pipe."""
    read_fd, write_fd = os.pipe()
    command = [sys.executable, "-m", "harness.engine.worker", str(run_dir), *(["--resume"] if resume else [])]
    env = {**os.environ, **extra_env, EVENT_FD_ENV: str(write_fd), "PYTHONUNBUFFERED": "1"}
    with open(run_dir / LOG_FILE, "ab") as log:
        child = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            pass_fds=(write_fd,),
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
    result.status = "interrupted" if stopped_early else "error"
    tail = log_tail(run_dir)
    result.error = (
        "stopped before the run began"
        if stopped_early
        else (f"{reason}; last log lines:\n{tail}" if tail else reason)
    )
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
