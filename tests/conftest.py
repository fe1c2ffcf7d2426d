"""Shared helpers: tiny run configs and in-process runs (the CLI tests use real child processes)."""

from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path

import pytest
import torch
from hypothesis import settings

from harness.core.overrides import build_run_config

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("DS_ACCELERATOR", "cuda" if torch.cuda.is_available() else "cpu")

# `make test` runs the suite on two pytest-xdist workers, then the `serial` tests alone. A worker shares the
# machine, so it and the runs it starts use one thread each: two workers then fill two cores, no more.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)


# Property tests (Hypothesis) draw new examples on every run here; CI draws the same ones each time, so that
# a red CI names a change, not a draw (explore with `pytest --hypothesis-seed=N`).
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(autouse=True)
def _no_stop_left_over():
    """The stop flag (harness.core.stopping) is the process's: a test that sets it must not stop the next
    test's in-process run."""
    from harness.core import stopping

    stopping.clear()
    yield
    stopping.clear()


def tiny_config(strategy: str = "amp", budget: str = "3s", **overrides):
    """The tiny preset on the CPU; `overrides` are `--set` keys or RunConfig fields."""
    fields = ("micro_batch", "max_steps", "device", "run_id", "gpu_memory_gib", "trackers")
    run_fields = {k: overrides.pop(k) for k in fields if k in overrides}
    run_fields.setdefault("device", "cpu")
    return build_run_config(
        strategy=strategy,
        preset="tiny",
        budget=budget,
        overrides={k: str(v) for k, v in overrides.items()},
        **run_fields,
    )


def run_inprocess(cfg, run_dir: Path, *, resume: bool = False):
    from harness.engine.events import EventPipe
    from harness.engine.trainer import Trainer

    run_dir.mkdir(parents=True, exist_ok=True)
    events = EventPipe(fd=None)
    try:
        return Trainer(cfg, run_dir, events, resume=resume).run()
    finally:
        events.close()


def expected_eval_steps(train_rows: list[dict], budget_s: float, eval_points: int) -> list[int]:
    """The steps at which a budgeted run evaluates, from the training clock its rows record after each step
    (log_interval_s=0: a row per step): whenever the clock has passed the next of `eval_points` evenly spaced
    points of the budget (checked before each step), and once more at the end."""
    every = budget_s / eval_points
    clock = [0.0] + [row["train_s"] for row in train_rows]
    steps, next_s = [], 0.0
    for step, train_s in enumerate(clock):
        if train_s >= next_s:
            steps.append(step)
            next_s = (math.floor(train_s / every) + 1) * every
    if steps[-1] != len(clock) - 1:
        steps.append(len(clock) - 1)
    return steps


def run_process(argv: list[str], cwd: Path | None = None, timeout: float = 300, env: dict | None = None):
    """A child process from the project's root with this environment (plus `env`), its output captured."""
    import subprocess

    environment = {**os.environ, **(env or {})}
    return subprocess.run(
        argv, capture_output=True, text=True, cwd=cwd or ROOT, timeout=timeout, env=environment
    )


def harness_cli(*args: str, cwd: Path | None = None, timeout: float = 300, env: dict | None = None):
    return run_process([sys.executable, "-m", "harness", *args], cwd=cwd, timeout=timeout, env=env)


def harness_main(*args: str, env: dict | None = None, cwd: Path | None = None):
    """`harness ARGS` run in this process, for input the command line refuses before any run starts: its
    exit status and what it printed, as a finished process would give them (a run it started would still
    get a worker process of its own). The entry point itself, `python -m harness`, is tested through real
    child processes elsewhere; here each refusal costs no interpreter start."""
    import contextlib
    import io
    import signal
    import subprocess

    from harness.cli import main

    out, err = io.StringIO(), io.StringIO()
    sigterm = signal.getsignal(signal.SIGTERM)  # main() installs its own
    saved = {key: os.environ.get(key) for key in env or {}}
    os.environ.update(env or {})
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), contextlib.chdir(cwd or ROOT):
            try:
                code = main(list(args))
            except SystemExit as exc:  # argparse's own refusals
                code = exc.code if isinstance(exc.code, int) else 1
    finally:
        signal.signal(signal.SIGTERM, sigterm)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return subprocess.CompletedProcess(["harness", *args], code, out.getvalue(), err.getvalue())


def one_line_error(proc, fragment: str) -> None:
    """Refused as bad input: exit 2, the last line `error: ...` naming `fragment`, no traceback."""
    assert proc.returncode == 2, proc.stdout + proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and fragment in last, proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.fixture(autouse=True)
def _give_memory_back():
    """Two workers share the machine's memory: after a test that grew this worker past 4 GiB (a real-size
    model and its optimizer), hand the freed heap back to the OS (glibc keeps it otherwise), so that two
    such tests side by side do not add up what neither still uses."""
    yield
    import psutil

    if psutil.Process().memory_info().rss > 4 * 2**30 and sys.platform.startswith("linux"):
        import ctypes
        import gc

        gc.collect()
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def pytest_collection_modifyitems(config, items):
    group_for_xdist(config, items)
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def group_for_xdist(config, items) -> None:
    """Name each `xdist_group` test's group in its node id, as `--dist loadgroup` schedules by it.
    pytest-xdist 3.8 does this by setting `item._nodeid`, which pytest 9 no longer reads (a node's id lives
    in `item._id`), so without this every group is split across the workers as under `--dist load`, and a
    fixture they share is built on each (tests/test_markers.py checks the grouping)."""
    if not getattr(config.option, "loadgroup", False):
        return
    from _pytest.nodeid import coerce_node_id

    for item in items:
        marks = item.iter_markers("xdist_group")
        names = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default")) for m in marks})
        if names and item.nodeid.rfind("@") <= item.nodeid.rfind("]"):
            item._id = coerce_node_id(f"{item.nodeid}@{'_'.join(names)}")


def wait_for(predicate, timeout: float = 120.0) -> None:
    """Poll `predicate` until it holds; fail the test after `timeout` seconds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting")
