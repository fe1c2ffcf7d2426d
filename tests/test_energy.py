"""Energy: the host's RAPL counters (a fake sysfs tree), the figures per part, and what the report marks."""

from pathlib import Path

import pytest

from harness.metrics.definitions import RunMeasurements, compute_summary
from harness.metrics.rapl import RaplMeter
from harness.report.groups import build_groups
from harness.report.load import load_runs
from harness.report.notes import group_notes
from tests.report_fixtures import write_run

RANGE = 1_000_000  # µJ: where the fake counters wrap


def zone(root: Path, name: str, label: str, energy_uj: int) -> Path:
    path = root / name
    path.mkdir(parents=True)
    (path / "name").write_text(f"{label}\n")
    (path / "energy_uj").write_text(f"{energy_uj}\n")
    (path / "max_energy_range_uj").write_text(f"{RANGE}\n")
    return path


def test_rapl_counts_packages_and_dram_once_and_survives_a_wrap(tmp_path):
    package = zone(tmp_path, "intel-rapl:0", "package-0", 900_000)
    zone(tmp_path, "intel-rapl:0:0", "core", 10)  # inside the package: not added again
    dram = zone(tmp_path, "intel-rapl:0:1", "dram", 5_000)
    zone(tmp_path, "intel-rapl:1", "psys", 0)  # the whole platform: overlaps the rest
    meter = RaplMeter(tmp_path)
    assert meter.domains == ["intel-rapl:0", "intel-rapl:0:1"]
    assert meter.joules() == 0.0
    (package / "energy_uj").write_text("100000\n")  # wrapped: 900,000 -> 1,000,000 = 0 -> 100,000
    (dram / "energy_uj").write_text("55000\n")
    assert meter.joules() == pytest.approx((200_000 + 50_000) / 1e6)


def test_unreadable_or_absent_counters_give_no_host_figure(tmp_path):
    assert RaplMeter(tmp_path / "absent").joules() is None
    package = zone(tmp_path, "intel-rapl:0", "package-0", 0)
    (package / "energy_uj").unlink()  # as for a user that may not read it: nothing to read
    meter = RaplMeter(tmp_path)
    assert not meter.available and meter.joules() is None


def test_energy_per_part_and_a_total_only_where_both_were_read():
    both = compute_summary(RunMeasurements(tokens=1000, energy_j={"gpu": 300.0, "host": 200.0}))
    assert both["joules_per_token"] == pytest.approx(0.3)
    assert both["host_joules_per_token"] == pytest.approx(0.2)
    assert both["total_joules_per_token"] == pytest.approx(0.5)
    gpu_only = compute_summary(RunMeasurements(tokens=1000, energy_j={"gpu": 300.0}))
    assert gpu_only["joules_per_token"] == pytest.approx(0.3)
    assert gpu_only["host_joules_per_token"] is None and gpu_only["total_joules_per_token"] is None


def _group(runs_dir):
    loaded, _ = load_runs(runs_dir)
    (group,) = build_groups(loaded)
    return group


def test_the_total_is_marked_best_only_when_every_run_has_it(tmp_path):
    runs = tmp_path / "runs"
    write_run(
        runs,
        "a",
        "amp",
        joules_per_token=0.5,
        energy_j=500.0,
        host_energy_j=300.0,
        total_joules_per_token=0.8,
    )
    write_run(
        runs,
        "z",
        "zero_offload",
        joules_per_token=0.3,
        energy_j=300.0,
        host_energy_j=600.0,
        total_joules_per_token=0.9,
    )
    group = _group(runs)
    table = group.table
    assert not [n for n in group_notes(group.recipe, group.runs) if "GPU only" in n]
    assert table.loc["amp", "total_joules_per_token_best"]
    assert not table["joules_per_token_best"].any()  # GPU only: never marked, it favours offload

    write_run(runs, "b", "adam8bit", joules_per_token=0.4, energy_j=400.0)  # its host was not read
    group = _group(runs)
    assert not group.table["total_joules_per_token_best"].any()
    (note,) = [n for n in group_notes(group.recipe, group.runs) if "GPU only" in n]
    assert note.startswith("J/token of adam8bit is GPU only")
