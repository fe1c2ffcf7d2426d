"""The comparison table's arithmetic, case by case: a column per target loss in a reader's order, each
column aggregated on its own (median, spread, MLPerf's trimmed mean), rows for strategies whose every run
failed, ratios only against a baseline that finished, and best marks only where they mean something."""

import math

import pandas as pd
import pytest

from harness.report.load import load_runs
from harness.report.table import aggregate, base_columns, comparison, run_frame, target_columns
from tests.report_fixtures import write_run


def table_of(runs_dir):
    runs, _ = load_runs(runs_dir)
    columns = [*base_columns(), *target_columns(runs)]
    return run_frame(runs, columns), comparison(run_frame(runs, columns), columns), columns


def test_a_column_per_target_loss_the_lowest_target_last_and_a_named_one_first(tmp_path):
    write_run(tmp_path, "a", "amp", time_to_target_s={"3.5": 10.0, "3.3": None, "x": 1.0}, epochs=2.5,
              data_tokens_per_s=5e5)  # fmt: skip
    write_run(tmp_path, "b", "adam8bit", time_to_target_s={"3.5": 12.0, "3.3": 20.0})
    frame, table, columns = table_of(tmp_path)
    targets = [c for c in columns if c.key.startswith("time_to_target_s:")]
    assert [c.key for c in targets] == ["time_to_target_s:3.5", "time_to_target_s:3.3", "time_to_target_s:x"]
    assert [c.label for c in targets][:2] == ["time to loss 3.5 (s)", "time to loss 3.3 (s)"]
    assert all(c.better == "low" and c.fmt == ".1f" and c.ratio is True for c in targets)
    at = frame.set_index("run_id").loc
    t35, t33, tx = (c.key for c in targets)
    assert at["a", t35] == 10.0 and math.isnan(at["a", t33]) and at["a", tx] == 1.0
    assert at["b", t33] == 20.0 and math.isnan(at["b", tx])
    assert table.loc["amp", f"{t35}_best"] and not table.loc["adam8bit", f"{t35}_best"]
    assert at["a", "train_s"] == 60.0 and at["a", "epochs"] == 2.5 and at["a", "data_tokens_per_s"] == 5e5


def test_each_column_is_aggregated_on_its_own_with_its_spread_and_the_trimmed_mean_from_three_runs():
    assert aggregate(pd.Series([5.0])) == {"": 5.0, "_min": None, "_max": None, "_trimmed_mean": None}
    assert aggregate(pd.Series([], dtype="float64")) == {"": None, "_min": None, "_max": None,
                                                        "_trimmed_mean": None}  # fmt: skip
    assert aggregate(pd.Series([4.0, 2.0, float("nan")])) == {"": 3.0, "_min": 2.0, "_max": 4.0,
                                                              "_trimmed_mean": None}  # fmt: skip
    assert aggregate(pd.Series([10.0, 1.0, 2.0, 3.0])) == {"": 2.5, "_min": 1.0, "_max": 10.0,
                                                           "_trimmed_mean": 2.5}  # fmt: skip


def test_a_strategy_whose_every_run_failed_has_a_row_with_its_status_and_no_figures(tmp_path):
    write_run(tmp_path, "a", "amp", tokens_per_s=1000.0)
    write_run(tmp_path, "b", "act_ckpt", status="oom", error="out of memory")
    write_run(tmp_path, "c", "zero_offload", tokens_per_s=500.0)
    write_run(tmp_path, "d", "zero_offload", status="error", error="boom")  # beside an ok one: not a row
    _, table, _ = table_of(tmp_path)
    assert list(table.index) == ["amp", "zero_offload", "act_ckpt"]  # the baseline, the finished, the rest
    failed = table.loc["act_ckpt"]
    assert failed["status"] == "oom" and failed["runs"] == 0 and failed["with_neighbours"] == 0
    assert pd.isna(failed["tokens_per_s"]) and not failed["tokens_per_s_best"]
    assert table.loc["zero_offload", "runs"] == 1 and table.loc["zero_offload", "status"] == "ok"
    assert table.loc["zero_offload", "tokens_per_s_ratio"] == 0.5


def test_no_ratio_against_a_baseline_that_failed_or_measured_zero(tmp_path):
    write_run(tmp_path, "a", "amp", status="oom")
    write_run(tmp_path, "b", "adam8bit", tokens_per_s=900.0)
    _, table, _ = table_of(tmp_path)
    assert table.loc["adam8bit", "tokens_per_s_ratio"] is None
    zero = tmp_path / "zero"
    write_run(zero, "a", "amp", tokens_per_s=1000.0, joules_per_token=0.0)
    write_run(zero, "b", "adam8bit", tokens_per_s=900.0, joules_per_token=0.1)
    _, table, _ = table_of(zero)
    assert table.loc["adam8bit", "tokens_per_s_ratio"] == pytest.approx(0.9)
    assert table.loc["adam8bit", "joules_per_token_ratio"] is None  # no ratio to a zero


def test_a_complete_only_column_is_starred_only_when_every_finished_strategy_has_it(tmp_path):
    write_run(tmp_path, "a", "amp", total_joules_per_token=0.5, tokens_per_s=1.0)
    write_run(tmp_path, "b", "adam8bit", tokens_per_s=2.0)  # its host energy could not be read
    _, table, _ = table_of(tmp_path)
    assert not table["total_joules_per_token_best"].any()  # a partial column marks no best
    assert table.loc["adam8bit", "tokens_per_s_best"]
    both = tmp_path / "both"
    write_run(both, "a", "amp", total_joules_per_token=0.5)
    write_run(both, "b", "adam8bit", total_joules_per_token=0.4)
    _, table, _ = table_of(both)
    assert (
        table.loc["adam8bit", "total_joules_per_token_best"]
        and not table.loc["amp", "total_joules_per_token_best"]
    )


def test_rows_keep_the_order_strategies_first_ran_in(tmp_path):
    for i, name in enumerate(["zero_offload", "act_ckpt", "adam8bit"]):
        write_run(tmp_path, f"r{i}", name, tokens_per_s=1.0, started=f"2026-11-0{i + 1}T00:00:00+00:00")
    _, table, _ = table_of(tmp_path)
    assert list(table.index) == ["act_ckpt", "adam8bit", "zero_offload"]  # no baseline: by name
