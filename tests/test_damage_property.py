"""Random damage written into every kind of file the harness reads back (a result, its metric rows, its
configuration, an answer, a capacity document, the host-step cache, a token cache's manifest): each reader
either reads a valid value or skips the file with a warning that names it. Never a traceback, and never a
non-finite or impossible figure reaching a verdict, a star or a calibration."""

from __future__ import annotations

import copy
import json
import math
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.capacity import host_optimizer
from harness.capacity.calibration import read_calibrations
from harness.core.errors import UserError
from harness.core.metric_rows import row_problem
from harness.core.results import RESULT_FILE
from harness.core.schema import problem
from harness.data.tokenize import MANIFEST, META, read_meta
from harness.metrics.definitions import METRICS
from harness.metrics.plausible import implausible, speed_problem
from harness.orchestrate.runs_state import run_state
from harness.report.answer import answer_section, load_answer
from harness.report.capacity import capacity_section, load_capacity, table_rows
from harness.report.load import load_runs
from tests.test_answer_report import hand_made_answer
from tests.test_capacity import hand_made_capacity
from tests.test_readback import published_run

EXAMPLES = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

HOSTILE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e308, -1e308, 1e-300, -0.0, 0, -1]),
    st.text(max_size=6),
    st.sampled_from(["nan", "1e400", "Infinity", "", "12"]),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def _paths(node, path=()):
    yield path
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in items:
        yield from _paths(child, (*path, key))


@st.composite
def damaged(draw, document):
    """`document` with one to three nodes replaced by a hostile value or deleted (or, at times, all of it)."""
    if draw(st.integers(0, 19)) == 0:
        return draw(HOSTILE)
    document = copy.deepcopy(document)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from([p for p in _paths(document) if p]))
        parent = document
        for key in path[:-1]:
            parent = parent[key]
        if isinstance(parent, dict) and draw(st.booleans()):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(HOSTILE)
    return document


def _text(draw, document) -> str:
    """As JSON writes it (NaN and Infinity included); sometimes torn."""
    text = json.dumps(document, allow_nan=True)
    return text[: draw(st.integers(0, len(text)))] if draw(st.integers(0, 9)) == 0 else text


def _finite(value) -> bool:
    return value is None or (isinstance(value, int | float) and math.isfinite(value))


@EXAMPLES
@given(data=st.data())
def test_a_damaged_result_is_read_valid_or_skipped_by_name(data):
    with tempfile.TemporaryDirectory() as tmp:
        runs, run = published_run(Path(tmp))
        kind = data.draw(st.sampled_from([RESULT_FILE, "config.json"]))
        original = json.loads((run / kind).read_text())
        (run / kind).write_text(_text(data.draw, data.draw(damaged(original))))
        loaded, warnings = load_runs(runs)
        for r in loaded:
            for key, value in r.result.summary.items():
                if key in METRICS and value is not None:
                    assert problem(METRICS[key].figure_spec(), value) is None, (key, value)
            assert implausible(r.result.summary, r.result.recipe, r.result.environment) == {}
            assert all(row_problem(row) is None for row in r.metrics)
        if not loaded:
            assert any(str(run / RESULT_FILE) in w for w in warnings), warnings
        calibrations, set_aside = read_calibrations([runs])
        for c in calibrations:
            assert c.tokens_per_s > 0 and math.isfinite(c.flop_rate) and c.flop_rate > 0
            assert speed_problem(c.tokens_per_s, c.flop_rate / c.tokens_per_s, c.device) is None
        assert all(str(run) in line for line in set_aside)
        state = run_state(run)
        assert state is None or all(
            _finite(getattr(state, k)) for k in ("budget_s", "train_s", "tokens_per_s", "loss", "eta_s")
        )


