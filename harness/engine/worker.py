"""The child process of one run: reads config.json from its run folder, trains, writes result.json.

Runs as `python -m harness.engine.worker RUN_DIR [--resume]`. Its stdout and stderr go to run.log; progress
events go to the parent over the pipe named by HARNESS_EVENT_FD.
"""

from __future__ import annotations

import signal
import sys

from harness.core import stopping  # light (no torch): the stop flag must exist before the handler

# A stop that arrives while torch is still importing must still end the run as `interrupted`: the handler
# is installed before anything heavy is imported, and sets the process's one stop flag, which every phase
# of the run reads (harness.core.stopping).


def _request_stop(signum: int, _frame) -> None:
    stopping.request()


signal.signal(signal.SIGTERM, _request_stop)
signal.signal(signal.SIGINT, _request_stop)

import argparse  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from harness.core import placement  # noqa: E402
from harness.core.errors import UserError  # noqa: E402
from harness.core.events import LOCK_FD_ENV, lock_holder_text  # noqa: E402
from harness.core.plugins import load_plugins  # noqa: E402
from harness.core.results import read_run_config  # noqa: E402

log = logging.getLogger("harness.worker")


def _take_placement() -> placement.Placement | None:
    """The launcher's extra stop signals and CPU cores, applied before torch loads (its thread pools are
    sized then); the cores are pinned here so that the data process inherits them."""
    for number in stopping.stop_signals():
        signal.signal(number, _request_stop)
    where = placement.from_env()
    placement.apply_to_this_process(where)
    return where


def _hold_run_lock() -> None:
    """The run folder's lock came from the parent, locked: this process writes the folder, so it names
    itself as the holder (what `harness runs` reads), and keeps the descriptor open to its end."""
    fd = os.environ.get(LOCK_FD_ENV)
    if fd is None or not fd.isdigit():
        return
    try:
        os.ftruncate(int(fd), 0)
        os.pwrite(int(fd), lock_holder_text().encode(), 0)
    except OSError as exc:
        log.warning("could not name this process as the run's lock holder: %s", exc)


def _stop_when_orphaned(interval_s: float = 1.0) -> None:
    """The launcher watches this worker, forwards stops to it and records how it ended; a launcher killed
    outright (SIGKILL cannot be forwarded) leaves it unwatched. Then the run checkpoints and ends
    `interrupted`, as for a stop, so that a resume continues it and nothing trains on unsupervised."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval_s)
        log.warning("the launcher (process %d) is gone: the run checkpoints and stops", parent)
        _request_stop(signal.SIGTERM, None)

    threading.Thread(target=watch, name="launcher-watch", daemon=True).start()


def _size_thread_pool(where: placement.Placement | None) -> None:
    """torch's intra-op pool, one thread per core of the run's share (OMP_NUM_THREADS covers OpenMP)."""
    if where is not None and where.cpu_cores:
        import torch

        torch.set_num_threads(len(where.cpu_cores))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="harness.engine.worker")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
        force=True,
    )
    _hold_run_lock()
    _stop_when_orphaned()
    where = _take_placement()
    load_plugins()
    from harness.core.results import RESUME_FAILED_FILE, write_result
    from harness.engine.events import EventPipe
    from harness.engine.trainer import Trainer  # torch and friends load after logging is set up

    _size_thread_pool(where)
    cfg = read_run_config(args.run_dir)
    events = EventPipe()
    trainer = Trainer(cfg, args.run_dir, events, resume=args.resume)
    if stopping.requested():
        log.warning("a stop was requested while starting: the run ends as interrupted")
    budget = cfg.recipe.budget_s
    log.info(
        "run %s: strategy %s, preset %s, budget %.0fs%s",
        cfg.run_id,
        cfg.strategy,
        cfg.recipe.preset,
        budget,
        " (resume)" if args.resume else "",
    )
    result = trainer.run()
    log.info("run %s ended: %s%s", cfg.run_id, result.status, f" ({result.error})" if result.error else "")
    try:
        if args.resume and not result.resumes and result.status != "ok":
            # Nothing was restored: the interrupted run's result stays; this attempt is kept beside it.
            write_result(args.run_dir, result, name=RESUME_FAILED_FILE)
        else:
            write_result(args.run_dir, result)
    except OSError as exc:
        log.error("could not write the result file: %s", exc)
        events.emit("message", text=f"could not write result.json: {exc}")
        return 3
    finally:
        events.emit("result", status=result.status, error=result.error)
        events.close()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
