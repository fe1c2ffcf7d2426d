"""A hostile user's inputs: each refused before anything starts (one line, exit 2, no run folder left)."""

import json
import os

import pytest

from harness.core.errors import UserError
from harness.core.overrides import build_run_config
from harness.core.serialize import to_dict
from tests.conftest import harness_main


def refused(proc, *fragments):
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in proc.stderr, proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


UNWRITABLE = "/proc/1/harness-out"  # not even root may create anything there


@pytest.fixture
def a_file(tmp_path):
    path = tmp_path / "a-file"
    path.write_text("not a folder")
    return path


def test_output_locations_are_checked_before_the_first_run(tmp_path, a_file):
    runs = ["--runs-dir", str(tmp_path / "runs")]
    tiny = ["--preset", "tiny", "--budget", "2s"]
    refused(harness_main("report", "--out", str(a_file / "index.html")), "--out", "is a file, not a folder")
    refused(
        harness_main("report", "--runs", str(tmp_path), "--out", f"{UNWRITABLE}/index.html"),
        "cannot be written",
    )
    refused(harness_main("bench", *tiny, "--runs-dir", str(a_file)), "--runs-dir", "is a file")
    refused(harness_main("sweep", *tiny, "--runs-dir", UNWRITABLE), "--runs-dir", "cannot be written")
    refused(harness_main("sweep", *tiny, *runs, "--report", str(a_file / "x.html")), "--report")
    refused(harness_main("sweep", *tiny, *runs, "--report", str(tmp_path)), "--report", "is a folder")
    refused(harness_main("parity", *tiny, *runs, "--out", str(a_file)), "--out", "is a file")
    assert not (tmp_path / "runs").exists()  # nothing started


