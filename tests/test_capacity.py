"""The memory model against real tensors (exact) and saved activations (within 10%), the ladder search
with a fake probe, the capacity command, and its report section."""

import json
import math
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

import strategies
from harness.capacity.memory_model import GIB, predict
from harness.capacity.scaling import DayOutlook, estimated_loss
from harness.capacity.search import find_largest
from harness.core.presets import LADDER, PRESETS
from harness.model import GPT, param_shapes
from harness.orchestrate.capacity import CapacityPlan, run_capacity
from strategies.base import OptimizerSettings, StrategyContext
from strategies.step_helpers import autocast
from tests.conftest import harness_main

ROOT = Path(__file__).resolve().parents[1]
EXECUTORS = [n for n, p in strategies.REGISTRY.items() if issubclass(p, strategies.base.Executor)]
# At real sizes, every executor but a variant whose footprint differs from its base's in one declared kind
# (zero_offload_fp32acc: the accumulation buffer, measured phase by phase in test_zero_offload_memory).
REAL_SIZE = [n for n in EXECUTORS if n != "zero_offload_fp32acc"]
# Executors whose state is tensors made per parameter from its shape alone (torchao/optim/adam.py:125-128,
# `_new_buffer(p)` per parameter), checked at real size on one block of each width: their eager step
# quantizes every element through Python-dispatched ops (about 30 s for the whole gpt2-124m on one core).
# Flat, padded or bucketed state (zero_offload) is checked on the whole model.
PER_PARAMETER_STATE = {"ao_adam8bit", "ao_adam4bit"}


@pytest.fixture
def eager_library_kernels(monkeypatch):
    """torchao compiles its optimizer step once per parameter shape (minutes cold on two cores, once per
    test worker); the state it allocates is the same tensors eager, which is all a state check reads. Its
    compiled step is trained in test_toolbox."""
    monkeypatch.setenv("TORCHDYNAMO_DISABLE", "1")  # read by torch.compile at each call (eval_frame.py)


def test_param_shapes_are_the_models_parameters():
    for name in ("tiny", *LADDER):
        cfg = PRESETS[name].model
        with torch.device("meta"):
            model = GPT(cfg)
        real = [(n, tuple(p.shape)) for n, p in model.named_parameters()]
        assert real == [(s.name, s.shape) for s in param_shapes(cfg)]


def _tensor_bytes(tensors) -> int:
    tensors = [t.to_local() if hasattr(t, "to_local") else t for t in tensors]  # FSDP2's DTensors
    unique = {(t.device.type, t.data_ptr()): t for t in tensors}
    return sum(t.numel() * t.element_size() for t in unique.values())


def _train_and_measure(name: str, cfg, precision: str, seq: int, steps: int = 2) -> dict[str, int]:
    """Real steps of the strategy; then every kind of state it holds, measured on its tensors."""
    torch.manual_seed(0)
    model = GPT(cfg)
    spec = strategies.resolve(name)
    strategy = spec.build()
    ctx = StrategyContext(
        torch.device("cpu"), precision, OptimizerSettings((0.9, 0.95), 1e-8, 0.1, 1.0), 2, 2, False
    )
    strategy.setup(model, ctx)
    try:
        tokens = torch.randint(1, cfg.vocab_size, (4, seq + 1), generator=torch.Generator().manual_seed(1))
        batches = list(zip(tokens[:, :-1].split(2), tokens[:, 1:].split(2), strict=True))
        for _ in range(steps):
            strategy.train_step(batches, 1e-3)
        executor = strategy.executor
        params = list(model.parameters())
        measured = {
            "weights": _tensor_bytes(params),
            "optimizer_state": _tensor_bytes(executor.optimizer_tensors()),
            "master_weights": _tensor_bytes(executor.master_tensors()),
            "grad_buffers": _tensor_bytes(executor.gradient_buffer_tensors()),
        }
        if hasattr(executor, "forward") and executor.forward is not None:  # gradients live in param.grad
            x, y = batches[0]
            with autocast(ctx.device, precision):
                executor.forward(x, y).backward()
        measured["gradients"] = _tensor_bytes([p.grad for p in params if p.grad is not None])
        return measured
    finally:
        strategy.teardown()


def _check_exact(name: str, cfg, precision: str, seq: int, steps: int = 2) -> None:
    measured = _train_and_measure(name, cfg, precision, seq, steps)
    declared = strategies.resolve(name).executor.state_footprint(param_shapes(cfg), precision)
    for kind, value in measured.items():
        assert getattr(declared, kind).total == value, (name, precision, kind)


