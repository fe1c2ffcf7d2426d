"""The command line as a user meets it: real child processes, exit statuses, one-line errors."""

import json
import logging
import os

import pytest

from harness.core.metric_rows import read_metrics
from harness.core.results import load_result
from harness.metrics.rapl import RaplMeter
from strategies.library_logs import DROPPED, quiet_library_logs
from tests.conftest import ROOT, harness_cli, harness_main


def assert_one_line_error(proc, *fragments):
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in proc.stderr + proc.stdout
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--strategy", "fsdp"], ["unknown strategy 'fsdp'", "amp", "zero_offload"]),
        (["--strategy", "adam8bit+zero_offload"], ["cannot combine", "owns the optimizer"]),
        (["--preset", "gpt-175b"], ["unknown preset", "gpt2-124m"]),
        (["--budget", "2x"], ["malformed budget", "30s"]),
        (["--budget", "0s"], ["budget"]),
        (["--set", "learning_rate=1"], ["unknown override key 'learning_rate'", "lr"]),
        (["--set", "lr=fast"], ["expected float"]),
        (["--set", "n_layer=1.5"], ["expected int"]),
        (["--data", "/no/such/corpus.txt"], ["does not exist"]),
        (["--micro-batch", "3"], ["does not divide", "16"]),
        (["--micro-batch", "lots"], ["positive integer"]),
        (["--device", "tpu"], ["device must be one of auto, cuda, cpu", "'tpu'"]),
        (["--frobnicate"], ["unrecognized arguments"]),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path, args, fragments):
    proc = harness_main("bench", "--preset", "tiny", "--runs-dir", str(tmp_path), *args)
    assert_one_line_error(proc, *fragments)
    assert not any(tmp_path.iterdir())  # nothing was started


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--frobnicate"], "unrecognized arguments: --frobnicate (see `harness --help`)"),
        (["--set", "lr=nan"], "lr=nan is out of range: lr must be a number in (0, 10]"),
        (["--strategy", "fsdp"], "unknown strategy 'fsdp': choose from amp, adam8bit, zero_offload"),
    ],
)
def test_the_entry_point_itself_refuses_in_one_line(tmp_path, args, says):
    """The refusals above, through `python -m harness` in a child process: the interpreter prints nothing
    more (no traceback, no warning) and the exit status is the command's."""
    proc = harness_cli("bench", "--preset", "tiny", "--runs-dir", str(tmp_path), *args)
    assert_one_line_error(proc, says)
    assert not any(tmp_path.iterdir())


def test_resume_without_a_checkpoint_is_one_line(tmp_path):
    proc = harness_main("bench", "--preset", "tiny", "--resume", "--runs-dir", str(tmp_path))
    assert_one_line_error(proc, "nothing to resume")


def test_list_shows_strategies_and_presets():
    proc = harness_cli("list")
    assert proc.returncode == 0
    for name in ("amp", "adam8bit", "zero_offload", "act_ckpt", "tiny", "gpt2-124m", "gpt-6.7b"):
        assert name in proc.stdout
    assert "124.5M params" in proc.stdout


@pytest.mark.slow
def test_env_is_a_doctor():
    proc = harness_cli("env", "--json")
    assert proc.returncode == 0, proc.stderr
    payload = json.loads(proc.stdout)
    assert payload["machine"]["cpu_cores"] >= 1
    assert payload["machine"]["libraries"]["torch"].startswith("2.13.0")
    experimental = "ready (experimental: not yet verified on a GPU)"
    assert payload["strategies"] == {
        **dict.fromkeys(("amp", "adam8bit", "zero_offload", "zero_offload_fp32acc", "act_ckpt"), "ready"),
        **dict.fromkeys(
            ("ao_adam8bit", "ao_adam4bit", "fsdp2_offload", "sel_ckpt", "act_offload"), experimental
        ),
        **dict.fromkeys(("paged_adam8bit", "ao_cpu_offload", "fp8"), "needs a CUDA device"),
        "fused_ce": "missing liger_kernel (pip install '.[gpu]' on a CUDA machine (the image has it))",
    }
    assert payload["checks"]["ao_adam8bit"][0]["ok"] and payload["checks"]["fsdp2_offload"][0]["ok"]
    assert payload["checks"]["zero_offload"][0]["ok"] and payload["checks"]["adam8bit"][0]["ok"]
    shm = payload["checks"]["zero_offload"][1]  # DeepSpeed's CPU backend needs its comm op too
    assert shm["name"] == "deepspeed shm_comm op (CPU backend)" and shm["ok"], shm
    assert payload["checks"]["adam8bit"][0]["detail"] == "CPU library"  # no GPU here
    host_energy = RaplMeter().domains  # the RAPL counters this machine lets the harness read
    assert payload["machine"]["host_energy_domains"] == host_energy
    text = harness_cli("env", "--strategies", "amp,adam8bit+act_ckpt")  # the same doctor, as text
    assert text.returncode == 0 and "deepspeed cpu_adam op" in text.stdout and "no CUDA device" in text.stdout
    assert ("J/token will be GPU only" in text.stdout) == (not host_energy)
    checks = [line.split(":")[0] for line in text.stdout.splitlines() if line.startswith(("ok ", "BAD"))]
    assert len(checks) == len(set(checks)) >= 4  # each check once, though strategies share them
    assert "kernels-community" not in text.stderr and "Enum subclass" not in text.stderr


@pytest.mark.parametrize("logger", sorted(DROPPED))
def test_library_lines_that_concern_no_user_are_dropped_at_their_source_and_no_other(logger, caplog):
    quiet_library_logs()
    log = logging.getLogger(logger)
    log.warning("%s: No module named 'kernels'", DROPPED[logger])
    log.warning("another warning of the same library")
    assert [r.getMessage() for r in caplog.records] == ["another warning of the same library"]


def test_env_exits_non_zero_when_a_requested_strategy_cannot_run():
    from tests.test_sweep_parity import BROKEN_BNB

    env = {"PYTHONPATH": os.pathsep.join([BROKEN_BNB, str(ROOT)])}
    proc = harness_cli("env", "--strategies", "amp,adam8bit", env=env)
    assert proc.returncode == 1, proc.stdout
    assert "cannot run adam8bit: bitsandbytes native library import fails" in proc.stdout
    assert "simulated broken install" in proc.stdout


def test_bench_writes_the_three_run_files(tmp_path):
    proc = harness_cli(
        "bench", "--strategy", "amp", "--preset", "tiny", "--budget", "3s", "--runs-dir", str(tmp_path)
    )
    assert proc.returncode == 0, proc.stderr
    (run_dir,) = tmp_path.iterdir()
    assert {p.name for p in run_dir.iterdir()} >= {"result.json", "metrics.jsonl", "run.log", "config.json"}
    result = load_result(run_dir / "result.json")
    assert result.status == "ok" and result.run_id == run_dir.name
    metrics = read_metrics(run_dir / "metrics.jsonl")
    last_step_s = [row for row in metrics if row["kind"] == "train"][-1]["step_s"]
    assert 3.0 <= result.summary.train_s < 3.0 + last_step_s  # the budget, plus at most its last step
    assert {row["kind"] for row in metrics} == {"train", "eval"}
    assert "run " in (run_dir / "run.log").read_text()
    assert "tokens/s" in proc.stdout and "val loss" in proc.stdout
    # Not a terminal: progress arrives as plain lines, with the budget left.
    assert "left" in proc.stderr and "\r" not in proc.stderr
