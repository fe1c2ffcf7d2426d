"""A stop reaches work that native code makes deaf to signals: tokenizer training (Rust) runs in a child
process that a stop ends, and that dies with its parent; a run stopped there ends `interrupted`."""

import random
import signal
import subprocess
import sys
import threading
import time

import psutil
import pytest

from harness.core import stopping
from tests.conftest import ROOT, tiny_config

HANG_GUARD_S = 120  # only a hang reaches it: unstopped, this training runs for minutes


@pytest.fixture
def deaf_corpus(tmp_path):
    """One line of 1 MB with no space: the BPE trainer's pre-tokenizer makes it a single word, whose
    merges take minutes of Rust that no Python signal handler can interrupt."""
    rng = random.Random(0)
    path = tmp_path / "one-line.txt"
    path.write_text("".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=1_000_000)))
    return path


def _start(tmp_path, *args):
    env = {"HARNESS_CACHE_DIR": str(tmp_path / "cache")}
    return subprocess.Popen(
        [sys.executable, "-m", "harness", *args],
        cwd=ROOT,
        env={**__import__("os").environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _spawned(parent: psutil.Process) -> list[psutil.Process]:
    """The spawned (tokenizer-training) processes under `parent`; one that ends or is a zombie meanwhile,
    another test's child among them, is passed over."""
    found = []
    for child in parent.children(recursive=True):
        try:
            if "spawn_main" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.NoSuchProcess:  # ZombieProcess too
            continue
    return found


def _training_child(proc: subprocess.Popen) -> psutil.Process:
    """The spawned process that trains the tokenizer, somewhere under `proc`, once it is running."""
    deadline = time.monotonic() + HANG_GUARD_S
    while time.monotonic() < deadline and proc.poll() is None:
        for child in _spawned(psutil.Process(proc.pid)):
            time.sleep(1.0)  # past its imports: inside the training
            return child
        time.sleep(0.05)
    raise AssertionError(f"no tokenizer-training child process appeared (exit {proc.poll()})")


def _nothing_left(cache) -> None:
    tokenizers = cache / "tokenizers"
    assert not list(tokenizers.glob("*")) if tokenizers.exists() else True


@pytest.mark.serial
def test_ctrl_c_ends_a_tokenizer_training_the_rust_side_would_hold(tmp_path, deaf_corpus):
    proc = _start(tmp_path, "prepare", "--data", str(deaf_corpus), "--preset", "tiny")
    child = _training_child(proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=HANG_GUARD_S)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "interrupted" and "Traceback" not in err and "Warning" not in err
    assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE
    _nothing_left(tmp_path / "cache")


@pytest.mark.serial
def test_the_training_child_dies_with_its_parent_killed_outright(tmp_path, deaf_corpus):
    proc = _start(tmp_path, "prepare", "--data", str(deaf_corpus), "--preset", "tiny")
    child = _training_child(proc)
    proc.kill()
    proc.communicate()
    try:
        child.wait(timeout=HANG_GUARD_S)  # the kernel's parent-death signal
    except psutil.TimeoutExpired:
        child.kill()
        raise AssertionError("the tokenizer-training process outlived its killed parent") from None


@pytest.mark.serial
def test_a_run_stopped_while_its_tokenizer_trains_ends_interrupted_with_nothing_to_resume(
    tmp_path, deaf_corpus, monkeypatch
):
    """The worker's side (a cluster node prepares the data itself): its signal handler only sets the stop
    flag, which the wait on the training child reads."""
    import os
    import threading

    from tests.conftest import run_inprocess

    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    me = psutil.Process(os.getpid())

    def stop_once_training() -> None:
        deadline = time.monotonic() + HANG_GUARD_S
        while time.monotonic() < deadline:
            if _spawned(me):
                time.sleep(1.0)
                stopping.request()  # what the worker's SIGTERM handler does
                return
            time.sleep(0.05)

    threading.Thread(target=stop_once_training, daemon=True).start()
    result = run_inprocess(tiny_config(data=str(deaf_corpus), max_steps=2), tmp_path / "run")
    assert result.status == "interrupted"
    assert result.error == "stopped while training the tokenizer: nothing to resume from"
    assert not _spawned(me)
    _nothing_left(tmp_path / "cache")


@pytest.mark.serial
def test_a_sweep_stopped_while_preparing_its_data_exits_130_with_no_run_started(tmp_path, deaf_corpus):
    runs = tmp_path / "runs"
    proc = _start(tmp_path, "bench", "--data", str(deaf_corpus), "--preset", "tiny", "--device", "cpu",
                  "--max-steps", "2", "--quiet", "--runs-dir", str(runs))  # fmt: skip
    _training_child(proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=HANG_GUARD_S)
    assert proc.returncode == 130 and err.strip().splitlines()[-1] == "interrupted", err
    assert not runs.exists() or not list(runs.iterdir())
    _nothing_left(tmp_path / "cache")


def _fails() -> None:
    raise ValueError("no such merge")


def test_a_failure_in_the_child_is_raised_in_the_parent_with_its_message():
    with pytest.raises(RuntimeError, match=r"^training the tokenizer failed: ValueError: no such merge$"):
        stopping.run_in_child(_fails, (), phase="training the tokenizer")


def test_a_stop_between_tokenizing_batches_removes_the_half_built_cache(tmp_path):
    from harness.data.text import CorpusSource
    from harness.data.tokenize import build_cache, describe_tokenizer

    corpus = tmp_path / "c.txt"
    corpus.write_text("alpha beta gamma\n\n" * 2000)
    source = CorpusSource(str(corpus), "files", "text", str(tmp_path), files=(str(corpus),))
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>"], show_progress=False)
    tok.train_from_iterator(["alpha beta gamma"], trainer)
    tok.save(str(tmp_path / "tokenizer.json"))
    tokenizer = describe_tokenizer(tmp_path / "tokenizer.json", trained=False)
    stopping.request()
    dest = tmp_path / "cache" / "key"
    dest.parent.mkdir()
    settings = {"val_fraction": 0.1, "max_corpus_tokens": None}
    with pytest.raises(stopping.Stopped, match="stopped while tokenizing the corpus"):
        build_cache(source, "ab" * 8, tokenizer, settings, dest, progress=lambda _text: None)
    assert list(dest.parent.iterdir()) == []


class _Recorder:
    """Events as the parent would get them; `on_event` may act on one (a stop arriving then)."""

    def __init__(self, on_event=None) -> None:
        self.events: list[dict] = []
        self.on_event = on_event

    def emit(self, event: str, **fields) -> None:
        self.events.append({"event": event, **fields})
        if self.on_event is not None:
            self.on_event(self.events[-1])

    def close(self) -> None:
        pass

    def details(self, phase: str) -> list[str]:
        return [e.get("detail", "") for e in self.events if e["event"] == "phase" and e["phase"] == phase]


def _run_with(events, tmp_path, **overrides):
    from harness.engine.trainer import Trainer

    cfg = tiny_config(micro_batch=16, max_steps=2, **overrides)  # 64 sequences a step: 4 micro-batches
    (tmp_path / "run").mkdir()
    return Trainer(cfg, tmp_path / "run", events).run()


def test_the_warm_up_announces_each_micro_batch_the_strategy_takes(tmp_path, monkeypatch):
    from harness.engine import phase_progress

    monkeypatch.setattr(phase_progress, "WARMUP_LINE_EVERY_S", 0.0)  # every micro-batch gets its line
    events = _Recorder()
    result = _run_with(events, tmp_path)
    assert result.status == "ok", result.error
    lines = [d.rsplit(",", 1)[0] for d in events.details("warmup")[1:]]  # after "2 steps (not timed)"
    assert lines == [f"step {s}/2, micro-batch {m}/4" for s in (1, 2) for m in (1, 2, 3, 4)]


def test_a_stop_during_the_warm_up_ends_the_run_interrupted_at_the_next_micro_batch(tmp_path, monkeypatch):
    from harness.engine import phase_progress

    monkeypatch.setattr(phase_progress, "WARMUP_LINE_EVERY_S", 0.0)

    def stop_at_the_second(event: dict) -> None:
        if event.get("detail", "").startswith("step 1/2, micro-batch 2/4"):
            stopping.request()  # what the worker's SIGTERM handler does

    events = _Recorder(stop_at_the_second)
    result = _run_with(events, tmp_path)
    assert result.status == "interrupted"
    assert result.error == "stopped while warming up: nothing to resume from"
    assert not any(d.startswith("step 1/2, micro-batch 3/4") for d in events.details("warmup"))
    assert result.summary.steps == 0 and not (tmp_path / "run" / "checkpoints").exists()


def test_warm_up_lines_come_at_most_every_few_seconds_of_its_clock():
    from harness.engine.phase_progress import WarmupProgress

    now = iter([3.0, 6.0, 9.0, 12.0, 15.0, 16.0])  # seconds at each micro-batch taken
    events = _Recorder()
    progress = WarmupProgress(events, steps=2, t0=0.0, every_s=5.0, clock=lambda: next(now))
    for step in (0, 1):
        list(progress.announced(step, ["a", "b", "c"]))
    assert events.details("warmup") == ["step 1/2, micro-batch 2/3, 6s", "step 2/2, micro-batch 1/3, 12s"]


def test_each_fit_probe_says_what_it_tries_and_a_stop_ends_the_fit():
    from harness.engine.phase_progress import announced_probe

    tried, events = [], _Recorder()
    probe = announced_probe(events, lambda m, compiled: tried.append((m, compiled)))
    probe(8, False)
    probe(16, True)
    assert events.details("fit") == ["trying micro-batch 8 (eager)", "trying micro-batch 16 (compiled)"]
    stopping.request()
    with pytest.raises(stopping.Stopped, match="stopped while fitting the micro-batch"):
        probe(32, False)
    assert tried == [(8, False), (16, True)]


def test_the_grace_before_a_forced_kill_covers_the_plans_longest_step_and_its_checkpoint():
    from harness.orchestrate.launchers.run_control import STOP_GRACE_S
    from harness.orchestrate.preflight import checkpoint_bytes
    from harness.orchestrate.step_estimate import (
        CPU_STEP_EFFICIENCY_FLOOR,
        DISK_WRITE_BYTES_PER_S,
        step_seconds_at_least,
        stop_grace_s,
    )

    small = tiny_config()
    big = tiny_config(global_batch_tokens=2**24)  # 4096 times tiny's batch: minutes a step on a CPU
    rate = 30e9
    assert stop_grace_s([small], on_cpu=True, flops_per_s=rate) == STOP_GRACE_S  # seconds: the floor
    expected = 2 * step_seconds_at_least(big, rate) / CPU_STEP_EFFICIENCY_FLOOR
    expected += checkpoint_bytes(big) / DISK_WRITE_BYTES_PER_S
    assert expected > STOP_GRACE_S
    assert stop_grace_s([small, big], on_cpu=True, flops_per_s=rate) == pytest.approx(expected)
    assert stop_grace_s([small, big], on_cpu=False) == STOP_GRACE_S  # a GPU's step is seconds


@pytest.mark.serial
def test_a_stop_during_a_warm_up_longer_than_the_grace_ends_the_run_interrupted_not_killed(tmp_path):
    """A tiny model with a 16M-token batch: warm-up is two steps of minutes each on this CPU (hence
    --allow-slow). One SIGINT to `harness bench` reaches the worker in its warm-up, which ends at its next
    micro-batch: interrupted, not killed after a grace period and recorded as such."""
    from harness.core.results import load_result

    runs = tmp_path / "runs"
    proc = _start(tmp_path, "bench", "--preset", "tiny", "--device", "cpu", "--allow-slow", "--set",
                  "global_batch_tokens=16777216", "--runs-dir", str(runs))  # fmt: skip
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)
    reader.start()
    deadline = time.monotonic() + HANG_GUARD_S
    while time.monotonic() < deadline and proc.poll() is None and not any("micro-batch" in x for x in lines):
        time.sleep(0.1)  # the warm-up's first line, a few seconds in
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=HANG_GUARD_S)
    reader.join(timeout=HANG_GUARD_S)
    err = "".join(lines)
    assert proc.returncode == 130, err
    (run_dir,) = runs.iterdir()
    result = load_result(run_dir / "result.json")
    assert result.status == "interrupted"
    assert result.error == "stopped while warming up: nothing to resume from"


