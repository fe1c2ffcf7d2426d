"""The throughput model: calibrated on the published H100 runs it reproduces them and names the run it used;
across strategies it composes compute, recomputation and the host's exposed work as declared; the host step
is benchmarked on this CPU; the GPU table holds every card of the peak table."""

import math
import re
from pathlib import Path

import pytest

import strategies
from harness.capacity.calibration import executed_flops_per_token, read_calibrations
from harness.capacity.host_optimizer import CACHE_FILE, host_step_timing, time_host_step
from harness.capacity.throughput import DEFAULT_EFFICIENCY, LINK_EFFICIENCY, Device, predict_speed
from harness.core.errors import UserError
from harness.core.presets import PRESETS
from harness.metrics.gpus import GPUS, gpu_model
from harness.metrics.peaks import PEAK_TFLOPS
from harness.model import flops_per_token, param_count
from tests.conftest import ROOT

H100 = "NVIDIA H100 80GB HBM3"
PUBLISHED = ROOT / "docs" / "results" / "h100" / "runs"
BATCH = 524_288


def h100() -> Device:
    g = gpu_model(H100)
    return Device(g.name, *g.peak, g.link, g.link_gb_s, "the GPU table")


def speed(strategy, preset, calibrations, host=None, micro_batch=None):
    spec = strategies.resolve(strategy)
    return predict_speed(PRESETS[preset].model, spec, h100(), calibrations, host or {}, BATCH, micro_batch)


def test_it_reproduces_the_h100_runs_it_is_calibrated_on_and_names_them():
    calibrations = read_calibrations([PUBLISHED])[0]
    assert {c.strategy for c in calibrations} == {"amp", "adam8bit", "zero_offload"}
    for c in calibrations:
        figure = speed(c.strategy, c.preset, calibrations)
        assert figure["source"] == "predicted"
        assert figure["value"] == pytest.approx(c.tokens_per_s, rel=0.05)
        assert figure["from"]["efficiency_source"].startswith(
            f"run {c.run}: {c.strategy} at gpt2-124m on {H100}"
        )


def test_a_strategy_without_its_own_run_takes_its_executors_then_the_baselines():
    calibrations = read_calibrations([PUBLISHED])[0]
    measured = {c.strategy: c.tokens_per_s for c in calibrations}
    amp_only = [c for c in calibrations if c.strategy == "amp"]
    figure = speed("adam8bit", "gpt2-124m", amp_only)  # left out: predicted from amp's run
    assert figure["value"] == pytest.approx(measured["adam8bit"], rel=0.05)
    assert "amp at gpt2-124m" in figure["from"]["efficiency_source"]
    kin = speed("zero_offload+act_ckpt", "gpt-1.3b", calibrations)  # zero_offload's run: its host work inside
    assert "zero_offload at gpt2-124m" in kin["from"]["efficiency_source"]
    assert kin["from"]["host"]["included"].startswith("in the calibrating run's speed")
    mixed = speed("adam8bit+act_ckpt", "gpt-1.3b", calibrations)  # adam8bit's own executor before amp
    assert "adam8bit at gpt2-124m" in mixed["from"]["efficiency_source"]


def test_offload_adds_the_host_step_and_the_exposed_link_bytes_as_declared():
    calibrations = [c for c in read_calibrations([PUBLISHED])[0] if c.strategy == "amp"]
    host = {"zero_offload": {"seconds_per_param": 0.5e-9, "source": "a test"}}
    figure = speed("zero_offload", "gpt-760m", calibrations, host)
    n = param_count(PRESETS["gpt-760m"].model)
    f = figure["from"]
    compute_s = BATCH * flops_per_token(PRESETS["gpt-760m"].model) / calibrations[0].flop_rate
    link_s = 2 * n / (gpu_model(H100).link_gb_s * 1e9 * LINK_EFFICIENCY)  # 16-bit weights back to the GPU
    assert f["compute_s_per_step"] == pytest.approx(compute_s)
    assert f["host"]["optimizer_s_per_step"] == pytest.approx(0.5e-9 * n)
    assert f["host"]["link_s_per_step"] == pytest.approx(link_s)
    assert figure["value"] == pytest.approx(BATCH / (compute_s + 0.5e-9 * n + link_s))
    assert f["host"]["link"] == "PCIe 5.0 x16" and f["host"]["link_source"] == "the GPU table"