# zero_offload_fp32acc differs from zero_offload in 16-bit precision only (fp32 weights accumulate in fp32).
def skip_unless_on_cpu(name: str) -> None:
    spec = strategies.resolve(name)
    if spec.missing_libraries():
        pytest.skip(f"{name} needs {', '.join(spec.missing_libraries())}, not installed here")
    if not spec.runs_on_cpu:
        pytest.skip(
            f"{name} needs CUDA: its memory model is checked against measured peaks by the gpu-marked "
            "test_gpu_toolbox.py::test_memory_model_of_each_new_strategy_against_the_measured_peak"
        )


@pytest.mark.parametrize(
    ("name", "precision"),
    [(n, p) for n in EXECUTORS for p in ("fp32", "bf16") if (n, p) != ("zero_offload_fp32acc", "fp32")],
)
def test_state_footprint_is_exactly_the_tensors_held(name, precision, eager_library_kernels):
    skip_unless_on_cpu(name)
    cfg = replace(PRESETS["tiny"].model, d_model=128, n_head=4)  # matrices large enough for 8-bit state
    _check_exact(name, cfg, precision, 16)


@pytest.mark.slow
@pytest.mark.parametrize("name", REAL_SIZE)
def test_state_footprint_is_exact_at_a_real_size(name, eager_library_kernels):
    """Every kind of state, on the tensors of the whole gpt2-124m model."""
    skip_unless_on_cpu(name)
    # Short sequences (the state ignores them), one step: every kind of state exists after the first step
    # (that nothing more appears at the second is checked at the small size above).
    full = PRESETS["gpt2-124m"].model
    if name not in PER_PARAMETER_STATE:
        _check_exact(name, full, "bf16", 8, steps=1)
        return
    # Every tensor shape of gpt2-124m is in its one-block model; state made per parameter from its shape
    # alone is then the one block's times the depth, which the declared side must add up to as well.
    _check_exact(name, replace(full, n_layer=1), "bf16", 8, steps=1)
    _assert_adds_up_over_depth(name, full)


@pytest.mark.slow
@pytest.mark.parametrize("name", REAL_SIZE)
def test_state_footprint_holds_at_a_larger_width_and_adds_up_over_depth(name, eager_library_kernels):
    """gpt-350m's every parameter shape (one block of its width, its embeddings) against real tensors;
    then the arithmetic that takes one block to the whole model: the declared state of the full depth is
    the one-block model's plus n_layer - 1 more blocks', exactly (each kind is a sum over tensors)."""
    skip_unless_on_cpu(name)
    full = PRESETS["gpt-350m"].model
    one_block = replace(full, n_layer=1)
    if name in PER_PARAMETER_STATE:  # its blocks' shapes; the embedding's real rows are measured at 124m
        one_block = replace(one_block, vocab_size=1024)
    _check_exact(name, one_block, "bf16", 8, steps=1)
    _assert_adds_up_over_depth(name, full)


def _assert_adds_up_over_depth(name: str, full) -> None:
    """The declared state of the full depth is the one-block model's plus n_layer - 1 more blocks'."""
    executor = strategies.resolve(name).executor

    def declared(layers: int) -> dict:
        fp = executor.state_footprint(param_shapes(replace(full, n_layer=layers)), "bf16")
        return {
            kind: b.total for kind, b in fp.by_kind().items() if kind not in ("workspace", "accumulation")
        }

    one, two, whole = declared(1), declared(2), declared(full.n_layer)
    for kind, value in whole.items():
        assert value == one[kind] + (full.n_layer - 1) * (two[kind] - one[kind]), (name, kind)


