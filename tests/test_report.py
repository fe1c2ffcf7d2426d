"""The HTML report: numbers against hand-made results, grouping, escaping, and a real headless browser."""

import json
import os
import shutil

import pandas as pd
import pytest

from harness.report import render_report
from harness.report.groups import build_groups
from harness.report.load import load_runs
from tests.conftest import harness_cli
from tests.report_fixtures import write_run


@pytest.fixture
def runs(tmp_path):
    runs_dir = tmp_path / "runs"
    write_run(
        runs_dir,
        "r-amp",
        "amp",
        tokens_per_s=1000.0,
        mfu=0.40,
        peak_reserved_gib=20.0,
        peak_host_rss_gib=4.0,
        final_val_loss=3.00,
        gap_to_floor=1.70,
        joules_per_token=0.5,
    )
    write_run(
        runs_dir,
        "r-8bit",
        "adam8bit",
        tokens_per_s=980.0,
        mfu=0.392,
        peak_reserved_gib=15.0,
        peak_host_rss_gib=4.2,
        final_val_loss=3.02,
        gap_to_floor=1.72,
        joules_per_token=0.51,
        changes_math="optimizer moments are stored in 8 bits",
    )
    write_run(
        runs_dir,
        "r-zero",
        "zero_offload",
        tokens_per_s=850.0,
        mfu=0.34,
        peak_reserved_gib=10.0,
        peak_host_rss_gib=30.0,
        final_val_loss=3.10,
        gap_to_floor=1.80,
        joules_per_token=0.6,
        micro_batch=32,
    )
    write_run(runs_dir, "r-oom", "act_ckpt", status="oom", error="out of memory: tried to allocate 2 GiB")
    write_run(
        runs_dir,
        "r-other",
        "amp",
        fingerprint="fp-b",
        preset="gpt2-124m",
        tokens_per_s=5.0,
        final_val_loss=9.0,
    )
    return runs_dir


def test_table_numbers_ratios_and_best_marks(runs):
    loaded, warnings = load_runs(runs)
    assert warnings == []
    groups = {g.fingerprint: g for g in build_groups(loaded)}
    assert set(groups) == {"fp-a", "fp-b"}
    table = groups["fp-a"].table
    # amp (the baseline) first, then ok runs, then failures
    assert list(table.index) == ["amp", "adam8bit", "zero_offload", "act_ckpt"]
    assert table.loc["adam8bit", "tokens_per_s_ratio"] == pytest.approx(0.98)
    assert table.loc["zero_offload", "peak_reserved_gib_ratio"] == pytest.approx(0.5)
    assert table.loc["zero_offload", "peak_host_rss_gib_ratio"] == pytest.approx(7.5)
    assert table.loc["amp", "tokens_per_s_best"] and not table.loc["adam8bit", "tokens_per_s_best"]
    assert table.loc["zero_offload", "peak_reserved_gib_best"]  # lower memory is better
    assert table.loc["amp", "final_val_loss_best"]
    assert table.loc["zero_offload", "micro_batch"] == 32 and not table["micro_batch_best"].any()
    assert table.loc["act_ckpt", "status"] == "oom" and pd.isna(table.loc["act_ckpt", "tokens_per_s"])
    # The other recipe is its own comparison, never mixed in.
    assert list(groups["fp-b"].table.index) == ["amp"]
    assert groups["fp-b"].table.loc["amp", "tokens_per_s"] == 5.0


def test_page_csv_and_json(runs, tmp_path):
    out = render_report(runs, tmp_path / "site" / "index.html")
    html = out.read_text()
    assert html.count('<table class="comparison">') == 2
    assert "×0.98 amp" in html and "×0.85 amp" in html
    assert "out of memory: tried to allocate 2 GiB" in html
    assert "shorter than the one day" in html
    assert "optimizer moments are stored in 8 bits" in html
    assert "http://" not in html and "https://" not in html  # nothing fetched: works offline
    csv = pd.read_csv(out.with_name("comparison.csv"))
    assert set(csv["recipe_fingerprint"]) == {"fp-a", "fp-b"}
    row = csv[(csv.strategy == "adam8bit")].iloc[0]
    assert row["tokens_per_s"] == 980.0 and row["tokens_per_s_ratio"] == pytest.approx(0.98)
    records = json.loads(out.with_name("comparison.json").read_text())
    assert {r["strategy"] for r in records} == {"amp", "adam8bit", "zero_offload", "act_ckpt"}
    pages = list((out.parent / "run_pages").iterdir())
    assert len(pages) == 5
    assert 'href="run_pages/' in html


