"""The logic of the CUDA-only toolbox strategies, on the CPU with fakes where the library or the device is
missing here: which layers fp8 converts and what it refuses, how fused_ce calls its kernel, how
ao_cpu_offload clips its host copies and what it refuses. Their CUDA paths are gpu-marked
(test_strategies.test_contract_on_cuda, test_gpu_toolbox)."""

import sys
import types
from dataclasses import replace
from types import SimpleNamespace
from typing import ClassVar

import pytest
import torch
import torch.nn.functional as F

from harness.core.errors import UserError
from harness.core.presets import PRESETS
from harness.model import GPT
from strategies.ao_cpu_offload import MIN_OFFLOADED, AoCpuOffloadExecutor
from strategies.base import OptimizerSettings, StrategyContext
from strategies.fp8 import Float8Training
from strategies.fused_ce import FusedCrossEntropy, LigerLoss


def model() -> GPT:
    torch.manual_seed(0)
    return GPT(replace(PRESETS["tiny"].model, d_model=64))


def context(device="cpu", compile=True, precision="bf16", clip=1.0) -> StrategyContext:
    settings = OptimizerSettings((0.9, 0.95), 1e-8, 0.1, clip)
    return StrategyContext(torch.device(device), precision, settings, 4, 2, compile)


# ---- fp8 -------------------------------------------------------------------------------------------------


def test_fp8_refuses_a_device_without_fp8_tensor_cores_and_an_eager_run(monkeypatch):
    with pytest.raises(UserError, match="fp8 needs FP8 tensor cores"):
        Float8Training().apply(model(), context("cpu"))
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *_: (8, 6))  # an A100-class card
    with pytest.raises(UserError, match=r"compute capability 8\.9"):
        Float8Training().apply(model(), context("cuda"))
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *_: (9, 0))
    with pytest.raises(UserError, match=r"needs torch\.compile"):
        Float8Training().apply(model(), context("cuda", compile=False))


def test_fp8_converts_the_blocks_linears_and_never_the_tied_head(monkeypatch):
    pytest.importorskip("torchao.float8")
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *_: (9, 0))  # an H100, as far as it asks
    converted = Float8Training().apply(model(), context("cuda"))
    kinds = {name: type(m).__name__ for name, m in converted.named_modules() if "Linear" in type(m).__name__}
    assert kinds.pop("lm_head") == "Linear"  # the tied output head stays in 16 bits
    assert kinds and set(kinds.values()) == {"Float8Linear"}
    assert all(name.startswith("blocks.") for name in kinds)
    assert converted.lm_head.weight is converted.wte.weight  # still tied


# ---- fused_ce --------------------------------------------------------------------------------------------


class FakeLiger(torch.nn.Module):
    """Liger's fused linear + cross-entropy, as its signature takes it (weight, hidden 2-D, targets 1-D),
    computed the plain way; it records the dtypes it was given."""

    seen: ClassVar[list] = []

    def forward(self, weight, hidden, targets):
        FakeLiger.seen.append((hidden.dim(), targets.dim(), hidden.dtype, weight.dtype))
        return F.cross_entropy(F.linear(hidden, weight).float(), targets)


@pytest.fixture
def fake_liger(monkeypatch):
    module = types.ModuleType("liger_kernel.transformers")
    module.LigerFusedLinearCrossEntropyLoss = FakeLiger
    monkeypatch.setitem(sys.modules, "liger_kernel", types.ModuleType("liger_kernel"))
    monkeypatch.setitem(sys.modules, "liger_kernel.transformers", module)
    FakeLiger.seen = []


def test_fused_ce_computes_the_models_own_loss_through_the_kernels_signature(fake_liger):
    plain = model()
    fused = FusedCrossEntropy().apply(model(), context())
    assert isinstance(fused.loss_head, LigerLoss)
    tokens = torch.randint(0, 512, (2, 17), generator=torch.Generator().manual_seed(0))
    x, y = tokens[:, :-1], tokens[:, 1:]
    assert torch.allclose(fused(x, y), plain(x, y), rtol=1e-6)
    assert FakeLiger.seen == [(2, 1, torch.float32, torch.float32)]  # flattened as the kernel wants


def test_fused_ce_casts_as_autocast_would_since_the_kernel_sees_no_autocast(fake_liger):
    fused = FusedCrossEntropy().apply(model(), context())
    tokens = torch.randint(0, 512, (2, 17), generator=torch.Generator().manual_seed(0))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fused(tokens[:, :-1], tokens[:, 1:])
    assert FakeLiger.seen == [(2, 1, torch.bfloat16, torch.bfloat16)]


def test_fused_ce_refuses_a_model_without_a_loss_head(fake_liger):
    with pytest.raises(UserError, match="replaces a model's loss head; Linear has none"):
        FusedCrossEntropy().apply(torch.nn.Linear(4, 4), context())


# ---- ao_cpu_offload --------------------------------------------------------------------------------------


def test_ao_cpu_offload_refuses_the_cpu_and_fp16_before_building_anything():
    executor = AoCpuOffloadExecutor()
    with pytest.raises(UserError, match="needs a CUDA device"):
        executor.build_optimizer(model(), context("cpu"))
    with pytest.raises(UserError, match="runs in bf16 or fp32"):
        executor.build_optimizer(model(), context("cuda", precision="fp16"))


def test_ao_cpu_offload_clips_its_host_copies_by_the_factor_it_clips_the_gpus_by():
    """torchao copies each gradient to the host as backward makes it, before clipping: the executor applies
    the same factor there (a fake optimizer stands for torchao's: its host copies and its side stream)."""
    net = model()
    params = [p for p in net.parameters() if p.numel() >= MIN_OFFLOADED]
    for i, p in enumerate(net.parameters()):
        p.grad = torch.full_like(p, 0.01 * (i + 1))
    hosts = {p: SimpleNamespace(grad=p.grad.detach().clone()) for p in params}
    executor = AoCpuOffloadExecutor()
    executor.ctx, executor.model = context(clip=1.0), net
    executor.optimizer = SimpleNamespace(
        stream=SimpleNamespace(synchronize=lambda: None), param_d2h_map=hosts
    )
    before = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in net.parameters()]))
    norm = executor.clip_gradients()
    assert float(norm) == pytest.approx(float(before), rel=1e-5) and float(before) > 1.0  # it had to clip
    for p, host in hosts.items():
        assert torch.allclose(host.grad, p.grad, rtol=1e-5)  # the host copy clipped as the GPU's was


def test_ao_cpu_offload_footprint_puts_the_large_tensors_state_on_the_host():
    from harness.core.footprint import ParamShape

    big, small = ParamShape("weight", (MIN_OFFLOADED, 4)), ParamShape("bias", (100,))
    state = AoCpuOffloadExecutor.state_footprint([big, small], "bf16")
    assert state.master_weights.host == 4 * big.numel and state.grad_buffers.host == 4 * big.numel
    assert state.optimizer_state.host == 8 * big.numel + 4 and state.optimizer_state.gpu == 8 * 100 + 4
    assert state.weights.gpu == state.gradients.gpu == 4 * (big.numel + small.numel)
