"""What DeepSpeed's ZeRO-Offload holds at each phase of a step, against `zero_offload`'s declared footprint,
in both accumulation modes, on the CPU in bf16 (DS_ACCELERATOR=cpu runs DeepSpeed's own code): during
accumulation (after the first micro-batch's backward), after the step, and every block it pins."""

from dataclasses import replace

import pytest
import torch

import strategies
from harness.capacity.memory_model import predict
from harness.core.footprint import pinned_block_bytes
from harness.core.presets import PRESETS
from harness.model import GPT, param_shapes
from strategies.base import OptimizerSettings, StrategyContext

pytest.importorskip("deepspeed")

CFG = replace(PRESETS["tiny"].model, d_model=128, n_head=4)


def _bytes(tensors) -> int:
    unique = {(t.device.type, t.data_ptr()): t for t in tensors}
    return sum(t.numel() * t.element_size() for t in unique.values())


@pytest.fixture
def pinned_sizes(monkeypatch) -> list[int]:
    """The byte size of every block DeepSpeed asks its accelerator to pin (on the CPU accelerator pinning is
    a no-op, so the calls are recorded, not the memory)."""
    from deepspeed.accelerator import get_accelerator

    accelerator, sizes = get_accelerator(), []
    original = accelerator.pin_memory

    def recording(tensor, *args, **kwargs):
        sizes.append(tensor.numel() * tensor.element_size())
        return original(tensor, *args, **kwargs)

    monkeypatch.setattr(accelerator, "pin_memory", recording)
    return sizes


def _phases(name: str) -> dict[str, dict[str, int]]:
    """Set up, one micro-batch (inside accumulation), the second (the boundary: the optimizer steps)."""
    torch.manual_seed(0)
    model = GPT(CFG)
    strategy = strategies.resolve(name).build()
    settings = OptimizerSettings((0.9, 0.95), 1e-8, 0.1, 1.0)
    strategy.setup(model, StrategyContext(torch.device("cpu"), "bf16", settings, 2, 2, False))
    executor, phases = strategy.executor, {}

    def measure() -> dict[str, int]:
        return {
            "accumulation": _bytes(executor.accumulation_tensors()),
            "grad_buffers": _bytes(executor.gradient_buffer_tensors()),
            "workspace": _bytes(executor.workspace_tensors()),
            "optimizer_state": _bytes(executor.optimizer_tensors()),
            "master_weights": _bytes(executor.master_tensors()),
        }

    try:
        tokens = torch.randint(1, CFG.vocab_size, (4, 17), generator=torch.Generator().manual_seed(1))
        for phase, rows in (("accumulating", slice(0, 2)), ("after the step", slice(2, 4))):
            loss = executor.engine(tokens[rows, :-1], tokens[rows, 1:])
            executor.engine.backward(loss)
            executor.engine.step()  # the optimizer steps at the second micro-batch only
            phases[phase] = measure()
        return phases
    finally:
        strategy.teardown()


@pytest.mark.parametrize("name", ["zero_offload", "zero_offload_fp32acc"])
def test_what_deepspeed_holds_at_each_phase_is_the_declared_footprint(name, pinned_sizes):
    declared = strategies.resolve(name).executor.state_footprint(param_shapes(CFG), "bf16")
    phases = _phases(name)
    n = sum(p.numel for p in param_shapes(CFG))
    buckets = 2 * 2 * n  # the two bf16 reduction buckets, alive only inside backward (not measurable here)
    accumulating, after = phases["accumulating"], phases["after the step"]
    assert accumulating["accumulation"] == declared.accumulation.gpu  # the fp32 partition, while it lives
    assert after["accumulation"] == 0  # freed at the step
    for phase in (accumulating, after):
        assert phase["grad_buffers"] == declared.grad_buffers.host
        assert phase["workspace"] == declared.workspace.total - buckets
    assert after["optimizer_state"] == declared.optimizer_state.host  # CPU-Adam's moments, at the first step
    assert after["master_weights"] == declared.master_weights.host
    assert sorted(pinned_sizes) == sorted(declared.pinned_blocks)