def test_an_unwritable_cache_is_refused_before_preparing(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("one document\n\nanother one\n")
    env = {"HARNESS_CACHE_DIR": f"{UNWRITABLE}/cache"}
    refused(harness_main("prepare", "--data", str(corpus), env=env), "corpus cache", "HARNESS_CACHE_DIR")
    proc = harness_main(
        "bench", "--preset", "tiny", "--data", str(corpus), "--runs-dir", str(tmp_path / "r"), env=env
    )
    refused(proc, "corpus cache")


def test_a_missing_gpu_is_found_in_the_parent(tmp_path):
    refused(
        harness_main("bench", "--preset", "tiny", "--device", "cuda", "--runs-dir", str(tmp_path)), "no CUDA"
    )
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("names", ["", ",,", "amp,,act_ckpt"])
def test_one_parser_for_strategy_lists(tmp_path, names):
    refused(harness_main("env", "--strategies", names), "--strategies")
    refused(harness_main("sweep", "--strategies", names, "--runs-dir", str(tmp_path)), "--strategies")


def test_a_tokenizer_with_synthetic_data_is_refused(tmp_path):
    proc = harness_main("bench", "--preset", "tiny", "--tokenizer", "gpt2.json", "--runs-dir", str(tmp_path))
    refused(proc, "--tokenizer", "synthetic")


def test_resuming_a_run_as_another_strategy_is_refused(tmp_path):
    run_dir = tmp_path / "runs" / "r1"
    run_dir.mkdir(parents=True)
    cfg = build_run_config(strategy="zero_offload", preset="tiny", run_id="r1")
    (run_dir / "config.json").write_text(json.dumps(to_dict(cfg)))
    proc = harness_main(
        "bench", "--resume", "r1", "--strategy", "act_ckpt", "--runs-dir", str(tmp_path / "runs")
    )
    refused(proc, "is a zero_offload run, not act_ckpt", "--strategy zero_offload")


@pytest.mark.serial
def test_a_stopped_preparation_leaves_no_temporary_folder_and_stale_ones_are_swept(tmp_path):
    import os
    import signal
    import subprocess
    import sys

    from tests.conftest import ROOT, wait_for

    words = [f"w{i}" for i in range(3000)]
    rng = __import__("random").Random(0)
    corpus = tmp_path / "corpus.txt"
    with open(corpus, "w") as f:
        for _ in range(40_000):  # ~20 MB: tokenizing takes a few seconds
            f.write(" ".join(rng.choices(words, k=80)) + "\n\n")
    cache = tmp_path / "cache"
    env = {**os.environ, "HARNESS_CACHE_DIR": str(cache)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "prepare", "--data", str(corpus), "--preset", "tiny"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for(lambda: list((cache / "corpora").glob(".*.tmp*")), timeout=120)  # writing its temporary folder
    proc.send_signal(signal.SIGTERM)  # as docker stop does, mid-tokenization
    proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert not list((cache / "corpora").glob(".*.tmp*"))
    # A folder left by a preparation that was killed outright is swept by the next one.
    stale = cache / "corpora" / f".deadbeef.tmp{2**22 + 12345}"
    stale.mkdir()
    small = tmp_path / "small.txt"
    small.write_text("one two three\n\nfour five six\n\n" * 200)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness",
            "prepare",
            "--data",
            str(small),
            "--preset",
            "tiny",
            "--set",
            "val_fraction=0.3",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert not stale.exists()


@pytest.mark.serial
def test_a_build_baton_no_process_holds_is_removed_and_a_held_one_waited_for(tmp_path):
    """torch's JIT build waits forever on the baton a killed build leaves behind: one that no process has
    open is removed with a line; one a live build holds is waited for (with progress), up to a limit."""
    import subprocess
    import sys

    from harness.core.errors import UserError
    from strategies.cpu_adam_op import baton_holders, heal_build_batons

    baton = tmp_path / "cpu_adam" / "lock"  # where torch puts it under TORCH_EXTENSIONS_DIR
    baton.parent.mkdir(parents=True)
    baton.touch()
    said = []
    heal_build_batons(root=tmp_path, say=said.append)
    assert not baton.exists()
    assert said == [f"removed {baton}: an interrupted build of DeepSpeed's cpu_adam op left it, unheld"]
    # A live builder: a process that created the baton as torch's FileBaton does and keeps it open.
    flags = "os.O_CREAT | os.O_EXCL"
    hold = f"import os, time; os.open({str(baton)!r}, {flags}); print(1, flush=True); time.sleep(60)"
    builder = subprocess.Popen([sys.executable, "-c", hold], stdout=subprocess.PIPE, text=True)
    try:
        builder.stdout.readline()
        assert baton_holders(baton) == [builder.pid]
        with pytest.raises(UserError, match=f"process {builder.pid} has been building"):
            heal_build_batons(root=tmp_path, wait_s=0.5, say=said.append)
        assert baton.exists()  # never taken from a live build
    finally:
        builder.kill()
        builder.wait()
    heal_build_batons(root=tmp_path, say=said.append)  # its builder died: left over now
    assert not baton.exists()


# Files no JSON reader takes: not UTF-8, a number past Python's integer-digit limit, nesting past the
# recursion limit.
UNREADABLE_JSON = {
    "not-utf8": b'\xff\xfe{"run_id": 1}',
    "long-number": b'{"run_id": ' + b"1" * 5000 + b"}",
    "too-deep": b"[" * 100_000 + b"]" * 100_000,
}


def test_run_files_no_json_reader_takes_are_skipped_and_named(tmp_path):
    from tests.report_fixtures import write_run

    runs = tmp_path / "runs"
    write_run(runs, "good", "amp", tokens_per_s=1000.0, final_val_loss=3.0)
    with open(runs / "good" / "metrics.jsonl", "ab") as rows:
        rows.write(
            b"\xff\xfe\n" + UNREADABLE_JSON["too-deep"] + b"\n" + UNREADABLE_JSON["long-number"] + b"\n"
        )
    for name, content in UNREADABLE_JSON.items():
        (runs / name / "checkpoints").mkdir(parents=True)
        (runs / name / "result.json").write_bytes(content)
        (runs / name / "config.json").write_bytes(content)
    report = harness_main("report", "--runs", str(runs), "--out", str(tmp_path / "site" / "index.html"))
    assert report.returncode == 0, report.stderr
    for name in UNREADABLE_JSON:
        assert f"{name}/result.json" in report.stderr, name  # skipped with a warning naming it
    assert "good" in (tmp_path / "site" / "index.html").read_text()
    listed = harness_main("runs", "--runs-dir", str(runs), "--json")
    assert listed.returncode == 0 and "Traceback" not in listed.stderr, listed.stderr
    states = {state["run_id"]: state["state"] for state in json.loads(listed.stdout)}
    assert states == dict.fromkeys(UNREADABLE_JSON, "unreadable")  # named; `good` has no config.json
    resume = harness_main("bench", "--runs-dir", str(runs), "--resume", "--preset", "tiny", "--device", "cpu")
    refused(resume, "nothing to resume")


def test_a_zero_offload_run_trains_past_a_baton_a_killed_build_left(tmp_path):
    """End to end, in a private TORCH_EXTENSIONS_DIR holding the built op (copied from this environment's)
    and the baton a build killed mid-way leaves: the run removes it, says so in its log, and trains."""
    import shutil

    from harness.core.results import load_result
    from strategies.cpu_adam_op import check_cpu_adam, check_shm_comm, extensions_root

    # Built (or loaded) in this environment's folder first, as `make setup` and any run do.
    assert check_cpu_adam(cuda=False).ok and check_shm_comm().ok
    assert (extensions_root() / "cpu_adam" / "cpu_adam.so").exists()  # this environment's own op folder
    private = tmp_path / "extensions"
    # Every op of this environment (DeepSpeed's CPU backend loads its shm_comm op too), mtimes kept; with
    # TORCH_EXTENSIONS_DIR set, torch keeps each op right under it (cpp_extension._get_build_directory).
    shutil.copytree(extensions_root(), private, symlinks=True)
    baton = private / "cpu_adam" / "lock"
    baton.touch()
    proc = harness_main(
        "bench", "--strategy", "zero_offload", "--preset", "tiny", "--max-steps", "2", "--device", "cpu",
        "--quiet", "--runs-dir", str(tmp_path / "runs"), env={"TORCH_EXTENSIONS_DIR": str(private)},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert load_result(run_dir / "result.json").summary.steps == 2
    assert "an interrupted build of DeepSpeed's cpu_adam op left it" in (run_dir / "run.log").read_text()
    assert not baton.exists()


def test_a_run_folder_that_cannot_be_written_is_refused_in_one_line(tmp_path):
    """As on a read-only mount; a folder where the lock file should be stands in (root may write anywhere
    else)."""
    from harness.core.errors import UserError
    from harness.orchestrate.launchers.run_control import LOCK_FILE, RunLock

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / LOCK_FILE).mkdir()  # not a file: opening it for writing fails whoever asks
    with pytest.raises(UserError, match=r"cannot write in run folder .*a run needs a writable folder"):
        RunLock(run_dir)


def test_each_python_environment_builds_its_ops_in_a_folder_of_its_own(monkeypatch, tmp_path):
    import sys

    from strategies.cpu_adam_op import own_extensions_dir

    monkeypatch.delenv("TORCH_EXTENSIONS_DIR", raising=False)
    own_extensions_dir()
    mine = os.environ["TORCH_EXTENSIONS_DIR"]
    monkeypatch.delenv("TORCH_EXTENSIONS_DIR")
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "another-venv"))
    own_extensions_dir()
    assert os.environ["TORCH_EXTENSIONS_DIR"] != mine  # another environment, another folder
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path / "chosen"))
    own_extensions_dir()
    assert os.environ["TORCH_EXTENSIONS_DIR"] == str(tmp_path / "chosen")  # the user's choice stands


