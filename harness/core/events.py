"""The progress protocol between a run's child process and its parent: JSON lines on a pipe whose file
descriptor the parent passes in HARNESS_EVENT_FD. Events: `phase` (setup, fit, warmup, train, eval,
checkpoint, resume), `started` (the result so far), `metric` (a metric row), `message` (a warning for the
user), `result` (the final status)."""

EVENT_FD_ENV = "HARNESS_EVENT_FD"
# The run folder's lock, opened and locked by the parent and inherited by the worker, which writes its own
# pid there: the lock lasts as long as either holds it, so a worker that outlives its parent keeps it.
LOCK_FD_ENV = "HARNESS_LOCK_FD"


def lock_holder_text() -> str:
    """What the holder of a run folder's lock writes in it (`harness runs` reads it back): this process."""
    import os
    import socket

    return f"process {os.getpid()} on {socket.gethostname()}"
