"""The fixed recipe (identical across strategies) and one run's configuration (how it executes it)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from harness.core.errors import UserError
from harness.core.options import INTERNAL_FIELD, check_fields, option
from harness.core.presets import PRESETS, ModelConfig
from harness.core.ranges import within
from harness.core.units import parse_budget, parse_duration

DEFAULT_BUDGET = "24h"
DEFAULT_BUDGET_S = 86400.0
DEFAULT_SEED = 1337
PRECISIONS = ("auto", "bf16", "fp16", "fp32")
DEVICES = ("auto", "cuda", "cpu")
DOC_SEPARATORS = ("paragraph", "line", "document")
BASELINE = "amp"  # the strategy every comparison is stated against (ratios, parity)
YEAR_S = 365 * 86400.0  # the longest budget


def command_budget_s(text: str) -> float:
    """The seconds of a command's own `--budget` (answer, capacity: not a run's recipe), refused past a
    year as a run's is."""
    budget_s = parse_duration(text)
    if budget_s > YEAR_S:
        raise UserError(f"--budget {text} is longer than a year, the longest a run may have: e.g. 7d")
    return budget_s


@dataclass(frozen=True)
class Recipe:
    """Everything that must be identical across strategies for a comparison to be fair."""

    preset: str = field(metadata=option(f"model size: {', '.join(PRESETS)}", shown_default="gpt2-124m"))
    model: ModelConfig = field(metadata=INTERNAL_FIELD)  # the preset's shape, with any field set
    global_batch_tokens: int = field(metadata=option("tokens per optimizer step", within(1, 1 << 40)))
    # a negative rate would train by ascent
    lr: float = field(metadata=option("peak learning rate", within(0, 10, lo_open=True)))
    eval_tokens: int = field(metadata=option("held-out tokens per evaluation", within(1, 1 << 40)))
    budget_s: float = field(
        default=DEFAULT_BUDGET_S,
        metadata=option(
            "training-clock budget, e.g. 30s, 10m, 2h, 24h (or seconds)",
            within(0, YEAR_S, lo_open=True),
            flag="--budget",
            parse=parse_budget,
            metavar="DURATION",
            shown_default=DEFAULT_BUDGET,
        ),
    )
    data: str = field(
        default="synthetic", metadata=option("synthetic, a local file/folder, or hf:<id>[:<config>]")
    )
    tokenizer: str | None = field(
        default=None, metadata=option("tokenizer.json for a real corpus (none: a BPE is trained on it)")
    )
    text_field: str = field(default="text", metadata=option("the field of a record that holds its text"))
    doc_separator: str = field(
        default="paragraph",
        metadata=option(
            ".txt corpora: paragraph (documents separated by a blank line), line (one per line), document "
            "(one per file)",
            choices=DOC_SEPARATORS,
        ),
    )
    val_fraction: float = field(
        default=0.01,
        metadata=option(
            "documents held out for validation (real corpora)", within(0, 1, lo_open=True, hi_open=True)
        ),
    )
    max_corpus_tokens: int | None = field(
        default=None,
        metadata=option("tokenize at most this many training tokens (real corpora)", within(1, 1 << 50)),
    )
    # torch and numpy both take it
    seed: int = field(
        default=DEFAULT_SEED, metadata=option("the model's init and the data's order", within(0, 2**63 - 1))
    )
    min_lr_ratio: float = field(
        default=0.1,
        metadata=option("the learning rate at the deadline, as a fraction of its peak", within(0, 1)),
    )
    warmup_frac: float = field(
        default=0.02,
        metadata=option("the budget's fraction the learning rate warms up over", within(0, 1, hi_open=True)),
    )
    beta1: float = field(default=0.9, metadata=option("AdamW's beta1", within(0, 1, hi_open=True)))
    beta2: float = field(default=0.95, metadata=option("AdamW's beta2", within(0, 1, hi_open=True)))
    eps: float = field(default=1e-8, metadata=option("AdamW's epsilon", within(0, 1, lo_open=True)))
    weight_decay: float = field(default=0.1, metadata=option("AdamW's decoupled weight decay", within(0, 10)))
    grad_clip: float = field(
        default=1.0,
        metadata=option("the gradients' norm is clipped to this (0: no clipping)", within(0, 1e6)),
    )
    precision: str = field(
        default="auto",
        metadata=option(
            "auto: bf16 on GPUs that have it, fp16 with loss scaling on older ones, fp32 on the CPU",
            choices=PRECISIONS,
        ),
    )
    compile: bool | None = field(
        default=None,
        metadata=option("torch.compile for every strategy that supports it (none: on for CUDA)"),
    )
    # evaluations over the budget (outside its clock): the resolution of time-to-target
    eval_points: int = field(
        default=50, metadata=option("evaluations over the budget, outside its clock", within(1, 100_000))
    )
    targets: tuple[float, ...] = field(
        default=(),
        metadata=option("validation losses to time the run to, e.g. 4.0,3.5", within(0, 1e6, lo_open=True)),
    )

    def __post_init__(self) -> None:
        check_fields(self)
        if self.global_batch_tokens % self.model.seq_len:
            raise UserError(
                f"global_batch_tokens={self.global_batch_tokens} must be a multiple of "
                f"seq_len={self.model.seq_len}"
            )
        if self.eval_tokens < self.model.seq_len:
            raise UserError(f"eval_tokens={self.eval_tokens} must be at least seq_len={self.model.seq_len}")
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

    recipe: Recipe = field(metadata=INTERNAL_FIELD)
    strategy: str = field(metadata=INTERNAL_FIELD)  # each command names its strategies its own way
    device: str = field(
        default="auto",
        metadata=option("where to train: auto (CUDA if torch sees it), cuda or cpu", choices=DEVICES),
    )
    micro_batch: int | None = field(
        default=None,
        metadata=option(
            "sequences per micro-batch (auto: the largest that fits on CUDA, the preset's elsewhere)",
            within(1, 2**31),
            none_word="auto",
        ),
    )
    gpu_memory_gib: float | None = field(
        default=None,
        metadata=option(
            "cap the GPU memory the run may use, e.g. 24 to stand for a 24 GiB card",
            within(0, 1e6, lo_open=True),
        ),
    )
    warmup_steps: int = field(
        default=2,
        metadata=option("untimed compile/JIT warm-up steps, then undone", within(0, 1_000_000)),
    )
    max_steps: int | None = field(
        default=None,
        metadata=option(
            "stop after this many optimizer steps (the schedule then follows steps)", within(1, 1 << 40)
        ),
    )
    log_interval_s: float | None = field(
        default=None,
        metadata=option(
            "training-clock seconds between metric rows (none: 1% of the budget, 1 to 30 s)", within(0, 1e9)
        ),
    )
    checkpoint_interval_s: float | None = field(
        default=None,
        metadata=option(
            "training-clock seconds between checkpoints (none: 1/48 of the budget, at least 60 s)",
            within(0, 1e9, lo_open=True),
        ),
    )
    keep_checkpoints: int = field(
        default=2, metadata=option("checkpoints a run folder keeps", within(1, 1000))
    )
    trackers: tuple[str, ...] = field(
        default=(),
        metadata=option("also log to a tracker: tensorboard (repeat the flag for more)", flag="--tracker"),
    )
    run_id: str = field(default="", metadata=INTERNAL_FIELD)
    command: tuple[str, ...] = field(default=(), metadata=INTERNAL_FIELD)

    def described(self) -> dict[str, Any]:
        """Every field but the recipe (a result holds that resolved), as result.json's `run_config`: a field
        added here reaches the result with no other edit."""
        out = dataclasses.asdict(self)
        out.pop("recipe")
        return out

    def __post_init__(self) -> None:
        check_fields(self)
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
