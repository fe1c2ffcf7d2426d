import json
import os

import pytest

from harness.core import results
from harness.core.metric_rows import read_metrics
from harness.core.results import CorruptResult, RunResult, Summary, load_result, write_result


def make_result(**summary) -> RunResult:
    return RunResult(
        run_id="r1",
        status="ok",
        strategy={"name": "amp"},
        recipe={"preset": "tiny"},
        recipe_fingerprint="abc",
        summary=Summary(**summary),
    )


def test_round_trip(tmp_path):
    original = make_result(steps=3, tokens=12, tokens_per_s=1.5, time_to_target_s={"2": 1.0, "1": None})
    write_result(tmp_path, original)
    assert load_result(tmp_path / "result.json") == original


def test_non_finite_figures_are_written_as_unknown(tmp_path):
    write_result(tmp_path, make_result(tokens_per_s=float("nan"), mfu=float("inf")))
    text = (tmp_path / "result.json").read_text()
    assert "NaN" not in text and "Infinity" not in text  # what another JSON reader would choke on
    written = json.loads(text)["summary"]  # the file itself, not the harness's forgiving reader
    assert written["tokens_per_s"] is None and written["mfu"] is None


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        "[]",
        '{"schema_version": 99}',
        json.dumps({"schema_version": 1, "status": "ok"}),
        json.dumps(
            {
                "schema_version": 1,
                "run_id": "x",
                "status": "great",
                "strategy": {},
                "recipe": {},
                "recipe_fingerprint": "",
            }
        ),
        json.dumps(
            {
                "schema_version": 1,
                "run_id": "x",
                "status": "ok",
                "strategy": {},
                "recipe": {},
                "recipe_fingerprint": "",
                "summary": {"speed": 1},
            }
        ),
    ],
)
def test_corrupt_or_foreign_results_are_named(tmp_path, content):
    path = tmp_path / "result.json"
    path.write_text(content)
    with pytest.raises(CorruptResult, match=r"result\.json"):
        load_result(path)


def test_failed_write_keeps_the_earlier_file(tmp_path, monkeypatch):
    write_result(tmp_path, make_result(steps=1))
    before = (tmp_path / "result.json").read_text()

    def disk_full(*_args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(results.os, "replace", disk_full)
    with pytest.raises(OSError, match="No space"):
        write_result(tmp_path, make_result(steps=2))
    assert (tmp_path / "result.json").read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]  # no temporary left behind


def test_unknown_status_is_refused(tmp_path):
    with pytest.raises(ValueError, match="status"):
        write_result(tmp_path, RunResult("r", "done", {}, {}, ""))


def test_metrics_reader_drops_a_torn_last_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1}\n{"step": 2}\n{"ste')
    assert read_metrics(path) == [{"step": 1}, {"step": 2}]
    assert os.path.exists(path)
