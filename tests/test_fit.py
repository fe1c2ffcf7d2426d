"""Micro-batch fitting logic against simulated memory (the CUDA probe itself is covered by a gpu test)."""

import pytest

from harness.fit import DoesNotFit, choose_micro_batch
from harness.runtime import divisors_at_most

GIB = 2**30


def simulated(base_gib, per_sample_gib, capacity_gib, curve=1.0):
    calls = []

    def probe(m):
        calls.append(m)
        peak = (base_gib + per_sample_gib * m**curve) * GIB
        return None if peak > capacity_gib * GIB else int(peak)

    return probe, calls


def test_linear_memory_picks_the_largest_fitting_size_in_few_probes():
    probe, calls = simulated(base_gib=10, per_sample_gib=1, capacity_gib=80)
    report = choose_micro_batch(probe, divisors_at_most(512, 512), budget_bytes=40 * GIB)
    assert report.micro_batch == 16  # 32 would need 42 GiB
    assert len(calls) <= 4
    assert report.budget_gib == 40
    assert {p["micro_batch"] for p in report.probes} == set(calls)


def test_prediction_that_overshoots_walks_down():
    # Memory grows faster than linearly: the two-point prediction is too optimistic.
    probe, _ = simulated(base_gib=4, per_sample_gib=0.5, capacity_gib=80, curve=1.5)
    report = choose_micro_batch(probe, divisors_at_most(256, 256), budget_bytes=60 * GIB)
    fitting = [m for m in divisors_at_most(256, 256) if 4 + 0.5 * m**1.5 <= 60]
    assert report.micro_batch == max(fitting)


def test_out_of_memory_probes_are_skipped():
    probe, _ = simulated(base_gib=10, per_sample_gib=2, capacity_gib=30)  # OOM above m=10
    report = choose_micro_batch(probe, divisors_at_most(64, 64), budget_bytes=70 * GIB)
    assert report.micro_batch == 8
    assert any(p["peak_reserved_gib"] is None for p in report.probes)


def test_a_model_that_does_not_fit_at_all():
    probe, _ = simulated(base_gib=90, per_sample_gib=1, capacity_gib=80)
    with pytest.raises(DoesNotFit, match="does not fit") as info:
        choose_micro_batch(probe, [1, 2, 4], budget_bytes=75 * GIB)
    assert info.value.probes == [{"micro_batch": 1, "peak_reserved_gib": None}]


def test_everything_fits():
    probe, _ = simulated(base_gib=1, per_sample_gib=0.01, capacity_gib=80)
    assert choose_micro_batch(probe, divisors_at_most(48, 48), budget_bytes=70 * GIB).micro_batch == 48
    assert choose_micro_batch(probe, [1], budget_bytes=70 * GIB).micro_batch == 1
