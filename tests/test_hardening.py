"""A hostile user's inputs: each refused before anything starts (one line, exit 2, no run folder left)."""

import json

import pytest

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


def test_a_stopped_preparation_leaves_no_temporary_folder_and_stale_ones_are_swept(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    from tests.conftest import ROOT

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
    deadline = time.time() + 120
    while time.time() < deadline and not list((cache / "corpora").glob(".*.tmp*")):
        time.sleep(0.02)
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


def a_stale_build_lock(root, age_s: float):
    import os
    import time

    lock = root / "py311_cpu" / "cpu_adam" / "lock"
    lock.parent.mkdir(parents=True)
    lock.touch()
    os.utime(lock, (time.time() - age_s, time.time() - age_s))
    return lock


def test_a_stale_cpu_adam_build_lock_is_named_instead_of_hanging(tmp_path, monkeypatch):
    """torch's JIT build waits forever on the lock an interrupted build leaves behind: the doctor, the
    plan (before any run) and the strategy's setup each say which file to delete instead."""
    from strategies.zero_offload import STALE_BUILD_LOCK_S, check_cpu_adam, stale_build_lock

    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    assert stale_build_lock() is None
    lock = a_stale_build_lock(tmp_path, age_s=60)
    assert stale_build_lock() is None  # a build under way: wait for it, as torch does
    message = stale_build_lock(now=lock.stat().st_mtime + STALE_BUILD_LOCK_S + 1)
    assert message.startswith(f"{lock} was left by an interrupted build") and "delete it" in message
    lock.unlink()
    a_stale_build_lock(tmp_path / "again", age_s=3600)
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path / "again"))
    check = check_cpu_adam(cuda=False)
    assert not check.ok and "interrupted build" in check.detail

    proc = harness_main(
        "bench", "--strategy", "zero_offload+act_ckpt", "--preset", "tiny", "--budget", "5s",
        "--runs-dir", str(tmp_path / "runs"),
        env={"TORCH_EXTENSIONS_DIR": str(tmp_path / "again")},
    )  # fmt: skip
    refused(proc, "strategy zero_offload+act_ckpt cannot run here", "delete it, then run again")
    assert not (tmp_path / "runs").exists()
