"""The suite's markers say what its tests do, as far as reading their source can tell: a test that
signals a process, sleeps on a clock or runs runs beside each other needs the whole machine (`serial`:
`make test` runs those alone, after the rest), so that another worker's load cannot move its timing."""

import ast
import re
from pathlib import Path

from tests.conftest import ROOT

# What in a test's own body says it signals, waits on wall-clock time or runs several runs at once.
NEEDS_THE_MACHINE = (
    "send_signal(", "os.kill(", ".kill()", "kill_tree(", "signal.SIG", ".suspend()", '"--parallel"',
    '"--gpus"', "time.sleep(",
)  # fmt: skip


def _marks(node: ast.FunctionDef) -> set[str]:
    return {
        m.group(1) for d in node.decorator_list if (m := re.match(r"pytest\.mark\.(\w+)", ast.unparse(d)))
    }


def unmarked(source: str) -> list[tuple[str, list[str]]]:
    """The test functions of a module that do one of those things without the `serial` (or `gpu`) mark."""
    tree = ast.parse(source)
    module = {
        m
        for n in tree.body
        if isinstance(n, ast.Assign) and any(getattr(t, "id", "") == "pytestmark" for t in n.targets)
        for m in re.findall(r"mark\.(\w+)", ast.unparse(n.value))
    }
    found = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
            body = ast.get_source_segment(source, node) or ""
            hits = [sign for sign in NEEDS_THE_MACHINE if sign in body]
            if hits and not (_marks(node) | module) & {"serial", "gpu"}:
                found.append((node.name, hits))
    return found


def test_every_test_that_signals_sleeps_or_runs_runs_at_once_is_serial():
    offenders = {
        path.name: found
        for path in sorted((ROOT / "tests").glob("test_*.py"))
        if path.name != Path(__file__).name and (found := unmarked(path.read_text()))  # its own are examples
    }
    assert offenders == {}


def test_the_check_sees_an_unmarked_signal_and_accepts_a_marked_one():
    source = (
        "import pytest, signal, os\n"
        "def test_a(): os.kill(1, signal.SIGTERM)\n"
        "@pytest.mark.serial\n"
        "def test_b(): os.kill(1, signal.SIGTERM)\n"
        "def test_c(): assert 1\n"
    )
    assert unmarked(source) == [("test_a", ["os.kill(", "signal.SIG"])]


GROUPED = """
import os

import pytest


@pytest.mark.xdist_group("shared")
@pytest.mark.parametrize("i", range(8))
def test_grouped(i):
    with open(os.environ["WHERE"], "a") as f:
        f.write(os.environ["PYTEST_XDIST_WORKER"] + "\\n")


@pytest.mark.parametrize("i", range(8))
def test_free(i):
    pass
"""


def test_tests_of_one_xdist_group_run_on_one_worker(tmp_path):
    """`make test`'s `--dist loadgroup` keeps a group on one worker (a shared fixture is built once)."""
    import os
    import shutil
    import subprocess
    import sys

    shutil.copy(ROOT / "tests" / "conftest.py", tmp_path / "conftest.py")  # the suite's own hooks
    (tmp_path / "test_grouped.py").write_text(GROUPED)
    where = tmp_path / "workers.txt"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-n", "2", "--dist", "loadgroup", "-p", "no:cacheprovider",
         "test_grouped.py"],
        cwd=tmp_path, env={**os.environ, "WHERE": str(where)}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    workers = where.read_text().split()
    assert len(workers) == 8 and len(set(workers)) == 1, workers
