"""`harness runs`: every run folder's state from its files alone (hand-made folders of each kind), and a
tiny sweep listed while it runs."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from harness.cli.text.runs import format_states
from harness.core.results import RunResult, Summary, write_result
from harness.orchestrate.runs_state import run_states
from tests.conftest import ROOT, harness_cli


def _folder(runs, name, budget_s=100.0, rows=(), lock=None, status=None, error=None):
    run_dir = runs / name
    run_dir.mkdir(parents=True)
    config = {"strategy": name.split("-")[0], "recipe": {"preset": "tiny", "budget_s": budget_s}}
    (run_dir / "config.json").write_text(json.dumps(config))
    if rows:
        (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    if lock is not None:
        (run_dir / ".lock").write_text(lock)
    if status is not None:
        summary = Summary(train_s=budget_s if status == "ok" else 12.0, steps=7, tokens_per_s=1000.0)
        result = RunResult(name, status, {"name": name}, {}, "f", summary=summary, error=error)
        write_result(run_dir, result)
    return run_dir


def train_row(step, train_s, wall_per_train=1.5):
    return {"kind": "train", "step": step, "train_s": train_s, "tokens_per_s": 500.0, "loss": 3.0,
            "wall_per_train": wall_per_train}  # fmt: skip


def test_each_kind_of_run_folder_has_its_state(tmp_path):
    runs = tmp_path / "runs"
    me = f"process {os.getpid()} on {socket.gethostname()}"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
    _folder(runs, "amp-1")  # config only: waiting for its turn
    _folder(runs, "amp-2", rows=[train_row(1, 10.0), train_row(2, 40.0)], lock=me)
    _folder(runs, "amp-3", lock=me)  # running, not training yet
    _folder(runs, "amp-4", status="interrupted", rows=[train_row(1, 12.0)], lock="")
    _folder(runs, "amp-5", status="ok")
    _folder(runs, "amp-6", status="oom", error="out of memory: tried to allocate 2 GiB\nmore")
    _folder(runs, "amp-7", status="error", error="RuntimeError: boom")
    _folder(
        runs, "amp-8", rows=[train_row(1, 5.0)], lock=f"process {int(dead.stdout)} on {socket.gethostname()}"
    )
    # Resumed: the earlier session's result says interrupted, but a process holds it now.
    _folder(runs, "amp-9", status="interrupted", rows=[train_row(3, 50.0, 2.0)], lock=me)
    (runs / "not-a-run").mkdir()
    states = {s.run_id: s for s in run_states(runs)}
    assert {k: s.state for k, s in states.items()} == {
        "amp-1": "pending",
        "amp-2": "running",
        "amp-3": "running",
        "amp-4": "interrupted",
        "amp-5": "ok",
        "amp-6": "oom",
        "amp-7": "error",
        "amp-8": "error",  # it trained, nobody holds it (its process is gone), no result: it died
        "amp-9": "running",
    }
    running = states["amp-2"]
    assert (running.train_s, running.steps) == (40.0, 2)
    assert running.eta_s == pytest.approx((100.0 - 40.0) * 1.5)  # the budget left at the recent pace
    assert states["amp-9"].eta_s == pytest.approx((100.0 - 50.0) * 2.0)
    assert states["amp-3"].detail.startswith("setting up") and states["amp-3"].eta_s is None
    assert states["amp-6"].detail == "out of memory: tried to allocate 2 GiB"
    text = format_states(list(states.values()), runs)
    assert "1m30s" in text  # amp-2's ETA
    assert text.splitlines()[-1] == "9 runs: 1 pending, 3 running, 1 interrupted, 1 ok, 1 oom, 2 error"


@pytest.mark.serial
@pytest.mark.slow
def test_runs_lists_a_sweep_in_progress(tmp_path):
    runs = tmp_path / "runs"
    sweep = subprocess.Popen(
        [sys.executable, "-m", "harness", "sweep", "--strategies", "amp,act_ckpt", "--preset", "tiny",
         "--budget", "2s", "--device", "cpu", "--runs-dir", str(runs), "--report", str(tmp_path / "i.html"),
         "--quiet", "--set", "log_interval_s=0.5"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip

    def listed():  # what `harness runs --json` prints, read in this process (polling needs no new one)
        return {s.strategy: s.to_dict() for s in run_states(runs)} if runs.is_dir() else {}

    deadline = time.time() + 180
    while time.time() < deadline:
        during = listed()
        if during.get("amp", {}).get("train_s"):
            break
        time.sleep(0.1)
    text = format_states(run_states(runs), runs)  # the terminal's table, at the same moment
    assert during["amp"]["state"] == "running" and 0 < during["amp"]["train_s"] < 2
    assert during["amp"]["eta_s"] is not None and during["amp"]["budget_s"] == 2
    assert during["act_ckpt"]["state"] == "pending"  # queued behind it, its folder already there
    assert "running" in text and "pending" in text and "/ 2.0s" in text
    assert sweep.wait(timeout=300) == 0
    printed = harness_cli("runs", "--runs-dir", str(runs), "--json").stdout
    after = {s["strategy"]: s for s in json.loads(printed)}
    assert after["amp"]["state"] == after["act_ckpt"]["state"] == "ok"


def test_runs_without_a_runs_folder_is_one_line(tmp_path):
    proc = harness_cli("runs", "--runs-dir", str(tmp_path / "nothing"))
    assert proc.returncode == 2 and proc.stderr.startswith("error: no runs folder")
