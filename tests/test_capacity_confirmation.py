"""The capacity confirmation when probes fail otherwise than by GPU memory: every outcome recorded as it
ends (the document rewritten after each probe), a host kill read as "does not fit the host", a cap the
device cannot give refused before anything runs, a failed pinned allocation counted as the host's."""

import json
from types import SimpleNamespace

import pytest
import torch

from harness.capacity.memory_model import GIB
from harness.core.errors import UserError
from harness.core.presets import LADDER
from harness.core.results import RunResult
from harness.engine.runtime import is_host_out_of_memory, is_out_of_memory
from harness.engine.trainer import classify
from harness.orchestrate.capacity import CapacityPlan, check_caps_fit_the_device, probe_outcome, run_capacity


class KilledAbove:
    """Sizes up to `fits_up_to` train; the next is killed by the kernel (host memory), larger ones too.
    Each call reads the capacity document first: what the earlier probes left there."""

    def __init__(self, fits_up_to: int, out) -> None:
        self.fits_up_to, self.out, self.seen = fits_up_to, out, []

    def __call__(self, preset: str):
        doc = json.loads(self.out.read_text()) if self.out.exists() else None
        self.seen.append(
            None if doc is None else [s["outcome"] for e in doc["results"] for s in e["sizes"] if s["probed"]]
        )
        if LADDER.index(preset) > self.fits_up_to:
            return {"run_id": preset, "outcome": "host", "error": "the worker process was killed by SIGKILL"}
        return {"micro_batch": 1, "peak_allocated_gib": 10.0, "tokens_per_s": 1000.0}


def test_a_probe_killed_for_host_memory_is_recorded_and_the_search_goes_on(tmp_path, monkeypatch):
    out = tmp_path / "capacity.json"
    plan = CapacityPlan(("amp",), (80.0, 24.0), out=out, predict_only=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: SimpleNamespace(total_memory=80 * GIB))
    monkeypatch.setattr("harness.orchestrate.capacity.host_limit", lambda plan: 1e15)
    probes = []

    def probe_for(strategy, size):
        probes.append(KilledAbove(1, out))
        return probes[-1]

    doc = run_capacity(plan, probe_for=probe_for, environment={})
    assert doc["complete"] and [e["gpu_memory_gib"] for e in doc["results"]] == [80.0, 24.0]  # went on
    first = doc["results"][0]
    assert first["largest"] == LADDER[1] and first["limited_by"] == "host"
    killed = next(s for s in first["sizes"] if s["preset"] == LADDER[2])
    assert killed["outcome"] == "host" and "SIGKILL" in killed["failure"]["error"]
    assert killed["measured"] is None
    # Every probe after the first found the outcomes of those before it already on disk.
    seen = [s for p in probes for s in p.seen]
    assert seen[0] is None and all(len(s) == i for i, s in enumerate(seen) if i)
    assert json.loads(out.read_text()) == doc


def _result(status: str, error: str) -> RunResult:
    result = RunResult(run_id="r", status=status, strategy={"name": "amp"}, recipe={}, recipe_fingerprint="")
    result.error = error
    return result


@pytest.mark.parametrize(
    ("status", "error", "outcome"),
    [
        ("oom", "out of memory: CUDA out of memory. Tried to allocate 2.00 GiB", None),
        ("oom", "host out of memory: CUDA error: out of memory", "host"),
        ("error", "the worker process was killed by SIGKILL before writing a result", "host"),
        ("error", "RuntimeError: NCCL failure", "error"),
    ],
)
def test_a_confirming_runs_ending_is_read_as_gpu_host_or_error(status, error, outcome):
    record = probe_outcome(_result(status, error))
    assert (record if record is None else record["outcome"]) == outcome


def test_a_cap_above_the_devices_memory_is_refused_before_anything_runs(tmp_path, monkeypatch):
    check_caps_fit_the_device((24.0, 79.0), int(79.2 * GIB))
    with pytest.raises(UserError, match=r"--gpu-memory-gib 80 is more than this GPU's 79.2 GiB"):
        check_caps_fit_the_device((24.0, 80.0), int(79.2 * GIB))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: SimpleNamespace(total_memory=79 * GIB))
    out = tmp_path / "capacity.json"
    never = []
    with pytest.raises(UserError, match="more than this GPU"):
        run_capacity(CapacityPlan(("amp",), (80.0,), out=out), probe_for=lambda s, g: never.append(s))
    assert not never and not out.exists()


MESSAGE = "CUDA error: out of memory\nCUDA kernel errors might be asynchronously reported"


def pin_memory(size: int) -> None:
    """A pinned host allocation failing as torch's does (cudaHostAlloc's error, raised inside the pinning
    call): the classification reads the traceback's frame names, so the error must come from a frame like
    this one, which no CPU can produce for real."""
    raise RuntimeError(MESSAGE)


def launch_kernel() -> None:
    """The same CUDA error text from anywhere else: the GPU's, not the host's."""
    raise RuntimeError(MESSAGE)


def raised_by(function) -> BaseException:
    try:
        function(2**30) if function is pin_memory else function()
    except RuntimeError as exc:
        return exc
    raise AssertionError("it did not raise")


def test_a_failed_pinned_allocation_is_the_hosts_out_of_memory():
    pinning, kernel = raised_by(pin_memory), raised_by(launch_kernel)
    assert is_out_of_memory(pinning) and is_host_out_of_memory(pinning)
    assert is_out_of_memory(kernel) and not is_host_out_of_memory(kernel)  # told apart by where it came from
    gpu = torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    assert is_out_of_memory(gpu) and not is_host_out_of_memory(gpu)
    assert is_host_out_of_memory(MemoryError()) and is_host_out_of_memory(
        OSError(12, "Cannot allocate memory")
    )
    outcome = classify(pinning)
    assert outcome.status == "oom"
    assert outcome.error.startswith("host out of memory: CUDA error: out of memory")
    outcome = classify(gpu)
    assert outcome.status == "oom" and outcome.error.startswith("out of memory: CUDA out of memory")