def test_checkpointing_pays_for_the_forward_it_recomputes():
    model = PRESETS["gpt2-124m"].model
    plain, none = executed_flops_per_token(model, strategies.resolve("amp"))
    _, again = executed_flops_per_token(model, strategies.resolve("act_ckpt"))
    _, selective = executed_flops_per_token(model, strategies.resolve("sel_ckpt"))
    d, layers, t = model.d_model, model.n_layer, model.seq_len
    assert none == 0 and selective == 0 and again == layers * (24 * d * d + 4 * d * t)
    calibrations = [c for c in read_calibrations([PUBLISHED])[0] if c.strategy == "amp"]
    ratio = speed("act_ckpt", "gpt2-124m", calibrations)["value"] / calibrations[0].tokens_per_s
    assert ratio == pytest.approx(plain / (plain + again))


def test_without_a_measured_run_the_default_efficiency_is_used_and_said():
    figure = speed("amp", "gpt-1.3b", [])
    assert figure["from"]["efficiency"] == pytest.approx(DEFAULT_EFFICIENCY)
    assert figure["from"]["efficiency_source"].startswith("a stated default")


def test_a_run_of_another_recipe_or_an_unsteady_one_does_not_calibrate(tmp_path):
    """Only runs that stand for the candidate's recipe count: the same global batch and sequence length,
    ended ok after a few steady steps, bf16 and compiled on a GPU."""
    import json
    import shutil

    source = next(PUBLISHED.glob("*-amp-*"))
    for name, edit in {
        "tiny-batch": lambda r: r["recipe"].update(global_batch_tokens=4096),
        "one-step": lambda r: r["summary"].update(steps=1),
        "stopped": lambda r: r.update(status="interrupted"),
        "eager": lambda r: r["recipe"].update(compile=False),
        "fp32": lambda r: r["recipe"].update(precision="fp32"),
    }.items():
        folder = tmp_path / name / "run"
        shutil.copytree(source, folder)
        result = json.loads((folder / "result.json").read_text())
        edit(result)
        (folder / "result.json").write_text(json.dumps(result))
        figure = speed(
            "amp", "gpt2-124m", read_calibrations([tmp_path / name])[0]
        )  # the harness's own filters
        assert figure["from"]["efficiency_source"].startswith("a stated default"), name
    kept = tmp_path / "unedited" / "run"  # and the same run, unedited, does calibrate
    shutil.copytree(source, kept)
    assert (
        "run " in speed("amp", "gpt2-124m", read_calibrations([kept.parent])[0])["from"]["efficiency_source"]
    )
    fp8 = speed("amp+fp8", "gpt-1.3b", read_calibrations([PUBLISHED])[0])
    assert fp8["from"]["not_modelled"] == [
        "fp8: float8 matmuls run faster than the 16-bit peak the model divides by"
    ]


def test_copies_during_compute_bound_the_step_when_they_take_longer():
    host = {"ao_cpu_offload": {"seconds_per_param": 0.3e-9, "source": "a test"}}
    calibrations = [c for c in read_calibrations([PUBLISHED])[0] if c.strategy == "amp"]
    figure = speed("ao_cpu_offload", "gpt-1.3b", calibrations, host, micro_batch=1)
    f = figure["from"]
    n = param_count(PRESETS["gpt-1.3b"].model)
    copies = (
        512 * 4 * n / (gpu_model(H100).link_gb_s * 1e9 * LINK_EFFICIENCY)
    )  # 512 micro-batches of fp32 grads
    assert f["link_bound"] and f["link_during_compute_s_per_step"] == pytest.approx(copies)
    assert f["step_s"] == pytest.approx(
        copies + f["host"]["optimizer_s_per_step"] + f["host"]["link_s_per_step"]
    )
    roomy = speed("ao_cpu_offload", "gpt-1.3b", calibrations, host, micro_batch=64)["from"]
    assert "link_bound" not in roomy


def test_an_offload_strategy_without_a_host_timing_has_no_speed_and_says_why():
    figure = speed(
        "zero_offload", "gpt-1.3b", [], host={"zero_offload": {"seconds_per_param": None, "error": "x"}}
    )
    assert figure["value"] is None and figure["why_missing"] == "no host-step timing here: x"


@pytest.mark.parametrize("name", ["zero_offload", "fsdp2_offload", "ao_cpu_offload"])
def test_the_host_step_benchmark_runs_on_this_cpu(name):
    executor = strategies.resolve(name).executor
    timing = time_host_step(executor, params=2**20, steps=2)
    assert timing.error is None, timing.error
    assert 0 < timing.seconds_per_param < 1e-6 and math.isfinite(timing.seconds_per_param)
    assert timing.optimizer == executor.host_step.optimizer and "benchmarked on this machine" in timing.source


