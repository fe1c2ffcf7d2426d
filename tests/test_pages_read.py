"""What each kind of page shows, read in a real browser: every section has content, and the figures in it
are the ones the files hold (a page that loads but shows an empty section fails here)."""

import json

from harness.report.load import load_runs
from harness.report.render import page_name, render_answer_page, render_capacity_page, render_report
from tests.report_fixtures import write_run
from tests.test_answer_report import hand_made_answer
from tests.test_capacity import hand_made_capacity
from tests.test_report import open_page

# Each heading with the length of the text shown under it, up to the next heading.
SECTIONS = """() => [...document.querySelectorAll('h1, h2, h3')].map(h => {
  let text = '', el = h.nextElementSibling;
  while (el && !/^H[1-3]$/.test(el.tagName)) { text += el.innerText || ''; el = el.nextElementSibling; }
  return [h.innerText, text.trim().length];
})"""

TABLE = """(selector) => [...document.querySelectorAll(selector + ' tr')].map(
  tr => [...tr.querySelectorAll('td, th')].map(td => td.innerText.trim()))"""


def empty_sections(page) -> list[str]:
    return [heading for heading, length in page.evaluate(SECTIONS) if length == 0]


def one_run(tmp_path):
    runs = tmp_path / "runs"
    write_run(runs, "r-amp", "amp", tokens_per_s=1234.5, peak_reserved_gib=20.0, final_val_loss=3.25, mfu=0.4)
    return runs


def test_a_run_page_shows_every_summary_figure_with_its_unit(tmp_path):
    runs = one_run(tmp_path)
    out = render_report(runs, tmp_path / "site" / "index.html")
    (run,), _ = load_runs(runs)
    page_path = out.parent / "run_pages" / page_name(run)

    def read(page):
        return empty_sections(page), page.evaluate(TABLE, "table.summary")

    (empty, rows), problems, _ = open_page(page_path, read)
    assert empty == [] and problems == []
    shown = {label: (value, unit) for label, value, unit in rows}
    assert shown["overall tokens/s"] == ("1,234", "tokens/s")
    assert shown["GPU reserved GiB"] == ("20.00", "GiB")
    assert shown["val loss"] == ("3.2500", "nats")
    assert shown["MFU"] == ("40.0%", "")
    assert shown["steps"] == ("10", "steps") and shown["training clock s"] == ("60.0", "s")
    assert len(rows) == len(run.result.summary)  # every figure of the summary, none dropped


def test_the_index_shows_its_table_with_the_runs_figures(tmp_path):
    runs = one_run(tmp_path)
    write_run(runs, "r-8bit", "adam8bit", tokens_per_s=1000.0, peak_reserved_gib=15.0, final_val_loss=3.3)
    out = render_report(runs, tmp_path / "site" / "index.html")

    def read(page):
        return empty_sections(page), page.evaluate(TABLE, "table.comparison")

    (empty, rows), problems, _ = open_page(out, read)
    assert empty == [] and problems == []
    header, *body = rows
    column = header.index(next(h for h in header if h.startswith("overall tokens/s")))
    by_strategy = {row[0].split()[0]: row for row in body}
    assert by_strategy["amp"][column].startswith("1,234")
    assert by_strategy["adam8bit"][column].startswith("1,000")


def test_the_answer_page_shows_its_verdict_and_candidates(tmp_path):
    out = render_answer_page(hand_made_answer(), tmp_path / "answer.html")

    def read(page):
        return empty_sections(page), page.inner_text("body")

    (empty, text), problems, _ = open_page(out, read)
    assert empty == [] and problems == []
    assert "best gpt2-124m with amp" in text and "gpt-1.3b" in text


def test_the_capacity_page_shows_the_largest_model_of_each_strategy(tmp_path):
    document = hand_made_capacity()
    (tmp_path / "capacity.json").write_text(json.dumps(document))
    out = render_capacity_page(document, tmp_path / "capacity.html")

    def read(page):
        return empty_sections(page), page.inner_text("body")

    (empty, text), problems, _ = open_page(out, read)
    assert empty == [] and problems == []
    assert "gpt-6.7b" in text and "9,000" in text


def test_summary_rows_in_the_registrys_order_with_values_as_it_formats_them_and_units():
    from harness.report.run_page import SummaryRow, summary_rows

    rows = summary_rows({"custom_s": 1.23456789, "time_to_target_s": {"4": 5.25, "1": None}, "mfu": 0.4,
                         "steps": 10, "time_to_target_bracket_s": {}, "tiny_s": 1.5e-7})  # fmt: skip
    assert rows == [
        SummaryRow("steps", "steps", "10", "steps"),
        SummaryRow("MFU", "mfu", "40.0%", ""),
        SummaryRow("time to loss each target (s)", "time_to_target_s", "4: 5.2; 1: n/a", "s"),
        SummaryRow("between evaluations at (s)", "time_to_target_bracket_s", "none", "s"),
        SummaryRow("custom_s", "custom_s", "1.23457", "s"),  # a figure the registry does not know, kept
        SummaryRow("tiny_s", "tiny_s", "1.5e-07", "s"),
    ]
