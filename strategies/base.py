"""The plug-in boundary. A strategy owns HOW a step executes; the harness owns WHAT is computed and WHEN.

Two roles compose into one strategy:
- an Executor owns the optimizer and the step (autocast, scaler, forward/backward over the micro-batches
  of one global batch, clipping, the update) and its memory facts;
- a ModelTransform rewrites how the model executes without changing its math (e.g. recomputation).
A composed strategy has exactly one executor and any compatible transforms (`adam8bit+act_ckpt`).
"""

from __future__ import annotations

import contextlib
import importlib.util
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from harness.core.checks import Check
from harness.core.footprint import (
    ActivationFootprint,
    HostStep,
    ParamShape,
    StateFootprint,
    pinned_block_bytes,
)

Batch = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class OptimizerSettings:
    betas: tuple[float, float]
    eps: float
    weight_decay: float
    grad_clip: float  # 0 disables clipping


@dataclass(frozen=True)
class StrategyContext:
    device: torch.device
    precision: str  # bf16 | fp16 | fp32
    optimizer: OptimizerSettings
    micro_batch: int
    grad_accum: int
    compile: bool


@dataclass
class StepResult:
    loss: torch.Tensor  # mean training loss over the global batch, left on the device (no sync)
    grad_norm: torch.Tensor | float | None  # global gradient norm before clipping


class Plugin:
    """What every registered part declares about itself: everything the harness, the doctor, the sweep
    and the contract test need to know lives here, on the class."""

    name: ClassVar[str]
    description: ClassVar[str]
    role: ClassVar[str]
    requires: ClassVar[tuple[str, ...]] = ()  # importable module names
    install_hint: ClassVar[str] = "run `make setup`"  # how to get `requires` when it is missing
    runs_on_cpu: ClassVar[bool] = True
    # The parts this one combines with. A pair is declared once, by one of its two parts (the one added
    # later: a new executor names the transforms it takes, a new transform the executors it wraps).
    composes_with: ClassVar[frozenset[str]] = frozenset()
    refuses: ClassVar[dict[str, str]] = {}  # part name -> why the two cannot run together (said as is)
    default_sweep: ClassVar[bool] = False  # one of the strategies `harness sweep` runs by default
    experimental: ClassVar[bool] = False  # its CUDA path has not yet passed its GPU tests on a real GPU
    needs_compile: ClassVar[bool] = False  # cannot run eagerly: its fit probes are compiled too
    changes_math: ClassVar[str | None] = None  # said in the report when the strategy alters the update
    report_note: ClassVar[str | None] = None  # a cost its library adds to its figures, said in the report
    # Its own parity bound against amp by precision where the shared tables do not hold (stated in output).
    parity_bounds: ClassVar[dict[str, float]] = {}
    # The precisions in which `changes_math` holds (DeepSpeed's 16-bit modes change it; fp32 does not).
    changes_math_in: ClassVar[frozenset[str]] = frozenset({"fp32", "bf16", "fp16"})

    @classmethod
    def missing_libraries(cls) -> list[str]:
        return [m for m in cls.requires if importlib.util.find_spec(m) is None]

    @classmethod
    def doctor(cls, cuda: bool) -> list[Check]:
        """Checks that the libraries behind this plug-in really work here (not only that they import)."""
        return []

    @classmethod
    def first_use(cls) -> str | None:
        """A one-time preparation its setup makes now (an op to build), said before it starts; else None."""
        return None

    @classmethod
    def preflight(cls) -> str | None:
        """A fault of this machine that would make a run of this part fail or hang, found cheaply before
        any run starts: what to do about it, in one line; None when there is none."""
        return None

    @classmethod
    def contract_checks(cls, strategy: Strategy, model: nn.Module) -> None:
        """Assertions of the plug-in contract test specific to this plug-in, after a few training steps:
        that its state is where and in the form it declares."""


