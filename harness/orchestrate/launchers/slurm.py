"""`slurm`: one Slurm job per run (a job array, through submitit), each on its own GPU (`--slurm-gres`),
each writing its run folder into the shared runs folder. A job that reaches its time limit or is preempted
checkpoints through the harness's SIGTERM path and is requeued to resume, so a run longer than the
partition's limit goes on in several jobs. A dependent job renders the report after the last run. This
process returns once the jobs are submitted; `harness runs` follows them."""

from __future__ import annotations

import math
import re
import shlex
import shutil
from pathlib import Path
from typing import Any

from harness.core.errors import UserError
from harness.core.recipe import RunConfig
from harness.core.results import RunResult
from harness.core.units import parse_duration
from harness.orchestrate.launchers.base import Launcher, watchdog_s
from harness.orchestrate.launchers.run_control import StopSignal
from harness.orchestrate.launchers.run_folders import create_run_dirs
from harness.orchestrate.launchers.slurm_options import SlurmOptions

# Seconds between Slurm's warning signal and its kill: the worker's last step and checkpoint fit in it.
SIGNAL_DELAY_S = 180
REPORT_JOB_MIN = 30  # the report job reads result files and draws charts: minutes, not hours
CONTAINER_CACHE = "/app/cache"  # the image's HARNESS_CACHE_DIR (Dockerfile), bound to the host's cache
_SLURM_TIME = re.compile(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?")


def slurm_minutes(text: str) -> int:
    """Slurm's time forms (M, M:S, H:M:S, D-H, D-H:M, D-H:M:S) or a duration such as 4h -> whole minutes."""
    match = _SLURM_TIME.fullmatch(text.strip())
    if match is None:
        try:
            return math.ceil(parse_duration(text) / 60)
        except UserError:
            raise UserError(f"--slurm-time {text!r}: give e.g. 4:00:00, 1-12:00:00 or 4h") from None
    days, first, second, third = match.groups()
    if days is not None:  # D-H, D-H:M, D-H:M:S
        seconds = int(days) * 86400 + int(first) * 3600 + int(second or 0) * 60 + int(third or 0)
    elif third is not None:  # H:M:S
        seconds = int(first) * 3600 + int(second) * 60 + int(third)
    else:  # M or M:S
        seconds = int(first) * 60 + int(second or 0)
    if seconds <= 0:
        raise UserError(f"--slurm-time {text!r} is zero: give the partition's limit, e.g. 4:00:00")
    return math.ceil(seconds / 60)


def job_minutes(options: SlurmOptions, budget_s: float) -> int:
    """As asked; else the run's whole wall-time allowance in one job."""
    return slurm_minutes(options.time) if options.time else math.ceil(watchdog_s(budget_s) / 60)


def container_settings(image: str, runs_dir: Path, cache: Path) -> tuple[str, list[str]]:
    """(the python command, extra srun arguments) that run a job inside `image`: an Apptainer .sif file
    through `apptainer exec`, anything else through pyxis's `srun --container-image`. The shared runs
    folder keeps its path inside; the host's corpus cache becomes the image's cache."""
    if image.endswith(".sif"):
        binds = f"{runs_dir},{cache}:{CONTAINER_CACHE}"
        return f"apptainer exec --nv --bind {shlex.quote(binds)} {shlex.quote(image)} python", []
    mounts = f"{runs_dir}:{runs_dir},{cache}:{CONTAINER_CACHE}"
    return "python", [f"--container-image={image}", f"--container-mounts={mounts}"]


def slurm_parameters(options: SlurmOptions, budget_s: float, runs_dir: Path, cache: Path) -> dict[str, Any]:
    """The SlurmExecutor's parameters for the run jobs (submitit renders them as #SBATCH lines)."""
    params: dict[str, Any] = {
        "partition": options.partition,
        "time": job_minutes(options, budget_s),
        "gres": options.gres,
        "ntasks_per_node": 1,
        "signal_delay_s": SIGNAL_DELAY_S,
        "job_name": "harness-run",
        "additional_parameters": {"requeue": True},  # a preempted job goes back to the queue
    }
    if options.account:
        params["account"] = options.account
    if options.container:
        params["srun_args"] = container_settings(options.container, runs_dir, cache)[1]
    return params


def render_after_last(runs_dir: Path, out: Path) -> str:
    """The report job's body: the report of every run folder (a submitit job pickles this by name)."""
    from harness.report import render_report

    return str(render_report(runs_dir, out))


class SlurmLauncher(Launcher):
    name = "slurm"
    description = "one Slurm job per run through submitit, requeued on preemption; the report after the last"
    detached = True
    runs_here = False  # the jobs run on the cluster's nodes: this machine's device says nothing about them
    options_class = SlurmOptions

    def __init__(self, options=None) -> None:
        super().__init__(options)
        self.jobs: list = []
        self.runs_dir: Path | None = None

    def check(self, configs: list[RunConfig], runs_dir: Path) -> None:
        options, own = self.options, self.own
        if options.gpus is not None or options.parallel is not None:
            raise UserError("Slurm gives each job its own GPU: use --slurm-gres, not --gpus or --parallel")
        if not own.partition:
            raise UserError("--launcher slurm needs --slurm-partition (the partition the jobs go to)")
        job_minutes(own, configs[0].recipe.budget_s)  # a malformed --slurm-time fails here
        image = own.container
        if image and image.endswith(".sif") and not Path(image).is_file():
            raise UserError(f"--container {image}: no such Apptainer image file")
        if shutil.which("sbatch") is None or shutil.which("srun") is None:
            raise UserError(
                "--launcher slurm: no sbatch/srun here; submit from a Slurm login node "
                "(or try the same jobs on this machine with --launcher submitit-local)"
            )

    def _executor(self, runs_dir: Path, budget_s: float):
        import submitit

        from harness.core.cache import cache_root
        from harness.orchestrate.launchers.submitit_job import jobs_folder
        from harness.orchestrate.launchers.submitit_local import requeues_for

        slurm = self.own
        minutes = job_minutes(slurm, budget_s)
        python = container_settings(slurm.container, runs_dir, cache_root())[0] if slurm.container else None
        executor = submitit.SlurmExecutor(
            folder=jobs_folder(runs_dir), max_num_timeout=requeues_for(budget_s, minutes * 60), python=python
        )
        executor.update_parameters(**slurm_parameters(slurm, budget_s, runs_dir, cache_root()))
        return executor, python

    def run(
        self, configs: list[RunConfig], runs_dir: Path, stop: StopSignal, *, quiet: bool
    ) -> list[RunResult]:
        from harness.orchestrate.launchers.submitit_job import RunJob

        runs_dir = Path(runs_dir).absolute()  # the nodes see the shared folder by its full path
        executor, self.python = self._executor(runs_dir, configs[0].recipe.budget_s)
        jobs = [
            RunJob(str(run_dir), grace_s=SIGNAL_DELAY_S) for run_dir in create_run_dirs(configs, runs_dir)
        ]
        self.jobs = executor.submit_array(jobs)
        self.runs_dir = runs_dir
        return []

    def finish(self, runs_dir: Path, report: Path | None) -> str | None:
        """A job that renders the report once every run's job has ended (however it ended)."""
        if not self.jobs:
            return None
        array = str(self.jobs[0].job_id).split("_")[0]
        line = f"submitted {len(self.jobs)} Slurm jobs (array {array})"
        if report is not None:
            job = self._report_job(Path(report).absolute(), array)
            line += f"; job {job.job_id} renders {report} after the last"
        return line + f". Follow them with: harness runs --runs-dir {self.runs_dir}"

    def _report_job(self, report: Path, array: str):
        """In the same container as the runs, without a GPU, after every job of the array has ended."""
        import submitit

        from harness.core.cache import cache_root
        from harness.orchestrate.launchers.submitit_job import jobs_folder

        slurm = self.own
        executor = submitit.SlurmExecutor(folder=jobs_folder(self.runs_dir), python=self.python)
        params = {"partition": slurm.partition, "time": REPORT_JOB_MIN, "job_name": "harness-report"}
        params["dependency"] = f"afterany:{array}"
        if slurm.account:
            params["account"] = slurm.account
        run_params = slurm_parameters(slurm, REPORT_JOB_MIN * 60, self.runs_dir, cache_root())
        if "srun_args" in run_params:
            params["srun_args"] = run_params["srun_args"]
        executor.update_parameters(**params)
        return executor.submit(render_after_last, self.runs_dir, report)
