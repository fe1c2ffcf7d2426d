"""A budget that survives crashes: SIGKILL at random points, SIGTERM, corrupt checkpoints, full disks and
failing strategies, through the real command line (a parent process and its worker)."""

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time

import psutil
import pytest

from harness.core.metric_rows import read_metrics
from harness.core.results import load_result
from tests.conftest import ROOT, harness_cli, wait_for

QUIET = ["--quiet", "--device", "cpu", "--preset", "tiny"]


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "harness", "bench", *args],
        cwd=ROOT,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def only_run(runs_dir):
    (run_dir,) = [p for p in runs_dir.iterdir() if p.is_dir()]
    return run_dir


def checkpoints(run_dir):
    folder = run_dir / "checkpoints"
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("step")) if folder.is_dir() else []


def all_checkpoints(runs_dir):
    return (
        {c for p in runs_dir.iterdir() if p.is_dir() for c in checkpoints(p)} if runs_dir.exists() else set()
    )


def kill_at_random_point(proc, runs_dir, rng, whole_tree):
    """Once this session has checkpointed, wait a random moment, then SIGKILL the worker (and maybe its
    parent)."""
    before = all_checkpoints(runs_dir)
    wait_for(lambda: all_checkpoints(runs_dir) - before)
    time.sleep(rng.uniform(0.0, 1.2))
    workers = psutil.Process(proc.pid).children()
    if whole_tree:  # like a machine crash: nobody writes a result
        proc.kill()
    for worker in workers:
        worker.kill()
    proc.wait(timeout=60)
    proc.communicate()


def train_rows(run_dir):
    return [r for r in read_metrics(run_dir / "metrics.jsonl") if r["kind"] == "train"]


def assert_steps_once_each(rows, last):
    assert [r["step"] for r in rows] == list(range(1, last + 1))  # no gap, no repeat


def killed_and_resumed(tmp_path, strategy, extra, kills, seed):
    runs = tmp_path / "runs"
    rng = random.Random(seed)
    proc = start("--strategy", strategy, "--runs-dir", str(runs), *QUIET, *extra)
    for number in range(kills):
        kill_at_random_point(proc, runs, rng, whole_tree=number % 2 == 1)
        proc = start("--strategy", strategy, "--runs-dir", str(runs), "--resume", only_run(runs).name, *QUIET)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, out + err
    return only_run(runs)


def step_budget(steps: int) -> list[str]:
    """A step-budgeted run (the schedule follows steps, so it is repeatable), checkpointing often."""
    return [
        "--max-steps",
        str(steps),
        "--budget",
        "1h",
        "--set",
        "log_interval_s=0",
        "--set",
        "checkpoint_interval_s=0.3",
        "--set",
        "eval_points=1",
    ]


STEP_BUDGET = step_budget(150)


# Once per worker. Not grouped: the two seeds (28 s each) run on both workers at once, each worker training
# the reference (16 s), instead of one worker running all three while the other runs out of work.
@pytest.fixture(scope="session")
def uninterrupted_losses(tmp_path_factory) -> list[float]:
    """The losses of the step-budgeted amp run, uninterrupted: what each killed-and-resumed one must match."""
    runs = tmp_path_factory.mktemp("reference") / "runs"
    reference = harness_cli("bench", "--runs-dir", str(runs), *QUIET, *STEP_BUDGET)
    assert reference.returncode == 0, reference.stderr
    return [r["loss"] for r in train_rows(only_run(runs))]


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_sigkill_at_random_points_then_resume_matches_an_uninterrupted_run(
    tmp_path, seed, uninterrupted_losses
):
    expected = uninterrupted_losses
    run_dir = killed_and_resumed(tmp_path, "amp", STEP_BUDGET, kills=3, seed=seed)
    result = load_result(run_dir / "result.json")
    assert result.status == "ok" and len(result.resumes) == 3
    rows = train_rows(run_dir)
    assert_steps_once_each(rows, 150)
    assert [r["loss"] for r in rows] == pytest.approx(expected, rel=1e-6)  # same data, same state
    evals = [r for r in read_metrics(run_dir / "metrics.jsonl") if r["kind"] == "eval"]
    assert [e["step"] for e in evals] == [0, 150]  # no eval lost or repeated across sessions