class ModelTransform(Plugin, ABC):
    role = "transform"
    needs_blocks: ClassVar[bool] = True  # relies on the model's `blocks` (harness.model.Transformer)

    @abstractmethod
    def apply(self, model: nn.Module, ctx: StrategyContext) -> nn.Module:
        """Return the model to execute (may wrap submodules); parameters and math stay the same."""

    def wrap_blocks(self, model: nn.Module, wrap: Callable[[nn.Module], nn.Module]) -> nn.Module:
        """Replace each transformer block of `model` by `wrap(block)`; a model without blocks is refused."""
        from harness.core.errors import UserError
        from harness.model import Transformer

        if not isinstance(model, Transformer):
            raise UserError(f"{self.name} wraps a model's blocks; {type(model).__name__} exposes none")
        for index, block in enumerate(model.blocks):
            model.blocks[index] = wrap(block)
        return model

    # The throughput model: the share of a block's forward FLOPs recomputed in backward (1: all of it), and
    # what it leaves unmodelled (its runs then say nothing of its executor's speed, nor its executor's of it).
    recompute_forward: ClassVar[float] = 0.0
    speed_unmodelled: ClassVar[str | None] = None

    @classmethod
    @abstractmethod
    def activation_footprint(cls, acts: ActivationFootprint) -> ActivationFootprint:
        """The memory model: what this transform does to the activations the forward pass keeps."""


