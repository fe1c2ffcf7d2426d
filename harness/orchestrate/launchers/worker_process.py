"""The worker process of one run, from the launcher's side: started in its own session with its output in
run.log, its progress events read from a pipe until it closes it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from harness.core.events import EVENT_FD_ENV, LOCK_FD_ENV
from harness.core.results import LOG_FILE
from harness.orchestrate.progress import ProgressDisplay


def start_worker(
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


def follow_events(read_fd: int, label: str, display: ProgressDisplay | None) -> dict:
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
