"""The fixed recipe (identical across strategies) and one run's configuration (how it executes it)."""

from __future__ import annotations

from dataclasses import dataclass

from harness.core.errors import UserError
from harness.core.presets import ModelConfig

DEFAULT_BUDGET = "24h"
DEFAULT_SEED = 1337
PRECISIONS = ("auto", "bf16", "fp16", "fp32")
DEVICES = ("auto", "cuda", "cpu")
BASELINE = "amp"  # the strategy every comparison is stated against (ratios, parity)


@dataclass(frozen=True)
class Recipe:
    """Everything that must be identical across strategies for a comparison to be fair."""

    preset: str
    model: ModelConfig
    budget_s: float
    global_batch_tokens: int
    lr: float
    eval_tokens: int
    data: str = "synthetic"
    tokenizer: str | None = None
    text_field: str = "text"
    val_fraction: float = 0.01  # documents held out for validation (real corpora)
    max_corpus_tokens: int | None = None  # tokenize at most this many training tokens (real corpora)
    seed: int = DEFAULT_SEED
    min_lr_ratio: float = 0.1
    warmup_frac: float = 0.02
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    precision: str = "auto"
    compile: bool | None = None
    eval_points: int = 50  # evaluations over the budget (outside its clock): time-to-target resolution
    targets: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if self.budget_s <= 0:
            raise UserError(f"budget must be positive, got {self.budget_s}s")
        if self.precision not in PRECISIONS:
            raise UserError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.global_batch_tokens % self.model.seq_len:
            raise UserError(
                f"global_batch_tokens={self.global_batch_tokens} must be a multiple of "
                f"seq_len={self.model.seq_len}"
            )
        if self.eval_tokens < self.model.seq_len:
            raise UserError(f"eval_tokens={self.eval_tokens} must be at least seq_len={self.model.seq_len}")
        if not 0 <= self.warmup_frac < 1:
            raise UserError(f"warmup_frac must be in [0, 1), got {self.warmup_frac}")
        if not 0 <= self.min_lr_ratio <= 1:
            raise UserError(f"min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        if self.eval_points < 1:
            raise UserError(f"eval_points must be >= 1, got {self.eval_points}")
        if not 0 < self.val_fraction < 1:
            raise UserError(f"val_fraction must be in (0, 1), got {self.val_fraction}")

    @property
    def global_batch_seqs(self) -> int:
        return self.global_batch_tokens // self.model.seq_len

    @property
    def eval_seqs(self) -> int:
        return self.eval_tokens // self.model.seq_len


@dataclass(frozen=True)
class RunConfig:
    """One run: the recipe plus how this run executes it (strategy, device, micro-batch)."""

    recipe: Recipe
    strategy: str
    device: str = "auto"
    micro_batch: int | None = None  # None: fitted on CUDA, the preset's default elsewhere
    gpu_memory_gib: float | None = None  # cap on what the run may use on the GPU (emulates a smaller card)
    warmup_steps: int = 2  # compile/JIT warm-up steps, excluded from the clock and then undone
    max_steps: int | None = None  # a step-budgeted run (parity checks): the schedule follows steps
    log_interval_s: float | None = None  # None: derived from the budget
    checkpoint_interval_s: float | None = None  # None: derived from the budget
    keep_checkpoints: int = 2
    trackers: tuple[str, ...] = ()  # metric sinks beside metrics.jsonl, e.g. ("tensorboard",)
    run_id: str = ""
    command: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.device not in DEVICES:
            raise UserError(f"device must be one of {', '.join(DEVICES)}, got {self.device!r}")
        if self.micro_batch is not None and self.micro_batch < 1:
            raise UserError(f"micro_batch must be >= 1, got {self.micro_batch}")
        if self.gpu_memory_gib is not None and not (0 < self.gpu_memory_gib < 1e6):
            raise UserError(f"--gpu-memory-gib must be a positive number of GiB, got {self.gpu_memory_gib}")
        if self.warmup_steps < 0:
            raise UserError(f"warmup_steps must be >= 0, got {self.warmup_steps}")
        if self.max_steps is not None and self.max_steps < 1:
            raise UserError(f"max_steps must be >= 1, got {self.max_steps}")

    @property
    def log_every_s(self) -> float:
        """Training-clock seconds between metric rows: as set, else 1% of the budget within [1 s, 30 s]."""
        if self.log_interval_s is not None:
            return self.log_interval_s
        return min(30.0, max(1.0, self.recipe.budget_s / 100))

    @property
    def checkpoint_every_s(self) -> float:
        """Training-clock seconds between checkpoints: as set, else 1/48 of the budget, at least a minute."""
        return self.checkpoint_interval_s or max(60.0, self.recipe.budget_s / 48)


def divisors_at_most(total: int, cap: int) -> list[int]:
    """Divisors of `total` not above `cap`, largest first."""
    return [d for d in range(min(total, cap), 0, -1) if total % d == 0]


def check_micro_batch(micro_batch: int, global_batch_seqs: int) -> None:
    if global_batch_seqs % micro_batch:
        valid = divisors_at_most(global_batch_seqs, global_batch_seqs)
        raise UserError(
            f"micro_batch={micro_batch} does not divide the global batch of {global_batch_seqs} sequences: "
            f"use one of {', '.join(map(str, sorted(valid)))}"
        )