def test_a_cpu_run_whose_warm_up_would_take_hours_is_refused_before_it_starts(tmp_path):
    """The README's own `make bench` defaults (gpt2-124m, a 524,288-token batch) on a machine without a GPU:
    refused in one line with what to do, no run folder made; `tiny` passes; --allow-slow insists."""
    from harness.orchestrate.step_estimate import check_first_step, step_seconds_at_least

    proc = harness_main("bench", "--strategy", "amp", "--device", "cpu", "--runs-dir", str(tmp_path / "runs"))
    refused(
        proc, "gpt2-124m on this CPU", "warm-up alone (2 steps) would take", "--preset tiny", "--allow-slow"
    )
    assert not (tmp_path / "runs").exists()

    big = build_run_config(strategy="amp", preset="gpt2-124m", budget="24h", device="cpu")
    tiny = build_run_config(strategy="amp", preset="tiny", budget="2s", device="cpu")
    # 855,383,040 FLOPs per token (6N + attention) x 524,288 tokens, at 1e11 FLOP/s: 4,485 s a step.
    assert step_seconds_at_least(big, 1e11) == pytest.approx(855_383_040 * 524_288 / 1e11)
    with pytest.raises(UserError, match="warm-up alone"):
        check_first_step(big, allow_slow=False, flops_per_s=1e11)
    check_first_step(big, allow_slow=True, flops_per_s=1e11)  # insisted on
    check_first_step(tiny, allow_slow=False, flops_per_s=1e10)  # 0.37 s a step: fine
    with pytest.raises(UserError):  # one step longer than the whole 2 s budget
        check_first_step(tiny, allow_slow=False, flops_per_s=1e9)