def test_corrupt_and_foreign_files_are_skipped_with_a_warning(runs, tmp_path):
    (runs / "broken").mkdir()
    (runs / "broken" / "result.json").write_text("{truncated")
    (runs / "foreign").mkdir()
    (runs / "foreign" / "result.json").write_text(json.dumps({"hello": "world"}))
    (runs / "stray.json").write_text("[]")
    proc = harness_cli("report", "--runs", str(runs), "--out", str(tmp_path / "out" / "index.html"))
    assert proc.returncode == 0, proc.stderr
    for name in ("broken/result.json", "foreign/result.json", "stray.json"):
        assert name in proc.stderr
    html = (tmp_path / "out" / "index.html").read_text()
    assert html.count('<table class="comparison">') == 2
    assert "broken" in html  # the skipped files are named on the page too


def test_missing_runs_folder_is_a_one_line_error(tmp_path):
    proc = harness_cli("report", "--runs", str(tmp_path / "nowhere"), "--out", str(tmp_path / "i.html"))
    assert proc.returncode == 2 and proc.stderr.strip().startswith("error: no runs folder")


HOSTILE = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2"><b>bold</b>'


def chromium_or_skip():
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("CI must have Debian's chromium (.ci/run installs it)")
        pytest.skip("no chromium here (.ci/run installs it in CI)")
    return path


def open_page(path, action):
    from playwright.sync_api import sync_playwright

    executable = chromium_or_skip()
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=executable,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        problems, requests = [], []
        page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on("request", lambda r: requests.append(r.url))
        page.goto(path.as_uri())
        page.wait_for_load_state("load")
        try:
            return action(page), problems, requests
        finally:
            browser.close()


def test_page_renders_in_a_real_browser(runs, tmp_path):
    out = render_report(runs, tmp_path / "site" / "index.html")
    shot = tmp_path / "report.png"

    def check(page):
        rows = page.locator("table.comparison tbody tr").count()
        images = page.eval_on_selector_all(
            "img.chart", "imgs => imgs.map(i => [i.complete, i.naturalWidth, i.naturalHeight])"
        )
        page.screenshot(path=str(shot), full_page=True)
        return rows, images

    (rows, images), problems, requests = open_page(out, check)
    assert rows == 5  # four strategies of one recipe, one of the other
    assert len(images) == 5  # loss curves, throughput and memory for the first recipe; curves + throughput
    assert all(complete and width > 0 and height > 0 for complete, width, height in images)
    assert problems == []
    assert all(url.startswith(("file:", "data:")) for url in requests)
    assert shot.stat().st_size > 10_000


def test_hostile_strings_are_shown_not_executed(tmp_path):
    runs_dir = tmp_path / "runs"
    write_run(runs_dir, "r-amp", "amp", tokens_per_s=10.0)
    write_run(
        runs_dir,
        f"run{HOSTILE}",
        f"evil{HOSTILE}",
        status="error",
        error=HOSTILE,
        tokens_per_s=5.0,
        dir_name="evil<img src=x onerror=alert(1)>",
    )
    out = render_report(runs_dir, tmp_path / "site" / "index.html")
    html = out.read_text()
    assert "<script>" not in html and "onerror=" not in html.replace("onerror=&#34;", "")

    def check(page):
        return page.evaluate("window.__pwned"), page.inner_text("body")

    (pwned, text), problems, _ = open_page(out, check)
    assert pwned is None and problems == []
    assert "<script>window.__pwned = 1</script>" in text  # shown as text
    pages = list((out.parent / "run_pages").iterdir())
    assert all("<" not in p.name for p in pages)
    evil_page = next(p for p in pages if p.name.startswith("evil"))
    (pwned, text), _, _ = open_page(evil_page, check)
    assert pwned is None and "<b>bold</b>" in text


