"""The fixed recipe (identical across strategies) and one run's configuration (how it executes it)."""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.core.errors import UserError
from harness.core.presets import ModelConfig
from harness.core.ranges import check_ranges, within

DEFAULT_BUDGET = "24h"
DEFAULT_SEED = 1337
PRECISIONS = ("auto", "bf16", "fp16", "fp32")
DEVICES = ("auto", "cuda", "cpu")
DOC_SEPARATORS = ("paragraph", "line", "document")
BASELINE = "amp"  # the strategy every comparison is stated against (ratios, parity)
YEAR_S = 365 * 86400.0  # the longest budget


@dataclass(frozen=True)
class Recipe:
    """Everything that must be identical across strategies for a comparison to be fair."""

    preset: str
    model: ModelConfig
    budget_s: float = field(metadata=within(0, YEAR_S, lo_open=True))
    global_batch_tokens: int = field(metadata=within(1, 1 << 40))
    lr: float = field(metadata=within(0, 10, lo_open=True))  # a negative rate would train by ascent
    eval_tokens: int = field(metadata=within(1, 1 << 40))
    data: str = "synthetic"
    tokenizer: str | None = None
    text_field: str = "text"
    # .txt corpora: "paragraph" (documents separated by a blank line), "line" (one per line), "document"
    # (one per file)
    doc_separator: str = "paragraph"
    # documents held out for validation (real corpora)
    val_fraction: float = field(default=0.01, metadata=within(0, 1, lo_open=True, hi_open=True))
    # tokenize at most this many training tokens (real corpora)
    max_corpus_tokens: int | None = field(default=None, metadata=within(1, 1 << 50))
    seed: int = field(default=DEFAULT_SEED, metadata=within(0, 2**63 - 1))  # torch and numpy both take it
    min_lr_ratio: float = field(default=0.1, metadata=within(0, 1))
    warmup_frac: float = field(default=0.02, metadata=within(0, 1, hi_open=True))
    beta1: float = field(default=0.9, metadata=within(0, 1, hi_open=True))
    beta2: float = field(default=0.95, metadata=within(0, 1, hi_open=True))
    eps: float = field(default=1e-8, metadata=within(0, 1, lo_open=True))
    weight_decay: float = field(default=0.1, metadata=within(0, 10))
    grad_clip: float = field(default=1.0, metadata=within(0, 1e6))  # 0 disables clipping
    precision: str = "auto"
    compile: bool | None = None
    # evaluations over the budget (outside its clock): the resolution of time-to-target
    eval_points: int = field(default=50, metadata=within(1, 100_000))
    targets: tuple[float, ...] = field(default=(), metadata=within(0, 1e6, lo_open=True))

    def __post_init__(self) -> None:
        check_ranges(self)
        if self.precision not in PRECISIONS:
            raise UserError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.global_batch_tokens % self.model.seq_len:
            raise UserError(
                f"global_batch_tokens={self.global_batch_tokens} must be a multiple of "
                f"seq_len={self.model.seq_len}"
            )
        if self.eval_tokens < self.model.seq_len:
            raise UserError(f"eval_tokens={self.eval_tokens} must be at least seq_len={self.model.seq_len}")
        if self.doc_separator not in DOC_SEPARATORS:
            raise UserError(
                f"doc_separator={self.doc_separator!r}: choose {', '.join(DOC_SEPARATORS)} "
                "(paragraph: documents separated by a blank line)"
            )
        if not self.text_field.strip():
            raise UserError("text_field is empty: name the field that holds the text, e.g. text")

    @property
    def global_batch_seqs(self) -> int:
        return self.global_batch_tokens // self.model.seq_len

    @property
    def eval_seqs(self) -> int:
        return self.eval_tokens // self.model.seq_len

    @property
    def eval_window(self) -> int:
        """Tokens per evaluated sequence: its inputs and the last one's next-token target."""
        return self.model.seq_len + 1


@dataclass(frozen=True)
class RunConfig:
    """One run: the recipe plus how this run executes it (strategy, device, micro-batch)."""

    recipe: Recipe
    strategy: str
    device: str = "auto"
    # None: fitted on CUDA, the preset's default elsewhere
    micro_batch: int | None = field(default=None, metadata=within(1, 2**31))
    # a cap on what the run may use on the GPU (emulates a smaller card)
    gpu_memory_gib: float | None = field(default=None, metadata=within(0, 1e6, lo_open=True))
    # compile/JIT warm-up steps, excluded from the clock and then undone
    warmup_steps: int = field(default=2, metadata=within(0, 1_000_000))
    # a step-budgeted run (parity checks): the schedule follows steps
    max_steps: int | None = field(default=None, metadata=within(1, 1 << 40))
    # None: derived from the budget (see log_every_s, checkpoint_every_s)
    log_interval_s: float | None = field(default=None, metadata=within(0, 1e9))
    checkpoint_interval_s: float | None = field(default=None, metadata=within(0, 1e9, lo_open=True))
    keep_checkpoints: int = field(default=2, metadata=within(1, 1000))
    trackers: tuple[str, ...] = ()  # metric sinks beside metrics.jsonl, e.g. ("tensorboard",)
    run_id: str = ""
    command: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_ranges(self)
        if self.device not in DEVICES:
            raise UserError(f"device must be one of {', '.join(DEVICES)}, got {self.device!r}")
        if self.micro_batch is not None:  # checked here once: every run built from this config may trust it
            check_micro_batch(self.micro_batch, self.recipe.global_batch_seqs)

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
