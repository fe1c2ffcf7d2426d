"""What a launcher holds over the runs it starts: the stop signals it forwards (and the grace period before
a forced kill), and the lock on each run folder that keeps two processes from writing one run."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.core.errors import UserError
from harness.core.events import lock_holder_text
from harness.core.units import format_duration

LOCK_FILE = ".lock"

# The least time a run has to checkpoint and end after a stop before its launcher kills it (a gpt-6.7b step
# under ZeRO-Offload is tens of seconds); a plan whose steps or checkpoints take longer gets longer
# (orchestrate/step_estimate.py stop_grace_s).
STOP_GRACE_S = 300.0


@dataclass
class StopSignal:
    """Parent-side signal handling: every SIGINT/SIGTERM is forwarded as SIGTERM to each run in flight (each
    checkpoints and stops; more signals change nothing), and a run still alive `grace_s` after the first is
    killed. A stop was asked, so no further run starts, and a run it ended is `interrupted`."""

    requested: bool = False
    children: set[subprocess.Popen] = field(default_factory=set)
    count: int = 0
    grace_s: float = STOP_GRACE_S
    forced: set[int] = field(default_factory=set)  # pids killed after the grace period
    _previous: dict = field(default_factory=dict)
    _timer: threading.Timer | None = None

    def __enter__(self) -> StopSignal:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self.handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        if self._timer is not None:
            self._timer.cancel()

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
        self.forward(signal.SIGTERM)
        if self.count == 1:
            self._timer = threading.Timer(self.grace_s, self._force)
            self._timer.daemon = True
            self._timer.start()
        elif self.count == 2:
            print(
                "already stopping: each run checkpoints and ends (killed if still running "
                f"{format_duration(self.grace_s)} after the first stop)",
                file=sys.stderr,
                flush=True,
            )

    def _force(self) -> None:
        self.forced.update(child.pid for child in tuple(self.children) if child.poll() is None)
        self.forward(signal.SIGKILL)


ORPHAN_POLL_S = 0.2


_HOLDER = re.compile(r"process (\d+)(?: on (\S+))?")  # as `lock_holder_text` writes it


def named_holder(text: str) -> tuple[int, str | None] | None:
    """(pid, host) of the holder a lock file names; None for text that names none."""
    match = _HOLDER.fullmatch(text.strip())
    return None if match is None else (int(match.group(1)), match.group(2))


def gone_from_here(pid: int, host: str | None) -> bool:
    """Whether the process is on this host and no longer exists (someone else's process exists)."""
    if host not in (None, socket.gethostname()):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _orphaned(holder: str) -> bool:
    """Whether the lock's named holder is a process gone from this host (its worker still holds the lock)."""
    named = named_holder(holder)
    return named is not None and gone_from_here(*named)


class RunLock:
    """An OS lock on a run folder for as long as a process runs in it: a second resume of the same run
    (or a resume of a run still in progress) is refused in one line instead of mixing checkpoints."""

    def __init__(self, run_dir: Path, orphan_wait_s: float = 0.0) -> None:
        """`orphan_wait_s`: how long to wait when the process named as holder is gone from this host but
        the lock is still held: its worker, orphaned when the launcher was killed, is winding down."""
        try:
            self._file = open(run_dir / LOCK_FILE, "a+")  # noqa: SIM115 (held until release)
        except OSError as exc:  # a read-only mount, a full disk, a folder of someone else's
            raise UserError(
                f"cannot write in run folder {run_dir} ({exc.strerror or exc}): a run needs a writable folder"
            ) from None
        if not self._take():
            self._file.seek(0)
            holder = self._file.read().strip() or "another process"
            if not (orphan_wait_s > 0 and _orphaned(holder) and self._wait(run_dir, holder, orphan_wait_s)):
                self._file.close()
                raise UserError(
                    f"run {run_dir.name} is in use by {holder}: wait for it to end, or stop it first"
                )
        self._file.seek(0)
        self._file.truncate()
        # Who holds it, for the refusal above and for `harness runs` (which cannot take the lock to ask).
        self._file.write(lock_holder_text())
        self._file.flush()

    def _take(self) -> bool:
        import fcntl

        try:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _wait(self, run_dir: Path, holder: str, most_s: float) -> bool:
        print(
            f"run {run_dir.name}: its launcher ({holder}) is gone and its worker still holds the run, "
            f"winding down; waiting up to {format_duration(most_s)} for it",
            file=sys.stderr,
            flush=True,
        )
        deadline = time.monotonic() + most_s
        while time.monotonic() < deadline:
            time.sleep(ORPHAN_POLL_S)
            if self._take():
                return True
        return False

    def fileno(self) -> int:
        return self._file.fileno()

    def release(self) -> None:
        if not self._file.closed:
            self._file.truncate(0)  # no holder any more
            self._file.close()  # closing the file releases the lock
