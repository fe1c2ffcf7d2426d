"""The placement planner: which run starts next, where, and when. One run per slot (a GPU, or a share
of the CPU cores with `--parallel`), in the sweep's queue order; each slot has its own disjoint cores (from
the GPU's NVML affinity where the node reports it); a run waits while its predicted host memory does not
fit beside the runs already running; and each run's neighbours (the runs that ran while it ran) are
remembered for its result. Pure bookkeeping: the launcher starts and watches the processes."""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from harness.core.errors import UserError
from harness.core.placement import Placement, format_cores
from harness.core.recipe import RunConfig
from harness.orchestrate.launch_options import LaunchOptions
from harness.orchestrate.topology import Gpu, NodeTopology


@dataclass(frozen=True)
class Slot:
    index: int
    gpu: Gpu | None = None
    cores: tuple[int, ...] | None = None  # None: not pinned

    def placement(self, launcher: str) -> Placement:
        if self.gpu is None:
            return Placement(self.index, cpu_cores=self.cores, launcher=launcher)
        return Placement(self.index, self.gpu.index, self.gpu.uuid, self.cores, launcher)

    def describe(self) -> str:
        where = f"GPU {self.gpu.index}" if self.gpu is not None else f"slot {self.index}"
        return where if self.cores is None else f"{where}, cores {format_cores(self.cores)}"


def parse_gpus(text: str, gpus: list[Gpu]) -> list[Gpu]:
    """'all' or '0,1,3' -> those GPUs; UserError for a malformed, repeated or absent index."""
    if not gpus:
        raise UserError(
            f"--gpus {text}: torch sees no CUDA GPU on this machine (use --parallel N on the CPU)"
        )
    if text.strip() == "all":
        return list(gpus)
    try:
        wanted = [int(part) for part in text.split(",")]
    except ValueError:
        raise UserError(f"--gpus {text!r}: give all, or GPU indices such as 0,1,3") from None
    repeated = sorted({i for i in wanted if wanted.count(i) > 1})
    if repeated:
        raise UserError(f"--gpus {text}: GPU {repeated[0]} is listed twice (one run per GPU at a time)")
    by_index = {gpu.index: gpu for gpu in gpus}
    missing = [i for i in wanted if i not in by_index]
    if missing:
        raise UserError(
            f"--gpus {text}: there is no GPU {missing[0]} here; this machine has {len(gpus)} "
            f"(0-{len(gpus) - 1})"
        )
    return [by_index[i] for i in wanted]


def _ordered(cores: frozenset[int], topology: NodeTopology) -> list[int]:
    """Hyperthread siblings side by side, so that a contiguous share takes whole physical cores."""
    return sorted(cores, key=lambda core: (topology.sibling_key(core), core))