def test_time_budget_survives_kills_within_one_step(tmp_path):
    extra = ["--budget", "5s", "--set", "log_interval_s=0", "--set", "checkpoint_interval_s=0.5"]
    run_dir = killed_and_resumed(tmp_path, "amp", extra, kills=2, seed=3)
    result = load_result(run_dir / "result.json")
    rows = train_rows(run_dir)
    assert_steps_once_each(rows, result.summary.steps)
    assert 5.0 <= result.summary.train_s < 5.0 + rows[-1]["step_s"] + 1e-6
    clock = [r["train_s"] for r in rows]
    assert clock == sorted(clock)  # the training clock carried across sessions, never reset
    assert result.summary.wall_s > result.summary.train_s


@pytest.mark.slow
def test_zero_offload_resumes_through_deepspeed_checkpoints(tmp_path):
    extra = step_budget(30)
    reference = harness_cli(
        "bench", "--strategy", "zero_offload", "--runs-dir", str(tmp_path / "ref"), *QUIET, *extra
    )
    assert reference.returncode == 0, reference.stderr
    expected = [r["loss"] for r in train_rows(only_run(tmp_path / "ref"))]
    run_dir = killed_and_resumed(tmp_path, "zero_offload", extra, kills=1, seed=4)
    rows = train_rows(run_dir)
    assert_steps_once_each(rows, 30)
    assert [r["loss"] for r in rows] == pytest.approx(expected, rel=1e-5)
    assert (run_dir / "checkpoints" / checkpoints(run_dir)[-1] / "zero").is_dir()  # DeepSpeed's own format


@pytest.mark.serial
def test_sigterm_checkpoints_and_stops_then_resumes(tmp_path):
    runs = tmp_path / "runs"
    proc = start("--runs-dir", str(runs), *QUIET, "--budget", "4s", "--set", "log_interval_s=0")
    wait_for(lambda: runs.exists() and any(train_rows(p) for p in runs.iterdir() if p.is_dir()))
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)  # what `docker stop` sends
    proc.send_signal(signal.SIGTERM)  # twice, as an impatient user or a scheduler may: still one stop
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    run_dir = only_run(runs)
    result = load_result(run_dir / "result.json")
    assert result.status == "interrupted" and result.summary.train_s < 4
    (checkpoint,) = checkpoints(run_dir)
    assert int(checkpoint.removeprefix("step")) == result.summary.steps
    resumed = harness_cli("bench", "--runs-dir", str(runs), "--resume", *QUIET)
    assert resumed.returncode == 0, resumed.stderr
    final = load_result(run_dir / "result.json")
    assert final.status == "ok" and final.summary.train_s >= 4
    assert_steps_once_each(train_rows(run_dir), final.summary.steps)


@pytest.mark.serial
def test_sigterm_stops_a_sweep_after_the_current_run(tmp_path):
    runs = tmp_path / "runs"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "harness",
            "sweep",
            "--strategies",
            "amp,act_ckpt,adam8bit",
            "--runs-dir",
            str(runs),
            "--report",
            str(tmp_path / "index.html"),
            *QUIET,
            "--budget",
            "30s",
        ],
        cwd=ROOT,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    wait_for(lambda: runs.exists() and any(train_rows(p) for p in runs.iterdir() if p.is_dir()))
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "2 runs not started" in err
    assert load_result(only_run(runs) / "result.json").status == "interrupted"
    assert (tmp_path / "index.html").exists()


