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
    train_s: float = 0.0  # training-clock seconds so far (the budget is carried across attempts)
    next_eval_s: float = 0.0
    lr_fraction: float = 0.0  # where the last step's LR was read in the budget (the schedule never goes back)
    last_loss: float | None = None
    evals: list[dict[str, Any]] = field(default_factory=list)
    excluded_s: dict[str, float] = field(default_factory=dict)  # eval, checkpoint, warmup, setup, fit
    wall_s: float = 0.0  # wall seconds of earlier attempts, up to their last checkpoint
    metrics_rows: int = 0  # metrics.jsonl lines that belong to the run up to this checkpoint
    resumes: list[dict[str, Any]] = field(default_factory=list)
    # Figures of every session so far, so that a resumed run reports the whole run, not its last session:
    step_times_s: list[float] = field(default_factory=list)  # every timed step
    energy_j: dict[str, float] = field(default_factory=dict)  # per part (gpu, host), over the training clock
    data_produce_s: float = 0.0  # the data source's own work, and what it produced
    data_tokens: int = 0
    data_wait_s: float = 0.0  # the training loop's wait for its next batch
    peaks: dict[str, float | None] = field(default_factory=dict)  # memory peaks: the highest of any session
    compiles_in_training: int = 0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainState:
        known = {f.name for f in fields(cls)}
        data = {k: v for k, v in data.items() if k in known}
        energy = data.get("energy_j")
        if not isinstance(energy, dict):  # checkpoints before the host part: one figure, the GPU's
            data["energy_j"] = {} if energy is None else {"gpu": float(energy)}
        return cls(**data)


def _higher(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


@dataclass(frozen=True)
class PriorAttempts:
    """What earlier attempts of the run (each resume is one more) contributed, read from the state when this
    attempt starts, so that this attempt's figures are added to them (time, data) or compared with them
    (peaks), never double-counted however often the state is saved."""

    data_produce_s: float
    data_tokens: int
    data_wait_s: float
    peaks: dict[str, float | None]
    compiles: int

    @classmethod
    def read_from(cls, state: TrainState) -> PriorAttempts:
        return cls(
            state.data_produce_s,
            state.data_tokens,
            state.data_wait_s,
            dict(state.peaks),
            state.compiles_in_training,
        )

    def add_to(
        self,
        state: TrainState,
        *,
        produce_s: float,
        tokens: int,
        wait_s: float,
        peaks: dict[str, float | None],
        compiles: int,
    ) -> None:
        """Set the state's whole-run figures from this session's so far."""
        state.data_produce_s = self.data_produce_s + produce_s
        state.data_tokens = self.data_tokens + tokens
        state.data_wait_s = self.data_wait_s + wait_s
        state.peaks = {k: _higher(self.peaks.get(k), peaks.get(k)) for k in {*self.peaks, *peaks}}
        state.compiles_in_training = self.compiles + compiles
