"""`zero_offload`: DeepSpeed ZeRO stage 2 with the optimizer state and step on the CPU (DeepSpeedCPUAdam),
pinned host buffers and overlapped communication. One process, no launcher: the single-rank distributed
environment is set here.

Precision: with bf16 (or fp16) DeepSpeed keeps 16-bit weights on the GPU and fp32 master weights with the
Adam moments on the CPU, which is the point of offloading; the loss is still computed in fp32 as in `amp`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import nn

from harness.core.checks import Check
from harness.core.footprint import Bytes, HostStep, ParamShape, StateFootprint
from harness.model import param_groups
from strategies.base import Batch, Executor, StepResult, Strategy, StrategyContext
from strategies.cpu_adam_op import (
    build_note,
    check_cpu_adam,
    check_shm_comm,
    heal_build_batons,
    own_extensions_dir,
)
from strategies.single_rank import single_rank_environment
from strategies.step_helpers import evaluating, host_optimizer_step

CHECKPOINT_TAG = "zero"


def bucket_elements(n_params: int) -> int:
    """Communication bucket size, in elements: no larger than the model. DeepSpeed's default (5e8) would
    allocate ~1.9 GiB of 16-bit buckets for a 124M model, and the memory column would measure a default,
    not offload."""
    bucket = int(min(5e8, n_params))
    return bucket + bucket % 2  # DeepSpeed aligns all-gather buckets to 4 bytes (2 elements)


def deepspeed_config(model: nn.Module, ctx: StrategyContext, grad_accum_dtype: str | None = None) -> dict:
    """ZeRO stage 2 with the optimizer on the CPU, in DeepSpeed's 16-bit mode. Gradients accumulate over
    the micro-batches in `grad_accum_dtype`; None is DeepSpeed's default, the weights' dtype
    (runtime/engine.py:1806-1807, GRAD_ACCUM_DTYPE_DEFAULT = None in runtime/constants.py)."""
    bucket = bucket_elements(sum(p.numel() for p in model.parameters()))
    config = {
        "train_micro_batch_size_per_gpu": ctx.micro_batch,
        "gradient_accumulation_steps": ctx.grad_accum,
        "gradient_clipping": ctx.optimizer.grad_clip,
        "bf16": {"enabled": ctx.precision == "bf16"},
        "fp16": {"enabled": ctx.precision == "fp16", "initial_scale_power": 16},
        "zero_optimization": {
            "stage": 2,
            "offload_optimizer": {"device": "cpu", "pin_memory": True},
            "overlap_comm": True,
            "contiguous_gradients": True,
            "reduce_scatter": True,
            "reduce_bucket_size": bucket,
            "allgather_bucket_size": bucket,
        },
        "steps_per_print": 2**31 - 1,
        "wall_clock_breakdown": False,
    }
    if grad_accum_dtype is not None:
        config["data_types"] = {"grad_accum_dtype": grad_accum_dtype}
    return config


def _aligned(n: int) -> int:
    """A flat parameter group as DeepSpeed pads it on one rank: to 4 bytes of 16-bit elements
    (nccl_start_alignment_factor = 2, runtime/zero/stage_1_and_2.py:387, 441)."""
    return n + n % 2


def zero2_offload_footprint(
    params: Sequence[ParamShape], precision: str, *, fp32_accumulation: bool
) -> StateFootprint:
    """What DeepSpeed 0.19.8 allocates (runtime/zero/stage_1_and_2.py), measured on the CPU at every
    phase of a step (tests/test_zero_offload_memory.py). GPU: the flat 16-bit weights, ZeRO's two
    reduction buckets (double-buffered for overlap, alive during backward), the staging buffer of the
    largest parameter (659). Host, pinned: per parameter group the fp32 masters and a 16-bit copy-back
    buffer (566-575) and the masters' fp32 gradient (940), the largest parameter's staging buffer
    (653-658), and, when gradients accumulate in the weights' dtype, one pinned accumulation buffer per
    parameter (1822-1826). Host, pageable: CPU-Adam's two fp32 moments. Accumulating in fp32 from
    16-bit weights keeps a compact fp32 partition of the gradients on the GPU instead, from a step's
    first backward to its update (1268-1299, freed at the step)."""
    width = 4 if precision == "fp32" else 2
    groups = [
        _aligned(sum(p.numel for p in params if len(p.shape) >= 2)),
        _aligned(sum(p.numel for p in params if len(p.shape) < 2)),
    ]
    n, largest = sum(groups), max(p.numel for p in params)
    on_gpu = fp32_accumulation and width != 4  # the compact fp32 partition buffer
    host_accumulation = [] if on_gpu else [width * p.numel for p in params]
    pinned = [b * g for g in groups for b in (4, width, 4)] + [width * largest] + host_accumulation
    return StateFootprint(
        weights=Bytes(gpu=width * sum(p.numel for p in params)),
        gradients=Bytes(),
        optimizer_state=Bytes(host=8 * n),
        master_weights=Bytes(host=4 * n),
        grad_buffers=Bytes(host=4 * n + sum(host_accumulation)),
        workspace=Bytes(gpu=2 * width * bucket_elements(n) + width * largest, host=width * (n + largest)),
        accumulation=Bytes(gpu=4 * n if on_gpu else 0),
        pinned_blocks=tuple(pinned),
    )


def cpu_adam_host_step(params: list[torch.Tensor]) -> Callable[[], None]:
    """zero_offload's host step over `params`: CPU Adam, then the cast into the 16-bit copy-back buffer."""
    own_extensions_dir()
    heal_build_batons()
    from deepspeed.ops.adam import DeepSpeedCPUAdam

    optimizer = DeepSpeedCPUAdam(params, lr=1e-4, betas=(0.9, 0.95), adamw_mode=True)
    copy_back = [torch.empty_like(p, dtype=torch.bfloat16) for p in params]

    def step() -> None:
        optimizer.step()
        for buffer, p in zip(copy_back, params, strict=True):
            buffer.copy_(p)

    return step