@pytest.mark.serial
def test_a_corrupt_checkpoint_is_detected_and_the_previous_one_used(tmp_path):
    runs = tmp_path / "runs"
    proc = start(
        "--runs-dir",
        str(runs),
        *QUIET,
        "--budget",
        "3s",
        "--set",
        "log_interval_s=0",
        "--set",
        "checkpoint_interval_s=0.4",
    )
    wait_for(lambda: runs.exists() and any(len(checkpoints(p)) >= 2 for p in runs.iterdir() if p.is_dir()))
    for worker in psutil.Process(proc.pid).children():
        worker.kill()
    proc.communicate(timeout=60)
    run_dir = only_run(runs)
    older, newest = checkpoints(run_dir)[-2:]
    state = run_dir / "checkpoints" / newest / "strategy_state.pt"
    data = bytearray(state.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte, same size
    state.write_bytes(bytes(data))
    resumed = harness_cli("bench", "--runs-dir", str(runs), "--resume", *QUIET)
    assert resumed.returncode == 0, resumed.stderr
    warning = [line for line in resumed.stderr.splitlines() if "fails its checksum" in line]
    assert len(warning) == 1 and newest in warning[0] and "previous one" in warning[0]
    result = load_result(run_dir / "result.json")
    assert result.status == "ok" and result.resumes[0]["checkpoint"] == older
    assert_steps_once_each(train_rows(run_dir), result.summary.steps)
    assert "fails its checksum" in (run_dir / "run.log").read_text()


@pytest.mark.serial
def test_every_checkpoint_corrupt_is_a_clear_error(tmp_path):
    runs = tmp_path / "runs"
    proc = start("--runs-dir", str(runs), *QUIET, "--budget", "4s", "--set", "checkpoint_interval_s=0.5")
    wait_for(lambda: runs.exists() and any(checkpoints(p) for p in runs.iterdir() if p.is_dir()))
    for worker in psutil.Process(proc.pid).children():
        worker.kill()
    proc.communicate(timeout=60)
    run_dir = only_run(runs)
    before = (run_dir / "result.json").read_text()
    states = [run_dir / "checkpoints" / name / "train_state.json" for name in checkpoints(run_dir)]
    originals = [p.read_bytes() for p in states]
    # Truncated: found before any worker starts; one line, exit 2, the earlier result untouched.
    for path in states:
        path.write_text("{}")
    resumed = harness_cli("bench", "--runs-dir", str(runs), "--resume", *QUIET)
    assert resumed.returncode == 2 and resumed.stderr.count("\n") == 1
    assert "no intact checkpoint" in resumed.stderr and "without --resume" in resumed.stderr
    assert (run_dir / "result.json").read_text() == before
    # Same sizes, altered bytes: the parent verifies the checksums before any worker starts, so a failed
    # resume never replaces the interrupted run's result.
    for path, original in zip(states, originals, strict=True):
        path.write_bytes(original.replace(b'"step"', b'"stEp"'))
    resumed = harness_cli("bench", "--runs-dir", str(runs), "--resume", *QUIET)
    assert resumed.returncode == 2 and resumed.stderr.count("\n") == 1
    assert "no intact checkpoint" in resumed.stderr
    assert (run_dir / "result.json").read_text() == before


def test_full_disk_while_writing_the_result_keeps_the_earlier_one(tmp_path, monkeypatch):
    from harness.core import results
    from harness.core.results import write_json_atomic
    from harness.core.serialize import to_dict
    from harness.engine import worker
    from tests.conftest import tiny_config

    run_dir = tmp_path / "run"
    cfg = tiny_config(budget="1s", run_id="run")
    write_json_atomic(run_dir / "config.json", to_dict(cfg))
    assert worker.main([str(run_dir)]) == 0
    before = (run_dir / "result.json").read_text()
    real_replace = os.replace

    def disk_full(src, dst):
        if str(dst).endswith("result.json"):
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(results.os, "replace", disk_full)
    (run_dir / "metrics.jsonl").unlink()
    assert worker.main([str(run_dir)]) == 3  # the run finished; its result could not be written
    assert (run_dir / "result.json").read_text() == before
    assert not [p for p in run_dir.iterdir() if p.name.startswith(".result.json")]


def test_full_disk_while_checkpointing_keeps_training(tmp_path, monkeypatch):
    from harness.engine.checkpoint import Checkpointer
    from tests.conftest import run_inprocess, tiny_config

    real_save = Checkpointer.save
    calls = []

    def sometimes_full(self, strategy, state):
        calls.append(state.step)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        if len(calls) > 2:  # what torch.save raises when the disk fills under it (not an OSError)
            raise RuntimeError("PytorchStreamWriter failed writing file data/3: file write failed")
        return real_save(self, strategy, state)

    monkeypatch.setattr(Checkpointer, "save", sometimes_full)
    result = run_inprocess(tiny_config(budget="3s", checkpoint_interval_s=0.5), tmp_path)
    assert result.status == "ok" and len(calls) >= 3
    assert checkpoints(tmp_path) == [f"step{calls[0]:010d}"]  # the first, good checkpoint is still there


def test_a_strategy_failing_mid_step_keeps_what_came_before(tmp_path, monkeypatch):
    from strategies.amp import AmpExecutor
    from tests.conftest import run_inprocess, tiny_config

    real_step = AmpExecutor.train_step
    steps = []

    def fails_at_step_40(self, micro_batches, lr):
        steps.append(lr)
        if len(steps) == 40 + 2:  # two warm-up steps first
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        return real_step(self, micro_batches, lr)

    monkeypatch.setattr(AmpExecutor, "train_step", fails_at_step_40)
    cfg = tiny_config(budget="1h", max_steps=60, log_interval_s=0, checkpoint_interval_s=0.2)
    result = run_inprocess(cfg, tmp_path)
    assert result.status == "error" and "illegal memory access" in result.error
    assert checkpoints(tmp_path)
    assert_steps_once_each(train_rows(tmp_path), 39)
    monkeypatch.setattr(AmpExecutor, "train_step", real_step)
    resumed = run_inprocess(cfg, tmp_path, resume=True)
    assert resumed.status == "ok"
    assert_steps_once_each(train_rows(tmp_path), 60)
    json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[-1])