@pytest.mark.parametrize("strategy", ["amp", "zero_offload"])
def test_a_checkpoints_size_is_bounded_by_the_room_the_preflight_asks_for(tmp_path, strategy):
    """The estimate behind the free-space check (the strategy's declared state footprint plus the
    checkpoint's own files) is at least what a checkpoint writes, and not much more."""
    import dataclasses

    from harness.orchestrate.preflight import CHECKPOINT_FILES_BYTES, checkpoint_bytes
    from tests.conftest import run_inprocess, tiny_config

    cfg = dataclasses.replace(tiny_config(strategy, max_steps=1), checkpoint_interval_s=1e-3)
    assert run_inprocess(cfg, tmp_path).status == "ok"
    (checkpoint,) = (tmp_path / "checkpoints").glob("step*")
    written = sum(path.stat().st_size for path in checkpoint.rglob("*") if path.is_file())
    estimate = checkpoint_bytes(cfg)
    assert written <= estimate <= written * 1.2 + CHECKPOINT_FILES_BYTES


def test_a_plan_whose_checkpoints_would_fill_the_disk_is_refused_before_it_starts(tmp_path):
    runs = tmp_path / "runs"
    proc = harness_main(
        "sweep", "--strategies", "amp", "--repeats", "100", "--preset", "gpt-13b", "--device", "cpu",
        "--allow-slow", "--runs-dir", str(runs),
    )  # fmt: skip
    refused(proc, f"--runs-dir {runs} has", "free, but 100 runs will write up to", "pass another --runs-dir")
    assert not runs.exists()


def test_the_room_a_plan_needs_is_every_runs_kept_checkpoints_plus_one_being_written(tmp_path):
    from harness.orchestrate.preflight import RUN_FILES_BYTES, check_room, checkpoint_bytes
    from tests.conftest import tiny_config

    configs = [tiny_config("amp"), tiny_config("zero_offload")]
    sizes = [checkpoint_bytes(cfg) for cfg in configs]
    need = sum(2 * size + RUN_FILES_BYTES for size in sizes) + max(sizes)  # keep_checkpoints=2 each
    check_room(configs, tmp_path, free_bytes=int(need) + 1)
    with pytest.raises(UserError, match=r"2 runs will write up to .*2 kept per run"):
        check_room(configs, tmp_path, free_bytes=int(need) - 1)