def test_repeats_are_aggregated_column_by_column(tmp_path):
    runs_dir = tmp_path / "runs"
    for i, tps in enumerate([100.0, 150.0, 110.0]):  # three amp runs
        write_run(runs_dir, f"amp-{i}", "amp", tokens_per_s=tps, final_val_loss=3.0 + i / 10)
    for i, tps in enumerate([90.0, 80.0, 85.0, 120.0, 60.0]):  # five adam8bit runs
        write_run(
            runs_dir,
            f"8bit-{i}",
            "adam8bit",
            tokens_per_s=tps,
            final_val_loss=3.5 - i / 10,
            changes_math="8-bit moments",
        )
    write_run(runs_dir, "zero-0", "zero_offload", tokens_per_s=70.0)
    write_run(runs_dir, "zero-1", "zero_offload", tokens_per_s=75.0)
    loaded, _ = load_runs(runs_dir)
    (group,) = build_groups(loaded)
    t = group.table
    assert t.loc["amp", "runs"] == 3
    assert t.loc["amp", "tokens_per_s"] == 110.0  # median of 100, 150, 110
    assert (t.loc["amp", "tokens_per_s_min"], t.loc["amp", "tokens_per_s_max"]) == (100.0, 150.0)
    # Each column is its own median, not the figures of the run in the middle by speed (run 2: 3.2).
    assert t.loc["amp", "final_val_loss"] == pytest.approx(3.1)  # median of 3.0, 3.1, 3.2
    assert t.loc["amp", "tokens_per_s_trimmed_mean"] == 110.0  # MLPerf's rule: drop 100 and 150
    assert t.loc["adam8bit", "runs"] == 5
    assert t.loc["adam8bit", "tokens_per_s"] == 85.0  # median of 60, 80, 85, 90, 120
    assert t.loc["adam8bit", "tokens_per_s_trimmed_mean"] == pytest.approx(85.0)  # mean of 80, 85, 90
    assert (t.loc["adam8bit", "tokens_per_s_min"], t.loc["adam8bit", "tokens_per_s_max"]) == (60.0, 120.0)
    assert t.loc["adam8bit", "final_val_loss"] == pytest.approx(3.3)  # median of 3.5 ... 3.1
    assert t.loc["adam8bit", "tokens_per_s_ratio"] == pytest.approx(85.0 / 110.0)
    assert t.loc["zero_offload", "tokens_per_s"] == 72.5  # two runs: their median
    assert pd.isna(t.loc["zero_offload", "tokens_per_s_trimmed_mean"])  # fewer than three runs
    html = render_report(runs_dir, tmp_path / "site" / "index.html").read_text()
    assert "fastest and slowest dropped" not in html and "median of that column" in html
    assert "100 – 150" in html and "60 – 120" in html
    assert html.count("adam8bit: 8-bit moments.") == 1  # one note for five repeats
    csv = (tmp_path / "site" / "comparison.csv").read_text().splitlines()[0]
    assert "tokens_per_s_trimmed_mean" in csv


def test_notes_for_repeated_data_and_slow_data(tmp_path):
    runs_dir = tmp_path / "runs"
    write_run(runs_dir, "a", "amp", tokens_per_s=1000.0, epochs=2.5, data_tokens_per_s=1e9)
    write_run(runs_dir, "b", "act_ckpt", tokens_per_s=800.0, data_tokens_per_s=5000.0)
    html = render_report(runs_dir, tmp_path / "index.html").read_text()
    assert "amp (a) repeated data: 2.50 epochs of the corpus." in html
    assert "act_ckpt (b): data arrived at 5,000 tokens/s, less than 10x training (800)" in html
    assert "budget (1m00s) is shorter than the one day" in html


def test_notes_say_how_validation_was_held_out(tmp_path):
    runs_dir = tmp_path / "runs"
    write_run(runs_dir, "a", "amp", data={"holdout": "tail", "val_tokens": 2489})
    grown = {"holdout": "documents+tail", "val_tokens": 8320, "holdout_extended_tokens": 6000}
    write_run(runs_dir, "b", "act_ckpt", data=grown)
    write_run(runs_dir, "c", "adam8bit", data={"holdout": "documents", "val_tokens": 90000})
    html = render_report(runs_dir, tmp_path / "index.html").read_text()
    assert (
        "amp: the corpus has too few documents to hold out whole ones, so validation is the last 2489 "
        in html
    )
    assert "act_ckpt: the held-out documents were too few tokens for one evaluation, so the training" in html
    assert "last 6000 tokens were held out too (8320 in all)" in html
    assert "adam8bit: the" not in html