def test_a_resumed_run_reports_the_whole_run_not_its_last_session(tmp_path):
    import json
    import shutil

    from tests.conftest import run_inprocess, tiny_config

    cfg = tiny_config(
        budget="1h", max_steps=30, checkpoint_interval_s=1e-9, keep_checkpoints=40, log_interval_s=0
    )
    whole = run_inprocess(cfg, tmp_path / "whole")
    assert whole.status == "ok" and whole.summary.timed_steps == 30
    run_dir = tmp_path / "resumed"
    assert run_inprocess(cfg, run_dir).status == "ok"
    checkpoints = sorted((run_dir / "checkpoints").iterdir())
    for newer in checkpoints[15:]:  # the run died after its checkpoint at step 15
        shutil.rmtree(newer)
    saved = json.loads((checkpoints[14] / "train_state.json").read_text())
    assert saved["step"] == 15 and len(saved["step_times_s"]) == 15 and saved["data_tokens"] > 0
    assert saved["peaks"]["peak_host_rss_gib"] > 0
    resumed = run_inprocess(cfg, run_dir, resume=True)
    s = resumed.summary
    assert resumed.status == "ok" and s.steps == 30
    assert s.timed_steps == 30  # the first session's 15 step times are in the median too
    assert s.compiles_in_training == 0 and s.data_tokens_per_s > 0
    assert s.peak_host_rss_gib >= saved["peaks"]["peak_host_rss_gib"]  # the highest of both sessions
    # The steady throughput is the median over both sessions' steps: the first session's 15 step times as
    # its checkpoint carried them, and the 15 the resumed session timed.
    from harness.metrics.definitions import steady_median

    step_times = saved["step_times_s"] + [r["step_s"] for r in train_rows(run_dir)[15:]]
    tokens = cfg.recipe.global_batch_tokens
    assert s.steady_tokens_per_s == pytest.approx(steady_median([tokens / t for t in step_times]))


def test_energy_is_carried_across_attempts():
    from harness.engine.clock import TrainingClock

    readings = iter([1.0, 4.0])  # J: this session's start and stop
    clock = TrainingClock(lambda: None, energy={"gpu": lambda: next(readings)}, energy_j={"gpu": 10.0})
    clock.start()
    clock.stop()
    assert clock.energy_j == {"gpu": pytest.approx(13.0)}  # 10 J before


