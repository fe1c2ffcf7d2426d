"""Where a fit's runs go: IsoFLOP profiles (Hoffmann et al.'s approach 2) at a few compute levels, each with
the rungs nearest the current law's optimum at that level, the top level as high as the fit's time allows.

A run of N parameters at compute C trains D = C / (6 N) tokens, a whole number of optimizer steps, with its
learning-rate schedule ending there. A run keeps its rung's own global batch and learning rate (the
recipe the answer compares) unless that leaves it fewer than MIN_STEPS steps; then its batch shrinks, a
whole number of sequences, to give MIN_STEPS (at small compute a large batch is worse than the law
expects: the reference's 0.5M tokens is several times the compute-optimal batch there)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from harness.capacity.law import Law

LEVELS = 3  # compute levels: the profiles
PER_LEVEL = 4  # rungs per profile, around the current law's optimum
SPACING = 4.0  # each level has this many times the compute of the one below
MIN_STEPS = 20  # optimizer steps a fitting run takes at the least


class GridTooLong(ValueError):
    """Even the shortest grid takes longer than the fit's time; `seconds` is its predicted time."""

    def __init__(self, seconds: float, runs: int) -> None:
        super().__init__(
            f"the shortest grid ({LEVELS} levels of {runs} runs of {MIN_STEPS} steps) is predicted to take "
            f"{seconds:.0f} s"
        )
        self.seconds = seconds


@dataclass(frozen=True)
class Rung:
    """A size a fit may train: its shape (a preset, with model fields set), parameters, batch, speed."""

    name: str
    preset: str
    params: int
    global_batch_tokens: int
    seq_len: int
    tokens_per_s: float  # predicted (or measured) speed, for the fit's time
    shape: dict = field(default_factory=dict)  # model fields set on the preset (n_layer, d_model, n_head)


@dataclass(frozen=True)
class GridRun:
    """One fitting run: a rung at a compute level, its tokens, steps and batch, and its predicted time."""

    rung: Rung
    level: int  # 0 is the lowest compute
    compute: float  # 6 N D FLOPs, as planned
    steps: int
    global_batch_tokens: int

    @property
    def tokens(self) -> int:
        return self.steps * self.global_batch_tokens

    @property
    def seconds(self) -> float:
        return self.tokens / self.rung.tokens_per_s

    @property
    def key(self) -> str:
        """What names the run in the fit document: a stopped fit finds its finished runs by it."""
        return f"{self.rung.name}@L{self.level + 1}@{self.tokens}"  # a clamped rung's tokens may repeat


def place(rung: Rung, compute: float, level: int) -> GridRun:
    """The run of `rung` at `compute`: its steps, and a smaller batch if its own leaves too few."""
    tokens = compute / (6 * rung.params)
    batch = rung.global_batch_tokens
    if tokens / batch < MIN_STEPS:
        batch = max(rung.seq_len, int(tokens / MIN_STEPS) // rung.seq_len * rung.seq_len)
    steps = max(MIN_STEPS, round(tokens / batch))
    return GridRun(rung, level, compute, steps, batch)


def profile(law: Law, ladder: list[Rung], compute: float, level: int) -> list[GridRun]:
    """The PER_LEVEL rungs nearest the law's optimum at `compute` (in log size), consecutive on the ladder."""
    best, _ = law.optimum(compute)
    nearest = min(range(len(ladder)), key=lambda i: abs(math.log(ladder[i].params / best)))
    count = min(PER_LEVEL, len(ladder))
    start = min(max(0, nearest - (count - 1) // 2), len(ladder) - count)
    return [place(r, compute, level) for r in ladder[start : start + count]]


def grid(law: Law, ladder: list[Rung], top: float) -> list[GridRun]:
    """Every level's profile, the top level at `top` FLOPs."""
    return [run for k in range(LEVELS) for run in profile(law, ladder, top / SPACING ** (LEVELS - 1 - k), k)]


def seconds(runs: list[GridRun], overhead_s: float = 0.0) -> float:
    """The grid's predicted time: its runs' training, and `overhead_s` per run (start, warm-up, evals)."""
    return sum(r.seconds + overhead_s for r in runs)


def plan_grid(law: Law, ladder: list[Rung], fit_budget_s: float, overhead_s: float = 0.0) -> list[GridRun]:
    """The grid with the highest top compute whose runs take at most `fit_budget_s` (a bisection over the
    top level in logs: a grid's time grows with its compute). GridTooLong, with the shortest grid's time,
    if even a grid of MIN_STEPS-step runs of the smallest batches does not fit."""
    ladder = sorted(ladder, key=lambda r: r.params)
    smallest = min(6 * r.params * MIN_STEPS * r.seq_len for r in ladder) * SPACING ** (LEVELS - 1)
    shortest = seconds(grid(law, ladder, smallest), overhead_s)
    if shortest > fit_budget_s:
        raise GridTooLong(shortest, min(PER_LEVEL, len(ladder)))
    low, high = math.log(smallest), math.log(smallest) + 60.0
    for _ in range(60):
        mid = (low + high) / 2
        fits = seconds(grid(law, ladder, math.exp(mid)), overhead_s) <= fit_budget_s
        low, high = (mid, high) if fits else (low, mid)
    return grid(law, ladder, math.exp(low))