class ZeroOffloadExecutor(Executor):
    name = "zero_offload"
    description = "DeepSpeed ZeRO-2, optimizer state and step on the CPU (DeepSpeedCPUAdam), pinned memory"
    requires = ("deepspeed",)
    optimizer_state_device = "cpu"
    # None: DeepSpeed's default, what its users run (the weights' dtype); a variant names another.
    grad_accum_dtype: str | None = None
    changes_math = (
        "DeepSpeed's 16-bit mode: weights, activations and the residual stream are 16-bit on the GPU, "
        "where amp autocasts over fp32 weights; gradients accumulate over the micro-batches in 16 bits "
        "(DeepSpeed's default; amp accumulates in fp32), and the fp32 master weights on the host start "
        "from the same fp32 init as amp"
    )
    changes_math_in = frozenset({"bf16", "fp16"})
    # Measured on the H100 at gpt2-124m (peak RSS 6.98 GiB, a run accumulating in fp32) less that
    # configuration's modelled host state with its pinned blocks rounded (2.30 GiB): DeepSpeed's import,
    # CPU-Adam threads, the CUDA runtime. Not yet measured at other sizes.
    host_overhead_gib = 4.68
    default_sweep = True
    # After backward, CPU Adam steps the fp32 masters, they are cast into the 16-bit copy-back buffer on the
    # host and copied to the GPU's weights (runtime/zero/stage_1_and_2.py:3084, 3094, 3096); the 16-bit
    # gradients of each micro-batch went to the pinned accumulation buffer during backward (overlap_comm).
    host_step = HostStep("DeepSpeedCPUAdam (AdamW mode) and the fp32-to-16-bit copy-back", 2, 2)

    @classmethod
    def doctor(cls, cuda: bool) -> list[Check]:
        return [check_cpu_adam(cuda)] + ([] if cuda else [check_shm_comm()])

    @classmethod
    def first_use(cls) -> str | None:
        return build_note(cuda=torch.cuda.is_available())

    @classmethod
    def numerics(cls, precision: str) -> str:
        return "fp32" if precision == "fp32" else "pure16"

    @classmethod
    def state_footprint(cls, params: Sequence[ParamShape], precision: str) -> StateFootprint:
        return zero2_offload_footprint(params, precision, fp32_accumulation=cls.grad_accum_dtype == "fp32")

    @classmethod
    def host_step_benchmark(cls, params: list[torch.Tensor]) -> Callable[[], None]:
        return cpu_adam_host_step(params)

    @classmethod
    def contract_checks(cls, strategy: Strategy, model: nn.Module) -> None:
        from deepspeed.ops.adam import DeepSpeedCPUAdam

        executor = strategy.executor
        assert isinstance(executor.optimizer.optimizer, DeepSpeedCPUAdam)
        masters = executor.optimizer.single_partition_of_fp32_groups
        assert sum(m.numel() for m in masters) == sum(p.numel() for p in model.parameters())

    def setup(self, model: nn.Module, ctx: StrategyContext) -> None:
        own_extensions_dir()  # before DeepSpeed loads any op
        single_rank_environment(ctx.device)
        import deepspeed
        from deepspeed.ops.adam import DeepSpeedCPUAdam

        self.ctx = ctx
        s = ctx.optimizer
        # The model arrives on the host in fp32: DeepSpeed casts it to 16 bits before moving it, so the
        # GPU never holds the fp32 copy. Keep references to the fp32 init to seed the master weights.
        fp32_init = [(p, p.detach()) for p in model.parameters()]
        heal_build_batons()  # a killed build's baton would make the op's load wait forever
        t0 = time.perf_counter()
        optimizer = DeepSpeedCPUAdam(
            param_groups(model, s.weight_decay), lr=0.0, betas=s.betas, eps=s.eps, adamw_mode=True
        )
        self._setup_settings = {"cpu_adam_load_s": time.perf_counter() - t0}  # its JIT build on first use
        self.engine, self.optimizer, _, _ = deepspeed.initialize(
            model=model,
            optimizer=optimizer,
            config=deepspeed_config(model, ctx, self.grad_accum_dtype),
            dist_init_required=True,
        )
        self._seed_master_weights(fp32_init)
        if ctx.compile:
            self.engine.compile()

    def _seed_master_weights(self, fp32_init: list[tuple[nn.Parameter, torch.Tensor]]) -> None:
        """DeepSpeed clones its fp32 masters from the 16-bit weights (rounded); give them the fp32 init."""
        from deepspeed.utils import safe_set_full_fp32_param

        for param, value in fp32_init:
            safe_set_full_fp32_param(param, value)

    def train_step(self, micro_batches: Sequence[Batch], lr: float) -> StepResult:
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        total = torch.zeros((), device=self.ctx.device)
        for x, y in micro_batches:
            loss = self.engine(x, y)
            self.engine.backward(loss)  # DeepSpeed divides by the accumulation steps itself
            with host_optimizer_step():
                self.engine.step()  # steps the optimizer (CPU Adam) at the accumulation boundary only
            total += loss.detach().float()
        grad_norm = self.engine.get_global_grad_norm()
        return StepResult(total / len(micro_batches), grad_norm)

    @torch.no_grad()
    def eval_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with evaluating(self.engine):
            return self.engine(x, y).float()

    def optimizer_tensors(self) -> list[torch.Tensor]:
        inner = self.optimizer.optimizer
        return [t for state in inner.state.values() for t in state.values() if torch.is_tensor(t)]

    def master_tensors(self) -> list[torch.Tensor]:
        return list(getattr(self.optimizer, "single_partition_of_fp32_groups", []))

    def gradient_buffer_tensors(self) -> list[torch.Tensor]:
        zero = self.optimizer
        tensors = [m.grad for m in self.master_tensors() if m.grad is not None]
        return tensors + list(getattr(zero, "accumulated_grads_in_cpu", {}).values())

    def accumulation_tensors(self) -> list[torch.Tensor]:
        # The compact fp32 partition (fp32 accumulation of 16-bit weights), between backward and step.
        tensors: list[torch.Tensor] = []
        for grads in getattr(self.optimizer, "averaged_gradients", {}).values():
            tensors += [g for g in (grads if isinstance(grads, list) else [grads]) if torch.is_tensor(g)]
        return tensors

    def workspace_tensors(self) -> list[torch.Tensor]:
        zero = self.optimizer
        tensors = list(getattr(zero, "param_buffer_of_bit16_for_cpu_offload_groups", []))
        for name in ("temp_grad_buffer_for_cpu_offload", "temp_grad_buffer_for_gpu_offload"):
            if torch.is_tensor(getattr(zero, name, None)):
                tensors.append(getattr(zero, name))
        return tensors

    def reset_optimizer_state(self) -> None:
        self.optimizer.optimizer.state.clear()

    def save(self, directory: Path) -> None:
        self.engine.save_checkpoint(str(directory), tag=CHECKPOINT_TAG, save_latest=False)

    def load(self, directory: Path) -> None:
        path, _ = self.engine.load_checkpoint(str(directory), tag=CHECKPOINT_TAG)
        if path is None:
            raise FileNotFoundError(f"no DeepSpeed checkpoint under {directory}")

    def teardown(self) -> None:
        # Idempotent, and safe after a setup that failed half-way (e.g. out of memory in initialize).
        engine = getattr(self, "engine", None)
        self.engine = self.optimizer = None
        if engine is not None:
            engine.destroy()


class ZeroOffloadFp32Accum(ZeroOffloadExecutor):
    """`zero_offload` accumulating gradients in fp32 over the micro-batches, as amp does: DeepSpeed keeps
    an fp32 partition of the gradients on the GPU for that (4 bytes a parameter, during accumulation)."""

    name = "zero_offload_fp32acc"
    description = "zero_offload accumulating gradients in fp32 (a model-sized fp32 buffer on the GPU)"
    grad_accum_dtype = "fp32"
    # The fp32 partition of the gradients leaves the GPU at the step, the GPU waiting (1268-1299).
    host_step = HostStep(
        optimizer=ZeroOffloadExecutor.host_step.optimizer,
        exposed_bytes_per_param=6,
        overlapped_bytes_per_param=0,
    )
    default_sweep = False
    changes_math = (
        "DeepSpeed's 16-bit mode: weights, activations and the residual stream are 16-bit on the GPU, "
        "where amp autocasts over fp32 weights (gradients accumulate in fp32 as in amp, and the fp32 "
        "master weights on the host start from the same fp32 init as amp)"
    )