def test_a_checkpoint_written_with_one_energy_figure_reads_as_the_gpu_part():
    from harness.engine.state import TrainState

    assert TrainState.from_dict({"energy_j": 12.5}).energy_j == {"gpu": 12.5}
    assert TrainState.from_dict({"energy_j": None}).energy_j == {}


def interrupted_run(runs):
    """A tiny run stopped with SIGTERM (as docker stop) once it has checkpointed: status interrupted."""
    proc = start("--runs-dir", str(runs), *QUIET, "--budget", "60s", "--set", "checkpoint_interval_s=0.3")
    wait_for(lambda: runs.exists() and any(checkpoints(p) for p in runs.iterdir() if p.is_dir()))
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=120)
    assert proc.returncode == 130
    run_dir = only_run(runs)
    assert load_result(run_dir / "result.json").status == "interrupted"
    return run_dir


@pytest.mark.serial
def test_two_resumes_of_one_run_cannot_run_at_once(tmp_path):
    runs = tmp_path / "runs"
    run_dir = interrupted_run(runs)
    first = start("--runs-dir", str(runs), "--resume", run_dir.name, *QUIET)
    try:
        holder = f"process {first.pid} on {socket.gethostname()}"
        wait_for(lambda: (run_dir / ".lock").read_text() == holder)  # the first holds it
        second = harness_cli("bench", "--runs-dir", str(runs), "--resume", run_dir.name, *QUIET)
        assert second.returncode == 2 and second.stderr.count("\n") == 1, second.stderr
        assert f"run {run_dir.name} is in use by process" in second.stderr
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=120)
    assert first.returncode == 130  # the first resume went on undisturbed until it was stopped


def test_a_resume_that_fails_never_replaces_the_result(tmp_path):
    runs = tmp_path / "runs"
    run_dir = interrupted_run(runs)
    before = (run_dir / "result.json").read_text()
    # Damage every checkpoint's model state but seal it again: the checksums pass, the load fails.
    for folder in (run_dir / "checkpoints").iterdir():
        (folder / "strategy_state.pt").write_bytes(b"not a torch file")
        manifest = json.loads((folder / "manifest.json").read_text())
        from harness.core.checkpoint_files import sha256

        state = folder / "strategy_state.pt"
        manifest["strategy_state.pt"] = {"sha256": sha256(state), "bytes": state.stat().st_size}
        (folder / "manifest.json").write_text(json.dumps(manifest))
    resumed = harness_cli("bench", "--runs-dir", str(runs), "--resume", *QUIET)
    assert resumed.returncode == 1, resumed.stderr
    assert (run_dir / "result.json").read_text() == before  # still the interrupted run's
    failed = load_result(run_dir / "resume_failed.json")
    assert failed.status == "error" and failed.error


def test_plain_resume_takes_the_newest_unfinished_run(tmp_path):
    from harness.core.overrides import build_run_config
    from harness.core.results import RunResult, write_result
    from harness.core.serialize import to_dict
    from harness.orchestrate.resume import find_run

    runs = tmp_path / "runs"
    for age, (name, status) in enumerate([("older-interrupted", "interrupted"), ("newer-finished", "ok")]):
        run_dir = runs / name
        (run_dir / "checkpoints").mkdir(parents=True)  # finished runs keep their checkpoints
        cfg = build_run_config(strategy="amp", preset="tiny", run_id=name)
        (run_dir / "config.json").write_text(json.dumps(to_dict(cfg)))
        write_result(run_dir, RunResult(name, status, {"name": "amp"}, {}, ""))
        os.utime(run_dir, (1000 + age, 1000 + age))
    assert find_run(runs, "latest", "amp", "tiny").name == "older-interrupted"


@pytest.mark.serial
def test_a_stop_in_the_first_moments_is_an_interruption(tmp_path):
    runs = tmp_path / "runs"
    proc = start("--runs-dir", str(runs), *QUIET, "--budget", "60s")
    wait_for(lambda: psutil.Process(proc.pid).children())  # the worker exists, perhaps still importing
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=120)
    assert proc.returncode == 130
    result = load_result(only_run(runs) / "result.json")
    assert result.status == "interrupted"


