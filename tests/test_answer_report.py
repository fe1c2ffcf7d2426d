"""The answer for real on the CPU (two sizes, two strategies: every speed measured, none predicted, the best
trained for the budget), and its report section: from a hand-made answer.json and from that real run, in
the answer's own page and at the top of the main report, seen in a real browser."""

import json
import re

import pytest

from harness.orchestrate.answer_runs import MEASURE_STEPS
from harness.report.answer import answer_section, load_answer
from harness.report.render import render_answer_page, render_report
from tests.conftest import harness_cli
from tests.test_report import open_page

VERDICT = (
    "On an NVIDIA H100 80GB HBM3 capped at 24 GiB in 24 h: best gpt2-124m with amp, est. loss 3.300 after "
    "8.64B tokens (69.4 per parameter); biggest gpt-1.3b with zero_offload, 173M tokens (0.132 per "
    "parameter): undertrained."
)


def _candidate(strategy, preset, params, tokens_per_s, source, loss, fits=True):
    tokens = tokens_per_s * 86400
    return {
        "strategy": strategy,
        "preset": preset,
        "params": params,
        "fits": fits,
        "memory": {"micro_batch": 4, "predicted_gpu_gib": 10.0, "predicted_host_gib": 3.0, "source": "m"},
        "tokens_per_s": {"value": tokens_per_s, "source": source},
        "measured": None,
        "tokens": {"value": tokens, "source": f"{source} tokens/s x the budget"},
        "tokens_per_param": {"value": tokens / params, "source": "s"},
        "estimated_loss": {"value": loss, "source": "Hoffmann et al. 2022"},
    }


def hand_made_answer() -> dict:
    candidates = [
        _candidate("amp", "gpt2-124m", 124_475_904, 100_000.0, "measured", 3.3),
        _candidate("amp", "gpt-350m", 354_871_296, 36_000.0, "predicted", 3.35),
        _candidate("zero_offload", "gpt2-124m", 124_475_904, 95_000.0, "predicted", 3.31),
        _candidate("zero_offload", "gpt-1.3b", 1_313_722_368, 2_000.0, "measured", 4.1),
        _candidate("<b>x</b>", "gpt-350m", 354_871_296, 1.0, "predicted", 9.0, fits=False),
    ]
    ref = lambda s, p: {"strategy": s, "preset": p}  # noqa: E731
    return {
        "kind": "answer",
        "schema_version": 1,
        "created_at": "2026-12-07T00:00:00+00:00",
        "complete": True,
        "budget": "24h",
        "budget_s": 86400.0,
        "device": {"name": "NVIDIA H100 80GB HBM3", "peak_tflops": 989.5, "link": "PCIe 5.0 x16"},
        "measured_here": True,
        "method": {
            "memory": "the memory model",
            "speed_predicted": "the throughput model",
            "loss": "Hoffmann",
        },
        "sizes": [
            {
                "gpu_memory_gib": 24.0,
                "where": "an NVIDIA H100 80GB HBM3 capped at 24 GiB",
                "verdict": VERDICT,
                "beyond": None,
                "best": ref("amp", "gpt2-124m"),
                "contenders": [ref("zero_offload", "gpt2-124m")],
                "biggest": ref("zero_offload", "gpt-1.3b"),
                "strategies": {
                    "amp": {
                        "best": ref("amp", "gpt2-124m"),
                        "biggest": ref("amp", "gpt-350m"),
                        "worse_by": 0.0,
                    },
                    "zero_offload": {
                        "best": ref("zero_offload", "gpt2-124m"),
                        "biggest": ref("zero_offload", "gpt-1.3b"),
                        "worse_by": 0.01,
                    },
                },
                "candidates": candidates,
            }
        ],
        "trained": None,
    }


def test_the_section_renders_from_a_hand_made_answer(tmp_path):
    path = tmp_path / "answer.json"
    path.write_text(json.dumps(hand_made_answer()))
    section = answer_section(load_answer(path))
    (view,) = section.sizes
    assert [r["strategy"] for r in view.rows] == ["amp", "zero_offload"] and view.rows[0]["is_best"]
    chart = view.loss_chart
    assert chart.count('class="point open"') == 2  # the two predicted points that fit: open markers
    assert chart.count('class="point filled"') == 2  # the two measured ones: filled
    assert chart.count('class="best"') == 1  # the best ringed
    assert chart.count('class="contender"') == 1  # its contender ringed dashed
    assert re.findall(r'<text class="tick"[^>]*>([^<]+)</text>', chart) == [
        "gpt2-124m",
        "gpt-350m",
        "gpt-1.3b",
    ]
    assert "&lt;b&gt;" not in chart and "<b>x</b>" not in chart  # a size that does not fit is left out
    page = render_answer_page(load_answer(path), tmp_path / "answer.html").read_text()
    assert VERDICT in page and page.count("<svg") == 2


def test_a_damaged_answer_beside_the_report_is_left_out_with_a_warning(tmp_path, capsys):
    (tmp_path / "runs").mkdir()
    (tmp_path / "answer.json").write_text(json.dumps(hand_made_answer()))
    html = render_report(tmp_path / "runs", tmp_path / "index.html").read_text()
    assert html.index('id="answer"') < html.index("No results yet") and VERDICT in html
    (tmp_path / "answer.json").write_text('{"kind": "answer", "sizes": [{"verdict": 1}]}')
    html = render_report(tmp_path / "runs", tmp_path / "index.html").read_text()
    assert 'id="answer"' not in html and "answer section left out" in capsys.readouterr().err


