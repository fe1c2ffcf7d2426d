"""Sweeps and parity checks through the real command line (a child process per run)."""

import json
import os

import pytest

from harness.orchestrate.parity import compare, parity_bound
from harness.report.load import load_runs
from tests.conftest import ROOT, harness_cli

BROKEN_BNB = str(ROOT / "tests" / "fixtures" / "broken_bitsandbytes")


@pytest.mark.slow
def test_sweep_survives_a_broken_library_and_records_why(tmp_path):
    env = {"PYTHONPATH": os.pathsep.join([BROKEN_BNB, str(ROOT)])}
    proc = harness_cli(
        "sweep",
        "--strategies",
        "amp,adam8bit,act_ckpt",
        "--preset",
        "tiny",
        "--budget",
        "2s",
        "--device",
        "cpu",
        "--runs-dir",
        str(tmp_path / "runs"),
        "--report",
        str(tmp_path / "index.html"),
        env=env,
    )
    assert proc.returncode == 1, proc.stderr  # one run ended in error
    runs, warnings = load_runs(tmp_path / "runs")
    assert warnings == []
    status = {run.strategy: run.result for run in runs}
    assert status["amp"].status == "ok" and status["act_ckpt"].status == "ok"
    assert status["adam8bit"].status == "error"
    assert "simulated broken install" in status["adam8bit"].error
    assert status["amp"].recipe_fingerprint == status["act_ckpt"].recipe_fingerprint
    html = (tmp_path / "index.html").read_text()
    assert "simulated broken install" in html and "act_ckpt" in html


@pytest.mark.slow
def test_parity_on_cpu(tmp_path):
    proc = harness_cli(
        "parity",
        "--strategies",
        "amp,act_ckpt,zero_offload,adam8bit",
        "--steps",
        "20",
        "--preset",
        "tiny",
        "--device",
        "cpu",
        "--runs-dir",
        str(tmp_path / "runs"),
        "--out",
        str(tmp_path / "parity"),
        "--quiet",
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (record_path,) = (tmp_path / "parity").iterdir()
    record = json.loads(record_path.read_text())
    rows = {row["strategy"]: row for row in record["rows"]}
    assert record["precision"] == "fp32" and record["steps"] == 20
    assert all(len(row["losses"]) == 20 and row["status"] == "ok" for row in rows.values())
    # Same math, different execution: within fp32 noise of amp at every step.
    for name in ("act_ckpt", "zero_offload"):
        assert rows[name]["max_rel_diff"] <= 1e-5 and rows[name]["within_bound"]
    # 8-bit state changes the update: a looser, stated bound — but not zero difference.
    assert rows["adam8bit"]["bound"] == 1e-2
    assert 0 < rows["adam8bit"]["max_rel_diff"] <= 1e-2
    assert rows["amp"]["losses"][-1] < rows["amp"]["losses"][0] - 1.0  # it did learn
    assert "within" in proc.stdout and "OUTSIDE" not in proc.stdout


def test_compare_and_bounds():
    assert compare([2.0, 1.0], [2.0, 1.01]) == (pytest.approx(0.01), pytest.approx(0.01))
    with pytest.raises(ValueError, match="length"):
        compare([1.0, 2.0], [1.0])
    assert parity_bound("act_ckpt", "fp32") < parity_bound("adam8bit", "fp32")
    assert parity_bound("adam8bit+act_ckpt", "bf16") == 5e-2


def test_a_sweep_with_repeats_reports_each_columns_own_median(tmp_path):
    import statistics

    proc = harness_cli(
        "sweep",
        "--strategies",
        "amp",
        "--repeats",
        "3",
        "--preset",
        "tiny",
        "--max-steps",  # what the aggregation needs: three finished runs (the budget is tested elsewhere)
        "4",
        "--device",
        "cpu",
        "--runs-dir",
        str(tmp_path / "runs"),
        "--report",
        str(tmp_path / "index.html"),
        "--quiet",
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr
    runs, _ = load_runs(tmp_path / "runs")
    assert len(runs) == 3 and all(r.result.status == "ok" for r in runs)
    (row,) = json.loads((tmp_path / "comparison.json").read_text())
    assert row["strategy"] == "amp" and row["runs"] == 3
    for key in ("tokens_per_s", "steady_tokens_per_s", "final_val_loss", "val_ppl", "peak_host_rss_gib"):
        values = [r.result.summary[key] for r in runs]
        assert row[key] == pytest.approx(statistics.median(values)), key
        assert (row[f"{key}_min"], row[f"{key}_max"]) == (
            pytest.approx(min(values)),
            pytest.approx(max(values)),
        )
