"""The plug-in contract, checked for every registered strategy and every allowed combination on the CPU."""

import gc
import math
import sys
import weakref
from dataclasses import replace

import pytest
import torch

import strategies
from harness.core.errors import UserError
from harness.core.presets import PRESETS
from harness.model import GPT
from strategies.base import OptimizerSettings, StrategyContext

COMBINATIONS = strategies.allowed_combinations()


def test_every_strategy_and_the_required_combinations_are_registered():
    assert set(COMBINATIONS) >= {
        "amp",
        "adam8bit",
        "zero_offload",
        "act_ckpt",
        "adam8bit+act_ckpt",
        "zero_offload+act_ckpt",
    }


def test_each_combining_pair_is_declared_by_one_of_its_parts_only():
    import strategies

    parts = list(strategies.REGISTRY.values())
    both = [
        (a.name, b.name)
        for i, a in enumerate(parts)
        for b in parts[i + 1 :]
        if b.name in a.composes_with and a.name in b.composes_with
    ]
    assert both == []
    unknown = {name for p in parts for name in p.composes_with} - set(strategies.REGISTRY)
    assert unknown == set()
    assert strategies.partners("amp")[:1] == ["act_ckpt"]  # declared by act_ckpt, seen from amp too


def context(micro_batch=4, grad_accum=2, device="cpu") -> StrategyContext:
    return StrategyContext(
        device=torch.device(device),
        precision="fp32",
        optimizer=OptimizerSettings((0.9, 0.95), 1e-8, 0.1, 1.0),
        micro_batch=micro_batch,
        grad_accum=grad_accum,
        compile=False,
    )


def tiny_model() -> GPT:
    torch.manual_seed(0)
    # Wide enough that its matrices pass bitsandbytes' 4096-element threshold for 8-bit state.
    return GPT(replace(PRESETS["tiny"].model, d_model=64))


CUDA_ONLY = [name for name in COMBINATIONS if not strategies.resolve(name).runs_on_cpu]


def skip_unless_here(spec, there: str = "its contract is test_contract_on_cuda (gpu-marked)") -> None:
    if not spec.runs_on_cpu:
        pytest.skip(f"{spec.name} needs CUDA: {there}")
    if spec.missing_libraries():
        pytest.skip(f"{spec.name} needs {', '.join(spec.missing_libraries())}, not installed here")


@pytest.mark.parametrize("name", COMBINATIONS)
def test_contract(name):
    spec = strategies.resolve(name)
    skip_unless_here(spec)
    check_contract(spec, "cpu")


@pytest.mark.gpu
@pytest.mark.parametrize("name", CUDA_ONLY)
def test_contract_on_cuda(name):
    """The same contract on CUDA, for every combination that cannot run on the CPU."""
    spec = strategies.resolve(name)
    if spec.missing_libraries():
        pytest.skip(f"{spec.name} needs {', '.join(spec.missing_libraries())}, not installed here")
    check_contract(spec, "cuda")


def check_contract(spec, device: str) -> None:
    strategy = spec.build()
    model = tiny_model().to(device)
    ctx = context(device=device)
    strategy.setup(model, ctx)
    tokens = torch.randint(1, 512, (8, 65), generator=torch.Generator().manual_seed(1)).to(device)
    x, y = tokens[:, :-1], tokens[:, 1:]
    batches = list(zip(x.split(4), y.split(4), strict=True))

    # Loss falls over a few steps on one small batch.
    first = strategy.train_step(batches, 1e-2)
    for _ in range(7):
        last = strategy.train_step(batches, 1e-2)
    assert float(last.loss) < 0.8 * float(first.loss)
    assert float(first.grad_norm) > 0
    assert float(strategy.eval_loss(x, y)) < float(first.loss)

    # The optimizer state is where the strategy says it is, in the form it says.
    facts = strategy.memory_facts()
    expected = (
        "cpu" if spec.executor.optimizer_state_device == "cpu" else str(next(model.parameters()).device)
    )
    assert facts["optimizer_state_devices"] == [expected]
    assert facts["optimizer_state_gib"] > 0
    # Pinned host memory only where state lives on the host and there is a GPU to pin for (the gpu tests
    # check zero_offload's pinned buffers on CUDA): nothing else may pin.
    pins = spec.executor.optimizer_state_device == "cpu" and torch.cuda.is_available()
    assert (facts["pinned_host_gib"] > 0) if pins else (facts["pinned_host_gib"] == 0)
    executor = strategy.executor
    for part in spec.parts:  # each plug-in's own expectations (where its state lives, in what form)
        part.contract_checks(strategy, model)

    # Teardown releases the optimizer state (DeepSpeed's hooks on the parameters keep its engine alive until
    # the model goes too, which is how the harness drops them).
    probe = weakref.ref(max(executor.optimizer_tensors(), key=lambda t: t.numel()))
    strategy.teardown()
    del strategy, executor, facts, first, last, model
    gc.collect()
    assert probe() is None