class Executor(Plugin, ABC):
    role = "executor"
    supports_compile: ClassVar[bool] = True
    optimizer_state_device: ClassVar[str] = "model"  # "model": with the parameters; "cpu": host memory
    # Host memory of the training process beyond the model and the strategy's state (interpreter,
    # libraries, CUDA runtime, data producer): amp's measured peak RSS on the H100 at gpt2-124m (2.38 GiB)
    # less its fp32 init (0.46 GiB). The memory model adds it to every host prediction.
    host_overhead_gib: ClassVar[float] = 1.9
    # The throughput model: what a step does on the host (None: its optimizer steps on the GPU).
    host_step: ClassVar[HostStep | None] = None

    @classmethod
    def host_step_benchmark(cls, params: list[torch.Tensor]) -> Callable[[], None]:
        """One host step as this executor's setup builds it, over `params` (fp32 host tensors with their
        gradients): what the host-optimizer benchmark times. Only executors with a `host_step` have one."""
        raise NotImplementedError(f"{cls.name} steps no optimizer on the host")

    @classmethod
    def numerics(cls, precision: str) -> str:
        """How the forward computes at `precision` (one of harness.core.footprint.NUMERICS): it decides
        the dtype of every activation saved for backward."""
        return "fp32" if precision == "fp32" else "autocast16"

    @classmethod
    @abstractmethod
    def state_footprint(cls, params: Sequence[ParamShape], precision: str) -> StateFootprint:
        """The memory model: the bytes this executor holds for `params` at `precision`, by kind, on the
        GPU and on the host of a CUDA run; each kind exactly as its tensors (the contract test checks)."""

    @abstractmethod
    def setup(self, model: nn.Module, ctx: StrategyContext) -> None:
        """Take the (initialized, on-device) model; build the optimizer and whatever wraps the model."""

    @abstractmethod
    def train_step(self, micro_batches: Sequence[Batch], lr: float) -> StepResult:
        """One optimizer step over all micro-batches of a global batch, at learning rate `lr`."""

    @abstractmethod
    def eval_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean loss on one batch, no gradients, the same precision as training."""

    @abstractmethod
    def optimizer_tensors(self) -> list[torch.Tensor]:
        """Every tensor of optimizer state (moments, master weights): for memory facts and checks."""

    @abstractmethod
    def reset_optimizer_state(self) -> None:
        """Forget optimizer state, so warm-up steps leave no trace in the timed run."""

    @abstractmethod
    def save(self, directory: Path) -> None:
        """Write model and optimizer state (and scaler) for resume."""

    @abstractmethod
    def load(self, directory: Path) -> None:
        """Restore what `save` wrote."""

    def master_tensors(self) -> list[torch.Tensor]:
        """Master copies of the weights kept by the optimizer (none when it updates the weights in place)."""
        return []

    def gradient_buffer_tensors(self) -> list[torch.Tensor]:
        """Gradient buffers the strategy keeps besides `param.grad` (accumulation, offload staging)."""
        return []

    def accumulation_tensors(self) -> list[torch.Tensor]:
        """Gradient buffers alive only while a step accumulates, from its first backward to its update."""
        return []

    def workspace_tensors(self) -> list[torch.Tensor]:
        """Fixed buffers its library keeps for the whole run (staging, copy-back), where they can be read."""
        return []

    def memory_facts(self) -> dict[str, Any]:
        """Bytes the strategy holds beyond the model, by kind: each kind measured on its own tensors. Pinned
        host memory is what torch's host allocator holds on CUDA (its blocks rounded up to a power of two,
        the batches' pinned copies included), else the strategy's pinned tensors as that allocator rounds
        them."""
        facts: dict[str, Any] = {}
        pinned = 0
        kinds = (
            ("optimizer_state", self.optimizer_tensors()),
            ("master_weights", self.master_tensors()),
            ("grad_buffers", self.gradient_buffer_tensors()),
            ("workspace", self.workspace_tensors()),
        )
        for kind, tensors in kinds:
            tensors = _distinct(tensors)
            facts[f"{kind}_gib"] = sum(t.numel() * t.element_size() for t in tensors) / 2**30
            facts[f"{kind}_devices"] = sorted({str(t.device) for t in tensors})
            facts[f"{kind}_dtypes"] = sorted({str(t.dtype).removeprefix("torch.") for t in tensors})
            pinned += sum(
                pinned_block_bytes(t.numel() * t.element_size())
                for t in tensors
                if t.device.type == "cpu" and t.is_pinned()
            )
        facts["pinned_host_gib"] = pinned_host_bytes(pinned) / 2**30
        return facts

    def setup_settings(self) -> dict[str, Any]:
        """What setup measured about itself (e.g. a JIT build's seconds), recorded in the result."""
        return dict(getattr(self, "_setup_settings", {}))

    def teardown(self) -> None:
        """Release what setup built, so the next strategy in this process starts clean. Idempotent, and
        safe after a setup that failed half-way."""


def pinned_host_bytes(tensor_bytes: int) -> int:
    """Pinned host bytes: torch's host allocator's own count where CUDA runs, else `tensor_bytes`."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        return int(torch.cuda.host_memory_stats().get("allocated_bytes.current", tensor_bytes))
    return tensor_bytes


def _distinct(tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    """Each tensor once, however many parameters share it (bitsandbytes' quantization maps)."""
    seen: dict[tuple[str, int, int], torch.Tensor] = {}
    for t in tensors:
        seen.setdefault((str(t.device), t.data_ptr(), t.numel()), t)
    return list(seen.values())


class Strategy:
    """One executor plus transforms, as the harness drives it."""

    def __init__(self, name: str, executor: Executor, transforms: Sequence[ModelTransform]) -> None:
        self.name = name
        self.executor = executor
        self.transforms = list(transforms)

    def setup(self, model: nn.Module, ctx: StrategyContext) -> None:
        for transform in self.transforms:
            model = transform.apply(model, ctx)
        self.executor.setup(model, ctx)

    def train_step(self, micro_batches: Sequence[Batch], lr: float) -> StepResult:
        return self.executor.train_step(micro_batches, lr)

    def eval_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.executor.eval_loss(x, y)

    def memory_facts(self) -> dict[str, Any]:
        return self.executor.memory_facts()

    def setup_settings(self) -> dict[str, Any]:
        return self.executor.setup_settings()

    def reset_optimizer_state(self) -> None:
        self.executor.reset_optimizer_state()

    def save(self, directory: Path) -> None:
        self.executor.save(directory)

    def load(self, directory: Path) -> None:
        self.executor.load(directory)

    def teardown(self) -> None:
        self.executor.teardown()
        with contextlib.suppress(Exception):
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
