"""The index tells one story per section: a comparison's sentence, only the columns some run measured (the
others named), the runs each row aggregates, and where each document came from."""

import json

from harness.report.groups import build_groups
from harness.report.load import load_runs
from harness.report.render import render_report
from tests.report_fixtures import write_run
from tests.test_answer_report import hand_made_answer
from tests.test_report import open_page

BENCH = ["/x/harness/__main__.py", "bench", "--strategy", "amp"]
SWEEP = ["/x/harness/__main__.py", "sweep", "--preset", "tiny"]


def cpu_sweep(runs_dir, quick_start=False):
    """Four strategies on the CPU: no GPU figures, so the GPU columns are n/a for every run."""
    cpu = {"gpu": None, "env": {"command": SWEEP}}
    figures = {
        "amp": (1000.0, 1.50, 0.40),
        "adam8bit": (900.0, 1.52, 0.41),
        "zero_offload": (700.0, 1.49, 0.46),
        "act_ckpt": (800.0, 1.55, 0.38),
    }
    for name, (speed, loss, host) in figures.items():
        write_run(runs_dir, f"s-{name}", name, steady_tokens_per_s=speed, tokens_per_s=speed * 0.98,
                  final_val_loss=loss, val_ppl=2.718**loss, gap_to_floor=loss - 1.3, peak_host_rss_gib=host,
                  **cpu)  # fmt: skip
    if quick_start:
        write_run(runs_dir, "q-amp", "amp", steady_tokens_per_s=1100.0, tokens_per_s=1100.0,
                  final_val_loss=1.6, gpu=None, env={"command": BENCH})  # fmt: skip


def the_group(runs_dir):
    runs, _ = load_runs(runs_dir)
    (group,) = build_groups(runs)
    return group


def test_a_sweep_says_in_words_who_won_what_and_by_how_much(tmp_path):
    cpu_sweep(tmp_path)
    group = the_group(tmp_path)
    assert group.sentence == (
        "Fastest: amp (1,000 steady tokens/s; next adam8bit at 0.90x). Lowest validation loss: zero_offload "
        "(1.4900; next amp, 0.0100 more). Least host RAM: act_ckpt (0.38 GiB; next amp, 0.02 more). One run "
        "each: a difference of a few percent may be noise (repeats give spreads)."
    )


def test_columns_no_run_measured_are_left_out_and_named(tmp_path):
    cpu_sweep(tmp_path)
    group = the_group(tmp_path)
    shown = [c.key for c in group.shown]
    assert "steady_tokens_per_s" in shown and "final_val_loss" in shown and "peak_host_rss_gib" in shown
    assert "mfu" not in shown and "peak_reserved_gib" not in shown  # no GPU: n/a for every run
    assert "MFU" in group.left_out and "GPU reserved GiB" in group.left_out
    assert len(group.shown) + len(group.left_out) == len(group.columns)


def test_a_row_that_mixes_a_quick_start_run_into_a_sweep_says_so_and_links_both(tmp_path):
    cpu_sweep(tmp_path / "runs", quick_start=True)
    group = the_group(tmp_path / "runs")
    assert sorted(r.result.run_id for r in group.rows["amp"]) == ["q-amp", "s-amp"]
    assert any(
        "amp aggregates 2 runs started by 2 different commands (harness bench; harness sweep)" in n
        for n in group.notes
    )
    assert group.commands == ["harness bench", "harness sweep"]


def test_the_index_fits_1280_px_and_each_document_has_its_own_heading_device_and_date(tmp_path):
    cpu_sweep(tmp_path / "runs", quick_start=True)
    answer = hand_made_answer()
    answer["command"] = ["/x/harness/__main__.py", "answer", "--gpu", "NVIDIA H100 80GB HBM3"]
    (tmp_path / "answer.json").write_text(json.dumps(answer))
    out = render_report(tmp_path / "runs", tmp_path / "index.html")

    def read(page):
        page.set_viewport_size({"width": 1280, "height": 900})
        width = page.evaluate(  # how far the widest table reaches past the page's own column
            "Math.max(...[...document.querySelectorAll('table')].map(t => t.getBoundingClientRect().right))"
            " - document.body.getBoundingClientRect().right"
            " + parseFloat(getComputedStyle(document.body).paddingRight)"
        )
        table = page.evaluate("document.querySelector('table.comparison:not(.answer table)') === null")
        return (
            width,
            table,
            page.inner_text("body"),
            page.eval_on_selector_all("td.runs a", "links => links.map(a => a.title)"),
        )

    (width, _, text, links), problems, _ = open_page(out, read)
    assert problems == [] and width <= 0  # at 1280 px, no table runs past the page's column
    assert "The answer: the best and the biggest model in 24h" in text
    assert "written 2026-12-07T00:00:00+00:00 by harness answer --gpu 'NVIDIA H100 80GB HBM3'" in text
    assert "Fastest: amp (1,050 steady tokens/s" in text  # the median of its two runs, not one of them
    assert "Left out, n/a for every run here: " in text and "started by harness bench, harness sweep" in text
    assert sorted(links) == ["q-amp", "s-amp"]  # the row names the runs it aggregates