@pytest.fixture(scope="session")  # once per worker, whatever ran between its two tests
def real_answer(tmp_path_factory):
    """`harness answer` on this CPU: tiny and small, amp and act_ckpt, then the two likeliest trained for 5 s
    each (the backtest)."""
    root = tmp_path_factory.mktemp("answer")
    args = ("--strategies", "amp,act_ckpt", "--presets", "tiny,small", "--budget", "5s")
    args += ("--train", "--top", "2", "--quiet")
    proc = harness_cli("answer", *args, "--out", str(root / "answer.json"), "--runs-dir", str(root / "runs"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return root, proc


@pytest.mark.slow
@pytest.mark.xdist_group("real-answer")  # one worker computes the answer both read
def test_a_real_answer_on_the_cpu_measures_every_candidate_and_predicts_none(real_answer):
    root, proc = real_answer
    doc = json.loads((root / "answer.json").read_text())
    assert doc["complete"] and doc["measured_here"] and doc["device"]["kind"] == "cpu"
    (entry,) = doc["sizes"]
    assert {(c["strategy"], c["preset"]) for c in entry["candidates"]} == {
        (s, p) for s in ("amp", "act_ckpt") for p in ("tiny", "small")
    }
    for c in entry["candidates"]:
        speed = c["tokens_per_s"]
        assert speed["source"] == "measured" and speed["value"] > 0  # beside what was predicted before it ran
        run = json.loads((root / "answer-runs" / speed["run"].rsplit("/", 1)[1] / "result.json").read_text())
        assert run["strategy"]["name"] == c["strategy"] and run["recipe"]["preset"] == c["preset"]
        assert run["summary"]["steps"] == MEASURE_STEPS == 10 and run["settings"]["warmup_steps"] == 1
    assert entry["verdict"].startswith("On this CPU (") and entry["verdict"] in proc.stdout
    assert "speeds: 4 measured, 0 predicted, 0 unknown" in proc.stdout
    first, second = doc["trained"]  # the best, then the likeliest other
    assert (first["strategy"], first["preset"]) == (entry["best"]["strategy"], entry["best"]["preset"])
    assert first["p_best"] >= second["p_best"] and (second["strategy"], second["preset"]) != (
        first["strategy"], first["preset"])  # fmt: skip
    for t in (first, second):
        assert t["status"] == "ok" and t["final_val_loss"]["value"] > 0 and t["estimated_loss"]["value"] > 0
        assert len(t["estimated_loss"]["interval"]) == 2
        assert t["inside_interval"] is None  # the prior's loss is another corpus's: no inside or outside
        assert (root / "runs" / t["run"].rsplit("/", 1)[1] / "result.json").exists()
    backtest = doc["backtest"]
    losses = {f"{t['preset']} with {t['strategy']}": t["final_val_loss"]["value"] for t in (first, second)}
    assert backtest["measured"] == sorted(losses, key=losses.get)
    assert backtest["agrees"] is (backtest["measured"] == backtest["predicted"])
    assert f"backtest: measured order {', '.join(backtest['measured'])}" in proc.stdout


@pytest.mark.slow
@pytest.mark.xdist_group("real-answer")  # one worker computes the answer both read
def test_the_real_answer_opens_the_report_and_a_browser_sees_its_verdict(real_answer):
    root, _ = real_answer
    verdict = json.loads((root / "answer.json").read_text())["sizes"][0]["verdict"]
    out = render_report(root / "runs", root / "index.html")
    html = out.read_text()
    assert html.index('id="answer"') < html.index('class="group"', html.index('id="answer"') + 1)

    def seen(page):
        return page.inner_text("p.verdict")

    for path in (out, root / "answer.html"):
        text, problems, requests = open_page(path, seen)
        assert text.strip() == verdict and not problems
        assert all(r.startswith(("file:", "data:")) for r in requests)


def _damaged(document: dict, case: str) -> dict:
    entry = document["sizes"][0]
    if case == "a list where a mapping belongs":
        document["device"] = ["NVIDIA H100 80GB HBM3"]
    elif case == "a text where a record belongs":
        document["trained"] = "yes"  # where the list of trained runs belongs
    elif case == "a size of 1e308":
        entry["candidates"][0]["params"] = 1e308
    elif case == "a best that is a list":
        entry["best"] = ["amp", "gpt2-124m"]
    elif case == "a loss that is text":
        entry["candidates"][1]["estimated_loss"]["value"] = "3.3"
    return document


DAMAGE = {
    "a list where a mapping belongs": "device: list where a record belongs",
    "a text where a record belongs": "trained: str where a list belongs",
    "a size of 1e308": "sizes[0].candidates[0].params: 1e+308 is above 1e+15",
    "a best that is a list": "sizes[0].best: list where a record belongs",
    "a loss that is text": "sizes[0].candidates[1].estimated_loss.value: str where a number belongs",
}


@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_the_report_survives_a_damaged_answer_and_names_the_field(tmp_path, capsys, case):
    (tmp_path / "runs").mkdir()
    (tmp_path / "answer.json").write_text(json.dumps(_damaged(hand_made_answer(), case)))
    html = render_report(tmp_path / "runs", tmp_path / "index.html").read_text()
    assert 'id="answer"' not in html and "No results yet" in html
    err = capsys.readouterr().err
    assert (
        "answer section left out" in err and str(tmp_path / "answer.json") in err and DAMAGE[case] in err
    ), err


def test_an_answer_names_what_it_set_aside(tmp_path):
    document = hand_made_answer()
    document["set_aside"] = ["not learnt from: runs/x/result.json: summary.steady_tokens_per_s is impossible"]
    (tmp_path / "answer.json").write_text(json.dumps(document))
    page = render_answer_page(load_answer(tmp_path / "answer.json"), tmp_path / "answer.html").read_text()
    assert "Set aside: not learnt from: runs/x/result.json: summary.steady_tokens_per_s is impossible" in page