@EXAMPLES
@given(data=st.data())
def test_damaged_metric_rows_are_left_out_and_counted(data):
    with tempfile.TemporaryDirectory() as tmp:
        runs, run = published_run(Path(tmp))
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()[:6]]
        bad = data.draw(damaged(rows))
        bad = bad if isinstance(bad, list) else [bad]  # the whole file replaced: one line of it
        (run / "metrics.jsonl").write_text("\n".join(json.dumps(r, allow_nan=True) for r in bad) + "\n")
        (loaded,), warnings = load_runs(runs)
        assert all(row_problem(row) is None for row in loaded.metrics)
        left_out = len([r for r in bad if isinstance(r, dict)]) - len(loaded.metrics)
        assert left_out == 0 or any("metrics.jsonl" in w for w in warnings), warnings
        state = run_state(run)
        assert all(_finite(getattr(state, k)) for k in ("train_s", "tokens_per_s", "loss", "eta_s"))


@EXAMPLES
@given(data=st.data())
def test_a_damaged_answer_renders_or_is_refused_by_name(data):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "answer.json"
        path.write_text(_text(data.draw, data.draw(damaged(hand_made_answer()))))
        try:
            document = load_answer(path)
        except UserError as exc:
            assert str(path) in str(exc)
            return
        section = answer_section(document)
        for view in section.sizes:
            assert all(_finite(row["loss"]) and _finite(row["tokens_per_s"]) for row in view.rows)


@EXAMPLES
@given(data=st.data())
def test_a_damaged_capacity_renders_or_is_refused_by_name(data):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "capacity.json"
        path.write_text(_text(data.draw, data.draw(damaged({"kind": "capacity", **hand_made_capacity()}))))
        try:
            document = load_capacity(path)
        except UserError as exc:
            assert str(path) in str(exc)
            return
        for row in table_rows(document):
            assert all(
                _finite(row[k]) for k in ("params", "tokens_per_s", "estimated_loss", "gpu_memory_gib")
            )
            assert not row["best"] or row["params"]
        if data.draw(st.integers(0, 9)) == 0:  # its charts too, one time in ten (matplotlib takes a while)
            capacity_section(document)


@EXAMPLES
@given(value=HOSTILE, key=st.sampled_from(["seconds_per_param", "params", "optimizer", "source"]))
def test_a_damaged_host_step_timing_is_never_used(value, key):
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as mp:
        mp.setenv("HARNESS_CACHE_DIR", tmp)
        mp.setattr(host_optimizer, "machine_key", lambda e: "fake | cpu")
        fresh = host_optimizer.HostTiming("CPU AdamW", 4e-9, 8, 5, 1, "benchmarked now")
        mp.setattr(host_optimizer, "time_host_step", lambda e: fresh)
        kept = {"optimizer": "CPU AdamW", "seconds_per_param": 3e-9, "params": 8, "steps": 5, "threads": 1,
                "source": "benchmarked", "measured_at": "2026-12-01"}  # fmt: skip
        kept[key] = value
        (Path(tmp) / host_optimizer.CACHE_FILE).write_text(json.dumps({"fake | cpu": kept}, allow_nan=True))

        class Executor:
            name, requires = "fake", ()

        timing = host_optimizer.host_step_timing(Executor)
        sound = problem(host_optimizer.KEPT, kept) is None
        assert timing.seconds_per_param == (kept["seconds_per_param"] if sound else 4e-9)
        assert (timing.set_aside is None) == sound and problem(host_optimizer.KEPT, timing.to_dict()) is None


@EXAMPLES
@given(data=st.data())
def test_a_damaged_token_manifest_is_never_read_as_a_cache(data):
    manifest = {"version": None, "dtype": "uint16", "eot_id": 0, "tokenizer": {"vocab_size": 512},
                "train_shards": [{"file": "t0.bin", "tokens": 0, "crc32": 0}],
                "val_shards": [{"file": "v0.bin", "tokens": 0, "crc32": 0}],
                "train_tokens": 0, "val_tokens": 0}  # fmt: skip
    from harness.data.tokenize import CACHE_VERSION

    manifest["version"] = CACHE_VERSION
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name in ("t0.bin", "v0.bin"):
            (folder / name).write_bytes(b"")
        (folder / META).write_text(_text(data.draw, data.draw(damaged(manifest))))
        meta = read_meta(folder)
        assert meta is None or problem(MANIFEST, meta) is None
