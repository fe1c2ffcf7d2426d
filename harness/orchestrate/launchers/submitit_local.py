"""`submitit-local`: every run a submitit job, executed by submitit's LocalExecutor as local processes: the
same job callable, pickling and checkpoint/requeue as on Slurm, on this machine. Runs are placed like the
local launcher's (one at a time by default; `--parallel N`, `--gpus`), and the report is rendered when the
last job has ended."""

from __future__ import annotations

import math
import signal
import time
from pathlib import Path

from harness.core.recipe import RunConfig
from harness.core.results import RESULT_FILE, CorruptResult, RunResult, load_result
from harness.orchestrate.launchers.base import watchdog_s
from harness.orchestrate.launchers.ending import failed_result
from harness.orchestrate.launchers.local import LocalLauncher
from harness.orchestrate.launchers.placed import POLL_S, PlacedRuns
from harness.orchestrate.launchers.run_control import StopSignal
from harness.orchestrate.launchers.run_folders import create_run_dirs
from harness.orchestrate.launchers.submitit_job import RunJob, jobs_folder
from harness.orchestrate.placement import Slot


def requeues_for(budget_s: float, job_time_s: float) -> int:
    """Time-limit requeues a run may need: enough sessions of `job_time_s` to cover its wall-time
    allowance (preemptions do not count against this; submitit counts only time-outs)."""
    return max(1, math.ceil(watchdog_s(budget_s) / job_time_s))


WORKER_MODULE = "harness.engine.worker"


class JobStopper:
    """A submitit job as the stop signal sees a child. A user's stop reaches the run's worker as SIGTERM
    (the harness's own path: checkpoint, `interrupted`) and the job's process as SIGINT, which ends the
    job without a requeue (a SIGTERM there would mean a preemption). A second stop kills them all."""

    def __init__(self, job) -> None:
        self.job = job

    def poll(self) -> int | None:
        return None if not self.job.done() else 0

    def send_signal(self, sig: int) -> None:
        import psutil

        process = self.job._process  # the job's controller process (submitit keeps no public handle)
        try:
            tree = psutil.Process(process.pid).children(recursive=True) if process is not None else []
        except psutil.NoSuchProcess:
            return
        for member in tree:
            try:
                if sig == signal.SIGKILL:
                    member.kill()
                elif WORKER_MODULE in member.cmdline():
                    member.send_signal(signal.SIGTERM)
                elif member.ppid() == process.pid:
                    member.send_signal(signal.SIGINT)
            except psutil.NoSuchProcess:
                continue


def wait_for_workers(run_dir: Path) -> None:
    """The worker outlives a job that was cut short (it runs in a session of its own) and writes the
    result itself: wait for it, so that its result is the one collected."""
    import psutil

    for process in psutil.process_iter():
        try:
            command = process.cmdline()
            if WORKER_MODULE in command and str(run_dir.absolute()) in command:
                process.wait()
        except psutil.Error:
            continue


class SubmititLocalLauncher(LocalLauncher):
    name = "submitit-local"
    description = "submitit jobs run as local processes (the Slurm launcher's job path, on this machine)"

    def run(
        self, configs: list[RunConfig], runs_dir: Path, stop: StopSignal, *, quiet: bool
    ) -> list[RunResult]:
        planner = self.planner(configs, runs_dir)
        create_run_dirs(configs, runs_dir)

        def run_one(cfg: RunConfig, slot: Slot, _show_progress: bool) -> RunResult:
            return self._run_job(cfg, slot, runs_dir, stop)

        return PlacedRuns(planner, run_one, stop, runs_dir, self.name, quiet).run()

    def _run_job(self, cfg: RunConfig, slot: Slot, runs_dir: Path, stop: StopSignal) -> RunResult:
        import submitit

        allowance_s = watchdog_s(cfg.recipe.budget_s)
        executor = submitit.LocalExecutor(
            folder=jobs_folder(runs_dir), max_num_timeout=requeues_for(cfg.recipe.budget_s, allowance_s)
        )
        gpus = () if slot.gpu is None else (slot.gpu.index,)
        # The job outlives the harness's own watchdog (which kills a hung worker), so that the hang is
        # recorded as the run's result rather than cut short by the executor.
        executor.update_parameters(
            timeout_min=math.ceil(2 * allowance_s / 60), gpus_per_node=len(gpus), visible_gpus=gpus
        )
        run_dir = runs_dir / cfg.run_id
        job = executor.submit(RunJob(str(run_dir.absolute()), slot.placement(self.name)))
        stopper = JobStopper(job)
        stop.attach(stopper)
        try:
            while not job.done():
                time.sleep(POLL_S)
        finally:
            stop.detach(stopper)
        wait_for_workers(run_dir)
        return collect(cfg, run_dir, job)


def collect(cfg: RunConfig, run_dir: Path, job) -> RunResult:
    """The run's result as its folder holds it; else what the job said on its way out."""
    try:
        return load_result(run_dir / RESULT_FILE)
    except CorruptResult:
        pass
    said = (job.stderr() or "").strip().splitlines()[-20:]
    reason = f"submitit job {job.job_id} ended ({job.state}) without a result"
    return failed_result(cfg, run_dir, reason + (":\n" + "\n".join(said) if said else ""))
