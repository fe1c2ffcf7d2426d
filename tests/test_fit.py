"""Micro-batch fitting logic against simulated memory, and the device probe's out-of-memory
classification against a fake allocator (the real CUDA path is covered by gpu tests)."""

import pytest
import torch

from harness.core.recipe import divisors_at_most
from harness.engine import fit
from harness.engine.fit import DoesNotFit, choose_micro_batch, device_probe
from harness.engine.runtime import is_out_of_memory

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
    report = choose_micro_batch(probe, divisors_at_most(512, 512), allowance_bytes=40 * GIB)
    assert report.micro_batch == 16  # 32 would need 42 GiB
    assert len(calls) <= 4
    assert report.allowance_gib == 40
    assert {p["micro_batch"] for p in report.probes} == set(calls)


def test_prediction_that_overshoots_walks_down():
    # Memory grows faster than linearly: the two-point prediction is too optimistic.
    probe, _ = simulated(base_gib=4, per_sample_gib=0.5, capacity_gib=80, curve=1.5)
    report = choose_micro_batch(probe, divisors_at_most(256, 256), allowance_bytes=60 * GIB)
    fitting = [m for m in divisors_at_most(256, 256) if 4 + 0.5 * m**1.5 <= 60]
    assert report.micro_batch == max(fitting)


def test_out_of_memory_probes_are_skipped():
    probe, _ = simulated(base_gib=10, per_sample_gib=2, capacity_gib=30)  # OOM above m=10
    report = choose_micro_batch(probe, divisors_at_most(64, 64), allowance_bytes=70 * GIB)
    assert report.micro_batch == 8
    assert any(p["peak_reserved_gib"] is None for p in report.probes)


def test_a_model_that_does_not_fit_at_all():
    probe, _ = simulated(base_gib=90, per_sample_gib=1, capacity_gib=80)
    with pytest.raises(DoesNotFit, match="does not fit") as info:
        choose_micro_batch(probe, [1, 2, 4], allowance_bytes=75 * GIB)
    assert info.value.probes == [{"micro_batch": 1, "peak_reserved_gib": None, "compiled": False}]


def test_everything_fits():
    probe, _ = simulated(base_gib=1, per_sample_gib=0.01, capacity_gib=80)
    assert choose_micro_batch(probe, divisors_at_most(48, 48), allowance_bytes=70 * GIB).micro_batch == 48
    assert choose_micro_batch(probe, [1], allowance_bytes=70 * GIB).micro_batch == 1


def _proves_the_boundary(report, allowance_gib, sizes):
    """The chosen size was probed within budget, and the next larger size was probed and did not fit."""
    by_size = {p["micro_batch"]: p["peak_reserved_gib"] for p in report.probes}
    assert by_size[report.micro_batch] is not None and by_size[report.micro_batch] <= allowance_gib
    larger = [s for s in sizes if s > report.micro_batch]
    if larger:
        nxt = by_size[min(larger)]
        assert nxt is None or nxt > allowance_gib


@pytest.mark.parametrize("curve", [0.6, 1.0, 1.5])
def test_the_answer_is_proven_by_probing_the_next_larger_size(curve):
    # Sub-linear memory (0.6) makes the two-point prediction too cautious: the walk must go up.
    sizes = divisors_at_most(512, 512)
    probe, _ = simulated(base_gib=3, per_sample_gib=1.5, capacity_gib=80, curve=curve)
    report = choose_micro_batch(probe, sizes, allowance_bytes=50 * GIB)
    fitting = [m for m in sizes if 3 + 1.5 * m**curve <= 50]
    assert report.micro_batch == max(fitting)
    _proves_the_boundary(report, 50, sizes)


def test_compiled_probes_move_the_answer_to_what_the_compiled_program_fits():
    sizes = divisors_at_most(512, 512)
    eager, _ = simulated(base_gib=4, per_sample_gib=1.0, capacity_gib=80)  # 32 fits, 64 does not (60)
    compiled, compiled_calls = simulated(base_gib=4, per_sample_gib=0.4, capacity_gib=80)  # 64 fits: 29.6
    report = choose_micro_batch(eager, sizes, allowance_bytes=40 * GIB, compiled_probe=compiled)
    assert report.micro_batch == 64
    assert compiled_calls == [32, 64, 128]  # starts from the eager answer, walks up, proves the boundary
    assert [p["micro_batch"] for p in report.probes if p["compiled"]] == [32, 64, 128]


