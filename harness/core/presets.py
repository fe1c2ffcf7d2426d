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


def _gpt(name: str, what: str, layers: int, heads: int, width: int, lr: float, micro_batch: int) -> Preset:
    """A member of the GPT family at this recipe's sequence length, vocabulary and 512K-token batch."""
    shape = f"{layers} layers, d={width}, {heads} heads of {width // heads}"
    model = ModelConfig(layers, heads, width, 1024, _GPT2_VOCAB)
    return Preset(name, f"{what}: {shape}", model, _HALF_MILLION, lr, 131_072, micro_batch)


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
            "small",
            "4 layers, d=128, seq 64: tiny's larger sibling, for answers on a CPU (about 6x its size)",
            ModelConfig(4, 4, 128, 64, 512),
            4096,
            2e-3,
            8192,
            16,
        ),
        # The ladder below GPT-2 small and between the GPT-3 sizes: the same family (heads of 64 or 128,
        # depth growing with width), so that the best size of a budget falls between two rungs.
        _gpt("gpt-16m", "below GPT-2 small", 4, 4, 256, 1.2e-3, 16),
        _gpt("gpt-30m", "below GPT-2 small", 6, 6, 384, 1e-3, 16),
        _gpt("gpt-51m", "below GPT-2 small", 8, 8, 512, 8e-4, 16),
        _gpt("gpt-82m", "below GPT-2 small", 10, 10, 640, 7e-4, 16),
        _gpt("gpt2-124m", "GPT-2 small, the reference recipe (llm.c / nanoGPT)", 12, 12, 768, 6e-4, 16),
        _gpt("gpt-200m", "between GPT-2 small and medium", 16, 14, 896, 4.5e-4, 8),
        _gpt("gpt-350m", "GPT-2 medium shape", 24, 16, 1024, 3e-4, 8),
        _gpt("gpt-540m", "between GPT-3 Medium and Large", 24, 20, 1280, 2.8e-4, 4),
        _gpt("gpt-760m", "GPT-3 Large shape", 24, 24, 1536, 2.5e-4, 4),
        _gpt("gpt-1b", "between GPT-3 Large and XL", 24, 28, 1792, 2.2e-4, 4),
        _gpt("gpt-1.3b", "GPT-3 XL shape", 24, 16, 2048, 2e-4, 4),
        _gpt("gpt-1.9b", "between GPT-3 XL and 2.7B", 28, 36, 2304, 1.8e-4, 2),
        _gpt("gpt-2.7b", "GPT-3 2.7B shape", 32, 20, 2560, 1.6e-4, 2),
        _gpt("gpt-4.1b", "between GPT-3 2.7B and 6.7B", 32, 25, 3200, 1.4e-4, 1),
        _gpt("gpt-6.7b", "GPT-3 6.7B shape", 32, 32, 4096, 1.2e-4, 1),
        _gpt("gpt-9.4b", "between GPT-3 6.7B and 13B", 36, 36, 4608, 1.1e-4, 1),
        _gpt("gpt-13b", "GPT-3 13B shape", 40, 40, 5120, 1e-4, 1),
    )
}


# The ladder of sizes, smallest first: the GPT-3 family's (Brown et al. 2020, table 2.1: the same depth and
# width, heads of 64 or 128, this recipe's sequence length and vocabulary), with rungs below GPT-2 small
# and between its sizes. The learning rates of the added rungs are interpolated from the GPT-3 table's.
LADDER = tuple(name for name in PRESETS if name.startswith("gpt"))
CPU_PRESETS = ("tiny", "small")  # sizes a CPU trains in seconds
# The sizes a fit of the law trains on a CPU: the tiny family (its sequence length and vocabulary) at
# widths around tiny and small, depth growing with width; (name, preset, model fields set on it).
CPU_FIT_LADDER = (
    ("tiny-d32", "tiny", {"n_layer": 1, "d_model": 32, "n_head": 4}),
    ("tiny-d48", "tiny", {"n_layer": 2, "d_model": 48, "n_head": 4}),
    ("tiny", "tiny", {}),
    ("tiny-d96", "tiny", {"n_layer": 3, "d_model": 96, "n_head": 4}),
    ("small", "small", {}),
    ("small-d192", "small", {"n_layer": 5, "d_model": 192, "n_head": 4}),
    ("small-d256", "small", {"n_layer": 6, "d_model": 256, "n_head": 4}),
)


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise UserError(f"unknown preset {name!r}: choose one of {', '.join(PRESETS)}")
    return PRESETS[name]