def split_cores(gpus: list[Gpu | None], topology: NodeTopology) -> list[tuple[int, ...]]:
    """Disjoint, equal shares of the usable cores, one per slot (a GPU, or None for a CPU slot): a GPU's
    share comes from the cores NVML names as close to it (split between the GPUs that name the same
    ones), else from all usable cores."""
    usable = topology.usable_cores()
    groups: dict[frozenset[int], list[int]] = {}  # near cores -> positions of the slots that want them
    for position, gpu in enumerate(gpus):
        affinity = topology.cpu_affinity(gpu) if gpu is not None else None
        near = (affinity & usable) if affinity and affinity & usable else usable
        groups.setdefault(near, []).append(position)
    # Every run gets the same number of cores, so that no strategy is measured on a bigger share.
    share = min(len(cores) // len(members) for cores, members in groups.items())
    if share < 1:
        raise UserError(
            f"{len(gpus)} runs at once need at least one CPU core each, and this process may use "
            f"{len(usable)}: run fewer at once"
        )
    taken: set[int] = set()
    shares: dict[int, tuple[int, ...]] = {}
    for cores, members in groups.items():
        pool = [c for c in _ordered(cores, topology) if c not in taken]
        for i, position in enumerate(members):
            chunk = tuple(sorted(pool[i * share : (i + 1) * share]))
            if len(chunk) < share:  # another group's share already took some of these cores
                raise UserError("the GPUs' CPU affinities overlap unevenly: list fewer GPUs with --gpus")
            taken.update(chunk)
            shares[position] = chunk
    return [shares[position] for position in range(len(gpus))]


def make_slots(options: LaunchOptions, topology: NodeTopology, device: str) -> list[Slot]:
    """The slots of a launch: one unpinned slot by default; one per listed GPU; or `--parallel N` shares
    of the CPU. Every refusal is one line, before anything starts."""
    if options.parallel is not None and options.parallel < 1:
        raise UserError(f"--parallel must be at least 1, got {options.parallel}")
    if options.gpus is not None and options.parallel is not None:
        raise UserError("--gpus already runs one run per listed GPU at a time: leave out --parallel")
    if options.gpus is not None:
        if device == "cpu":
            raise UserError("--gpus places runs on GPUs, and --device cpu keeps them off: drop one of them")
        chosen = parse_gpus(options.gpus, topology.gpus())
        if len(chosen) == 1:  # no neighbour to keep apart from: the run keeps every core, as in a plain sweep
            return [Slot(0, chosen[0])]
        shares = split_cores(list(chosen), topology)
        return [Slot(i, gpu, cores) for i, (gpu, cores) in enumerate(zip(chosen, shares, strict=True))]
    if options.parallel is None or options.parallel == 1:
        return [Slot(0)]
    if device != "cpu" and topology.gpus():
        raise UserError(
            "--parallel runs several runs on the CPU at once; on this GPU machine they would share one "
            "GPU: use --gpus all (one run per GPU), or --device cpu"
        )
    shares = split_cores([None] * options.parallel, topology)
    return [Slot(i, None, cores) for i, cores in enumerate(shares)]


@dataclass
class Running:
    cfg: RunConfig
    slot: Slot
    need: int | None
    neighbours: dict[str, Running] = field(default_factory=dict)


@dataclass
class Planner:
    """The queue (the sweep's order, repeats already interleaved), the free slots and host memory."""

    configs: list[RunConfig]
    slots: list[Slot]
    host_allowance: int | None = None  # bytes the runs may share; None: no admission by memory
    need: Callable[[RunConfig], int | None] = lambda _cfg: None
    queue: deque[RunConfig] = field(init=False)
    running: dict[str, Running] = field(default_factory=dict)
    history: Counter[tuple[str, int]] = field(default_factory=Counter)  # (strategy, slot) -> runs
    _needs: dict[str, int | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.queue = deque(self.configs)

    def need_of(self, cfg: RunConfig) -> int | None:
        if cfg.run_id not in self._needs:
            self._needs[cfg.run_id] = self.need(cfg)
        return self._needs[cfg.run_id]

    @property
    def pending(self) -> int:
        return len(self.queue)

    def reserved(self) -> int:
        return sum(r.need or 0 for r in self.running.values())

    def fits(self, need: int | None) -> bool:
        """Admission: an unknown need, no allowance, or an empty node always fits (a run that can never fit
        beside others runs alone rather than never); otherwise the need must fit beside the reservations."""
        if need is None or self.host_allowance is None or not self.running:
            return True
        return self.reserved() + need <= self.host_allowance

    def next_start(self) -> tuple[RunConfig, Slot] | None:
        """The head of the queue and its slot, when a slot is free and its host need fits; else None. The
        queue is not reordered: a run that waits for memory holds back the runs behind it."""
        busy = {r.slot.index for r in self.running.values()}
        free = [s for s in self.slots if s.index not in busy]
        if not self.queue or not free:
            return None
        cfg = self.queue[0]
        need = self.need_of(cfg)
        if not self.fits(need):
            return None
        # The slot this strategy has used least, so that one GPU's quirks do not all land on one strategy.
        slot = min(free, key=lambda s: (self.history[(cfg.strategy, s.index)], s.index))
        self.queue.popleft()
        started = Running(cfg, slot, need)
        for other in self.running.values():
            other.neighbours[cfg.run_id] = started
            started.neighbours[other.cfg.run_id] = other
        self.running[cfg.run_id] = started
        self.history[(cfg.strategy, slot.index)] += 1
        return cfg, slot

    def waiting_for_memory(self) -> bool:
        if not self.queue or len(self.running) >= len(self.slots):
            return False
        return not self.fits(self.need_of(self.queue[0]))

    def finish(self, run_id: str) -> list[Running]:
        """Free the run's slot and reservation; return every run that ran beside it."""
        done = self.running.pop(run_id)
        return list(done.neighbours.values())