def test_stale_temporary_folders_are_swept(tmp_path):
    from harness.engine.checkpoint import Checkpointer

    dead = 2**22 + 12345  # beyond the default pid range: no such process
    stale = tmp_path / "checkpoints" / f".tmp-step0000000005-{dead}"
    stale.mkdir(parents=True)
    mine = tmp_path / "checkpoints" / f".tmp-step0000000006-{os.getpid()}"
    mine.mkdir()
    Checkpointer(tmp_path / "checkpoints")
    assert not stale.exists() and mine.exists()  # a live writer's folder is left alone


def lock_is_free(run_dir) -> bool:
    import fcntl

    with open(run_dir / ".lock") as file:
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(file.fileno(), fcntl.LOCK_UN)
        return True


@pytest.mark.serial
def test_a_worker_whose_launcher_is_killed_checkpoints_and_ends_interrupted(tmp_path):
    """SIGKILL of `harness bench` alone (it cannot forward that): its worker, which names itself as the
    holder of the run's lock, holds it while it winds down, checkpoints and ends `interrupted`."""
    from harness.orchestrate.runs_state import lock_holder

    runs = tmp_path / "runs"
    proc = start("--runs-dir", str(runs), *QUIET, "--budget", "4s", "--set", "log_interval_s=0")
    wait_for(lambda: runs.exists() and any(train_rows(p) for p in runs.iterdir() if p.is_dir()))
    run_dir = only_run(runs)
    (worker,) = psutil.Process(proc.pid).children()
    assert lock_holder(run_dir) == (worker.pid, socket.gethostname())  # what `harness runs` reads
    worker.suspend()  # held still, so that it is certainly alive when the launcher is gone
    proc.kill()
    proc.communicate()
    assert worker.is_running() and not lock_is_free(run_dir)  # the folder is still its own
    worker.resume()  # it notices the launcher is gone, checkpoints and stops
    worker.wait(timeout=120)
    result = load_result(run_dir / "result.json")
    assert result.status == "interrupted" and 0 < result.summary.train_s < 4
    (checkpoint,) = checkpoints(run_dir)
    assert int(checkpoint.removeprefix("step")) == result.summary.steps
    assert "the launcher" in (run_dir / "run.log").read_text() and lock_is_free(run_dir)
    # What a resume continues from is there (resuming an interrupted run: the SIGTERM test above).
    assert_steps_once_each(train_rows(run_dir), result.summary.steps)


@pytest.mark.serial
def test_a_run_that_does_not_answer_a_stop_is_killed_after_its_grace_period_and_is_interrupted(tmp_path):
    from harness.orchestrate.launchers.ending import Ending, collect_result
    from harness.orchestrate.launchers.run_control import StopSignal
    from tests.conftest import tiny_config

    deaf = "import signal, time; signal.signal(15, signal.SIG_IGN); print(1, flush=True); time.sleep(99)"
    child = subprocess.Popen([sys.executable, "-c", deaf], stdout=subprocess.PIPE, text=True)
    child.stdout.readline()  # its handler is in place
    stop = StopSignal(grace_s=0.5)
    stop.attach(child)
    stop.handle(signal.SIGTERM, None)
    stop.handle(signal.SIGTERM, None)  # a second stop kills nothing by itself
    assert child.wait(timeout=60) == -signal.SIGKILL and stop.forced == {child.pid}  # the grace period did
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints" / "step00000003").mkdir(parents=True)
    ending = Ending(-signal.SIGKILL, time.time(), stopped=True, forced=True)
    result = collect_result(run_dir, tiny_config(), ending, {})
    assert (
        result.status == "interrupted" and "continues from its last checkpoint (step00000003)" in result.error
    )
    never_checkpointed = tmp_path / "other"
    never_checkpointed.mkdir()
    assert "nothing to resume from" in collect_result(never_checkpointed, tiny_config(), ending, {}).error