def test_a_host_timing_is_kept_for_this_machine_and_read_back(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path))
    executor = strategies.resolve("fsdp2_offload").executor
    calls = []
    real = time_host_step
    monkeypatch.setattr(
        "harness.capacity.host_optimizer.time_host_step", lambda e: calls.append(e) or real(e, 2**20, 2)
    )
    first = host_step_timing(executor)
    second = host_step_timing(executor)
    assert len(calls) == 1 and (tmp_path / CACHE_FILE).exists()
    assert second.seconds_per_param == first.seconds_per_param and f"kept in {tmp_path}" in second.source


def test_the_gpu_table_holds_every_card_of_the_peak_table_and_the_24_gib_ones():
    for pattern, _, _ in PEAK_TFLOPS:
        assert any(re.fullmatch(pattern, name) for name in GPUS), pattern
    consumer = [g for g in GPUS.values() if 22 <= g.memory_gib <= 24]
    assert {"NVIDIA GeForce RTX 3090", "NVIDIA GeForce RTX 4090", "NVIDIA L4", "NVIDIA A10"} <= {
        g.name for g in consumer
    }
    for g in GPUS.values():
        assert g.peak[0] and g.link_gb_s > 0
    with pytest.raises(UserError, match=r"unknown GPU 'NVIDIA RTX 9999'.*'NVIDIA H100 80GB HBM3'"):
        gpu_model("NVIDIA RTX 9999")


def test_published_runs_are_where_the_answer_looks():
    from harness.orchestrate.answer_runs import published_runs

    assert Path(PUBLISHED).resolve() in {p.resolve() for p in published_runs()}


def test_a_prediction_names_every_input_and_does_its_arithmetic_with_them():
    """zero_offload at gpt-1.3b on the H100 with no run to learn from: the stated default efficiency, the
    host step benchmarked here, the bytes over the link; every input named in the figure."""
    device, model, spec = h100(), PRESETS["gpt-1.3b"].model, strategies.resolve("zero_offload")
    host = {"zero_offload": {"seconds_per_param": 1e-9, "source": "a test"}}
    figure = predict_speed(model, spec, device, [], host, BATCH, 4)
    flops, again = executed_flops_per_token(model, spec)
    params, step = param_count(model), spec.executor.host_step
    rate = device.peak_tflops * 1e12 * DEFAULT_EFFICIENCY
    link = device.link_gb_s * 1e9 * LINK_EFFICIENCY
    compute_s, link_s = BATCH * (flops + again) / rate, step.exposed_bytes_per_param * params / link
    hidden_s = BATCH // (4 * model.seq_len) * step.overlapped_bytes_per_param * params / link
    assert hidden_s < compute_s  # the copies hide behind compute here
    step_s = compute_s + (1e-9 * params + link_s)
    assert figure == {
        "value": BATCH / step_s,
        "source": "predicted",
        "from": {
            "model_flops_per_token": flops, "recomputed_flops_per_token": again,
            "peak_tflops": device.peak_tflops, "peak_source": device.peak_source, "not_modelled": [],
            "flop_rate": rate, "efficiency": rate / (device.peak_tflops * 1e12),
            "efficiency_source": f"a stated default of {DEFAULT_EFFICIENCY} of the peak (no measured run on "
            f"{device.name})",
            "compute_s_per_step": compute_s,
            "host": {
                "optimizer": step.optimizer, "exposed_bytes_per_param": step.exposed_bytes_per_param,
                "overlapped_bytes_per_param_per_micro_batch": step.overlapped_bytes_per_param,
                "seconds_per_param": 1e-9, "seconds_per_param_source": "a test", "link": device.link,
                "link_gb_s": device.link_gb_s, "link_source": device.link_source,
                "link_efficiency": LINK_EFFICIENCY, "optimizer_s_per_step": 1e-9 * params,
                "link_s_per_step": link_s,
            },
            "step_s": step_s,
        },
    }  # fmt: skip


