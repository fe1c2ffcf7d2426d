"""Driving the placement planner: start what it admits (each run on a thread that starts and watches its
process), collect each run as it ends, record beside its result where it ran and which runs ran next to
it, and start the next. With one slot this is the plain sequential sweep, live progress included."""

from __future__ import annotations

import queue
import shutil
import sys
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from harness.core.recipe import RunConfig
from harness.core.results import CONFIG_FILE, RESULT_FILE, RunResult, write_result
from harness.core.units import GIB
from harness.orchestrate.launchers.ending import failed_result
from harness.orchestrate.launchers.run_control import StopSignal
from harness.orchestrate.placement import Planner, Running, Slot

# (configuration, slot, show live progress) -> the run's result, once its process has ended
RunOne = Callable[[RunConfig, Slot, bool], RunResult]
POLL_S = 0.2  # how often the loop looks up from waiting, so that a stop is seen promptly


def say(text: str) -> None:
    print(f"sweep: {text}", file=sys.stderr, flush=True)


def status_line(result: RunResult) -> str:
    s = result.summary
    return (
        f"{result.strategy.get('name', '?')}: {result.status}"
        + (f", {s.tokens_per_s:,.0f} tokens/s" if s.tokens_per_s else "")
        + (f", val loss {s.final_val_loss:.4f}" if s.final_val_loss else "")
        + (f" — {result.error.splitlines()[0]}" if result.error else "")
    )


def record_placement(
    run_dir: Path, result: RunResult, running: Running, beside: list[Running], launcher: str
) -> None:
    """Where the run ran and which runs ran beside it, in its result (the worker recorded what it saw of
    its own placement; the launcher alone knows its neighbours)."""
    record = {**asdict(running.slot.placement(launcher)), **(result.environment.get("placement") or {})}
    record["neighbours"] = [
        {"run_id": n.cfg.run_id, "strategy": n.cfg.strategy, "gpu_index": n.slot.gpu and n.slot.gpu.index}
        for n in beside
    ]
    record["host_need_gib"] = None if running.need is None else running.need / GIB
    result.environment["placement"] = record
    if (run_dir / RESULT_FILE).exists():
        write_result(run_dir, result)


@dataclass
class PlacedRuns:
    planner: Planner
    run_one: RunOne
    stop: StopSignal
    runs_dir: Path
    launcher: str = "local"
    quiet: bool = False
    finished: queue.Queue = field(default_factory=queue.Queue)
    results: dict[str, RunResult] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    _said_waiting: str | None = None

    def run(self) -> list[RunResult]:
        total = self.planner.pending
        while True:
            while not self.stop.requested and (start := self.planner.next_start()) is not None:
                self._start(*start, total)
            self._say_if_waiting()
            if not self.planner.running:
                break
            try:
                run_id, result = self.finished.get(timeout=POLL_S)
            except queue.Empty:
                continue
            self._finish(run_id, result, total)
        if self.stop.requested and self.planner.pending:
            say(f"stopped after an interrupt; {self.planner.pending} runs not started")
            self._drop_unstarted()
        return [self.results[run_id] for run_id in self.order]

    def _start(self, cfg: RunConfig, slot: Slot, total: int) -> None:
        self.order.append(cfg.run_id)
        single = len(self.planner.slots) == 1
        if total > 1:
            where = "" if single and slot.cores is None and slot.gpu is None else f" on {slot.describe()}"
            say(f"run {len(self.order)}/{total}: {cfg.strategy}{where}")
        show = single and not self.quiet

        def watch() -> None:
            try:
                result = self.run_one(cfg, slot, show)
            except Exception as exc:  # a run that cannot start is a result, not the end of the sweep
                result = failed_result(cfg, self.runs_dir / cfg.run_id, f"could not start the run: {exc}")
            self.finished.put((cfg.run_id, result))

        threading.Thread(target=watch, name=f"run-{cfg.run_id}", daemon=True).start()

    def _finish(self, run_id: str, result: RunResult, total: int) -> None:
        running = self.planner.running[run_id]
        beside = self.planner.finish(run_id)
        try:
            record_placement(self.runs_dir / run_id, result, running, beside, self.launcher)
        except OSError as exc:
            say(f"could not record where {run_id} ran: {exc}")
        self.results[run_id] = result
        if total > 1:
            say(status_line(result))

    def _say_if_waiting(self) -> None:
        if self.stop.requested or not self.planner.waiting_for_memory():
            return
        head = self.planner.queue[0]
        if self._said_waiting != head.run_id:
            self._said_waiting = head.run_id
            need = self.planner.need_of(head) or 0
            say(
                f"{head.strategy} waits for host memory: it needs {need / GIB:.1f} GiB and "
                f"{self.planner.reserved() / GIB:.1f} of {(self.planner.host_allowance or 0) / GIB:.1f} GiB "
                "are reserved by the runs in progress"
            )

    def _drop_unstarted(self) -> None:
        """Folders made for runs that never started would read as pending forever: remove them."""
        for cfg in self.planner.queue:
            run_dir = self.runs_dir / cfg.run_id
            if run_dir.is_dir() and {p.name for p in run_dir.iterdir()} <= {CONFIG_FILE}:
                shutil.rmtree(run_dir, ignore_errors=True)
