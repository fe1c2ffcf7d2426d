"""Metric rows leave the run here, at their own cadence: every sink (metrics.jsonl always, trackers as
asked) and the parent's progress display. The training loop hands over loss tensors per step; they are
read from the device (`.tolist()`, one synchronization) only when a row is due."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from harness.engine.events import EventPipe
from harness.metrics.sinks import ALWAYS, SINKS, MetricSink

log = logging.getLogger("harness.metrics")


@dataclass
class _Window:
    """The steps since the last train row: (loss tensor, lr, grad norm) each, and where the window began."""

    pending: list[tuple[Any, float, Any]] = field(default_factory=list)
    train_s: float = 0.0
    tokens: int = 0
    wall: float = 0.0


class MetricLogger:
    def __init__(
        self, run_dir: Path, trackers: tuple[str, ...], events: EventPipe, every_s: float, budget_s: float
    ) -> None:
        self.sinks: list[MetricSink] = [SINKS[name](run_dir) for name in (ALWAYS, *trackers)]
        self.events = events
        self.every_s, self.budget_s = every_s, budget_s  # a row every `every_s`, and one at the budget
        self.window = _Window()

    @property
    def rows(self) -> int:
        """Rows in metrics.jsonl: a checkpoint records it, a resume cuts the file back to it."""
        return self.sinks[0].rows

    def open(self, resume_rows: int | None = None, resume_step: int | None = None) -> None:
        for sink in self.sinks:
            sink.open(resume_rows, resume_step)

    def start_window(self, train_s: float, tokens: int) -> None:
        self.window = _Window(train_s=train_s, tokens=tokens, wall=time.perf_counter())

    def step(self, loss, lr: float, grad_norm) -> None:
        self.window.pending.append((loss, lr, grad_norm))

    def due(self, train_s: float) -> bool:
        return train_s - self.window.train_s >= self.every_s or train_s >= self.budget_s

    def train_row(self, step: int, tokens: int, train_s: float, step_s: float) -> float | None:
        """Write the row for the steps since the last one; return the last step's loss (None if none)."""
        w = self.window
        if not w.pending:
            return None
        losses = torch.stack([torch.as_tensor(p[0]) for p in w.pending]).float().tolist()
        _, lr, grad_norm = w.pending[-1]
        interval = train_s - w.train_s
        self.write(
            {
                "kind": "train",
                "step": step,
                "tokens": tokens,
                "train_s": train_s,
                "lr": lr,
                "loss": sum(losses) / len(losses),
                "last_loss": losses[-1],
                "steps": len(losses),
                "grad_norm": None if grad_norm is None else float(grad_norm),
                "tokens_per_s": (tokens - w.tokens) / interval if interval > 0 else None,
                "step_s": step_s,
                "wall_per_train": (time.perf_counter() - w.wall) / interval if interval > 0 else None,
            }
        )
        self.start_window(train_s, tokens)
        return losses[-1]

    def eval_row(self, step: int, tokens: int, train_s: float, val_loss: float, floor: float | None) -> dict:
        row = {
            "kind": "eval",
            "step": step,
            "tokens": tokens,
            "train_s": train_s,
            "val_loss": val_loss,
            "val_ppl": math.exp(val_loss) if val_loss < 700 else None,
            "gap_to_floor": None if floor is None else val_loss - floor,
        }
        self.write(row)
        return row

    def write(self, row: dict[str, Any]) -> None:
        for sink in self.sinks:
            sink.write(row)
        self.events.emit("metric", **row)

    def finish(self, summary: dict[str, Any]) -> None:
        for sink in self.sinks[1:]:
            try:
                sink.finish(summary)
            except Exception as exc:  # a tracker's failure must not cost the run its result
                log.warning("tracker %s could not record the summary: %s", sink.name, exc)

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()
