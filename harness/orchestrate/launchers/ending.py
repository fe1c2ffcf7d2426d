"""The result of a run as its launcher saw it end: the one the worker wrote, or, when it died without one
(killed, crashed, hung), a result that says how it ended, what it had done and what a resume would
continue from."""

from __future__ import annotations

import contextlib
import signal
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from harness.core.checkpoint_files import CHECKPOINT_DIR, checkpoints
from harness.core.recipe import RunConfig
from harness.core.results import (
    LOG_FILE,
    RESULT_FILE,
    RESUME_FAILED_FILE,
    CorruptResult,
    RunResult,
    load_result,
    parse_result,
    write_result,
)
from harness.core.serialize import to_dict

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


@dataclass
class Ending:
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


def _written_since(path: Path, started: float) -> bool:
    return path.exists() and path.stat().st_mtime >= started - 1


def collect_result(run_dir: Path, cfg: RunConfig, ending: Ending, identity: dict) -> RunResult:
    """The run's result: the one the child wrote; else one that says how the child ended. A resume that
    failed before restoring anything leaves the interrupted run's result as it was."""
    path = run_dir / RESULT_FILE
    if _written_since(path, ending.started):
        try:
            return load_result(path)
        except CorruptResult as exc:
            reason = f"the worker wrote an unreadable result ({exc})"
    elif ending.resume and _written_since(run_dir / RESUME_FAILED_FILE, ending.started):
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
        "run_config": cfg.described(),
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
            run_config=cfg.described(),
        )
