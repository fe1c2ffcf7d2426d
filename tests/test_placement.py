"""The placement planner on a fake node: cores split from a fake NVML's affinities, host-memory admission,
queue order with repeats interleaved, neighbours; and `--parallel 2` for real, two tiny runs at once."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import pytest

from harness.core.errors import UserError
from harness.core.placement import Placement, format_cores, from_env
from harness.core.results import RunResult, Summary, load_result
from harness.core.units import GIB
from harness.orchestrate.host_memory import host_need_bytes
from harness.orchestrate.launch_options import LaunchOptions
from harness.orchestrate.placement import Planner, Slot, make_slots
from harness.orchestrate.topology import Gpu
from tests.conftest import harness_cli, tiny_config


@dataclass
class FakeNode:
    """A node as the planner sees it: GPUs, NVML's CPU affinity per GPU (None: NVML does not say), the
    cores this process may use, and hyperthread siblings (core -> physical core)."""

    n_gpus: int = 0
    affinity: dict[int, set[int]] = field(default_factory=dict)
    cores: set[int] = field(default_factory=lambda: set(range(16)))
    siblings: dict[int, int] = field(default_factory=dict)

    def gpus(self) -> list[Gpu]:
        return [Gpu(i, f"GPU-fake-{i}", "Fake GPU") for i in range(self.n_gpus)]

    def cpu_affinity(self, gpu: Gpu) -> frozenset[int] | None:
        cores = self.affinity.get(gpu.index)
        return None if cores is None else frozenset(cores)

    def usable_cores(self) -> frozenset[int]:
        return frozenset(self.cores)

    def sibling_key(self, core: int) -> int:
        return self.siblings.get(core, core)


def slots_for(node: FakeNode, device: str = "auto", **options) -> list[Slot]:
    return make_slots(LaunchOptions(**options), node, device)


def test_each_gpu_gets_its_own_cores_from_the_nvml_affinity():
    # Two NUMA nodes: GPUs 0-1 near cores 0-7, GPUs 2-3 near cores 8-15.
    node = FakeNode(4, {0: set(range(8)), 1: set(range(8)), 2: set(range(8, 16)), 3: set(range(8, 16))})
    slots = slots_for(node, gpus="all")
    assert [(s.gpu.index, s.cores) for s in slots] == [
        (0, (0, 1, 2, 3)),
        (1, (4, 5, 6, 7)),
        (2, (8, 9, 10, 11)),
        (3, (12, 13, 14, 15)),
    ]
    env = slots[2].placement("local").child_env()
    assert env["CUDA_VISIBLE_DEVICES"] == "GPU-fake-2"  # by UUID: the same GPU whatever CUDA's ordering
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "4"
    assert from_env(env) == Placement(2, 2, "GPU-fake-2", (8, 9, 10, 11), "local")


def test_a_subset_of_gpus_and_unequal_numa_nodes_get_equal_shares():
    node = FakeNode(4, {0: set(range(8)), 1: set(range(8)), 2: set(range(8)), 3: set(range(8, 16))})
    slots = slots_for(node, gpus="0,1,3")
    assert [s.gpu.index for s in slots] == [0, 1, 3]
    # GPUs 0 and 1 split cores 0-7; GPU 3 alone near 8-15 gets as many as they do, no more.
    assert [s.cores for s in slots] == [(0, 1, 2, 3), (4, 5, 6, 7), (8, 9, 10, 11)]


def test_without_nvml_affinity_the_usable_cores_are_split():
    node = FakeNode(2, cores=set(range(2, 8)))  # this process may use cores 2-7 only
    assert [s.cores for s in slots_for(node, gpus="all")] == [(2, 3, 4), (5, 6, 7)]


def test_cpu_slots_keep_hyperthread_siblings_together():
    node = FakeNode(0, siblings={c: c % 8 for c in range(16)})  # core c and c+8 share a physical core
    slots = slots_for(node, parallel=2)
    assert slots[0].cores == (0, 1, 2, 3, 8, 9, 10, 11)
    assert slots[1].cores == (4, 5, 6, 7, 12, 13, 14, 15)
    assert set(slots[0].cores).isdisjoint(slots[1].cores)
    assert format_cores(slots[1].cores) == "4-7,12-15"


def test_one_slot_by_default_and_unpinned():
    assert slots_for(FakeNode(0)) == [Slot(0)]
    assert slots_for(FakeNode(2), parallel=1) == [Slot(0)]
    # One GPU: no neighbour to keep apart from, so it keeps every core (the plain sweep on that GPU).
    node = FakeNode(4, {i: set(range(8 * (i // 2), 8 * (i // 2) + 8)) for i in range(4)})
    (only,) = slots_for(node, gpus="3")
    assert only.gpu.index == 3 and only.cores is None
    assert only.placement("local").child_env()["CUDA_VISIBLE_DEVICES"] == "GPU-fake-3"
    assert Slot(0).placement("local").child_env().keys() == {"HARNESS_PLACEMENT"}


@pytest.mark.parametrize(
    ("node", "options", "device", "message"),
    [
        (FakeNode(2), {"gpus": "0,0"}, "auto", "GPU 0 is listed twice"),
        (FakeNode(2), {"gpus": "5"}, "auto", "there is no GPU 5 here; this machine has 2 (0-1)"),
        (FakeNode(2), {"gpus": "0,x"}, "auto", "give all, or GPU indices"),
        (FakeNode(0), {"gpus": "all"}, "auto", "torch sees no CUDA GPU"),
        (FakeNode(2), {"gpus": "0"}, "cpu", "--device cpu keeps them off"),
        (FakeNode(2), {"gpus": "all", "parallel": 2}, "auto", "leave out --parallel"),
        (FakeNode(0), {"parallel": 0}, "cpu", "--parallel must be at least 1, got 0"),
        (FakeNode(0, cores={0, 1}), {"parallel": 3}, "cpu", "3 runs at once need at least one CPU core"),
        (FakeNode(2), {"parallel": 2}, "auto", "they would share one GPU"),
    ],
)
def test_bad_placements_are_refused_in_one_line(node, options, device, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        slots_for(node, device, **options)


def configs(*strategies: str):
    return [tiny_config(name, run_id=f"{name}-{i}") for i, name in enumerate(strategies)]


def test_nvml_cpu_affinity_words_become_cores(monkeypatch):
    from harness.metrics import nvml

    class FakeNvml:
        def nvmlDeviceGetCpuAffinity(self, handle, words):
            assert handle == "gpu-handle" and words == 2  # 65 CPUs: two 64-bit words
            return [0b1010, 0b1]  # CPUs 1 and 3, then CPU 64

    monkeypatch.setattr(nvml, "_nvml", lambda: FakeNvml())
    assert nvml.cpu_affinity("gpu-handle", 65) == {1, 3, 64}
    assert nvml.cpu_affinity(None, 65) is None  # no handle (no NVML device): no affinity

    class Failing:
        def nvmlDeviceGetCpuAffinity(self, handle, words):
            raise RuntimeError("NVML_ERROR_NOT_SUPPORTED")

    monkeypatch.setattr(nvml, "_nvml", lambda: Failing())
    assert nvml.cpu_affinity("gpu-handle", 8) is None


def test_the_sweep_queue_interleaves_repeats():
    from harness.orchestrate.plan import Plan, expand

    order = expand(Plan.of(("amp", "act_ckpt"), repeats=3, preset="tiny", device="cpu", budget="1s"))
    assert [c.strategy for c in order] == ["amp", "act_ckpt"] * 3


def test_a_strategy_moves_to_the_slot_it_has_used_least():
    planner = Planner(configs("a", "b", "a", "b"), [Slot(0), Slot(1)])
    first = [planner.next_start(), planner.next_start()]
    assert [(c.run_id, s.index) for c, s in first] == [("a-0", 0), ("b-1", 1)]
    assert planner.next_start() is None  # both slots busy
    planner.finish("a-0")
    planner.finish("b-1")
    second = [planner.next_start(), planner.next_start()]
    assert [(c.run_id, s.index) for c, s in second] == [("a-2", 1), ("b-3", 0)]


def test_host_memory_admission_keeps_queue_order():
    needs = {"big-0": 6 * GIB, "big-1": 6 * GIB, "small-2": 1 * GIB, "unknown-3": None}
    planner = Planner(
        configs("big", "big", "small", "unknown"),
        [Slot(0), Slot(1), Slot(2)],
        host_allowance=10 * GIB,
        need=lambda cfg: needs[cfg.run_id],
    )
    assert planner.next_start()[0].run_id == "big-0"
    assert planner.next_start() is None  # 6 + 6 > 10: big-1 waits, and small-2 behind it waits too
    assert planner.waiting_for_memory() and planner.reserved() == 6 * GIB
    planner.finish("big-0")
    assert planner.next_start()[0].run_id == "big-1"
    assert planner.next_start()[0].run_id == "small-2"  # 6 + 1 fits
    assert planner.next_start()[0].run_id == "unknown-3"  # an unknown need is not held back
    assert planner.pending == 0


def test_a_run_too_big_to_share_runs_alone():
    planner = Planner(configs("huge", "x"), [Slot(0), Slot(1)], host_allowance=GIB, need=lambda _c: 4 * GIB)
    assert planner.next_start()[0].run_id == "huge-0"  # on an empty node it starts anyway
    assert planner.next_start() is None
    planner.finish("huge-0")
    assert planner.next_start()[0].run_id == "x-1"


def test_neighbours_are_every_run_that_overlapped():
    planner = Planner(configs("a", "b", "c"), [Slot(0), Slot(1)])
    planner.next_start()
    planner.next_start()
    assert [n.cfg.run_id for n in planner.finish("a-0")] == ["b-1"]
    planner.next_start()  # c starts while b still runs
    assert sorted(n.cfg.run_id for n in planner.finish("b-1")) == ["a-0", "c-2"]
    assert [n.cfg.run_id for n in planner.finish("c-2")] == ["b-1"]


def _measured(strategy: str, rss_gib: float, n_layer: int | None = None) -> RunResult:
    base = tiny_config(strategy).recipe
    recipe = {"model": asdict(base.model), "global_batch_tokens": base.global_batch_tokens}
    if n_layer is not None:
        recipe["model"]["n_layer"] = n_layer
    return RunResult(
        run_id=f"{strategy}-{rss_gib}",
        status="ok",
        strategy={"name": strategy},
        recipe=recipe,
        recipe_fingerprint="f",
        settings={"device": "cpu", "micro_batch": 8},
        summary=Summary(lifetime_host_rss_gib=rss_gib),
    )


def test_the_host_need_comes_from_an_earlier_measurement_of_the_same_configuration():
    earlier = [
        _measured("amp", 1.5),
        _measured("amp", 2.0),
        _measured("act_ckpt", 9.0),
        _measured("amp", 7, 3),
    ]
    assert host_need_bytes(tiny_config("amp"), earlier) == 2 * GIB  # the largest of the same model


def test_without_a_measurement_the_host_need_is_the_memory_models_prediction():
    from harness.capacity.memory_model import predict

    cfg = tiny_config("zero_offload", micro_batch=4)
    on_cpu = predict(cfg.recipe.model, "zero_offload", 4, "fp32")
    assert host_need_bytes(cfg, []) == int(on_cpu.host_bytes + on_cpu.gpu_bytes)  # the CPU holds it all
    gpu_cfg = tiny_config("zero_offload", micro_batch=4, device="cuda")
    on_gpu = predict(gpu_cfg.recipe.model, "zero_offload", 4, "bf16")
    assert host_need_bytes(gpu_cfg, []) == int(on_gpu.host_bytes)
    assert on_gpu.host_bytes > on_gpu.gpu_bytes > 0  # offload: the optimizer lives on the host


@pytest.mark.serial
@pytest.mark.slow
def test_parallel_two_runs_two_tiny_runs_at_once_on_disjoint_cores(tmp_path):
    runs = tmp_path / "runs"
    proc = harness_cli(
        *("sweep", "--strategies", "amp,act_ckpt", "--parallel", "2", "--preset", "tiny", "--budget", "4s"),
        *("--device", "cpu", "--runs-dir", str(runs), "--report", str(tmp_path / "index.html"), "--quiet"),
    )
    assert proc.returncode == 0, proc.stderr
    results = {r.strategy["name"]: r for r in (load_result(p / "result.json") for p in runs.iterdir())}
    amp, ckpt = results["amp"], results["act_ckpt"]
    assert amp.status == ckpt.status == "ok"
    where = {name: r.environment["placement"] for name, r in results.items()}
    # The affinity each worker measured on itself is the share it was given, and the shares are disjoint.
    for record in where.values():
        assert record["cpu_affinity"] == record["cpu_cores"] and record["cpu_cores"]
    assert set(where["amp"]["cpu_affinity"]).isdisjoint(where["act_ckpt"]["cpu_affinity"])
    assert amp.environment["torch_threads"] == len(where["amp"]["cpu_cores"])
    assert [n["run_id"] for n in where["amp"]["neighbours"]] == [ckpt.run_id]
    assert [n["run_id"] for n in where["act_ckpt"]["neighbours"]] == [amp.run_id]
    # Side by side for real: each started before the other ended.
    assert amp.started_at <= ckpt.finished_at and ckpt.started_at <= amp.finished_at
    html = (tmp_path / "index.html").read_text()
    assert "amp: 1 of 1 runs were measured with other runs beside it on the node (act_ckpt)" in html


def test_the_runs_of_one_plan_never_share_an_id_and_a_taken_one_starts_nothing(tmp_path, monkeypatch):
    import secrets

    from harness.orchestrate.launchers.run_folders import create_run_dirs
    from harness.orchestrate.plan import Plan, expand

    draws = iter(["aaaaaa"] * 4 + ["bbbbbb", "cccccc"])  # the random part drawn the same, again and again
    monkeypatch.setattr(secrets, "token_hex", lambda _n: next(draws))
    configs = expand(Plan.of(("amp",), repeats=3, preset="tiny", device="cpu", budget="1s"))
    ids = [cfg.run_id for cfg in configs]
    assert len(set(ids)) == 3 and [i[-6:] for i in ids] == ["aaaaaa", "bbbbbb", "cccccc"]
    runs = tmp_path / "runs"
    (runs / ids[2]).mkdir(parents=True)  # another sweep's run took the last id meanwhile
    with pytest.raises(UserError, match=f"cannot make the folder of run {ids[2]}.*its id is taken"):
        create_run_dirs(configs, runs)
    assert sorted(p.name for p in runs.iterdir()) == [ids[2]]  # the two made before it are taken back
