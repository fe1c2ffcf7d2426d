"""Command line: `harness bench|sweep|parity|runs|report|list|env|prepare`. Bad input is one line on stderr
and exit status 2; a run that ends in error or OOM exits 1; an interrupted run exits 130."""

from __future__ import annotations

import signal
import sys

from harness.core.errors import UserError


def _terminate(_signum: int, _frame) -> None:
    raise KeyboardInterrupt  # SIGTERM (docker stop) unwinds like Ctrl-C: temporary files are removed


def main(argv: list[str] | None = None) -> int:
    from harness.cli.parser import build_parser

    signal.signal(signal.SIGTERM, _terminate)  # a sweep's own handler takes over while runs are in flight
    args = build_parser().parse_args(argv)
    try:
        from harness.cli import commands
        from harness.core.plugins import load_plugins

        load_plugins()
        return getattr(commands, f"cmd_{args.command}")(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