def test_compiled_program_needing_more_memory_walks_down():
    sizes = divisors_at_most(64, 64)
    eager, _ = simulated(base_gib=2, per_sample_gib=1.0, capacity_gib=80)  # 32 fits (34 <= 36)
    compiled, _ = simulated(base_gib=2, per_sample_gib=1.5, capacity_gib=80)  # 16 fits (26), 32 not (50)
    report = choose_micro_batch(eager, sizes, allowance_bytes=36 * GIB, compiled_probe=compiled)
    assert report.micro_batch == 16


def test_nothing_fits_when_compiled():
    eager, _ = simulated(base_gib=1, per_sample_gib=1.0, capacity_gib=80)
    compiled, _ = simulated(base_gib=90, per_sample_gib=1.0, capacity_gib=80)
    with pytest.raises(DoesNotFit):
        choose_micro_batch(eager, [1, 2, 4], allowance_bytes=50 * GIB, compiled_probe=compiled)


class FakeAllocator:
    """Stands in for the CUDA caching allocator: the probe step 'allocates' by calling `use`."""

    def __init__(self) -> None:
        self.peak = 0
        self.released = 0

    def use(self, nbytes: int) -> None:
        self.peak = max(self.peak, nbytes)

    def release(self) -> None:
        self.released += 1

    def reset_peak(self) -> None:
        self.peak = 0

    def peak_reserved(self) -> int:
        return self.peak


OOM_FAILURES = [
    torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
    RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`"),
    RuntimeError(
        "NCCL error in: ProcessGroupNCCL.cpp:1970, unhandled cuda error, NCCL version 2.27: "
        "Cuda failure 'out of memory'"
    ),
    RuntimeError("CUDA error: out of memory\nCUDA kernel errors might be asynchronously reported"),
]


@pytest.mark.parametrize("failure", OOM_FAILURES, ids=["torch", "cublas", "nccl", "cuda-runtime"])
def test_every_kind_of_device_out_of_memory_means_does_not_fit(failure):
    memory = FakeAllocator()

    def step(m):
        memory.use(m * GIB)
        if m > 4:
            raise failure

    probe = device_probe(step, memory)
    assert probe(4) == 4 * GIB
    assert probe(8) is None
    assert memory.released == 4  # before and after each probe, also after a failure


def test_an_out_of_memory_wrapped_by_a_library_is_still_one():
    try:
        try:
            raise torch.OutOfMemoryError("CUDA out of memory")
        except torch.OutOfMemoryError as inner:
            raise AttributeError("'ZeroOffloadExecutor' object has no attribute 'engine'") from inner
    except AttributeError as outer:
        assert is_out_of_memory(outer)
    assert not is_out_of_memory(ValueError("shapes do not match"))


def test_other_failures_in_a_probe_propagate():
    memory = FakeAllocator()

    def step(m):
        raise ValueError("a real bug, not memory")

    with pytest.raises(ValueError, match="real bug"):
        device_probe(step, memory)(1)
    assert memory.released == 2


def test_a_strategy_that_needs_compile_is_fitted_with_compiled_probes_only(monkeypatch):
    """fp8 refuses to run eagerly (not an out-of-memory): an eager probe would end its run in an error."""
    import strategies
    from harness.core.errors import UserError

    assert strategies.resolve("fp8").needs_compile and strategies.resolve("amp+fp8").needs_compile
    assert not strategies.resolve("amp").needs_compile
    peak = {m: m * GIB for m in (1, 2, 4, 8, 16, 32)}
    calls = []

    def run_step(m: int, compiled: bool) -> None:
        calls.append((m, compiled))
        if not compiled:
            raise UserError("fp8 needs torch.compile to fuse its casts")
        run_step.peak = peak[m]

    class FakeMemory:
        def __init__(self, device):
            pass

        def release(self):
            pass

        def reset_peak(self):
            pass

        def peak_reserved(self):
            return run_step.peak

    monkeypatch.setattr(fit, "CudaMemory", FakeMemory)
    monkeypatch.setattr(fit, "memory_allowance_bytes", lambda device, cap: 10 * GIB)
    cuda = torch.device("cuda", 0)
    m, report = fit.micro_batch_for_run(None, cuda, 32, 4, run_step, compiled=True, compiled_only=True)
    assert m == 8 and calls and all(compiled for _, compiled in calls)
    assert all(p["compiled"] for p in report.probes)
    with pytest.raises(UserError):  # the same strategy fitted as before: its first eager probe fails
        fit.micro_batch_for_run(None, cuda, 32, 4, run_step, compiled=True)
