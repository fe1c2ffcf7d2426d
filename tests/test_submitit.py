"""The submitit launchers: a real submitit-local sweep (submitit's LocalExecutor runs the jobs as local
processes: the same job callable, pickling and checkpoint/requeue as on Slurm), a job preempted with
SIGTERM that is requeued and resumes, the Slurm launcher's submission against stand-in sbatch/srun
commands, and the refusals that come before anything starts."""

from __future__ import annotations

import os
import pickle
import signal
import stat
import subprocess
import sys

import psutil
import pytest

from harness.core.metric_rows import read_metrics
from harness.core.results import load_result
from harness.orchestrate.launchers.base import watchdog_s
from harness.orchestrate.launchers.slurm import SIGNAL_DELAY_S, slurm_minutes, slurm_parameters
from harness.orchestrate.launchers.slurm_options import SlurmOptions
from tests.conftest import ROOT, harness_cli, wait_for

TINY = ("--preset", "tiny", "--device", "cpu", "--quiet")


def sweep_args(tmp_path, *extra: str) -> list[str]:
    runs, report = tmp_path / "runs", tmp_path / "index.html"
    return ["sweep", *TINY, "--runs-dir", str(runs), "--report", str(report), *extra]


def start_sweep(args: list[str]) -> subprocess.Popen:
    """The sweep as a running child (a metric row per step), to signal while it works."""
    return subprocess.Popen(
        [sys.executable, "-m", "harness", *args, "--set", "log_interval_s=0"],
        cwd=ROOT,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def train_steps(run_dir) -> list[int]:
    return [r["step"] for r in read_metrics(run_dir / "metrics.jsonl") if r["kind"] == "train"]


@pytest.mark.slow
def test_a_submitit_local_sweep_of_two_strategies_renders_its_report(tmp_path):
    proc = harness_cli(
        *sweep_args(
            tmp_path, "--launcher", "submitit-local", "--strategies", "amp,act_ckpt", "--max-steps", "3"
        )
    )
    assert proc.returncode == 0, proc.stderr
    runs = [p for p in (tmp_path / "runs").iterdir() if p.name != ".submitit"]
    results = {r.strategy["name"]: r for r in (load_result(p / "result.json") for p in runs)}
    assert sorted(results) == ["act_ckpt", "amp"]
    assert all(r.status == "ok" and r.summary.steps == 3 for r in results.values())
    assert all(r.environment["placement"]["launcher"] == "submitit-local" for r in results.values())
    # Each ran as a submitit job: its pickle and its log are in the jobs folder.
    assert len(list((tmp_path / "runs" / ".submitit").glob("*/*_submitted.pkl"))) == 2
    html = (tmp_path / "index.html").read_text()
    assert "act_ckpt" in html and "amp" in html and "No results yet" not in html


@pytest.mark.serial
@pytest.mark.slow
def test_a_job_killed_with_sigterm_is_requeued_and_resumes_to_the_end_of_its_budget(tmp_path):
    runs = tmp_path / "runs"
    args = sweep_args(tmp_path, "--launcher", "submitit-local", "--strategies", "amp", "--budget", "4s")
    proc = start_sweep(args)

    def run_dir():
        found = [p for p in runs.iterdir() if p.name != ".submitit"] if runs.exists() else []
        return found[0] if found else None

    wait_for(lambda: run_dir() is not None and len(train_steps(run_dir())) >= 3, timeout=180)
    (job,) = [c for c in psutil.Process(proc.pid).children() if "submitit.local._local" in c.cmdline()]
    job.send_signal(signal.SIGTERM)  # what a scheduler sends a job it preempts
    _out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    result = load_result(run_dir() / "result.json")
    assert result.status == "ok" and result.summary.train_s >= 4  # to the end of its budget
    (resume,) = result.resumes  # one requeue, resumed from the checkpoint the SIGTERM path wrote
    assert resume["from_step"] >= 3
    assert train_steps(run_dir()) == list(range(1, result.summary.steps + 1))  # no step twice, none lost
    logs = "".join(p.read_text() for p in (runs / ".submitit").glob("*/*_log.err"))
    assert "preempted" in logs


@pytest.mark.serial
@pytest.mark.slow
def test_a_users_stop_of_a_submitit_local_sweep_checkpoints_without_a_requeue(tmp_path):
    runs = tmp_path / "runs"
    args = sweep_args(
        tmp_path, "--launcher", "submitit-local", "--strategies", "amp,act_ckpt", "--budget", "30s"
    )
    proc = start_sweep(args)
    wait_for(
        lambda: runs.exists() and any(train_steps(p) for p in runs.iterdir() if p.name != ".submitit"),
        timeout=180,
    )
    run_dir = next(p for p in runs.iterdir() if p.name != ".submitit" and train_steps(p))
    proc.send_signal(signal.SIGINT)  # Ctrl-C to the harness alone (kill -INT)
    _out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    assert "1 runs not started" in err
    assert [p for p in runs.iterdir() if p.name != ".submitit"] == [run_dir]  # the other run's folder went
    result = load_result(run_dir / "result.json")
    assert result.status == "interrupted" and result.resumes == [] and 0 < result.summary.train_s < 30
    assert (run_dir / "checkpoints").is_dir()
    logs = "".join(p.read_text() for p in (runs / ".submitit").glob("*/*_log.err"))
    assert "preempted" not in logs  # a user's stop is not a preemption: nothing was requeued


@pytest.mark.parametrize(
    ("text", "minutes"),
    [("4:00:00", 240), ("1-12:00:00", 2160), ("2-0", 2880), ("90", 90), ("30:30", 31), ("4h", 240)],
)
def test_slurm_time_forms(text, minutes):
    assert slurm_minutes(text) == minutes


def _fake_slurm(tmp_path):
    """sbatch that records each script and answers like Slurm; srun that exists."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "sbatch.log"
    (bin_dir / "sbatch").write_text(
        f'#!/bin/sh\ncat "$1" >> {log}\necho "=====" >> {log}\nn=$(grep -c ===== {log})\n'
        'echo "Submitted batch job 424$n"\n'
    )
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 0\n")
    for name in ("sbatch", "srun"):
        (bin_dir / name).chmod(stat.S_IRWXU)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}, log


@pytest.mark.slow
def test_slurm_submits_an_array_of_run_jobs_and_a_report_job_after_them(tmp_path):
    env, log = _fake_slurm(tmp_path)
    args = sweep_args(tmp_path, "--launcher", "slurm", "--slurm-partition", "gpu", "--slurm-time", "4:00:00")
    proc = harness_cli(
        *args, "--strategies", "amp,act_ckpt", "--budget", "24h", "--slurm-account", "lab", env=env
    )
    assert proc.returncode == 0, proc.stderr
    assert "submitted 2 Slurm jobs (array 4241)" in proc.stdout and "job 4242 renders" in proc.stdout
    runs_script, report_script = log.read_text().split("=====")[:2]
    for line in ("--partition=gpu", "--time=240", "--gres=gpu:1", "--account=lab", "--array=0-1%2"):
        assert f"#SBATCH {line}" in runs_script
    assert f"#SBATCH --signal=USR2@{SIGNAL_DELAY_S}" in runs_script and "#SBATCH --requeue" in runs_script
    assert "#SBATCH --dependency=afterany:4241" in report_script and "--gres" not in report_script
    # The run folders wait on the shared folder, and each job's pickle names its own.
    states = harness_cli("runs", "--runs-dir", str(tmp_path / "runs"), "--json")
    assert [s["state"] for s in __import__("json").loads(states.stdout)] == ["pending", "pending"]
    pickles = sorted((tmp_path / "runs" / ".submitit").glob("*/*_submitted.pkl"))
    jobs = [pickle.loads(p.read_bytes()).function for p in pickles]
    assert sorted(os.path.basename(j.run_dir).split("-")[2] for j in jobs[:2]) == ["act_ckpt", "amp"]


def test_slurm_parameters_with_a_container(tmp_path):
    from submitit.slurm.slurm import _make_sbatch_string

    options = SlurmOptions(partition="p", gres="gpu:h100:1", container="ghcr.io/me/harness:1")
    params = slurm_parameters(options, 7200, tmp_path / "runs", tmp_path / "cache")
    assert params["time"] == watchdog_s(7200) / 60 == 300  # no --slurm-time: the run's whole allowance
    script = _make_sbatch_string(command="python -m x", folder=tmp_path, **params)
    assert "#SBATCH --gres=gpu:h100:1" in script
    assert "--container-image=ghcr.io/me/harness:1" in script
    assert (
        f"--container-mounts={tmp_path / 'runs'}:{tmp_path / 'runs'},{tmp_path / 'cache'}:/app/cache"
        in script
    )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--launcher", "slurm"), "--launcher slurm needs --slurm-partition"),
        (("--launcher", "slurm", "--slurm-partition", "p"), "no sbatch/srun here"),
        (("--launcher", "slurm", "--slurm-partition", "p", "--slurm-time", "soon"), "--slurm-time 'soon'"),
        (("--launcher", "slurm", "--slurm-partition", "p", "--gpus", "0"), "use --slurm-gres"),
        (("--slurm-partition", "p"), "--slurm-partition is a Slurm setting"),
        (("--container", "img"), "--container is a Slurm setting"),
        (("--launcher", "pbs"), "unknown launcher 'pbs'"),
        (("--gpus", "0,1", "--device", "auto"), "torch sees no CUDA GPU"),
        (("--gpus", "0"), "--device cpu keeps them off"),
        (("--parallel", "0"), "--parallel must be at least 1, got 0"),
        (("--parallel", "64"), "64 runs at once need at least one CPU core each"),
    ],
)
def test_bad_launch_options_are_refused_up_front(tmp_path, extra, message):
    proc = harness_cli(*sweep_args(tmp_path, "--strategies", "amp", "--budget", "2s", *extra))
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and message in proc.stderr
    assert not (tmp_path / "runs").exists()  # nothing started, nothing written


def test_each_launchers_own_settings_are_its_options_class_and_become_flags():
    from dataclasses import fields

    from harness.cli.parser import build_parser
    from harness.orchestrate.launchers import launcher_class, option_classes

    sweep_help = build_parser()._subparsers._group_actions[0].choices["sweep"].format_help()
    for name, cls in option_classes().items():
        assert launcher_class(name).options_class is cls and cls.launcher == name
        for f in fields(cls):
            assert f.metadata["flag"] in sweep_help and f.metadata["help"].split()[0] in sweep_help
