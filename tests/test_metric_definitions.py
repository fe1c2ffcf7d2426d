"""Every figure of a result from one set of hand-made measurements, each by its definition: the registry's
arithmetic pinned down figure by figure, with the edge cases that change a figure's meaning."""

import math
from dataclasses import replace

import pytest

from harness.core.units import unit_of
from harness.metrics.definitions import (
    METRICS,
    Metric,
    RunMeasurements,
    compute_summary,
    crossing,
    register,
    steady_median,
)

H100 = "NVIDIA H100 80GB HBM3"


def measured() -> RunMeasurements:
    return RunMeasurements(
        budget_s=10.0, global_batch_tokens=1000, params=100, flops_per_token=600, device_name=H100,
        steps=10, tokens=10_000, train_s=10.0, step_times_s=[2.0] + [0.5] * 9,
        excluded_s={"setup": 1.0, "fit": 2.0, "warmup": 3.0}, wall_s=20.0,
        evals=[{"train_s": 0.0, "val_loss": 5.0}, {"train_s": 10.0, "val_loss": 3.0, "gap_to_floor": 1.0}],
        last_loss=2.9, floor_loss=2.0, targets=(4.0, 1.0), energy_j={"gpu": 1000.0, "host": 500.0},
        data_wait_s=0.5, data_tokens_per_s=1e6, train_tokens_available=5_000, compiles_in_training=0,
        memory={"peak_allocated_gib": 1.0, "peak_reserved_gib": 1.5, "peak_nvml_used_gib": 2.0,
                "peak_host_rss_gib": 3.0, "lifetime_host_rss_gib": 3.5},
        strategy_memory={"pinned_host_gib": 0.25, "optimizer_state_gib": 0.5, "master_weights_gib": 0.75,
                         "grad_buffers_gib": 0.125},
        settings={"micro_batch": 4},
    )  # fmt: skip


def test_every_figure_of_a_run_by_its_definition():
    assert compute_summary(measured()) == {
        "steps": 10, "tokens": 10_000, "train_s": 10.0, "budget_s": 10.0, "params": 100,
        "flops_per_token": 600,
        "tokens_per_s": 1000.0,  # tokens over the training clock
        "steady_tokens_per_s": 2000.0,  # the median per step after the first (a slow one: 500 tokens/s)
        "timed_steps": 10,
        "mfu": pytest.approx(600 * 2000.0 / 989.5e12),  # FLOPs/token x steady tokens/s over the peak
        "peak_tflops": 989.5, "peak_tflops_source": METRICS["peak_tflops_source"].compute(measured()),
        "data_wait_share": 0.05, "micro_batch": 4,
        "peak_allocated_gib": 1.0, "peak_reserved_gib": 1.5, "peak_nvml_used_gib": 2.0,
        "peak_host_rss_gib": 3.0, "lifetime_host_rss_gib": 3.5, "pinned_host_gib": 0.25,
        "optimizer_state_gib": 0.5, "master_weights_gib": 0.75, "grad_buffers_gib": 0.125,
        "energy_j": 1000.0, "host_energy_j": 500.0, "joules_per_token": 0.1, "host_joules_per_token": 0.05,
        "total_joules_per_token": 0.15,
        "final_train_loss": 2.9, "final_val_loss": 3.0, "val_ppl": pytest.approx(math.exp(3.0)),
        "floor_loss": 2.0, "gap_to_floor": 1.0,
        "time_to_target_s": {"4": 5.0, "1": None},  # 4.0 crossed halfway between the evaluations
        "time_to_target_bracket_s": {"4": [0.0, 10.0], "1": None},
        "epochs": 2.0,
        "setup_s": 1.0, "fit_s": 2.0, "warmup_s": 3.0, "eval_s": 0.0, "checkpoint_s": 0.0,
        "wall_s": 20.0, "data_wait_s": 0.5, "data_tokens_per_s": 1e6, "compiles_in_training": 0,
    }  # fmt: skip
    assert METRICS["peak_tflops_source"].compute(measured()).startswith("H100 SXM5")