def test_state_round_trip_through_save_and_load(tmp_path):
    for name in ("amp", "zero_offload"):
        spec = strategies.resolve(name)
        tokens = torch.randint(1, 512, (8, 65), generator=torch.Generator().manual_seed(2))
        batches = list(zip(tokens[:, :-1].split(4), tokens[:, 1:].split(4), strict=True))
        a = spec.build()
        a.setup(tiny_model(), context())
        a.train_step(batches, 1e-2)
        (tmp_path / name).mkdir()
        a.save(tmp_path / name)
        expected = float(a.train_step(batches, 1e-2).loss)
        a.teardown()
        b = spec.build()
        b.setup(tiny_model(), context())
        b.load(tmp_path / name)
        assert float(b.train_step(batches, 1e-2).loss) == pytest.approx(expected, rel=1e-6)
        b.teardown()


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("amp", "amp"),
        ("act_ckpt", "act_ckpt"),
        ("amp+act_ckpt", "act_ckpt"),
        ("act_ckpt+adam8bit", "adam8bit+act_ckpt"),
        (" zero_offload + act_ckpt ", "zero_offload+act_ckpt"),
    ],
)
def test_names_are_canonical(name, canonical):
    assert strategies.resolve(name).name == canonical


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("adam8bit+zero_offload", "each owns the optimizer"),
        ("amp+zero_offload", "each owns the optimizer"),
        ("act_ckpt+act_ckpt", "names a part twice"),
        ("fsdp", "unknown strategy 'fsdp'"),
        ("", "unknown strategy"),
        ("amp+", "unknown strategy"),
    ],
)
def test_impossible_combinations_are_refused(name, message):
    with pytest.raises(UserError, match=message):
        strategies.resolve(name)


def test_declared_facts():
    spec = strategies.resolve("adam8bit+act_ckpt")
    assert spec.changes_math and "8 bits" in spec.changes_math
    assert spec.info()["requires"] == ["bitsandbytes"]
    assert strategies.resolve("act_ckpt").changes_math is None
    assert "synchronizes the GPU once per parameter" in spec.info()["notes"][0]  # said in the report
    assert strategies.resolve("amp").info()["notes"] == []
    assert strategies.resolve("zero_offload").executor.optimizer_state_device == "cpu"


@pytest.mark.parametrize(
    ("name", "accumulates_in"),
    [("zero_offload", "bfloat16"), ("zero_offload_fp32acc", "float32")],
)
def test_zero_offload_in_bf16_keeps_the_fp32_init_as_master_and_accumulates_as_named(name, accumulates_in):
    # DeepSpeed casts the model to bf16 and would clone its masters from the rounded copy.
    spec = strategies.resolve(name)
    strategy = spec.build()
    model = tiny_model()
    init = {name: p.detach().clone() for name, p in model.named_parameters()}
    ctx = replace(context(), precision="bf16")
    strategy.setup(model, ctx)
    from deepspeed.utils import safe_get_full_fp32_param

    try:
        for pname, param in model.named_parameters():
            assert param.dtype == torch.bfloat16
            assert torch.equal(safe_get_full_fp32_param(param).cpu(), init[pname]), pname
        tokens = torch.randint(1, 512, (8, 65), generator=torch.Generator().manual_seed(3))
        engine = strategy.executor.engine
        loss = engine(tokens[:4, :-1], tokens[:4, 1:])
        engine.backward(loss)
        engine.step()  # not a boundary: the first micro-batch's gradients wait in the accumulation buffer
        executor = strategy.executor
        waiting = executor.accumulation_tensors() or list(
            executor.optimizer.accumulated_grads_in_cpu.values()
        )
        assert waiting and {str(t.dtype).removeprefix("torch.") for t in waiting} == {accumulates_in}
        facts = strategy.memory_facts()
        assert facts["master_weights_dtypes"] == ["float32"] and facts["master_weights_devices"] == ["cpu"]
    finally:
        strategy.teardown()
    assert spec.changes_math_at("bf16") and "16-bit" in spec.changes_math_at("bf16")
    assert spec.changes_math_at("fp32") is None


@pytest.mark.parametrize("name", COMBINATIONS)
def test_teardown_is_idempotent_and_safe_after_a_failed_setup(name, monkeypatch):
    spec = strategies.resolve(name)
    never_set_up = spec.build()
    never_set_up.teardown()
    never_set_up.teardown()
    skip_unless_here(spec, "test_contract_on_cuda (gpu-marked) ends with its teardown and checks it")

    def half_way(*_args, **_kwargs):  # every executor builds its optimizer's groups in its setup
        raise RuntimeError("setup failed half-way")

    for module in {sys.modules[k.__module__] for k in spec.executor.__mro__}:  # where it or a base calls it
        if hasattr(module, "param_groups"):
            monkeypatch.setattr(module, "param_groups", half_way)
    failed = spec.build()
    with pytest.raises(RuntimeError, match="setup failed half-way"):
        failed.setup(tiny_model(), context())
    failed.teardown()
    failed.teardown()
    monkeypatch.undo()
    # What the failed setup left behind does not stop the next one in this process from training.
    again = spec.build()
    again.setup(tiny_model(), context())
    tokens = torch.randint(1, 512, (8, 65), generator=torch.Generator().manual_seed(3))
    batches = list(zip(tokens[:, :-1].split(4), tokens[:, 1:].split(4), strict=True))
    assert math.isfinite(float(again.train_step(batches, 1e-3).loss))
    again.teardown()
    again.teardown()
