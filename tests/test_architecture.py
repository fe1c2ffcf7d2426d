"""The layout's rules hold: imports go one way (cli -> api -> orchestrate -> report; engine -> strategies /
data / metrics -> model -> core), nothing imports in a circle, the report loads without torch, and a
plug-in added through the registries alone appears end to end."""

import shutil
import subprocess
import sys

import pytest

from tests.architecture import cycles, graph, violations
from tests.conftest import ROOT


def test_imports_follow_the_layers():
    assert violations(ROOT) == []


def test_no_import_cycles():
    assert cycles(ROOT) == []


def test_the_graph_sees_function_level_imports():
    # orchestrate/sweep.py imports the report inside a function: the walk must see it.
    assert "harness.report" in graph(ROOT)["harness.orchestrate.sweep"]


def _scratch_copy(tmp_path):
    for package in ("harness", "strategies"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def _append(path, line):
    path.write_text(path.read_text() + f"\n\ndef _bad():\n    {line}\n")


def test_a_bad_import_in_a_scratch_copy_is_caught(tmp_path):
    root = _scratch_copy(tmp_path)
    _append(root / "harness/report/render.py", "import harness.engine.trainer  # noqa")
    _append(root / "harness/orchestrate/plan.py", "from harness.engine import worker  # noqa")
    _append(root / "harness/core/units.py", "from harness.model import GPT  # noqa")
    problems = violations(root)
    assert any("harness.report.render imports harness.engine.trainer" in p for p in problems)
    assert any("harness.orchestrate.plan imports harness.engine.worker" in p for p in problems)
    assert any("harness.core.units imports harness.model" in p for p in problems)


def test_a_cycle_in_a_scratch_copy_is_caught(tmp_path):
    root = _scratch_copy(tmp_path)
    _append(root / "harness/core/serialize.py", "from harness.core import results  # noqa")
    assert ["harness.core.results", "harness.core.serialize"] in cycles(root)


def test_the_report_loads_without_torch():
    code = "import sys; import harness.report.render, harness.report.table; print('torch' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"


@pytest.mark.slow
def test_a_plugin_adds_a_strategy_source_metric_and_chart_through_the_registries_alone(tmp_path):
    from harness.core.results import load_result
    from tests.conftest import harness_cli

    env = {
        "HARNESS_PLUGINS": "toy_harness_plugin",
        "PYTHONPATH": f"{ROOT / 'tests/fixtures/toy_plugin'}:{ROOT}",
    }
    listed = harness_cli("list", env=env)
    assert listed.returncode == 0 and "toy_sgd" in listed.stdout and "plain SGD" in listed.stdout

    runs = tmp_path / "runs"
    args = ("--preset", "tiny", "--budget", "2s", "--data", "toy:3", "--runs-dir", str(runs), "--quiet")
    bench = harness_cli("bench", "--strategy", "toy_sgd+act_ckpt", *args, env=env)
    assert bench.returncode == 0, bench.stderr
    assert "toy steps/s" in bench.stdout  # the terminal summary has the toy metric
    (run_dir,) = runs.iterdir()
    result = load_result(run_dir / "result.json")
    assert result.strategy["name"] == "toy_sgd+act_ckpt" and result.data["kind"] == "toy"
    s = result.summary
    assert s.toy_steps_per_s == s.steps / s.train_s > 0
    assert s.floor_loss == 0.0  # the toy source's own floor: its tokens, not the synthetic ones, were used

    page = harness_cli("report", "--runs", str(runs), "--out", str(tmp_path / "index.html"), env=env)
    assert page.returncode == 0, page.stderr
    html = (tmp_path / "index.html").read_text()
    assert "<th>toy steps/s</th>" in html and 'alt="toy chart"' in html
    assert "SGD instead of AdamW" in html
    assert "toy_steps_per_s" in (tmp_path / "comparison.csv").read_text().splitlines()[0]


def _sizes(root):
    """Every module, class and function of the harness and the strategies over its size limit."""
    import ast

    limits = {ast.FunctionDef: 50, ast.AsyncFunctionDef: 50, ast.ClassDef: 150}
    over = []
    for package in ("harness", "strategies"):
        for path in sorted((root / package).rglob("*.py")):
            text = path.read_text()
            if len(text.splitlines()) > 300:
                over.append(f"{path.relative_to(root)}: {len(text.splitlines())} lines")
            for node in ast.walk(ast.parse(text)):
                limit = limits.get(type(node))
                if limit and node.end_lineno - node.lineno + 1 > limit:
                    over.append(f"{path.relative_to(root)}:{node.lineno} {node.name}")
    return over


def test_no_module_class_or_function_is_over_its_size():
    """One job per module (300 lines), classes under 150 lines, functions under 50."""
    assert _sizes(ROOT) == []


def test_the_size_rule_sees_a_long_function(tmp_path):
    root = _scratch_copy(tmp_path)
    body = "".join(f"    x{i} = {i}\n" for i in range(60))
    (root / "harness/core/long.py").write_text(f"def long():\n{body}")
    assert _sizes(root) == ["harness/core/long.py:1 long"]
