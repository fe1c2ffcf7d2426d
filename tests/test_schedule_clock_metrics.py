import itertools
import time

import pytest

from harness.engine.clock import TrainingClock
from harness.engine.schedule import lr_at
from harness.metrics.definitions import steady_median
from harness.metrics.peaks import mfu, peak_tflops


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


def test_clock_counts_training_only_and_syncs_at_every_edge():
    syncs = []
    clock = TrainingClock(lambda: syncs.append(time.perf_counter()), elapsed_s=5.0)
    assert clock.elapsed_s == 5.0  # carried over from an earlier session
    clock.start()
    time.sleep(0.05)
    lap = clock.lap()
    with clock.excluded("eval"):
        time.sleep(0.1)
    time.sleep(0.05)
    clock.stop()
    assert 0.04 < lap < 0.09
    assert 5.09 < clock.elapsed_s < 5.2  # the 0.1 s of eval is not in it
    assert clock.excluded_s["eval"] >= 0.1
    assert len(syncs) >= 5  # start, lap, pause, resume, stop


def test_clock_energy_counts_training_segments_only():
    readings = iter([1000.0, 3000.0, 10_000.0, 12_000.0])  # mJ at start, pause, resume, stop
    clock = TrainingClock(lambda: None, energy_mj=lambda: next(readings))
    clock.start()
    with clock.excluded("eval"):
        pass
    clock.stop()
    assert clock.energy_j == pytest.approx(4.0)  # (3000-1000 + 12000-10000) mJ


def test_mfu_hand_worked():
    # 1e9 FLOP/token x 100k tokens/s = 1e14 FLOP/s against a 989.5 TFLOP/s peak.
    assert mfu(1e9, 1e5, 989.5) == pytest.approx(1e14 / 989.5e12)
    assert mfu(1e9, None, 989.5) is None
    assert mfu(1e9, 1e5, None) is None


@pytest.mark.parametrize(
    ("name", "tflops", "entry"),
    [
        ("NVIDIA H100 80GB HBM3", 989.5, "H100"),
        ("NVIDIA H100 PCIe", 756.0, "H100 PCIe"),
        ("NVIDIA H200", 989.5, "H200"),
        ("NVIDIA GH200 480GB", 989.5, "GH200"),
        ("NVIDIA A100-SXM4-80GB", 312.0, "A100"),
        ("NVIDIA L40S", 362.05, "L40S"),
        ("NVIDIA L4", 121.0, "L4"),
        ("NVIDIA GeForce RTX 4090", 165.2, "RTX 4090"),
        ("cpu", None, None),
        ("", None, None),
    ],
)
def test_peak_table(name, tflops, entry):
    assert peak_tflops(name) == (tflops, entry)


def test_steady_median_skips_warm_steps():
    assert steady_median([100.0, 1.0, 2.0, 3.0]) == 2.0
    assert steady_median([5.0]) == 5.0
    assert steady_median([]) is None
    times = [50.0] * 2 + [10.0] * 18
    assert steady_median(times) == 10.0
