import itertools

import pytest

from harness.engine.clock import TrainingClock
from harness.engine.schedule import lr_at
from harness.metrics.definitions import steady_median
from harness.metrics.peaks import peak_tflops


def test_lr_warms_up_to_peak_then_decays_to_its_floor_at_the_deadline():
    kw = {"peak": 6e-4, "warmup_frac": 0.02, "min_ratio": 0.1}
    assert lr_at(0.0, **kw) == 0.0
    assert lr_at(0.01, **kw) == pytest.approx(3e-4)
    assert lr_at(0.02, **kw) == pytest.approx(6e-4)
    assert lr_at(1.0, **kw) == pytest.approx(6e-5)
    assert lr_at(1.7, **kw) == pytest.approx(6e-5)  # past the deadline: the floor, never below
    after = [lr_at(f / 100, **kw) for f in range(2, 101)]
    assert all(a >= b for a, b in itertools.pairwise(after))
    assert lr_at(0.51, **kw) == pytest.approx(6e-5 + (6e-4 - 6e-5) * 0.5)  # cosine midpoint
    assert lr_at(0.0, peak=1.0, warmup_frac=0.0, min_ratio=0.0) == 1.0


def lrs_of_a_loop(step_times_s, budget_s=10.0, state=None):
    """The training loop's own LR rule, stepped through the given step times (the loop's clock faked)."""
    from types import SimpleNamespace

    from harness.engine.loop import TrainingLoop
    from harness.engine.state import TrainState

    recipe = SimpleNamespace(lr=6e-4, warmup_frac=0.02, min_lr_ratio=0.1, budget_s=budget_s)
    loop = TrainingLoop.__new__(TrainingLoop)  # only its schedule is under test
    loop.session = SimpleNamespace(recipe=recipe, cfg=SimpleNamespace(max_steps=None))
    state = state or TrainState()
    lrs = []
    for step_s in step_times_s:
        if state.train_s >= budget_s:
            break
        lrs.append(loop._lr(state))
        state.step_times_s.append(step_s)
        state.train_s += step_s
    return lrs, state


def test_the_lr_never_goes_back_up_after_warm_up_whatever_the_step_times():
    # fast steps with a slow one every 7th (a busy machine): the old rule, the last step's time ahead of the
    # clock, dropped the rate after each slow step and put it back up at the next
    times = [1.5 if i % 7 == 6 else 0.0625 for i in range(400)]
    lrs, _ = lrs_of_a_loop(times)
    peak_at = lrs.index(max(lrs))
    assert max(lrs) > 5e-4  # the warm-up reached (near) the peak
    assert all(a >= b for a, b in itertools.pairwise(lrs[peak_at:]))
    assert all(a <= b for a, b in itertools.pairwise(lrs[: peak_at + 1]))


def test_a_steps_fraction_is_read_at_its_expected_end_from_the_last_five_steps_median():
    from harness.engine.schedule import budget_fraction

    assert budget_fraction(0.0, 0.0, [], 10.0) == 0.0  # the first step: nothing to expect yet
    assert budget_fraction(0.0, 2.0, [9.0] * 10 + [1.0] * 3, 10.0) == 0.3  # last five 9,9,1,1,1: median 1
    assert budget_fraction(0.0, 2.0, [1.0, 9.0, 1.0], 10.0) == 0.3  # fewer than five: all of them
    assert budget_fraction(0.5, 2.0, [1.0], 10.0) == 0.5  # never before the previous step's


def test_the_lr_reaches_its_floor_on_the_last_step_before_the_deadline():
    lrs, state = lrs_of_a_loop([0.125] * 100)  # 80 steps of 1/8 s fill the 10 s budget exactly
    assert len(lrs) == 80 and state.train_s == 10.0
    assert lrs[-1] == pytest.approx(6e-5)  # the floor: peak x min_lr_ratio
    assert lrs[-2] > 6e-5


