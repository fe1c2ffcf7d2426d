"""A resume that finds its run held by a worker whose launcher is gone (the process group was killed, the
worker winds down) waits for it, saying so, then resumes; a live holder is refused at once, as before."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from harness.core.errors import UserError
from harness.orchestrate.launchers.run_control import LOCK_FILE, RunLock

pytestmark = pytest.mark.serial  # child processes that hold a lock, and a wait

HOLD = (
    "import fcntl, sys\n"
    "f = open(sys.argv[1], 'a+'); fcntl.flock(f, fcntl.LOCK_EX); f.seek(0); f.truncate()\n"
    "f.write(sys.argv[2]); f.flush(); print('held', flush=True); sys.stdin.read()\n"
)


def _holder(run_dir, named: str) -> subprocess.Popen:
    """A process that holds the run's lock, naming `named` as the holder, until its stdin closes."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(run_dir / LOCK_FILE), named],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout.readline().strip() == "held"
    return proc


def _gone_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_a_worker_orphaned_by_its_launcher_is_waited_for(tmp_path, capsys):
    holder = _holder(tmp_path, f"process {_gone_pid()}")
    ends = threading.Timer(1.0, holder.stdin.close)  # the worker winds down a moment later
    ends.start()
    try:
        lock = RunLock(tmp_path, orphan_wait_s=120)
    finally:
        ends.cancel()
        if not holder.stdin.closed:
            holder.stdin.close()
        holder.wait()
    assert "its launcher (process" in capsys.readouterr().err
    assert (tmp_path / LOCK_FILE).read_text().startswith("process ")
    lock.release()


def test_an_orphan_that_outlasts_the_wait_is_refused_in_one_line(tmp_path, capsys):
    holder = _holder(tmp_path, f"process {_gone_pid()}")
    try:
        with pytest.raises(UserError, match="is in use by process"):
            RunLock(tmp_path, orphan_wait_s=0.5)
    finally:
        holder.stdin.close()
        holder.wait()
    assert "waiting up to" in capsys.readouterr().err


def test_a_live_holder_is_refused_at_once(tmp_path, capsys):
    holder = _holder(tmp_path, "")
    (tmp_path / LOCK_FILE).write_text(f"process {holder.pid}")  # named: alive
    try:
        with pytest.raises(UserError, match=f"in use by process {holder.pid}"):
            RunLock(tmp_path, orphan_wait_s=120)
    finally:
        holder.stdin.close()
        holder.wait()
    assert "waiting" not in capsys.readouterr().err
