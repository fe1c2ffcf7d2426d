"""One report from many machines: runs are compared only on the same hardware, a strategy x hardware
matrix shows how the figures and the ranking move between GPUs (from hand-made results of two GPU models
and a memory cap), and figures measured with neighbours on the node are marked."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from harness.report import render_report
from harness.report.load import load_runs
from harness.report.render import build_groups, build_matrices
from tests.report_fixtures import write_run

H100, RTX = "NVIDIA H100 80GB HBM3", "NVIDIA GeForce RTX 4090"
MEMORY_GIB = {H100: 79.2, RTX: 23.5}


@pytest.fixture
def runs(tmp_path):
    runs_dir = tmp_path / "runs"
    figures = {
        # (strategy, gpu): tokens/s, MFU, peak allocated GiB, final val loss
        ("amp", H100): (1000.0, 0.40, 50.0, 3.00),
        ("act_ckpt", H100): (800.0, 0.32, 30.0, 3.10),
        ("amp", RTX): (300.0, 0.50, 20.0, 3.30),
        ("act_ckpt", RTX): (280.0, 0.45, 12.0, 3.25),
    }
    for i, ((strategy, gpu), (tps, mfu, peak, loss)) in enumerate(figures.items()):
        write_run(
            runs_dir,
            f"r{i}",
            strategy,
            gpu=gpu,
            env={"gpu_memory_gib": MEMORY_GIB[gpu]},
            tokens_per_s=tps,
            mfu=mfu,
            peak_allocated_gib=peak,
            final_val_loss=loss,
        )
    # The H100 capped at 24 GiB: its own fingerprint (the cap is part of it), the same recipe otherwise.
    write_run(
        runs_dir,
        "r-capped",
        "amp",
        gpu=H100,
        fingerprint="fp-a-capped",
        env={"gpu_memory_gib": MEMORY_GIB[H100], "gpu_memory_cap_gib": 24},
        tokens_per_s=950.0,
        mfu=0.38,
        peak_allocated_gib=23.0,
        final_val_loss=3.01,
    )
    return runs_dir


def test_runs_from_different_gpus_are_never_in_one_table(runs):
    loaded, _ = load_runs(runs)
    groups = {g.hardware: g for g in build_groups(loaded)}
    assert set(groups) == {H100, RTX, f"{H100}, capped at 24 GiB"}
    assert groups[H100].table.loc["amp", "tokens_per_s"] == 1000.0
    assert groups[RTX].table.loc["amp", "tokens_per_s"] == 300.0
    assert list(groups[f"{H100}, capped at 24 GiB"].table.index) == ["amp"]
    # Within one hardware, ratios to amp are of that hardware's amp.
    assert groups[RTX].table.loc["act_ckpt", "tokens_per_s_ratio"] == pytest.approx(280 / 300)


def test_the_matrix_puts_each_hardware_side_by_side(runs):
    loaded, _ = load_runs(runs)
    (matrix,) = build_matrices(build_groups(loaded))
    # From the smallest memory to the largest: the 24 GB card, the H100 capped at 24 GiB, the H100.
    assert matrix.hardware == [RTX, f"{H100}, capped at 24 GiB", H100]
    assert [m[0] for m in matrix.metrics] == ["tokens_per_s", "mfu", "peak_allocated_gib", "final_val_loss"]
    assert matrix.value("tokens_per_s", "act_ckpt", RTX) == 280.0
    assert matrix.value("mfu", "amp", RTX) == 0.50
    assert matrix.value("tokens_per_s", "act_ckpt", f"{H100}, capped at 24 GiB") is None
    # The ranking moves: amp reaches the lower loss on the H100, act_ckpt on the 4090.
    assert ("final_val_loss", "amp", H100) in matrix.best
    assert ("final_val_loss", "act_ckpt", RTX) in matrix.best
    assert ("final_val_loss", "amp", RTX) not in matrix.best
    assert ("peak_allocated_gib", "act_ckpt", H100) in matrix.best  # lower memory is better
    assert matrix.shared == set()  # every run had its node to itself


def test_the_page_shows_the_matrix_and_one_section_per_hardware(runs, tmp_path):
    html = render_report(runs, tmp_path / "index.html").read_text()
    assert html.count("Across hardware") == 1
    matrix = html[html.index("Across hardware") : html.index('<section class="group" id=')]
    assert f"<th>{RTX}</th>" in matrix and f"<th>{H100}</th>" in matrix
    assert "280" in matrix and "3.25" in matrix and "capped at 24 GiB" in matrix
    assert html.count('<table class="comparison">') == 4 + 3  # four matrix figures, three hardware groups
    exported = pd.read_csv(tmp_path / "comparison.csv")
    assert set(exported["hardware"]) == {H100, RTX, f"{H100}, capped at 24 GiB"}


def test_one_hardware_means_no_matrix(tmp_path):
    write_run(tmp_path / "runs", "a", "amp", tokens_per_s=1.0)
    write_run(tmp_path / "runs", "b", "act_ckpt", tokens_per_s=2.0)
    loaded, _ = load_runs(tmp_path / "runs")
    assert build_matrices(build_groups(loaded)) == []
    assert "Across hardware" not in render_report(tmp_path / "runs", tmp_path / "i.html").read_text()


def test_a_matrix_figure_measured_with_neighbours_is_marked(runs, tmp_path):
    path = runs / "r2" / "result.json"  # amp on the 4090
    payload = json.loads(path.read_text())
    payload["environment"]["placement"] = {"neighbours": [{"run_id": "r3", "strategy": "act_ckpt"}]}
    path.write_text(json.dumps(payload))
    (matrix,) = build_matrices(build_groups(load_runs(runs)[0]))
    assert matrix.shared == {("amp", RTX)}
    html = render_report(runs, tmp_path / "index.html").read_text()
    across = html[html.index("Across hardware") : html.index('<section class="group" id=')]
    assert across.count('class="mark"') == 4  # the 4090's amp cell in each of the four figures


def test_figures_measured_with_neighbours_are_marked(tmp_path):
    runs_dir = tmp_path / "runs"
    beside = {"placement": {"neighbours": [{"run_id": "b", "strategy": "act_ckpt", "gpu_index": 1}]}}
    write_run(runs_dir, "a", "amp", tokens_per_s=1000.0, env=beside)
    write_run(runs_dir, "a2", "amp", tokens_per_s=1100.0)
    write_run(runs_dir, "b", "act_ckpt", tokens_per_s=900.0)
    (group,) = build_groups(load_runs(runs_dir)[0])
    assert (
        group.table.loc["amp", "with_neighbours"] == 1 and group.table.loc["act_ckpt", "with_neighbours"] == 0
    )
    html = render_report(runs_dir, tmp_path / "index.html").read_text()
    assert "amp: 1 of 2 runs were measured with other runs beside it on the node (act_ckpt)" in html
    assert html.count('class="mark"') == 1  # one table, no matrix (one hardware)
    # A placement block of the wrong shape is read as no neighbours, never a crash.
    path = runs_dir / "b" / "result.json"
    payload = json.loads(path.read_text())
    payload["environment"]["placement"] = {"neighbours": "everyone"}
    path.write_text(json.dumps(payload))
    assert render_report(runs_dir, tmp_path / "index.html").exists()
