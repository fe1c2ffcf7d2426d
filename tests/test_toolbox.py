"""The newer strategies on the CPU: listed with their flags, refused in one line where they need CUDA,
trained by the CLI where they can run, their activation footprints against what the forward pass keeps."""

import json
import math
from dataclasses import replace

import pytest
import torch
from torch.multiprocessing.reductions import StorageWeakRef
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

import strategies
from harness.core.errors import UserError
from harness.core.presets import PRESETS
from harness.core.results import write_result
from harness.model import GPT, activation_footprint
from strategies.step_helpers import autocast
from tests.conftest import harness_cli, harness_main, run_inprocess, tiny_config

NEW = ["ao_adam8bit", "ao_adam4bit", "paged_adam8bit", "ao_cpu_offload", "fsdp2_offload", "sel_ckpt",
       "act_offload", "fp8", "fused_ce"]  # fmt: skip
CUDA_ONLY = ["paged_adam8bit", "ao_cpu_offload", "fp8", "fused_ce"]


def test_list_shows_every_strategy_with_its_flags():
    proc = harness_cli("list")
    assert proc.returncode == 0, proc.stderr
    lines = {line.split()[0]: line for line in proc.stdout.splitlines() if line.strip()}
    assert set(strategies.REGISTRY) == {
        "amp",
        "adam8bit",
        "zero_offload",
        "zero_offload_fp32acc",
        "act_ckpt",
        *NEW,
    }
    for name in NEW:
        assert "experimental" in lines[name], lines[name]
    for name in CUDA_ONLY:
        assert "CUDA only" in lines[name] or "needs CUDA" in lines[name], lines[name]
    assert strategies.default_sweep() == ["amp", "adam8bit", "zero_offload", "act_ckpt"]
    assert set(strategies.every_strategy(cuda=True)) == set(strategies.REGISTRY)
    assert not set(CUDA_ONLY) & set(strategies.every_strategy(cuda=False))


@pytest.mark.parametrize("name", CUDA_ONLY)
def test_a_cuda_only_strategy_on_the_cpu_is_one_line_exit_2(tmp_path, name):
    proc = harness_main("bench", "--strategy", name, "--preset", "tiny", "--device", "cpu",
                       "--runs-dir", str(tmp_path / "runs"))  # fmt: skip
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "needs a CUDA device" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("pair", "reason"),
    [
        ("act_ckpt+sel_ckpt", "both decide what a block keeps"),
        ("act_offload+act_ckpt", "nothing would move"),
        ("sel_ckpt+act_offload", "nothing would move"),
        ("zero_offload+fp8", "16-bit weights"),
        ("ao_adam8bit+ao_adam4bit", "each owns the optimizer"),
    ],
)
def test_impossible_pairs_are_refused_with_the_reason(pair, reason):
    with pytest.raises(UserError, match=reason):
        strategies.resolve(pair)


CPU_RUNS = ["ao_adam8bit", "ao_adam4bit", "fsdp2_offload", "sel_ckpt", "act_offload", "adam8bit+sel_ckpt",
            "zero_offload+sel_ckpt", "ao_adam8bit+act_ckpt", "ao_adam8bit+sel_ckpt", "ao_adam4bit+act_ckpt",
            "ao_adam4bit+sel_ckpt", "fsdp2_offload+act_ckpt", "fsdp2_offload+sel_ckpt"]  # fmt: skip


@pytest.fixture(scope="session")  # once per worker, whatever ran between its tests
def trained_toolbox(tmp_path_factory):
    """Each CPU-capable newer strategy and its checkpointing combinations, trained through the harness's
    own run (setup, warm-up, the loop, evaluation, the result) for two optimizer steps: what the contract
    needs. In one process, so torchao compiles its per-parameter kernels once for all of them."""
    runs = tmp_path_factory.mktemp("toolbox-runs")
    results = {}
    for name in CPU_RUNS:
        cfg = tiny_config(name, budget="1h", max_steps=2, eval_points=1, run_id=name.replace("+", "-"))
        results[name] = run_inprocess(cfg, runs / cfg.run_id)
        write_result(runs / cfg.run_id, results[name])
    return runs, results


@pytest.mark.slow
@pytest.mark.xdist_group("toolbox-runs")  # one worker builds the runs they read
@pytest.mark.parametrize("name", CPU_RUNS)
def test_each_cpu_capable_one_and_its_checkpointing_combinations_train(trained_toolbox, name):
    _runs, results = trained_toolbox
    result = results[name]
    assert result.status == "ok", result.error
    assert result.strategy["name"] == name and result.summary.steps == 2
    assert math.isfinite(result.summary.final_val_loss) and result.summary.warmup_s > 0


@pytest.mark.xdist_group("toolbox-runs")  # one worker builds the runs they read
def test_the_report_renders_every_one_of_them(trained_toolbox, tmp_path):
    from harness.report import render_report

    runs, _ = trained_toolbox
    html = render_report(runs, tmp_path / "index.html").read_text()
    for name in CPU_RUNS:
        assert f">{name}<" in html, name


class _Created(TorchDispatchMode):
    """Every storage an op creates, by weak reference: what is still alive after the forward pass is what
    it keeps for backward, however it keeps it (saved tensors, a checkpoint's cache, host copies)."""

    def __init__(self):
        super().__init__()
        self.storages = []  # every one: an address freed during the pass is reused by a later storage

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                s = t.untyped_storage()
                self.storages.append((s.data_ptr(), StorageWeakRef(s), s.nbytes()))
        return out