@pytest.mark.serial
def test_a_second_stop_says_how_long_the_grace_is(capsys):
    from harness.orchestrate.launchers.run_control import StopSignal

    stop = StopSignal(grace_s=7200.0)
    try:
        stop.handle(signal.SIGINT, None)
        stop.handle(signal.SIGINT, None)
    finally:
        stop._timer.cancel()
    assert "killed if still running 2h00m00s after the first stop" in capsys.readouterr().err


def _signal_the_parent_then_die() -> None:
    import os

    os.kill(os.getppid(), signal.SIGUSR1)  # the parent's stop arrives, and at once the scheduler's
    os.kill(os.getpid(), signal.SIGKILL)  # signal ends the child too: the parent sees both in one look


def _take_a_sigterm(done) -> None:
    import os

    os.kill(os.getpid(), signal.SIGTERM)  # a scheduler signals every process of the job
    time.sleep(0.5)
    done.write_text("finished")  # only if the signal did not end it


@pytest.mark.serial
def test_a_stop_that_comes_as_the_child_dies_is_a_stop_not_a_failure():
    previous = signal.signal(signal.SIGUSR1, lambda *_: stopping.request())
    try:
        with pytest.raises(stopping.Stopped, match="stopped while training the tokenizer"):
            stopping.run_in_child(_signal_the_parent_then_die, (), phase="training the tokenizer")
    finally:
        signal.signal(signal.SIGUSR1, previous)


def test_the_child_leaves_a_stop_signal_to_its_parent(tmp_path):
    done = tmp_path / "done"
    stopping.run_in_child(_take_a_sigterm, (done,), phase="training the tokenizer")
    assert done.read_text() == "finished"  # the child's SIGTERM was its parent's to answer, not its end
    assert not stopping.requested()  # and the parent, which got none, goes on