def test_an_experimental_strategy_is_said_to_be_one(tmp_path):
    runs_dir = tmp_path / "runs"
    write_run(runs_dir, "a", "amp")
    write_run(runs_dir, "b", "ao_adam4bit+sel_ckpt", experimental=["ao_adam4bit", "sel_ckpt"])
    html = render_report(runs_dir, tmp_path / "index.html").read_text()
    assert (
        "ao_adam4bit+sel_ckpt: experimental (ao_adam4bit, sel_ckpt): its CUDA path has not yet passed" in html
    )
    assert "amp: experimental" not in html


BAD_RESULTS = {
    "environment-null": lambda r: r.update(environment=None),
    "strategy-text": lambda r: r.update(strategy="amp"),
    "settings-list": lambda r: r.update(settings=[]),
    "recipe-list": lambda r: r.update(recipe=[]),
    "fingerprint-list": lambda r: r.update(recipe_fingerprint=["x"]),
    "tokens-per-s-text": lambda r: r["summary"].update(tokens_per_s="fast"),
    "epochs-text": lambda r: r["summary"].update(epochs="2"),
    "notes-text": lambda r: r["strategy"].update(notes="fast"),
    "experimental-text": lambda r: r["strategy"].update(experimental="yes"),
    "budget-text": lambda r: r["recipe"].update(budget_s="a day"),
    "summary-list": lambda r: r.update(summary=[1, 2]),
}


def test_the_report_survives_any_file_in_the_runs_folder(tmp_path):
    runs_dir = tmp_path / "runs"
    write_run(runs_dir, "good", "amp", tokens_per_s=1000.0, final_val_loss=3.0)
    for name, spoil in BAD_RESULTS.items():
        path = write_run(runs_dir, name, "adam8bit", tokens_per_s=900.0) / "result.json"
        payload = json.loads(path.read_text())
        spoil(payload)
        path.write_text(json.dumps(payload))
    # Non-finite figures: read as unknown, and named; the run stays in the report.
    odd = (
        write_run(runs_dir, "odd-numbers", "act_ckpt", tokens_per_s=800.0, final_val_loss=3.1) / "result.json"
    )
    odd.write_text(odd.read_text().replace('"tokens_per_s": 800.0', '"tokens_per_s": NaN'))
    # A target that is no number, and metric rows the charts cannot draw.
    tt = write_run(runs_dir, "odd-target", "zero_offload", tokens_per_s=700.0, time_to_target_s={"abc": 1.0})
    with open(tt / "metrics.jsonl", "a") as f:
        f.write('{"kind": "eval"}\n["not", "a", "row"]\n{"kind": "train", "step": "x"}\n')
    proc = harness_cli("report", "--runs", str(runs_dir), "--out", str(tmp_path / "site" / "index.html"))
    assert proc.returncode == 0, proc.stderr
    for name in BAD_RESULTS:
        assert f"{name}/result.json" in proc.stderr, name  # each bad file named in a warning
    assert "odd-numbers/result.json: not finite, read as unknown: summary.tokens_per_s" in proc.stderr
    assert "malformed rows left out of the charts" in proc.stderr
    html = (tmp_path / "site" / "index.html").read_text()
    assert "odd-numbers" in html and "odd-target" in html and "good" in html
    assert "time to loss abc (s)" in html


def test_the_csv_never_holds_a_spreadsheet_formula(tmp_path):
    runs_dir = tmp_path / "runs"
    write_run(
        runs_dir, "r1", '=HYPERLINK("http://x")', tokens_per_s=1.0, status="error", error="+cmd|' /C calc'!A0"
    )
    write_run(runs_dir, "r2", "amp", tokens_per_s=2.0)
    render_report(runs_dir, tmp_path / "index.html")
    text = (tmp_path / "comparison.csv").read_text()
    assert "'=HYPERLINK" in text and ",=" not in text and "\n=" not in text
