"""Shared helpers: tiny run configs and in-process runs (the CLI tests use real child processes)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest
import torch

from harness.core.overrides import build_run_config

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("DS_ACCELERATOR", "cuda" if torch.cuda.is_available() else "cpu")


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


def run_process(argv: list[str], cwd: Path | None = None, timeout: float = 300, env: dict | None = None):
    """A child process from the project's root with this environment (plus `env`), its output captured."""
    import subprocess

    environment = {**os.environ, **(env or {})}
    return subprocess.run(
        argv, capture_output=True, text=True, cwd=cwd or ROOT, timeout=timeout, env=environment
    )


def harness_cli(*args: str, cwd: Path | None = None, timeout: float = 300, env: dict | None = None):
    return run_process([sys.executable, "-m", "harness", *args], cwd=cwd, timeout=timeout, env=env)


def one_line_error(proc, fragment: str) -> None:
    """Refused as bad input: exit 2, the last line `error: ...` naming `fragment`, no traceback."""
    assert proc.returncode == 2, proc.stdout + proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and fragment in last, proc.stderr
    assert "Traceback" not in proc.stderr


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def wait_for(predicate, timeout: float = 120.0) -> None:
    """Poll `predicate` until it holds; fail the test after `timeout` seconds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting")
