"""The memory model: peak GPU and host bytes of one strategy training one model at one micro-batch, from
the strategy's declared footprints and the model's saved activations. Nothing is allocated.

GPU peak = the executor's state (weights, gradients, optimizer state, master weights, buffers) plus the
activations of one micro-batch at their peak (saved for backward, the block being recomputed, the loss's
logits), in eager mode: compiled programs usually save less. Host peak = the process's own overhead plus the
larger of the fp32 model as it is built on the host before it moves and the state the strategy keeps there
(its pinned blocks as the caching host allocator rounds them).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.core.footprint import Bytes
from harness.core.presets import ModelConfig
from harness.model import activation_footprint, param_count, param_shapes

GIB = 2**30


@dataclass(frozen=True)
class MemoryPrediction:
    strategy: str
    micro_batch: int
    precision: str
    numerics: str
    params: int
    state: dict[str, Bytes]  # by kind, as the executor declares
    activations: Bytes  # one micro-batch, at the peak
    saved_activations: float  # what the forward pass saves for backward (the part hooks can measure)
    host_overhead: float  # the process itself (interpreter, libraries, CUDA runtime)
    init_copy: float  # the fp32 model on the host while it is built and moved
    pinned_rounding: float = 0.0  # what the caching host allocator adds to the pinned blocks
    notes: tuple[str, ...] = field(default=())

    @property
    def gpu_bytes(self) -> float:
        return sum(b.gpu for b in self.state.values()) + self.activations.gpu

    @property
    def host_bytes(self) -> float:
        # The fp32 init leaves the host (or is dropped) before the state the strategy keeps there is
        # complete: its optimizer moments and gradient buffers appear at the first step.
        state = sum(b.host for b in self.state.values()) + self.pinned_rounding
        return self.host_overhead + max(self.init_copy, state) + self.activations.host

    def breakdown(self) -> dict[str, dict[str, float]]:
        """Bytes by the report's kinds: weights, gradients, optimizer, activations, other; GPU and host."""
        s = self.state
        kinds = {
            "weights": s["weights"],
            "gradients": s["gradients"] + s["grad_buffers"] + s["accumulation"],
            "optimizer": s["optimizer_state"] + s["master_weights"],
            "activations": self.activations,
            "other": s["workspace"] + Bytes(host=self.host_bytes - sum(b.host for b in s.values())),
        }
        return {k: {"gpu": b.gpu, "host": b.host} for k, b in kinds.items()}

    def to_dict(self) -> dict:
        return {
            "strategy": self.strategy,
            "micro_batch": self.micro_batch,
            "precision": self.precision,
            "numerics": self.numerics,
            "params": self.params,
            "gpu_bytes": self.gpu_bytes,
            "host_bytes": self.host_bytes,
            "saved_activation_bytes": self.saved_activations,
            "breakdown_bytes": self.breakdown(),
            "method": "eager-mode memory model (strategies' declared footprints + saved activations)",
        }


def predict(cfg: ModelConfig, strategy: str, micro_batch: int, precision: str = "bf16") -> MemoryPrediction:
    """Peak memory of `strategy` (a name, + combinations allowed) training `cfg` at `micro_batch`."""
    import strategies

    spec = strategies.resolve(strategy)
    numerics = spec.executor.numerics(precision)
    footprint = spec.executor.state_footprint(param_shapes(cfg), precision)
    state = footprint.by_kind()
    acts = activation_footprint(cfg, numerics)
    for transform in spec.transforms:
        acts = transform.activation_footprint(acts)
    tokens = micro_batch * cfg.seq_len
    n = param_count(cfg)
    return MemoryPrediction(
        strategy=spec.name,
        micro_batch=micro_batch,
        precision=precision,
        numerics=numerics,
        params=n,
        state=state,
        activations=acts.peak_bytes(tokens, cfg.n_layer),
        saved_activations=acts.saved_bytes(tokens, cfg.n_layer),
        host_overhead=spec.executor.host_overhead_gib * GIB,
        init_copy=4.0 * n,
        pinned_rounding=float(footprint.pinned_rounding()),
    )
