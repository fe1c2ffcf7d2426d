"""The state of a run that a checkpoint carries: everything the training loop changes, declared here, so
that a resumed run continues exactly where the checkpoint left it."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any


@dataclass
class TrainState:
    """The harness's side of a resumable run. The data position is `step` (one global batch per step)."""

    step: int = 0
    tokens: int = 0
    train_s: float = 0.0  # training-clock seconds so far (the budget is carried across sessions)
    next_eval_s: float = 0.0
    last_loss: float | None = None
    evals: list[dict[str, Any]] = field(default_factory=list)
    excluded_s: dict[str, float] = field(default_factory=dict)  # eval, checkpoint, warmup, setup, fit
    wall_s: float = 0.0  # wall seconds of earlier sessions, up to their last checkpoint
    metrics_rows: int = 0  # metrics.jsonl lines that belong to the run up to this checkpoint
    resumes: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainState:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