def test_a_resumed_run_continues_its_schedule_where_it_was_read_last():
    from dataclasses import asdict

    from harness.engine.state import TrainState

    before, state = lrs_of_a_loop([0.0625] * 40 + [2.0, 2.0, 2.0])  # slow steps just before the checkpoint
    resumed = TrainState.from_dict(asdict(state))  # as a checkpoint carries it
    assert resumed.lr_fraction == state.lr_fraction > 0
    after, _ = lrs_of_a_loop([0.0625] * 3, state=resumed)
    assert after[0] <= before[-1]


class FakeTime:
    """perf_counter for the clock under test: it moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def test_clock_counts_training_only_and_syncs_at_every_edge(monkeypatch):
    from harness.engine import clock as clock_module

    now = FakeTime()
    monkeypatch.setattr(clock_module.time, "perf_counter", now)
    syncs = []
    clock = TrainingClock(lambda: syncs.append(now()), elapsed_s=5.0)
    assert clock.elapsed_s == 5.0  # carried over from an earlier session
    clock.start()
    now.advance(0.05)
    lap = clock.lap()
    with clock.excluded("eval"):
        now.advance(0.1)
    now.advance(0.05)
    clock.stop()
    assert lap == pytest.approx(0.05)
    assert clock.elapsed_s == pytest.approx(5.1)  # the 0.1 s of eval is not in it
    assert clock.excluded_s["eval"] == pytest.approx(0.1)
    assert len(syncs) == 6  # start, lap, pause, the excluded part's end, resume, stop


def test_clock_energy_counts_training_segments_only_per_part():
    gpu = iter([1.0, 3.0, 10.0, 12.0])  # J at start, pause, resume, stop
    host = iter([100.0, 150.0, 200.0, 230.0])
    clock = TrainingClock(lambda: None, energy={"gpu": lambda: next(gpu), "host": lambda: next(host)})
    clock.start()
    with clock.excluded("eval"):
        pass
    clock.stop()
    assert clock.energy_j == {"gpu": pytest.approx(4.0), "host": pytest.approx(80.0)}


def test_clock_energy_leaves_out_a_part_it_cannot_read():
    clock = TrainingClock(lambda: None, energy={"gpu": lambda: 5.0, "host": lambda: None})
    clock.start()
    clock.stop()
    assert clock.energy_j == {"gpu": 0.0}


def test_mfu_and_steady_throughput_through_the_summary():
    from harness.metrics.definitions import RunMeasurements, compute_summary

    # gpt2-124m by hand: 124,475,904 parameters, of which the 1024 x 768 position table is no matmul;
    # 6 x 123,689,472 + 12 layers x 768 x 1024 x 12 = 855,383,040 FLOP per token.
    facts = RunMeasurements(
        global_batch_tokens=524_288,
        flops_per_token=855_383_040,
        device_name="NVIDIA H100 80GB HBM3",
        steps=20,
        tokens=20 * 524_288,
        train_s=29.0,
        step_times_s=[10.0] + [1.0] * 18 + [0.5],  # the first (warm) step is dropped from the median
    )
    s = compute_summary(facts)
    assert s["tokens_per_s"] == pytest.approx(20 * 524_288 / 29.0)
    assert s["steady_tokens_per_s"] == 524_288  # median of the steady steps: 1.0 s each
    # 855,383,040 x 524,288 = 4.4846e14 FLOP/s against 989.5e12 (1,979 with sparsity, halved)
    assert s["mfu"] == pytest.approx(0.45322, rel=1e-4)
    assert s["peak_tflops"] == 989.5 and "H100 SXM5" in s["peak_tflops_source"]
    other = RunMeasurements(
        global_batch_tokens=1, flops_per_token=1, step_times_s=[1.0, 1.0], device_name="NVIDIA A10G"
    )
    unknown = compute_summary(other)
    assert unknown["mfu"] is None and unknown["peak_tflops"] is None  # never a guess


# Values copied from the vendors' datasheets (with-sparsity figures halved where that is what they print).
DATASHEET_DENSE_TFLOPS = {
    "NVIDIA H100 80GB HBM3": 1979 / 2,
    "NVIDIA H100 PCIe": 1513 / 2,
    "NVIDIA A100-SXM4-80GB": 624 / 2,
    "NVIDIA A100-PCIE-40GB": 624 / 2,
    "NVIDIA L4": 242 / 2,
    "NVIDIA A10": 250 / 2,
    "NVIDIA GeForce RTX 3090": 142 / 2,  # GA102 whitepaper: BF16 with FP32 accumulate, 71 / 142 (sparse)
    "NVIDIA GeForce RTX 4090": 330.4 / 2,  # AD102 whitepaper: BF16 with FP32 accumulate, 165.2 / 330.4
    "Tesla V100-SXM2-32GB": 125,
    "Tesla V100S-PCIE-32GB": 130,
}


@pytest.mark.parametrize(("name", "tflops"), DATASHEET_DENSE_TFLOPS.items())
def test_peak_table_against_datasheets(name, tflops):
    value, entry = peak_tflops(name)
    assert value == pytest.approx(tflops, rel=1e-3) and entry


@pytest.mark.parametrize(
    "name", ["NVIDIA H100", "NVIDIA A10G", "NVIDIA GeForce RTX 3080", "Tesla T4", "cpu", ""]
)
def test_unknown_devices_have_no_peak(name):
    assert peak_tflops(name) == (None, None)


def test_steady_median_skips_warm_steps():
    assert steady_median([100.0, 1.0, 2.0, 3.0]) == 2.0
    assert steady_median([5.0]) == 5.0
    assert steady_median([]) is None
    times = [50.0] * 2 + [10.0] * 18
    assert steady_median(times) == 10.0


def test_time_to_target_interpolates_between_the_bracketing_evaluations():
    from harness.metrics.definitions import crossing

    evals = [
        {"train_s": 0.0, "val_loss": 6.0},
        {"train_s": 10.0, "val_loss": 4.0},
        {"train_s": 20.0, "val_loss": 3.0},
    ]
    assert crossing(evals, 5.0) == (5.0, [0.0, 10.0])  # halfway from 6 to 4
    assert crossing(evals, 3.5) == (15.0, [10.0, 20.0])
    assert crossing(evals, 6.5) == (0.0, [0.0, 0.0])  # already there at the first evaluation
    assert crossing(evals, 2.0) == (None, None)


def test_training_peaks_start_after_warm_ups_cached_blocks_are_returned(monkeypatch):
    import torch

    from harness.metrics import resources

    calls = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: calls.append("synchronize"))
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: calls.append("empty_cache"))
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda device=None: calls.append("reset"))
    resources.reset_device_peaks(torch.device("cuda", 0))
    assert calls == ["synchronize", "empty_cache", "reset"]  # freed first, so the peak starts clean
    resources.reset_device_peaks(torch.device("cpu"))
    assert calls == ["synchronize", "empty_cache", "reset"]  # nothing to do on the CPU


def test_host_memory_counts_the_processes_a_run_started():
    import subprocess
    import sys

    import psutil

    from harness.metrics.resources import tree_rss_bytes

    size = 200 * 2**20
    code = (
        f"import sys; b = bytearray({size}); b[::4096] = b'1' * len(b[::4096]); "
        "print('ready', flush=True); sys.stdin.read()"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout.readline().strip() == "ready"
        me = psutil.Process()
        child_rss = psutil.Process(child.pid).memory_info().rss
        assert child_rss >= size
        own = me.memory_info().rss
        tree = tree_rss_bytes(me)
        assert tree >= own + child_rss - 16 * 2**20  # own RSS may move by a few pages between the reads
    finally:
        child.stdin.close()
        child.wait()
    assert tree_rss_bytes(me) < tree - size // 2  # the child gone, its memory no longer counts
