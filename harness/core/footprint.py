"""What the memory model is made of: the shapes a model's parameters have, the bytes a strategy keeps per
parameter tensor (on the GPU and on the host, by kind), and the activation bytes a forward pass saves for
backward. Strategies declare theirs in their own files; `harness.capacity.memory_model` adds them up."""

from __future__ import annotations

from dataclasses import dataclass, fields

# How the forward pass computes, which decides the dtype of every saved activation.
NUMERICS = (
    "fp32",  # fp32 weights, fp32 compute
    "autocast16",  # fp32 weights, matmuls in 16 bits under autocast (amp)
    "pure16",  # 16-bit weights, no autocast (DeepSpeed's bf16/fp16 modes)
)


@dataclass(frozen=True)
class HostStep:
    """What an offloading executor's optimizer step does on the host, for the throughput model
    (`harness.capacity.throughput`): the host optimizer that steps (benchmarked on the machine at hand), and
    the bytes per parameter that cross the host link while the GPU waits for them, or while it computes."""

    optimizer: str  # the host optimizer, as its benchmark names it
    exposed_bytes_per_param: (
        float  # per optimizer step, the GPU waiting (after the update, before the next forward)
    )
    overlapped_bytes_per_param: float  # per micro-batch, hidden behind compute (said, not added)


@dataclass(frozen=True)
class ParamShape:
    """One parameter tensor as the optimizer sees it (a tied weight appears once)."""

    name: str
    shape: tuple[int, ...]
    embedding: bool = False  # a lookup table (optimizers may keep 32-bit state for these)

    @property
    def numel(self) -> int:
        n = 1
        for size in self.shape:
            n *= size
        return n


@dataclass(frozen=True)
class Bytes:
    """Bytes in GPU memory and in host memory."""

    gpu: float = 0.0
    host: float = 0.0

    def __add__(self, other: Bytes) -> Bytes:
        return Bytes(self.gpu + other.gpu, self.host + other.host)

    @property
    def total(self) -> float:
        return self.gpu + self.host

    @staticmethod
    def on(device: str, n: float) -> Bytes:
        """`n` bytes on "gpu" (the training device) or on "host"."""
        return Bytes(gpu=n) if device == "gpu" else Bytes(host=n)


@dataclass(frozen=True)
class StateFootprint:
    """What a strategy holds for the whole run, whatever the micro-batch: each kind exactly as the tensors
    it allocates (validated against them)."""

    weights: Bytes  # the parameters the model computes with
    gradients: Bytes  # `param.grad` at the end of a backward pass
    optimizer_state: Bytes  # moments, quantization maps, step counters
    master_weights: Bytes = Bytes()  # fp32 copies kept by the optimizer beside 16-bit weights
    grad_buffers: Bytes = Bytes()  # gradient copies besides `param.grad` (accumulation, offload staging)
    workspace: Bytes = Bytes()  # fixed buffers a library allocates (communication buckets, staging)
    # Gradient buffers alive only while a step accumulates (from its first backward to its update): absent
    # after the step, but part of the GPU peak, which falls during accumulation.
    accumulation: Bytes = Bytes()
    # The sizes in bytes of the pinned host blocks among the host bytes above. torch's caching host
    # allocator rounds each block up to a power of two (ATen/core/CachingHostAllocator.h, PowerOf2Ceil).
    pinned_blocks: tuple[int, ...] = ()

    def total(self) -> Bytes:
        out = Bytes()
        for b in self.by_kind().values():
            out = out + b
        return out

    def by_kind(self) -> dict[str, Bytes]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "pinned_blocks"}

    def pinned_rounding(self) -> int:
        """Host bytes the caching host allocator adds to the pinned blocks by rounding them up."""
        return sum(pinned_block_bytes(b) - b for b in self.pinned_blocks)


def pinned_block_bytes(n: int) -> int:
    """What torch's caching host allocator reserves for a pinned request of `n` bytes: the next power of
    two (its default round-up, no size classes configured)."""
    return 1 << max(int(n) - 1, 0).bit_length() if n > 0 else 0


@dataclass(frozen=True)
class ActivationFootprint:
    """Bytes saved for backward by one forward pass over a micro-batch, and what backward needs on top."""

    layer_per_token: float  # saved inside one transformer block, per token (kept for every block)
    head_per_token: float  # final norm, output matmul, the loss's log-probabilities, token ids
    block_input_per_token: float  # one block's input (what checkpointing keeps instead of the block)
    layer_weight_copies: float = 0.0  # one block's 16-bit weight copies kept for backward (autocast)
    head_weight_copies: float = 0.0  # the output matmul's 16-bit weight copy kept for backward
    recompute_per_token: float = 0.0  # one block rebuilt during backward (checkpointing), per token
    recompute_weight_copies: float = 0.0  # that block's 16-bit weight copies, alive meanwhile
    transient_per_token: float = 0.0  # the loss's logits and their gradients, alive for a moment
    logprobs_per_token: float = 0.0  # the loss's fp32 log-probabilities (part of head_per_token)
    head_input_per_token: float = 0.0  # the output matmul's input (part of head_per_token)
    matmul_outputs_per_token: float = 0.0  # one block's matmul and attention outputs (kept by sel_ckpt)
    layers_on_host: bool = False  # the blocks' saved bytes wait in host memory (activation offload)

    def saved_bytes(self, tokens: int, n_layer: int) -> float:
        """Everything the forward pass saves for backward, wherever it is kept."""
        per_token = n_layer * self.layer_per_token + self.head_per_token
        return tokens * per_token + n_layer * self.layer_weight_copies + self.head_weight_copies

    def layer_bytes(self, tokens: int) -> float:
        """What one block saves for backward."""
        return tokens * self.layer_per_token + self.layer_weight_copies

    def peak_bytes(self, tokens: int, n_layer: int) -> Bytes:
        """Activation memory at its peak: saved, plus the recomputed block and the loss's transients. Blocks
        offloaded to the host come back to the GPU one at a time in backward."""
        saved = self.saved_bytes(tokens, n_layer)
        extra = tokens * (self.recompute_per_token + self.transient_per_token) + self.recompute_weight_copies
        if not self.layers_on_host:
            return Bytes(gpu=saved + extra)
        on_host = n_layer * self.layer_bytes(tokens)
        return Bytes(gpu=saved - on_host + self.layer_bytes(tokens) + extra, host=on_host)
