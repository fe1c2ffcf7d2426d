"""The GPT family's named sizes: one recipe, several shapes (tiny for tests, GPT-2 small as the reference,
the GPT-3 ladder for capacity work)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.core.errors import UserError
from harness.core.options import check_fields, option
from harness.core.ranges import within


@dataclass(frozen=True)
class ModelConfig:
    """Shape of one member of the GPT family (GPT-2 style pre-LN decoder, tied embeddings)."""

    n_layer: int = field(metadata=option("transformer blocks", within(1, 4096)))
    n_head: int = field(metadata=option("attention heads (they divide d_model)", within(1, 4096)))
    d_model: int = field(metadata=option("the model's width", within(1, 1 << 20)))
    seq_len: int = field(metadata=option("tokens per sequence", within(1, 1 << 20)))
    # 3: an end-of-text token and two others (the synthetic process needs them); 10M: no language model
    # vocabulary is larger, and a larger embedding table would exhaust host memory before any check.
    vocab_size: int = field(metadata=option("vocabulary size", within(3, 10_000_000)))

    def __post_init__(self) -> None:
        check_fields(self)
        if self.d_model % self.n_head:
            raise UserError(f"d_model={self.d_model} must be divisible by n_head={self.n_head}")


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    model: ModelConfig
    global_batch_tokens: int
    lr: float
    eval_tokens: int
    micro_batch: int  # used where no fitting happens (CPU) and no override is given
    extra: dict[str, Any] = field(default_factory=dict)


_GPT2_VOCAB = 50304  # GPT-2's 50257 padded to a multiple of 128, as nanoGPT and llm.c do
_HALF_MILLION = 524_288

PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "tiny",
            "2 layers, d=64, seq 64: tests and CPU demos (seconds)",
            ModelConfig(2, 4, 64, 64, 512),
            4096,
            3e-3,
            8192,
            16,
        ),
        Preset(
            "gpt2-124m",
            "GPT-2 small, the reference recipe (llm.c / nanoGPT)",
            ModelConfig(12, 12, 768, 1024, _GPT2_VOCAB),
            _HALF_MILLION,
            6e-4,
            131_072,
            16,
        ),
        Preset(
            "gpt-350m",
            "GPT-2 medium shape: 24 layers, d=1024",
            ModelConfig(24, 16, 1024, 1024, _GPT2_VOCAB),
            _HALF_MILLION,
            3e-4,
            131_072,
            8,
        ),
        Preset(
            "gpt-760m",
            "GPT-3 Large shape: 24 layers, d=1536",
            ModelConfig(24, 24, 1536, 1024, _GPT2_VOCAB),
            _HALF_MILLION,
            2.5e-4,
            131_072,
            4,
        ),
        Preset(
            "gpt-1.3b",
            "GPT-3 XL shape: 24 layers, d=2048",
            ModelConfig(24, 16, 2048, 1024, _GPT2_VOCAB),
            _HALF_MILLION,
            2e-4,
            131_072,
            4,
        ),
        Preset(
            "gpt-2.7b",
            "GPT-3 2.7B shape: 32 layers, d=2560",
            ModelConfig(32, 20, 2560, 1024, _GPT2_VOCAB),
            _HALF_MILLION,
            1.6e-4,
            131_072,
            2,
        ),
        Preset(
            "gpt-6.7b",
            "GPT-3 6.7B shape: 32 layers, d=4096",
            ModelConfig(32, 32, 4096, 1024, _GPT2_VOCAB),
            _HALF_MILLION,
            1.2e-4,
            131_072,
            1,
        ),
        Preset(
            "gpt-13b",
            "GPT-3 13B shape: 40 layers, d=5120",
            ModelConfig(40, 40, 5120, 1024, _GPT2_VOCAB),
            _HALF_MILLION,
            1e-4,
            131_072,
            1,
        ),
    )
}


# The capacity ladder: the GPT-3 family's sizes (Brown et al. 2020, table 2.1: the same depth and width,
# heads of 64 or 128, this recipe's sequence length and vocabulary), smallest first.
LADDER = ("gpt2-124m", "gpt-350m", "gpt-760m", "gpt-1.3b", "gpt-2.7b", "gpt-6.7b", "gpt-13b")


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise UserError(f"unknown preset {name!r}: choose one of {', '.join(PRESETS)}")
    return PRESETS[name]