def test_the_two_accumulation_modes_differ_by_a_model_sized_buffer_on_the_gpu_or_on_the_host():
    shapes = param_shapes(CFG)
    n = sum(p.numel for p in shapes)
    bf16 = strategies.resolve("zero_offload").executor.state_footprint(shapes, "bf16")
    fp32 = strategies.resolve("zero_offload_fp32acc").executor.state_footprint(shapes, "bf16")
    assert fp32.accumulation.gpu == 4 * n and bf16.accumulation.gpu == 0
    assert bf16.grad_buffers.host - fp32.grad_buffers.host == 2 * n  # one pinned bf16 buffer a parameter
    assert len(bf16.pinned_blocks) - len(fp32.pinned_blocks) == len(shapes)
    big = PRESETS["gpt-6.7b"].model
    gap = predict(big, "zero_offload_fp32acc", 1).gpu_bytes - predict(big, "zero_offload", 1).gpu_bytes
    assert gap == 4 * sum(p.numel for p in param_shapes(big))  # about 25 GiB at gpt-6.7b


def test_pinned_blocks_are_counted_as_the_caching_host_allocator_rounds_them():
    assert [pinned_block_bytes(n) for n in (0, 1, 2, 3, 4096, 4097, 933888)] == [
        0,
        1,
        2,
        4,
        4096,
        8192,
        2**20,
    ]
    fp = strategies.resolve("zero_offload").executor.state_footprint(param_shapes(CFG), "bf16")
    assert fp.pinned_rounding() == sum(pinned_block_bytes(b) - b for b in fp.pinned_blocks) > 0
    prediction = predict(CFG, "zero_offload", 1)
    state_host = sum(b.host for b in prediction.state.values())
    assert prediction.pinned_rounding == fp.pinned_rounding()
    assert prediction.host_bytes == prediction.host_overhead + state_host + fp.pinned_rounding()


def test_pinned_host_memory_is_the_host_allocators_own_count_where_cuda_runs(monkeypatch):
    from strategies import base

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.cuda, "host_memory_stats", lambda: {"allocated_bytes.current": 3 * 2**30})
    assert base.pinned_host_bytes(2**30) == 3 * 2**30  # masters, copy-back, batches: all that is pinned
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert base.pinned_host_bytes(2**30) == 2**30


def test_a_fit_probe_steps_through_deepspeeds_accumulation_boundary(monkeypatch):
    """DeepSpeed steps only at its boundary: a probe of two micro-batches whose context said global/m
    accumulation steps would never reach it, nor the buffers that peak there."""
    from types import SimpleNamespace

    import numpy as np

    from harness.engine.session import InitialModel, fit_probe_step
    from strategies.zero_offload import ZeroOffloadExecutor
    from tests.conftest import tiny_config

    recipe = replace(tiny_config("zero_offload").recipe, precision="bf16")
    assert recipe.global_batch_seqs // 2 > 2  # the run's own accumulation would be longer than a probe
    rng = np.random.default_rng(0)
    data = SimpleNamespace(warmup_batch=lambda i, n, length: rng.integers(1, 512, (n, length)))
    resolved = SimpleNamespace(recipe=recipe, device=torch.device("cpu"), data=data)
    steps = []
    teardown = ZeroOffloadExecutor.teardown

    def recording_teardown(self):
        steps.append(self.engine.global_steps if getattr(self, "engine", None) else None)
        teardown(self)

    monkeypatch.setattr(ZeroOffloadExecutor, "teardown", recording_teardown)
    fit_probe_step(strategies.resolve("zero_offload"), InitialModel(recipe), resolved, 2, False)
    assert steps == [1]  # the optimizer stepped once, at the boundary
