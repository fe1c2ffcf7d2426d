"""The child process of one run: reads config.json from its run folder, trains, writes result.json.

Runs as `python -m harness.worker RUN_DIR [--resume]`. Its stdout and stderr go to run.log; progress
events go to the parent over the pipe named by HARNESS_EVENT_FD.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from pathlib import Path

from harness.config import RunConfig, from_dict
from harness.errors import UserError
from harness.progress import EventSink
from harness.results import CONFIG_FILE, METRICS_FILE, write_result

log = logging.getLogger("harness.worker")


def load_run_config(run_dir: Path) -> RunConfig:
    path = run_dir / CONFIG_FILE
    try:
        return from_dict(RunConfig, json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise UserError(f"{path} is missing: is {run_dir} a run folder?") from None
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path} is corrupt ({exc}); start a new run instead") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="harness.worker")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
        force=True,
    )
    from harness.train import Trainer  # torch and friends load after logging is set up

    cfg = load_run_config(args.run_dir)
    sink = EventSink(args.run_dir / METRICS_FILE)
    trainer = Trainer(cfg, args.run_dir, sink, resume=args.resume)

    def request_stop(signum: int, _frame) -> None:
        log.warning("received %s: checkpointing and stopping", signal.Signals(signum).name)
        trainer.stop_requested = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    log.info(
        "run %s: strategy %s, preset %s, budget %.0fs%s",
        cfg.run_id,
        cfg.strategy,
        cfg.recipe.preset,
        cfg.recipe.budget_s,
        " (resume)" if args.resume else "",
    )
    result = trainer.run()
    log.info("run %s ended: %s%s", cfg.run_id, result.status, f" ({result.error})" if result.error else "")
    try:
        write_result(args.run_dir, result)
    except OSError as exc:
        log.error("could not write the result file: %s", exc)
        sink.emit("message", text=f"could not write result.json: {exc}")
        return 3
    finally:
        sink.emit("result", status=result.status, error=result.error)
        sink.close()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
