"""A stop asked of this process (SIGINT/SIGTERM in the worker), as phases that have nothing to checkpoint
read it; and work that native code would make deaf to signals, run in a child process that a stop ends.

Tokenizer training runs in Rust (`tokenizers`' train_from_iterator): Python's signal handlers wait until
it returns, which on a long single-line corpus is many minutes. Run in a child, the parent keeps
answering: it polls the stop, kills the child, and the child dies with the parent even if the parent is
killed outright (Linux's parent-death signal; elsewhere a thread that watches the parent)."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable

from harness.core.errors import UserError
from harness.core.placement import STOP_SIGNALS_ENV

# A plain flag, not a threading.Event: a signal handler sets it, and Event.set takes a lock that a second
# signal, arriving inside the first handler, would wait on forever.
_REQUESTED = {"stop": False}
POLL_S = 0.2  # how often a waiting parent looks at the stop and the child


class Stopped(Exception):
    """A stop arrived during a phase that keeps nothing (preparing data, starting): the run ends
    `interrupted`, with nothing to resume from."""


def request() -> None:
    """Called from a signal handler: only sets the flag (safe there)."""
    _REQUESTED["stop"] = True


def requested() -> bool:
    return _REQUESTED["stop"]


def clear() -> None:
    _REQUESTED["stop"] = False


def stop_signals() -> tuple[int, ...]:
    """The extra signals a launcher asks its runs to take as a stop (HARNESS_STOP_SIGNALS, e.g. USR2)."""
    names = filter(None, os.environ.get(STOP_SIGNALS_ENV, "").split(","))
    found = (getattr(signal, f"SIG{n.strip().upper().removeprefix('SIG')}", None) for n in names)
    return tuple(number for number in found if number is not None)


def check(phase: str) -> None:
    """Raise Stopped if a stop was asked: call between bounded pieces of a long phase."""
    if _REQUESTED["stop"]:
        raise Stopped(f"stopped while {phase}")


def _die_with_parent(parent: int) -> None:
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1  # <linux/prctl.h>
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    else:

        def watch() -> None:
            while os.getppid() == parent:
                time.sleep(1.0)
            os._exit(1)

        threading.Thread(target=watch, daemon=True).start()
    if os.getppid() != parent:  # the parent died before the death signal was armed
        os._exit(1)


def _child_main(parent: int, conn, target: Callable, args: tuple, ignored: tuple[int, ...]) -> None:
    _die_with_parent(parent)
    # A stop is the parent's to answer (a terminal's Ctrl-C, a scheduler's signal to every process of the
    # job): the parent ends this process, and a child killed by the signal itself would read as a failure.
    for number in ignored:
        signal.signal(number, signal.SIG_IGN)
    try:
        target(*args)
    except UserError as exc:  # the user's to fix: raised in the parent as it is
        conn.send(exc)
    except BaseException as exc:  # the parent reports it; the child's traceback would say no more
        conn.send(f"{type(exc).__name__}: {exc}")
    else:
        conn.send(None)
    finally:
        conn.close()


def run_in_child(target: Callable, args: tuple, *, phase: str) -> None:
    """Run `target(*args)` in a fresh (spawned) process and wait for it, answering stops meanwhile: a
    stop (the flag, or KeyboardInterrupt from a signal handler) kills the child and raises. The target's
    UserError is raised here as it is, any other failure as RuntimeError with its message. A daemonic
    process (which may not have children) runs the target itself."""
    if multiprocessing.current_process().daemon:
        target(*args)
        return
    check(phase)
    mp = multiprocessing.get_context("spawn")
    receive, send = mp.Pipe(duplex=False)
    ignored = (signal.SIGINT, signal.SIGTERM, *stop_signals())
    child = mp.Process(
        target=_child_main, args=(os.getpid(), send, target, args, ignored), name=phase, daemon=True
    )
    child.start()
    send.close()
    try:
        while not receive.poll(POLL_S):  # readable once the child sent its word or ended (end of file)
            check(phase)
        check(phase)  # a stop that came as the child ended is a stop, not the child's failure
        try:
            error = receive.recv()
        except EOFError:
            child.join()
            error = f"its process ended with status {child.exitcode} without a word"
    finally:
        if child.is_alive():
            child.kill()
            child.join()
        receive.close()
    if isinstance(error, UserError):
        raise error
    if error is not None:
        raise RuntimeError(f"{phase} failed: {error}")