def _kept_bytes(cfg, strategy: str, precision: str, batch: int = 2) -> int:
    torch.manual_seed(0)
    model = GPT(cfg)
    for transform in strategies.resolve(strategy).transforms:
        transform().apply(model, None)
    tokens = torch.randint(0, cfg.vocab_size, (batch, cfg.seq_len + 1))
    mode = _Created()
    with mode, autocast(torch.device("cpu"), precision):
        loss = model(tokens[:, :-1], tokens[:, 1:])
    out = loss.untyped_storage().data_ptr()
    alive = {ptr: n for ptr, ref, n in mode.storages if ptr != out and not ref.expired()}  # views: once
    return sum(alive.values())


SHAPE = replace(PRESETS["gpt2-124m"].model, seq_len=256)


def _per_layer(strategy: str, precision: str) -> float:
    """Bytes kept per block per token: two more blocks, the difference, halved."""
    one, three = (_kept_bytes(replace(SHAPE, n_layer=n), strategy, precision) for n in (1, 3))
    return (three - one) / 2 / (2 * SHAPE.seq_len)


def test_selective_checkpointing_keeps_what_its_footprint_says():
    # bf16 (the GPU's numerics): a block keeps its input, its matmul and attention outputs; nothing else.
    predicted = (
        strategies.resolve("sel_ckpt")
        .transforms[0]
        .activation_footprint(activation_footprint(SHAPE, "autocast16"))
    )
    measured = _per_layer("sel_ckpt", "bf16")
    assert measured == pytest.approx(predicted.layer_per_token, rel=0.10)
    assert measured < 0.5 * _per_layer("amp", "bf16")  # and it is a real saving


def test_activation_offload_moves_what_the_blocks_keep_and_drops_nothing():
    cfg = replace(SHAPE, n_layer=2)
    kept_amp, kept_offload = _kept_bytes(cfg, "amp", "bf16"), _kept_bytes(cfg, "act_offload", "bf16")
    assert kept_offload == pytest.approx(kept_amp, rel=0.10)  # copies replace the originals
    acts = (
        strategies.resolve("act_offload")
        .transforms[0]
        .activation_footprint(activation_footprint(cfg, "autocast16"))
    )
    tokens = 2 * cfg.seq_len
    peak = acts.peak_bytes(tokens, cfg.n_layer)
    assert peak.host == pytest.approx(cfg.n_layer * acts.layer_bytes(tokens))
    plain = activation_footprint(cfg, "autocast16").peak_bytes(tokens, cfg.n_layer)
    assert peak.gpu == pytest.approx(plain.gpu - (cfg.n_layer - 1) * acts.layer_bytes(tokens))


@pytest.mark.slow
def test_parity_on_cpu_of_the_new_strategies(tmp_path):
    # Measured over 200 steps of tiny on the CPU (2026-11-24): sel_ckpt and act_offload 0 (bit-exact),
    # ao_adam8bit 7.1e-3, ao_adam4bit 9.1e-2 at most. Here 20 steps, against the same stated bounds.
    proc = harness_cli("parity", "--strategies", "amp,sel_ckpt,act_offload,ao_adam8bit,ao_adam4bit",
                       "--steps", "20", "--preset", "tiny", "--device", "cpu", "--quiet", "--runs-dir",
                       str(tmp_path / "runs"), "--out", str(tmp_path / "parity"), timeout=900)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (record,) = [json.loads(p.read_text()) for p in (tmp_path / "parity").iterdir()]
    rows = {row["strategy"]: row for row in record["rows"]}
    assert rows["sel_ckpt"]["max_rel_diff"] == 0 and rows["act_offload"]["max_rel_diff"] == 0
    assert rows["ao_adam8bit"]["bound"] == 1e-2 and 0 < rows["ao_adam8bit"]["max_rel_diff"] <= 1e-2
    assert rows["ao_adam4bit"]["bound"] == 0.15 and 0 < rows["ao_adam4bit"]["max_rel_diff"] <= 0.15


def test_paged_state_buffers_go_back_to_a_pool_and_the_next_optimizer_takes_them(monkeypatch):
    """bitsandbytes never frees a paged buffer: a fake `get_paged` counts the buffers made, and the page
    manager's list shows which are in use."""
    import bitsandbytes as bnb
    import bitsandbytes.functional as F

    from strategies import paged_adam8bit

    made = []

    def fake_get_paged(*shape, dtype=torch.float32, device=None):
        buffer = torch.zeros(shape, dtype=dtype)
        buffer.is_paged = True
        made.append(buffer)
        return buffer

    monkeypatch.setattr(F, "get_paged", fake_get_paged)
    monkeypatch.setattr(F, "fill", lambda buffer, value: buffer.fill_(value))
    monkeypatch.setattr(paged_adam8bit, "_POOL", {})
    manager = F.GlobalPageManager.get_instance()
    monkeypatch.setattr(manager, "paged_tensors", [])
    param = torch.nn.Parameter(torch.empty(1000, 200, device="meta"))  # large enough to be paged
    optimizer_type = paged_adam8bit.pooled(bnb.optim.PagedAdamW8bit)
    first = optimizer_type([param])
    a, b = first.get_state_buffer(param, torch.uint8), first.get_state_buffer(param, torch.uint8)
    a.fill_(7)
    assert len(made) == 2 and manager.paged_tensors == [a, b]
    first.release_paged_buffers()  # reset after warm-up, or teardown
    assert manager.paged_tensors == []
    second = optimizer_type([param])
    again = [second.get_state_buffer(param, torch.uint8) for _ in range(3)]
    assert len(made) == 3  # two taken back from the pool, one more made
    assert {id(t) for t in again[:2]} == {id(a), id(b)} and int(again[0].sum()) == 0  # zeroed as new
    assert len(manager.paged_tensors) == 3