def test_figures_a_run_could_not_measure_are_none_never_zero():
    nothing = compute_summary(RunMeasurements())
    for key in ("tokens_per_s", "steady_tokens_per_s", "mfu", "peak_tflops", "energy_j",
                "joules_per_token", "total_joules_per_token", "final_val_loss", "val_ppl", "epochs",
                "setup_s", "eval_s", "checkpoint_s", "data_wait_share", "micro_batch"):  # fmt: skip
        assert nothing[key] is None, key
    cpu = compute_summary(replace(measured(), device_name="AMD EPYC"))  # no peak known: no MFU, no guess
    assert cpu["mfu"] is None and cpu["peak_tflops"] is None and cpu["peak_tflops_source"] is None
    gpu_only = compute_summary(replace(measured(), energy_j={"gpu": 1000.0}))
    assert gpu_only["joules_per_token"] == 0.1 and gpu_only["total_joules_per_token"] is None
    host_only = compute_summary(replace(measured(), energy_j={"host": 500.0}))
    assert host_only["host_joules_per_token"] == 0.05 and host_only["total_joules_per_token"] is None
    huge = compute_summary(replace(measured(), evals=[{"train_s": 1.0, "val_loss": 800.0}]))
    assert huge["val_ppl"] is None and huge["final_val_loss"] == 800.0  # e^800 is no number
    assert compute_summary(replace(measured(), global_batch_tokens=None))["steady_tokens_per_s"] is None
    zero_steps = compute_summary(replace(measured(), step_times_s=[0.0, 1.0, 1.0]))
    assert zero_steps["steady_tokens_per_s"] == 1000.0  # a zero-length step is no rate
    assert compute_summary(replace(measured(), flops_per_token=None))["mfu"] is None  # unknown, not 0%
    at_the_edge = compute_summary(replace(measured(), evals=[{"train_s": 1.0, "val_loss": 700.0}]))
    assert at_the_edge["val_ppl"] is None


def test_the_steady_median_skips_the_first_tenth_and_at_least_one_step():
    assert steady_median([]) is None and steady_median([7.0]) == 7.0  # one step: nothing to skip
    assert steady_median([100.0, 1.0, 2.0, 3.0]) == 2.0
    assert steady_median([100.0] * 2 + [1.0] * 18) == 1.0  # 20 steps: the first two skipped


def test_a_target_reached_at_the_first_evaluation_is_reached_then():
    evals = [{"train_s": 2.0, "val_loss": 3.0}, {"train_s": 4.0, "val_loss": 2.0}]
    assert crossing(evals, 3.5) == (2.0, [2.0, 2.0])
    assert crossing(evals, 2.5) == (3.0, [2.0, 4.0]) and crossing(evals, 1.0) == (None, None)
    assert crossing(evals, 2.0) == (4.0, [2.0, 4.0])  # reaching the target exactly is reaching it


def test_a_metric_is_registered_once_with_a_known_direction():
    taken = next(iter(METRICS.values()))
    with pytest.raises(ValueError, match=f"metric {taken.key!r} is registered twice"):
        register(taken)
    with pytest.raises(ValueError, match="better must be 'high', 'low' or None"):
        register(Metric("a_new_s", "new", lambda f: 0, better="up"))
    assert "a_new_s" not in METRICS
    added = [
        Metric(f"a_new_{better}_s", "new", lambda f: 0, better=better) for better in ("high", "low", None)
    ]
    try:
        for metric in added:
            assert register(metric) is metric and METRICS[metric.key] is metric
    finally:
        for metric in added:
            METRICS.pop(metric.key, None)


@pytest.mark.parametrize(
    ("key", "unit"),
    [("total_joules_per_token", "J/token"), ("flops_per_token", "FLOPs/token"),
     ("steady_tokens_per_s", "tokens/s"), ("peak_tflops", "TFLOP/s"), ("peak_reserved_gib", "GiB"),
     ("final_val_loss", "nats"), ("gap_to_floor", "nats"), ("energy_j", "J"), ("train_s", "s"),
     ("timed_steps", "steps"), ("tokens", "tokens"), ("params", "parameters"), ("micro_batch", "sequences"),
     ("epochs", "epochs"), ("compiles_in_training", "graphs"), ("mfu", ""), ("val_ppl", "")],
)  # fmt: skip
def test_each_figure_has_the_unit_its_key_names(key, unit):
    assert unit_of(key) == unit


def test_each_figure_is_read_back_by_its_kind_unless_its_metric_says_otherwise():
    from harness.core.schema import COUNT, NON_NEGATIVE, NUMBER, TEXT, Named, problem

    assert METRICS["steps"].figure_spec() is COUNT and METRICS["peak_tflops_source"].figure_spec() is TEXT
    assert METRICS["tokens_per_s"].figure_spec() is NON_NEGATIVE  # a float: a number never below 0
    assert METRICS["time_to_target_s"].figure_spec() == Named(NON_NEGATIVE)
    assert METRICS["gap_to_floor"].figure_spec() is NUMBER and METRICS["mfu"].figure_spec().high == 1
    assert problem(METRICS["time_to_target_s"].figure_spec(), {"3.5": -1.0}) is not None
