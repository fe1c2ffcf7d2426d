"""Every figure read back is checked before it counts: poisoned calibrations and host-step timings are set
aside (named), impossible figures are never starred, a damaged answer or capacity document beside a
report is a warning, `harness runs` reads text where a number belongs without crashing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness.capacity import host_optimizer
from harness.capacity.calibration import read_calibrations
from harness.core.results import RESULT_FILE
from harness.orchestrate.runs_state import run_state
from harness.report.load import load_runs
from harness.report.table import base_columns, comparison, run_frame
from tests.report_fixtures import write_run

ROOT = Path(__file__).resolve().parent.parent
PUBLISHED_AMP = next((ROOT / "docs/results/h100/runs").glob("*-amp-gpt2-124m-*"))


def published_run(tmp: Path) -> tuple[Path, Path]:
    """(a runs folder, the published H100 amp run copied into it)."""
    run = tmp / "runs" / PUBLISHED_AMP.name
    shutil.copytree(PUBLISHED_AMP, run)
    return run.parent, run


def _poisoned_run(tmp_path: Path, value) -> Path:
    """The published H100 amp run, with its steady tokens/s replaced by `value` (as JSON writes it)."""
    folder, run = published_run(tmp_path)
    text = (run / RESULT_FILE).read_text()
    payload = json.loads(text)
    payload["summary"]["steady_tokens_per_s"] = "@@"
    (run / RESULT_FILE).write_text(json.dumps(payload).replace('"@@"', value))
    return folder


def test_the_published_runs_calibrate_and_none_is_set_aside():
    calibrations, set_aside = read_calibrations([PUBLISHED_AMP.parent])
    assert "amp" in {c.strategy for c in calibrations} and set_aside == []


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("2002528.0", "above the NVIDIA H100 80GB HBM3's dense peak"),  # 4x the published speed
        ("1e12", "above the NVIDIA H100 80GB HBM3's dense peak"),
        ("1e-300", "slower than any machine"),
        ('"nan"', "str where a number belongs"),
        ('"1e400"', "str where a number belongs"),
        ("-500632.0", "is below 0"),
    ],
)
def test_a_poisoned_calibration_is_set_aside_and_named(tmp_path, value, why):
    folder = _poisoned_run(tmp_path, value)
    calibrations, set_aside = read_calibrations([folder])
    assert calibrations == []
    (line,) = set_aside
    assert str(folder) in line and "steady_tokens_per_s" in line and why in line, line


def test_a_non_finite_calibration_is_set_aside(tmp_path):
    folder = _poisoned_run(tmp_path, "Infinity")
    calibrations, set_aside = read_calibrations([folder])
    assert calibrations == [] and "steady_tokens_per_s" in set_aside[0]


def _timing(value) -> dict:
    return {"optimizer": "CPU AdamW", "seconds_per_param": value, "params": 8, "steps": 5, "threads": 1,
            "source": "benchmarked", "error": None, "measured_at": "2026-12-01T00:00:00+00:00"}  # fmt: skip


class _Executor:
    name = "fake"
    requires = ()

    class host_step:  # the executor attribute the module reads
        optimizer = "CPU AdamW"


@pytest.mark.parametrize("value", [-1e-6, float("inf"), "3e-9", float("nan"), 1e300, 0])
def test_a_damaged_host_step_timing_is_measured_again(tmp_path, monkeypatch, value):
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(host_optimizer, "machine_key", lambda e: "fake | cpu")
    fresh = host_optimizer.HostTiming("CPU AdamW", 4e-9, 8, 5, 1, "benchmarked now")
    monkeypatch.setattr(host_optimizer, "time_host_step", lambda e: fresh)
    (tmp_path / host_optimizer.CACHE_FILE).write_text(json.dumps({"fake | cpu": _timing(value)}))
    timing = host_optimizer.host_step_timing(_Executor)
    assert timing.seconds_per_param == 4e-9
    assert "seconds_per_param" in timing.set_aside and host_optimizer.CACHE_FILE in timing.set_aside
    kept = json.loads((tmp_path / host_optimizer.CACHE_FILE).read_text())["fake | cpu"]
    assert kept["seconds_per_param"] == 4e-9 and kept["set_aside"] is None  # the good one replaced it


def test_a_sound_host_step_timing_is_read_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(host_optimizer, "machine_key", lambda e: "fake | cpu")
    monkeypatch.setattr(host_optimizer, "time_host_step", lambda e: pytest.fail("measured again"))
    (tmp_path / host_optimizer.CACHE_FILE).write_text(json.dumps({"fake | cpu": _timing(3e-9)}))
    timing = host_optimizer.host_step_timing(_Executor)
    assert timing.seconds_per_param == 3e-9 and timing.set_aside is None


@pytest.mark.parametrize(
    ("figure", "value", "why"),
    [
        ("steady_tokens_per_s", 1e308, "dense peak"),
        ("peak_allocated_gib", -3.0, "below 0"),
        ("final_val_loss", -1.0, "below 0"),
        ("gap_to_floor", -0.5, "below the data's floor"),
        ("peak_reserved_gib", 500.0, "more than the 79.2 GiB the GPU has"),
        ("final_val_loss", 0.5, "below the data's floor of 1.3"),
        ("mfu", 1.7, "above 1"),
    ],
)
def test_an_impossible_figure_is_set_aside_named_and_never_starred(tmp_path, figure, value, why):
    good = {"flops_per_token": 855383040, "steady_tokens_per_s": 400000.0, "peak_allocated_gib": 50.0,
            "peak_reserved_gib": 60.0, "final_val_loss": 3.5, "gap_to_floor": 2.2, "mfu": 0.3}  # fmt: skip
    env = {"gpu_memory_gib": 79.2}
    write_run(tmp_path, "good", "amp", env=env, **good)
    write_run(tmp_path, "bad", "adam8bit", env=env, **{**good, figure: value})
    runs, warnings = load_runs(tmp_path)
    bad = next(r for r in runs if r.result.run_id == "bad")
    assert bad.result.summary[figure] is None
    (line,) = [w for w in warnings if f"summary.{figure}" in w and "bad" in w]
    assert why in line, line
    columns = base_columns()
    table = comparison(run_frame(runs, columns), columns)
    starred = f"{figure}_best"
    assert starred not in table or not table.loc["adam8bit", starred]


def test_a_sound_run_keeps_every_figure(tmp_path):
    write_run(tmp_path, "good", "amp", flops_per_token=855383040, steady_tokens_per_s=500000.0,
              peak_allocated_gib=50.0, final_val_loss=3.0, gap_to_floor=-0.01, mfu=0.43,
              env={"gpu_memory_gib": 79.2})  # fmt: skip
    (run,), warnings = load_runs(tmp_path)
    assert warnings == []
    assert (
        run.result.summary["steady_tokens_per_s"] == 500000.0 and run.result.summary["gap_to_floor"] == -0.01
    )


def test_damaged_metric_lines_are_counted_in_a_warning(tmp_path):
    run = write_run(tmp_path, "a", "amp")
    row = {"kind": "train", "step": 1, "tokens": 4096, "train_s": 0.5, "loss": 6.0}
    (run / "metrics.jsonl").write_bytes(
        json.dumps(row).encode()
        + b"\n\xff\xfe not utf-8\n[1, 2]\n"
        + json.dumps({**row, "train_s": "soon"}).encode()
        + b"\n"
    )
    (loaded,), warnings = load_runs(tmp_path)
    assert len(loaded.metrics) == 1
    assert any("2 damaged lines" in w for w in warnings), warnings
    assert any("1 malformed rows" in w for w in warnings), warnings


def _config(run: Path, budget) -> None:
    (run / "config.json").write_text(
        json.dumps({"strategy": "amp", "recipe": {"preset": "tiny", "budget_s": budget}})
    )


def test_runs_reads_text_where_a_number_belongs(tmp_path):
    run = write_run(tmp_path, "a", "amp", train_s="long", tokens_per_s="fast")
    _config(run, "an hour")
    (run / "metrics.jsonl").write_text(
        json.dumps({"kind": "train", "step": 3, "tokens": 9, "train_s": "1.5", "loss": 6.0}) + "\n"
    )
    state = run_state(run)
    assert state.state == "ok" and state.train_s is None and state.tokens_per_s is None
    assert state.budget_s is None


def test_runs_sets_aside_a_figure_and_keeps_the_run(tmp_path):
    run = write_run(tmp_path, "a", "amp", tokens_per_s=-5.0, steps=7)
    _config(run, 60)
    (run / "metrics.jsonl").unlink(missing_ok=True)  # no row to fall back on
    state = run_state(run)
    assert state.state == "ok" and state.tokens_per_s is None and state.steps == 7 and state.budget_s == 60


def test_runs_names_an_unknown_status_instead_of_calling_it_an_error(tmp_path):
    run = write_run(tmp_path, "a", "amp")
    _config(run, 60)
    payload = json.loads((run / RESULT_FILE).read_text())
    (run / RESULT_FILE).write_text(json.dumps({**payload, "status": "sideways"}))
    state = run_state(run)
    assert state.state == "unreadable" and "unknown status 'sideways'" in state.detail


@pytest.mark.parametrize("stopped", [False, True])
def test_an_answer_stopped_while_its_best_trains_is_recorded_as_stopped(tmp_path, monkeypatch, stopped):
    """`answer --train` stopped while the best trains: the document says so, and the command exits 130."""
    from types import SimpleNamespace

    from harness.core.results import RunResult, Summary
    from harness.orchestrate import backtest, sweep

    status = "interrupted" if stopped else "ok"
    result = RunResult("r1", status, {"name": "amp"}, {}, "fp", summary=Summary(final_val_loss=5.0))
    monkeypatch.setattr(sweep, "run_plan", lambda plan: sweep.Outcome(results=[result], stopped=stopped))
    plan = SimpleNamespace(
        budget="5s",
        data="synthetic",
        runs_dir=tmp_path / "runs",
        quiet=True,
        out=tmp_path / "answer.json",
        top=3,
    )
    inputs = SimpleNamespace(target=SimpleNamespace(kind="cpu", cap=lambda size: None))
    best = {"strategy": "amp", "preset": "tiny"}
    candidate = {**best, "estimated_loss": {"value": 5.1, "source": "law"}, "p_best": 0.6}
    other = {
        "strategy": "amp",
        "preset": "small",
        "estimated_loss": {"value": 5.2, "source": "law"},
        "p_best": 0.4,
    }
    document = {"sizes": [{"best": best, "gpu_memory_gib": 24.0, "candidates": [other, candidate]}]}
    trained = backtest.backtest(plan, inputs, document)
    assert [t["preset"] for t in trained["trained"]] == (["tiny"] if stopped else ["tiny", "small"])
    assert trained["trained"][0]["status"] == status and bool(trained.get("stopped")) is stopped
    assert json.loads(plan.out.read_text()).get("stopped", False) is stopped
    from harness.cli.text.answer import format_answer

    text = format_answer({**trained, "method": {"loss": "law"}, "sizes": []})
    assert ("stopped while training its candidates" in text) is stopped


@pytest.mark.parametrize("rss", ["lots", -2.0, 1e308, 4096.0])
def test_a_poisoned_host_memory_figure_never_sizes_a_run(tmp_path, rss):
    """Admission sizes a run by what an earlier run of its configuration measured: a text, a negative or
    a figure above the host's RAM (64 GiB here) is not a measurement, so the memory model's figure is used."""
    from harness.orchestrate.host_memory import earlier_results, host_need_bytes, predicted_need_bytes
    from tests.conftest import tiny_config

    cfg = tiny_config("amp")
    run = write_run(tmp_path, "a", "amp", lifetime_host_rss_gib=rss, env={"host_ram_gib": 64.0})
    payload = json.loads((run / RESULT_FILE).read_text())
    payload["recipe"].update(model=vars(cfg.recipe.model), global_batch_tokens=cfg.recipe.global_batch_tokens)
    payload["settings"]["device"] = "cpu"
    (run / RESULT_FILE).write_text(json.dumps(payload))
    assert host_need_bytes(cfg, earlier_results(tmp_path)) == predicted_need_bytes(cfg)


def test_a_capacity_stopped_while_it_confirms_ends_as_a_stop_not_as_a_failed_size(monkeypatch, tmp_path):
    """A stopped confirming run was recorded as an error and the search went on; it ends the command (the
    command line turns the stop into exit 130)."""
    from harness.core.results import RunResult
    from harness.orchestrate import capacity, sweep

    result = RunResult("r1", "interrupted", {"name": "amp"}, {}, "fp")
    monkeypatch.setattr(sweep, "run_plan", lambda plan: sweep.Outcome(results=[result], stopped=True))
    plan = capacity.CapacityPlan(("amp",), (24.0,), out=tmp_path / "capacity.json", quiet=True)
    probe = capacity.probe_with_runs(plan, "amp", 24.0)
    with pytest.raises(KeyboardInterrupt):
        probe("tiny")


@pytest.mark.parametrize(
    ("name", "said"),
    [("nope", "strategy 'nope' is not one this harness knows"), (None, None)],
)
def test_a_run_of_a_strategy_no_one_knows_teaches_nothing(tmp_path, name, said):
    """A published run renamed to a strategy this harness does not know is named and not learnt from; one
    with no name at all is not a calibrating run (nothing to say)."""
    folder, run = published_run(tmp_path)
    payload = json.loads((run / RESULT_FILE).read_text())
    payload["strategy"]["name"] = name
    (run / RESULT_FILE).write_text(json.dumps(payload))
    calibrations, set_aside = read_calibrations([folder])
    assert calibrations == []
    assert set_aside == ([] if said is None else [f"not learnt from: {run / RESULT_FILE}: {said}"])


def test_a_damaged_calibrating_run_is_named_once(tmp_path):
    folder, run = published_run(tmp_path)
    (run / RESULT_FILE).write_text("{not json")
    calibrations, (line,) = read_calibrations([folder])
    assert calibrations == [] and line.startswith(f"not learnt from: {run / RESULT_FILE}: unreadable")
    assert line.count(str(run / RESULT_FILE)) == 1


def test_a_speed_whose_recomputation_passes_the_peak_is_not_learnt_from(tmp_path):
    """An act_ckpt run at 90% of the H100's peak in model FLOPs: its recomputed forward takes it past the
    peak, which only the calibration (counting executed FLOPs) can see."""
    folder, run = published_run(tmp_path)
    payload = json.loads((run / RESULT_FILE).read_text())
    flops = payload["summary"]["flops_per_token"]
    payload["strategy"]["name"] = "act_ckpt"
    payload["summary"].update(steady_tokens_per_s=0.9 * 989.5e12 / flops, mfu=0.9)
    (run / RESULT_FILE).write_text(json.dumps(payload))
    calibrations, (line,) = read_calibrations([folder])
    assert calibrations == [] and "above the NVIDIA H100 80GB HBM3's dense peak" in line
    assert "steady_tokens_per_s is impossible" in line


def test_a_run_with_no_steady_speed_is_passed_over_without_a_word(tmp_path):
    folder, run = published_run(tmp_path)
    payload = json.loads((run / RESULT_FILE).read_text())
    payload["summary"]["steady_tokens_per_s"] = None  # measured none: nothing to learn, nothing wrong
    (run / RESULT_FILE).write_text(json.dumps(payload))
    assert read_calibrations([folder]) == ([], [])
