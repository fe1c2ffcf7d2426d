"""Metric sinks by name: `jsonl` (always) and the trackers `--tracker` can add. Adding a tracker is one file
(a `MetricSink` subclass) and one line here."""

from __future__ import annotations

from harness.core.errors import UserError
from harness.metrics.sinks.base import MetricSink
from harness.metrics.sinks.jsonl import JsonlSink
from harness.metrics.sinks.tensorboard import TensorBoardSink

SINKS: dict[str, type[MetricSink]] = {
    "jsonl": JsonlSink,
    "tensorboard": TensorBoardSink,
}
ALWAYS = "jsonl"

__all__ = ["ALWAYS", "SINKS", "MetricSink", "check_trackers"]


def check_trackers(names: tuple[str, ...]) -> None:
    """Refuse an unknown tracker, or one whose library is missing, before any run starts."""
    import importlib.util

    for name in names:
        if name not in SINKS or name == ALWAYS:
            trackers = ", ".join(n for n in SINKS if n != ALWAYS)
            raise UserError(f"unknown tracker {name!r}: choose from {trackers}")
        missing = [m for m in SINKS[name].requires if importlib.util.find_spec(m) is None]
        if missing:
            raise UserError(
                f"tracker {name} needs {', '.join(missing)}, which is not installed: run `make setup`"
            )