def test_without_a_peak_or_a_host_timing_a_prediction_says_what_is_missing():
    model = PRESETS["gpt2-124m"].model
    unknown = Device("Some Card", None, None, "PCIe 4.0 x16", 32.0, "assumed")
    figure = predict_speed(model, strategies.resolve("amp"), unknown, [], {}, BATCH, None)
    assert figure["value"] is None and figure["source"] == "predicted"
    assert figure["why_missing"] == "no peak for Some Card and no measured run of it to learn its speed from"
    assert figure["from"]["peak_tflops"] is None and "flop_rate" not in figure["from"]
    untimed = predict_speed(model, strategies.resolve("zero_offload"), h100(), [], {}, BATCH, None)
    assert untimed["value"] is None and untimed["source"] == "predicted" and "flop_rate" in untimed["from"]
    assert untimed["why_missing"] == "no host-step timing here: not benchmarked"
    plain = predict_speed(model, strategies.resolve("amp"), h100(), [], {}, BATCH, 4)["from"]
    assert "link_bound" not in plain and plain["host"] is None  # amp copies nothing during compute
    assert plain["step_s"] == plain["compute_s_per_step"]
    broken = {"zero_offload": {"seconds_per_param": None, "error": "DeepSpeed did not load"}}
    said = predict_speed(model, strategies.resolve("zero_offload"), h100(), [], broken, BATCH, None)
    assert said["why_missing"] == "no host-step timing here: DeepSpeed did not load"


def _calibration(strategy, preset, tokens_per_s=1000.0, device="NVIDIA H100 80GB HBM3"):
    from harness.capacity.calibration import measured

    return measured(device, strategy, preset, PRESETS[preset].model, BATCH, tokens_per_s, f"runs/{strategy}")


def test_the_calibration_chosen_is_the_strategys_own_nearest_in_size_then_its_executors_then_amps():
    from harness.capacity.calibration import choose_calibration

    model, device = PRESETS["gpt-760m"].model, "NVIDIA H100 80GB HBM3"
    small, big = _calibration("amp", "gpt2-124m"), _calibration("amp", "gpt-1.3b")
    combined = strategies.resolve("adam8bit+act_ckpt")
    assert choose_calibration(strategies.resolve("amp"), model, device, BATCH, [small, big]) == (big, True)
    own, kin = _calibration("adam8bit+act_ckpt", "gpt2-124m"), _calibration("adam8bit", "gpt-1.3b")
    assert choose_calibration(combined, model, device, BATCH, [kin, own, big]) == (own, True)
    assert choose_calibration(combined, model, device, BATCH, [kin, big]) == (kin, False)  # no host step
    assert choose_calibration(combined, model, device, BATCH, [small]) == (small, False)
    assert choose_calibration(combined, model, "NVIDIA A100-SXM4-80GB", BATCH, [small]) == (None, False)


def test_a_calibration_says_which_run_it_is_and_counts_from_three_steady_steps(tmp_path):
    import json
    import shutil

    from harness.capacity.calibration import MIN_STEPS, executed_flops_per_token, unmodelled

    c = _calibration("amp", "gpt2-124m", 500_632.4)
    assert c.says() == "run runs/amp: amp at gpt2-124m on NVIDIA H100 80GB HBM3, 500,632 tokens/s"
    source = next(PUBLISHED.glob("*-amp-*"))
    folder = tmp_path / "three" / "run"
    shutil.copytree(source, folder)
    result = json.loads((folder / "result.json").read_text())
    result["summary"]["steps"] = MIN_STEPS  # exactly enough
    del result["recipe"]["preset"]
    (folder / "result.json").write_text(json.dumps(result))
    (read,) = read_calibrations([tmp_path / "three"])[0]
    assert read.run == str(folder) and read.preset == "?" and read.device == "NVIDIA H100 80GB HBM3"
    cpu = tmp_path / "cpu" / "run"
    shutil.copytree(source, cpu)
    result.update(environment={**result["environment"], "gpu_name": None})
    result["recipe"].update(precision="fp32", compile=False)  # what a CPU run records
    (cpu / "result.json").write_text(json.dumps(result))
    (on_cpu,) = read_calibrations([tmp_path / "cpu"])[0]
    assert on_cpu.device == "cpu"
    assert unmodelled("no_such_strategy") == ["an unknown strategy"]
    from types import SimpleNamespace

    twice = SimpleNamespace(transforms=[SimpleNamespace(recompute_forward=0.75)] * 2, name="x")
    _, recomputed = executed_flops_per_token(PRESETS["gpt2-124m"].model, twice)
    once = executed_flops_per_token(PRESETS["gpt2-124m"].model, strategies.resolve("act_ckpt"))[1]
    assert recomputed == once  # a forward is recomputed at most once, however many transforms ask