def test_a_command_is_shown_as_typed_and_a_run_by_the_subcommand_that_started_it(tmp_path):
    from types import SimpleNamespace

    from harness.report.story import command_of, command_words

    assert command_words(["/x/harness/__main__.py", "answer", "--gpu", "NVIDIA H100"]) == [
        "harness", "answer", "--gpu", "'NVIDIA H100'"]  # fmt: skip
    assert command_words(["/venv/bin/harness", "bench"]) == ["harness", "bench"]
    assert command_words(["python", "-c", "x"]) == ["python", "-c", "x"]
    assert command_words(None) == ["unknown"] and command_words("a text") == ["a text"]

    def run(command):
        return SimpleNamespace(result=SimpleNamespace(environment={"command": command}))

    for verb in ("bench", "sweep", "answer", "capacity", "parity"):
        assert command_of(run(["/x/harness/__main__.py", verb, "--preset", "tiny"])) == f"harness {verb}"
    long = ["python", "-c", "y" * 100]
    assert command_of(run(long)) == ("python -c " + "y" * 100)[:60]


def test_the_sentence_speaks_of_gpu_memory_where_measured_and_not_of_noise_with_repeats(tmp_path):
    repeats = [
        ("amp", 1000.0, 20.0),
        ("amp", 1010.0, 20.0),
        ("adam8bit", 990.0, 15.0),
        ("adam8bit", 995.0, 15.0),
    ]
    for i, (name, speed, reserved) in enumerate(repeats):
        write_run(tmp_path, f"r{i}", name, steady_tokens_per_s=speed, peak_reserved_gib=reserved,
                  peak_host_rss_gib=4.0, final_val_loss=3.0)  # fmt: skip
    sentence = the_group(tmp_path).sentence
    assert "Least GPU memory: adam8bit (15.00 GiB reserved; next amp, 5.00 more)." in sentence
    assert "host RAM" not in sentence and "noise" not in sentence  # two runs each: the spreads say it
    alone = tmp_path / "alone"
    write_run(alone, "a", "amp", steady_tokens_per_s=5.0)
    assert the_group(alone).sentence.startswith(
        "Fastest: amp (5 steady tokens/s; nothing to compare it with)."
    )


def test_a_row_of_failed_runs_names_them_and_one_command_is_no_mix(tmp_path):
    from harness.report.story import mixed_rows, runs_by_row

    write_run(tmp_path, "ok-1", "amp", steady_tokens_per_s=1.0, env={"command": SWEEP})
    write_run(tmp_path, "oom-1", "amp", status="oom", env={"command": BENCH})
    write_run(tmp_path, "oom-2", "act_ckpt", status="oom", env={"command": SWEEP})
    runs, _ = load_runs(tmp_path)
    rows = runs_by_row(runs)
    assert [r.result.run_id for r in rows["amp"]] == ["ok-1"]  # the finished ones, which the row shows
    assert [r.result.run_id for r in rows["act_ckpt"]] == ["oom-2"]  # none finished: all of them
    assert mixed_rows(rows) == []  # one run a row
    write_run(tmp_path, "ok-2", "amp", steady_tokens_per_s=1.0, env={"command": SWEEP})
    runs, _ = load_runs(tmp_path)
    assert mixed_rows(runs_by_row(runs)) == []  # two runs of one command


def test_a_figure_no_run_measured_is_passed_over_and_the_next_still_said(tmp_path):
    write_run(tmp_path, "a", "amp", steady_tokens_per_s=2.0, peak_reserved_gib=20.0, final_val_loss=None)
    write_run(tmp_path, "b", "adam8bit", steady_tokens_per_s=1.0, peak_reserved_gib=15.0, final_val_loss=None)
    sentence = the_group(tmp_path).sentence
    assert "validation loss" not in sentence
    assert "Least GPU memory: adam8bit (15.00 GiB reserved; next amp, 5.00 more)." in sentence