def _saved_bytes(model, x, y, precision: str) -> int:
    """Bytes of every distinct tensor the forward pass saves for backward (parameters excluded)."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    with (
        torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t),
        autocast(torch.device("cpu"), precision),
    ):
        model(x, y)
    return sum(seen.values())


SHAPES = {
    "tiny": PRESETS["tiny"].model,
    "gpt2-124m-block": replace(PRESETS["gpt2-124m"].model, n_layer=2),
}


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("micro_batch", [1, 2])
@pytest.mark.parametrize(
    ("strategy", "precision"),
    [("amp", "fp32"), ("amp", "bf16"), ("act_ckpt", "fp32"), ("act_ckpt", "bf16"), ("zero_offload", "bf16"),
     ("zero_offload+act_ckpt", "bf16")],
)  # fmt: skip
def test_saved_activations_within_ten_percent(shape, micro_batch, strategy, precision):
    cfg = SHAPES[shape]
    spec = strategies.resolve(strategy)
    torch.manual_seed(0)
    model = GPT(cfg)
    for transform in spec.transforms:
        transform().apply(model, None)
    run_precision = precision
    if spec.executor.numerics(precision) == "pure16":  # DeepSpeed's 16-bit mode: 16-bit weights, no autocast
        model, run_precision = model.to(torch.bfloat16), "fp32"
    tokens = torch.randint(0, cfg.vocab_size, (micro_batch, cfg.seq_len + 1))
    measured = _saved_bytes(model, tokens[:, :-1], tokens[:, 1:], run_precision)
    predicted = predict(cfg, strategy, micro_batch, precision).saved_activations
    assert abs(predicted - measured) <= 0.10 * measured, (predicted, measured)


def test_checkpointing_and_offload_shrink_the_prediction_where_they_should():
    cfg = PRESETS["gpt-1.3b"].model
    amp, ckpt = predict(cfg, "amp", 8), predict(cfg, "act_ckpt", 8)
    assert ckpt.activations.gpu < amp.activations.gpu / 2
    assert ckpt.state == amp.state
    offload = predict(cfg, "zero_offload", 8)
    assert offload.state["optimizer_state"].gpu == 0 and offload.state["optimizer_state"].host > 0
    assert offload.host_bytes > amp.host_bytes
    assert predict(cfg, "adam8bit", 8).state["optimizer_state"].gpu < amp.state["optimizer_state"].gpu / 3


class Oracle:
    """A fake probe: sizes up to `fits_up_to` train (with made-up figures), larger ones run out of memory."""

    def __init__(self, fits_up_to: int) -> None:
        self.fits_up_to, self.calls = fits_up_to, []

    def __call__(self, preset: str):
        self.calls.append(preset)
        if LADDER.index(preset) > self.fits_up_to:
            return None
        return {
            "micro_batch": 1,
            "peak_allocated_gib": 10.0,
            "tokens_per_s": 1000.0 * (len(LADDER) - LADDER.index(preset)),
        }


@pytest.mark.parametrize("boundary", range(-1, len(LADDER)))
def test_bisection_finds_the_boundary_wherever_it_lies(boundary):
    oracle = Oracle(boundary)
    answer = find_largest("amp", LADDER, 40, math.inf, probe=oracle)
    assert answer.largest == (LADDER[boundary] if boundary >= 0 else None)
    # bisection from the predicted size: one probe there, then halving the side it leaves; never a size twice
    assert len(oracle.calls) == len(set(oracle.calls)) <= 1 + math.ceil(math.log2(len(LADDER)))


def test_a_size_the_host_cannot_hold_is_never_probed():
    host = 45 * GIB  # zero_offload needs ~44 GiB of host memory for gpt-1.9b, ~71 GiB for gpt-2.7b
    oracle = Oracle(len(LADDER) - 1)  # the GPU would take anything
    answer = find_largest("zero_offload", LADDER, 80, host, probe=oracle)
    refused = [c.preset for c in answer.checks if c.host_refusal]
    assert "gpt-2.7b" in refused and not set(refused) & set(oracle.calls)
    largest = answer.check(answer.largest).prediction
    assert answer.largest == "gpt-1.9b" and answer.limited_by == "host" and largest.host_bytes <= host
    assert "GiB of host memory" in answer.check("gpt-2.7b").host_refusal


def test_run_capacity_with_a_fake_probe_writes_measured_figures_and_the_outlook(tmp_path):
    plan = CapacityPlan(("amp",), (24.0,), out=tmp_path / "capacity.json", predict_only=False)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(torch.cuda, "is_available", lambda: True)
        mp.setattr(torch.cuda, "get_device_properties", lambda i: SimpleNamespace(total_memory=80 * GIB))
        mp.setattr("harness.orchestrate.capacity.host_limit", lambda plan: 1e15)
        doc = run_capacity(plan, probe_for=lambda s, g: Oracle(LADDER.index("gpt-760m")), environment={})
    entry = doc["results"][0]
    assert entry["largest"] == "gpt-760m" and entry["confirmed"]
    outlook = entry["outlook"]
    assert outlook["tokens"] == pytest.approx(1000.0 * (len(LADDER) - LADDER.index("gpt-760m")) * 86400)
    assert outlook["tokens_per_param"] == pytest.approx(outlook["tokens"] / entry["best"]["params"])
    assert outlook["estimated_loss"] == pytest.approx(
        estimated_loss(entry["best"]["params"], outlook["tokens"])
    )
    assert json.loads((tmp_path / "capacity.json").read_text()) == doc


def test_scaling_law_reproduces_chinchilla():
    from harness.capacity.law import HOFFMANN, REPLICATION

    # Chinchilla itself (70B parameters, 1.4T tokens): Hoffmann's fit gives about 1.94, the replication's
    # refit (the prior the answer states) about 1.97.
    assert HOFFMANN.loss(70e9, 1.4e12) == pytest.approx(1.937, abs=0.005)
    assert estimated_loss(70e9, 1.4e12) == pytest.approx(REPLICATION.loss(70e9, 1.4e12))
    assert 1.96 < estimated_loss(70e9, 1.4e12) < 1.98
    assert DayOutlook(10**9, 86400, None).estimated_loss is None
    assert DayOutlook(10**9, 86400, 1e5).tokens_per_param == pytest.approx(8.64)


def test_predict_only_answers_the_capacity_question(tmp_path):
    out = tmp_path / "capacity.json"
    proc = harness_main(
        "capacity", "--predict-only", "--gpu-memory-gib", "24,80",
        "--strategies", "amp,adam8bit,act_ckpt,zero_offload+act_ckpt", "--json", "--out", str(out),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    largest = {(e["strategy"], e["gpu_memory_gib"]): LADDER.index(e["largest"]) for e in doc["results"]}
    assert largest[("zero_offload+act_ckpt", 24)] > largest[("amp", 24)]
    assert largest[("adam8bit", 24)] >= largest[("amp", 24)]
    for e in doc["results"]:
        assert e["best"]["predicted"]["gpu_bytes"] <= e["gpu_memory_gib"] * GIB
        assert e["best"]["predicted"]["host_bytes"] > 0 and e["outlook"]["estimated_loss"] is None
    assert out.exists() and out.with_suffix(".html").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--gpu-memory-gib", "abc"], "comma-separated numbers"),
        (["--gpu-memory-gib", "0"], "out of range"),
        (["--gpu-memory-gib", "nan"], "out of range"),
        (["--gpu-memory-gib", "1e-300"], "from 0.5 to 4096 GiB"),
        (["--gpu-memory-gib", "24", "--host-memory-gib", "1e9"], "from 0.5 to 4096 GiB"),
        (["--gpu-memory-gib", "24", "--presets", "gpt-9000b"], "unknown preset"),
        (["--gpu-memory-gib", "24", "--strategies", "nope"], "unknown strategy"),
        (["--gpu-memory-gib", "24,24"], "'24,24' names 24 twice"),
        (["--gpu-memory-gib", "24,,80"], "'24,,80' has an empty entry"),
        (["--gpu-memory-gib", "24", "--strategies", "amp,amp"], "'amp,amp' names amp twice"),
        (["--gpu-memory-gib", "24", "--presets", "tiny,,small"], "'tiny,,small' has an empty entry"),
        (["--gpu-memory-gib", "24", "--budget", "400d"], "--budget 400d is longer than a year"),
    ],
)
def test_capacity_refuses_bad_input_in_one_line(tmp_path, args, message):
    proc = harness_main("capacity", "--predict-only", "--out", str(tmp_path / "c.json"), *args)
    assert proc.returncode == 2 and message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "c.json").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_capacity_refuses_an_out_that_would_be_its_own_page(tmp_path):
    proc = harness_main(
        "capacity", "--predict-only", "--gpu-memory-gib", "24", "--out", str(tmp_path / "c.html")
    )
    assert proc.returncode == 2 and "its page goes beside it as .html" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "c.html").exists()


def test_confirming_without_a_gpu_is_refused(tmp_path):
    proc = harness_main("capacity", "--gpu-memory-gib", "24", "--out", str(tmp_path / "c.json"))
    assert proc.returncode == 2 and "--predict-only" in proc.stderr


def test_listing_shows_predicted_memory_per_strategy():
    proc = harness_main("list")
    assert proc.returncode == 0
    line = [row for row in proc.stdout.splitlines() if row.strip().startswith("gpt-13b")][-1]  # memory table
    expected = predict(PRESETS["gpt-13b"].model, "amp", 1).gpu_bytes / GIB
    assert f"{expected:.1f}" in line


def hand_made_capacity() -> dict:
    def size(preset, measured):
        pred = predict(PRESETS[preset].model, "zero_offload+act_ckpt", 4).to_dict()
        return {"preset": preset, "params": pred["params"], "predicted": pred, "measured": measured,
                "host_refusal": None, "probed": measured is not None}  # fmt: skip

    measured = {
        "micro_batch": 4,
        "peak_allocated_gib": 61.5,
        "peak_host_rss_gib": 110.0,
        "tokens_per_s": 9000.0,
    }
    best = size("gpt-6.7b", measured)
    outlook = DayOutlook(best["params"], 86400, 9000.0).to_dict()
    entries = [
        {"strategy": "zero_offload+act_ckpt", "gpu_memory_gib": 80, "largest": "gpt-6.7b",
         "limited_by": "host",
         "confirmed": True, "best": best, "outlook": outlook, "sizes": [best]},
        {"strategy": "amp", "gpu_memory_gib": 80, "largest": None, "limited_by": "gpu", "confirmed": False,
         "best": None, "outlook": None, "sizes": []},
        {"strategy": "<script>x</script>", "gpu_memory_gib": "nan", "largest": 5, "best": {"predicted": "?"}},
    ]  # fmt: skip
    return {"kind": "capacity", "predict_only": False, "budget_s": 86400, "results": entries,
            "environment": {"gpu_name": "NVIDIA H100 80GB HBM3"}}  # fmt: skip


def test_report_section_renders_from_a_hand_made_document(tmp_path):
    from harness.report.render import render_capacity_page

    page = render_capacity_page(hand_made_capacity(), tmp_path / "capacity.html").read_text()
    assert "gpt-6.7b" in page and "61.5" in page and "9,000" in page and "★" in page
    assert "<script>x</script>" not in page and "&lt;script&gt;" in page
    assert page.count('<img class="chart"') == 2


def test_main_report_carries_the_capacity_section_and_survives_a_damaged_one(tmp_path):
    from harness.report.render import render_report

    (tmp_path / "runs").mkdir()
    (tmp_path / "capacity.json").write_text(json.dumps(hand_made_capacity()))
    html = render_report(tmp_path / "runs", tmp_path / "index.html").read_text()
    assert 'id="capacity"' in html and "gpt-6.7b" in html
    (tmp_path / "capacity.json").write_text("{not json")
    html = render_report(tmp_path / "runs", tmp_path / "index.html").read_text()
    assert 'id="capacity"' not in html


@pytest.mark.parametrize(
    ("damage", "named"),
    [
        (lambda d: d["results"][0].update(best=["gpt-6.7b"]), "results[0].best: list where a record belongs"),
        (
            lambda d: d["results"][0].update(gpu_memory_gib=1e308),
            "results[0].gpu_memory_gib: 1e+308 is above",
        ),
        (lambda d: d.update(environment="H100"), "environment: str where a record belongs"),
        (
            lambda d: d["results"][0]["outlook"].update(tokens_per_s=-1),
            "results[0].outlook.tokens_per_s: -1 is not above 0",
        ),
    ],
)
def test_a_damaged_capacity_entry_is_left_out_naming_its_field(tmp_path, capsys, damage, named):
    """The hand-made document's third entry is garbage: it is left out and named; the rest is shown. A
    damaged field of the document itself leaves the section out, named."""
    from harness.report.render import render_report

    (tmp_path / "runs").mkdir()
    document = hand_made_capacity()
    damage(document)
    (tmp_path / "capacity.json").write_text(json.dumps(document))
    html = render_report(tmp_path / "runs", tmp_path / "index.html").read_text()
    err = capsys.readouterr().err
    assert named in err, err
    if named.startswith("results[0]"):
        assert "left out results[2].gpu_memory_gib: str where a number belongs" in err
        assert (
            'id="capacity"' in html and "zero_offload+act_ckpt" not in html and "left out results[0]" in err
        )
    else:
        assert 'id="capacity"' not in html and "capacity section left out" in err


def test_report_section_renders_from_a_real_predict_only_run(tmp_path):
    out = tmp_path / "capacity.json"
    proc = harness_main(
        "capacity", "--predict-only", "--gpu-memory-gib", "24", "--strategies", "amp", "--out", str(out)
    )
    assert proc.returncode == 0, proc.stderr
    largest = json.loads(out.read_text())["results"][0]["largest"]
    assert largest in LADDER and f" {largest} " in proc.stdout  # the terminal table
    page = out.with_suffix(".html").read_text()
    assert "predicted by the memory model only" in page and largest in page
