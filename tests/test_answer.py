"""`harness answer`: the best and the biggest (strategy, size) per memory size. With a fake memory oracle and
a fake speed oracle, the answer picks the loss-minimizing candidate (a brute force over the grid agrees),
never starts a candidate that does not fit, measures what decides the verdict and labels every figure."""

import itertools
import json

import pytest

import strategies
from harness.capacity.calibration import executed_flops_per_token
from harness.capacity.law import PRIOR
from harness.capacity.ranking import Candidate, rank, verdict
from harness.capacity.scaling import estimated_loss
from harness.capacity.throughput import Device
from harness.core.presets import LADDER, PRESETS, get_preset
from harness.core.units import format_count
from harness.model import param_count
from harness.orchestrate.answer import Inputs, run_answer
from harness.orchestrate.answer_device import Target
from harness.orchestrate.answer_plan import AnswerPlan
from harness.orchestrate.answer_select import to_measure

DAY = 86400.0
LADDER_5 = ("gpt-30m", "gpt2-124m", "gpt-350m", "gpt-760m", "gpt-1.3b")


def params(preset):
    return param_count(get_preset(preset).model)


class FakeMemory:
    """Each strategy fits the sizes up to a rung that grows with the memory size."""

    def __init__(self, reach):  # strategy -> {size GiB: index of its largest fitting rung}
        self.reach = reach

    def fits(self, strategy, preset, size):
        return LADDER_5.index(preset) <= self.reach[strategy][size]

    def __call__(self, strategy, presets, size):
        return [(p, 4, 1.0 + LADDER_5.index(p), 2.0) for p in presets if self.fits(strategy, p, size)]


def executed(strategy, preset):
    return sum(executed_flops_per_token(get_preset(preset).model, strategies.resolve(strategy)))


class FakeSpeed:
    """A measuring run's record: each strategy at its own FLOP rate (as the throughput model sees a device),
    so that a speed predicted from one measured run is the one a run would measure; it fails if asked for a
    candidate the memory oracle does not fit."""

    def __init__(self, memory, rate, oom=()):
        self.memory, self.rate, self.oom, self.calls = memory, rate, set(oom), []

    def __call__(self, c, size):
        assert self.memory.fits(c.strategy, c.preset, size), (
            f"started {c.strategy} at {c.preset}: not fitting"
        )
        self.calls.append((c.strategy, c.preset, size))
        if (c.strategy, c.preset) in self.oom:
            return {"outcome": "gpu", "error": "out of memory"}
        tokens_per_s = self.rate[c.strategy] * 1e14 / executed(c.strategy, c.preset)
        return {"outcome": "ok", "tokens_per_s": tokens_per_s, "run": f"runs/{c.strategy}-{c.preset}"}


def failing_at(preset, speed, error="RuntimeError: a broken library"):
    """`speed`, except that the measuring run of `preset` fails with `error`."""
    return lambda c, size: {"outcome": "error", "error": error} if c.preset == preset else speed(c, size)


def inputs(measure, *, peak=None, sizes=(24.0, 80.0), budget_s=DAY):
    device = Device("Fake GPU", peak, "a test", "PCIe 4.0 x16", 31.5, "a test")
    return Inputs(Target(device, 80.0, True, "cuda"), budget_s, sizes, {}, [], measure)


def plan(tmp_path, names):
    return AnswerPlan(tuple(names), presets=LADDER_5, out=tmp_path / "answer.json", command=("test",))


REACH = {
    "amp": {24.0: 1, 80.0: 3},
    "act_ckpt": {24.0: 2, 80.0: 4},
    "zero_offload+act_ckpt": {24.0: 4, 80.0: 4},
}
RATE = {"amp": 4.0, "act_ckpt": 3.0, "zero_offload+act_ckpt": 2.5}


@pytest.mark.parametrize("budget_s", [3600.0, DAY, 30 * DAY])
def test_the_best_is_the_brute_force_minimum_and_nothing_unfit_starts(tmp_path, budget_s):
    memory = FakeMemory(REACH)
    speed = FakeSpeed(memory, RATE)
    doc = run_answer(plan(tmp_path, REACH), inputs(speed, budget_s=budget_s), memory)
    for entry in doc["sizes"]:
        size = entry["gpu_memory_gib"]
        grid = [(s, p) for s, p in itertools.product(REACH, LADDER_5) if memory.fits(s, p, size)]

        def loss(s, p):
            tokens = RATE[s] * 1e14 / executed(s, p) * budget_s
            return estimated_loss(params(p), tokens)

        expected = min(grid, key=lambda sp: loss(*sp))  # the lowest central estimate
        likeliest = max(entry["candidates"], key=lambda c: c["p_best"] or 0)
        named = [entry["best"], *entry["contenders"]]
        assert entry["best"] == {"strategy": likeliest["strategy"], "preset": likeliest["preset"]}
        assert {"strategy": expected[0], "preset": expected[1]} in named  # the best, or named beside it
        biggest = max(grid, key=lambda sp: params(sp[1]))
        assert params(entry["biggest"]["preset"]) == params(biggest[1])
        assert {(c["strategy"], c["preset"]) for c in entry["candidates"]} == set(grid)
        for name, own in entry["strategies"].items():
            own_best = min((sp for sp in grid if sp[0] == name), key=lambda sp: loss(*sp))
            assert (own["best"]["strategy"], own["best"]["preset"]) == own_best
            assert own["worse_by"] == pytest.approx(loss(*own_best) - loss(*expected))
    assert json.loads((tmp_path / "answer.json").read_text())["complete"] is True


def test_every_figure_says_where_it_came_from(tmp_path):
    memory = FakeMemory(REACH)
    doc = run_answer(plan(tmp_path, REACH), inputs(FakeSpeed(memory, RATE)), memory)
    sources = set()
    for c in (c for e in doc["sizes"] for c in e["candidates"]):
        speed, source = c["tokens_per_s"], c["tokens_per_s"]["source"]
        sources.add(source)
        if source == "measured":
            assert speed["run"].startswith("runs/")
        else:  # predicted from a run this answer measured on the device, which it names
            assert source == "predicted" and speed["from"]["efficiency_source"].startswith("run runs/")
        assert c["tokens"]["source"] == f"{source} tokens/s x the budget"
        assert c["tokens_per_param"]["source"] == f"{source} tokens / parameters"
        assert "Hoffmann" in c["estimated_loss"]["source"]
        assert c["tokens"]["value"] == pytest.approx(speed["value"] * DAY)
        assert c["memory"]["source"] == "the memory model"
    assert sources == {"measured", "predicted"}


def test_a_run_out_of_memory_takes_its_size_out_and_the_next_one_down_is_measured(tmp_path):
    memory = FakeMemory({"amp": {80.0: 4}})
    speed = FakeSpeed(memory, {"amp": 4.0}, oom={("amp", "gpt-1.3b"), ("amp", "gpt-760m")})
    doc = run_answer(plan(tmp_path, ["amp"]), inputs(speed, sizes=(80.0,)), memory)
    entry = doc["sizes"][0]
    assert entry["biggest"] == {"strategy": "amp", "preset": "gpt-350m"}
    gone = {c["preset"]: c["fits"] for c in entry["candidates"]}
    assert gone == {
        "gpt-30m": True,
        "gpt2-124m": True,
        "gpt-350m": True,
        "gpt-760m": False,
        "gpt-1.3b": False,
    }
    assert len(speed.calls) == len(set(speed.calls))  # never a candidate twice


def test_with_predictions_only_the_candidates_that_decide_are_measured(tmp_path):
    """A device with a peak: every candidate gets a predicted speed; measured are each strategy's predicted
    best, its neighbours and its largest, then again around a best the measurements moved."""
    memory = FakeMemory({"amp": {80.0: 4}})
    speed = FakeSpeed(memory, {"amp": 0.4})  # near what the throughput model predicts at 100 TFLOP/s
    doc = run_answer(plan(tmp_path, ["amp"]), inputs(speed, peak=100.0, sizes=(80.0,)), memory)
    entry = doc["sizes"][0]
    measured = {p for _, p, _ in speed.calls}
    assert entry["best"]["preset"] == "gpt2-124m"
    assert measured == {"gpt-30m", "gpt2-124m", "gpt-350m", "gpt-1.3b"}  # best, neighbours, largest
    sources = {c["preset"]: c["tokens_per_s"]["source"] for c in entry["candidates"]}
    assert all(sources[p] == "measured" for p in measured)
    assert all(sources[p] == "predicted" for p in set(LADDER_5) - measured)
    for c in entry["candidates"]:
        if c["tokens_per_s"]["source"] == "measured":
            assert c["tokens_per_s"]["predicted_value"] > 0  # the prediction it replaced, kept beside it


def test_selection_never_picks_a_size_that_does_not_fit_nor_one_twice():
    cands = [Candidate("amp", p, params(p), 1, 1.0, 1.0) for p in LADDER_5]
    for i, c in enumerate(cands):
        c.speed = {"value": 1e5 * (5 - i), "source": "predicted"}
    cands[-1].fits = False
    chosen = to_measure(cands, DAY, list(LADDER_5))
    assert cands[-1] not in chosen and len({id(c) for c in chosen}) == len(chosen)
    assert cands[3] in chosen  # the largest that still fits
    for c in chosen:
        c.measured = {"outcome": "ok"}
    assert to_measure(cands, DAY, list(LADDER_5)) == []


def test_the_verdict_names_the_best_and_the_biggest_with_their_figures():
    small = Candidate(
        "amp", "gpt2-124m", 124_000_000, 8, 20.0, 3.0, {"value": 100_000.0, "source": "measured"}
    )
    big = Candidate(
        "zero_offload", "gpt-6.7b", 6_650_000_000, 1, 70, 90, {"value": 2000.0, "source": "predicted"}
    )
    ranking = rank([small, big], DAY, ["gpt2-124m", "gpt-6.7b"])
    text = verdict("an NVIDIA H100 80GB HBM3", DAY, ranking)
    loss = estimated_loss(124_000_000, 100_000.0 * DAY)
    low, high = small.odds.low, small.odds.high
    optimal = PRIOR.optimal_tokens(6.65e9) / 6.65e9
    assert text == (
        f"On an NVIDIA H100 80GB HBM3 in 24 h: best gpt2-124m with amp (P(best) 100%), est. loss {loss:.2f} "
        f"(90%: {low:.2f}-{high:.2f}) after 8.64B tokens ({100_000.0 * DAY / 124e6:.3g} per parameter); "
        f"biggest gpt-6.7b with zero_offload, {format_count(2000.0 * DAY)} tokens "
        f"({2000.0 * DAY / 6.65e9:.3g} per parameter): undertrained (under the law's compute-optimal "
        f"{optimal:.3g} tokens per parameter)."
    )
    assert ranking.beyond.startswith("the best is the smallest size asked for (gpt2-124m)")
    twin = Candidate(
        "adam8bit", "gpt2-124m", 124_000_000, 8, 20.0, 3.0, {"value": 100_000.0, "source": "measured"}
    )
    tied = rank([small, twin, big], DAY, ["gpt2-124m", "gpt-6.7b"])
    both = verdict("an NVIDIA H100 80GB HBM3", DAY, tied, True)
    second = twin if tied.best is small else small
    assert f"contenders: gpt2-124m with {second.strategy} ({second.odds.p_best:.0%})" in both
    assert "biggest gpt-6.7b with zero_offload (90 GiB of host memory), " in both
    assert tied.contenders == [second]  # marked on the chart
    assert ranking.contenders == []  # the big one is far behind


def test_a_run_that_fails_leaves_its_size_without_a_speed_and_out_of_the_best(tmp_path):
    memory = FakeMemory({"amp": {80.0: 4}})
    failing = failing_at("gpt2-124m", FakeSpeed(memory, {"amp": 0.4}))
    doc = run_answer(plan(tmp_path, ["amp"]), inputs(failing, peak=100.0, sizes=(80.0,)), memory)
    entry = doc["sizes"][0]
    broken = next(c for c in entry["candidates"] if c["preset"] == "gpt2-124m")
    assert broken["tokens_per_s"] == {
        "value": None,
        "source": "measured",
        "why_missing": "RuntimeError: a broken library",
    }
    assert broken["estimated_loss"] is None and entry["best"]["preset"] != "gpt2-124m"


def test_where_nothing_predicts_a_speed_one_run_teaches_the_model_first(tmp_path):
    memory = FakeMemory({"amp": {80.0: 4}})
    speed = FakeSpeed(memory, {"amp": 0.4})
    doc = run_answer(plan(tmp_path, ["amp"]), inputs(speed, peak=None, sizes=(80.0,)), memory)
    assert speed.calls[0] == ("amp", "gpt-350m", 80.0)  # the middle of the five, before any other
    assert len(speed.calls) < len(LADDER_5)  # the rest predicted from it where they do not decide
    assert {c["tokens_per_s"]["source"] for c in doc["sizes"][0]["candidates"]} == {"measured", "predicted"}


def test_the_ladder_brackets_the_best_of_a_day_and_of_a_week():
    """The rungs between the GPT-3 sizes: the same family, heads of 64 or 128, growing size."""
    sizes = [params(p) for p in LADDER]
    assert sizes == sorted(sizes) and len(LADDER) >= 15
    for name in LADDER:
        m = PRESETS[name].model
        assert m.d_model // m.n_head in (64, 128) and m.seq_len == 1024
    assert params("gpt-16m") < 20e6 and 760e6 < params("gpt-1b") < 1.3e9


def test_a_stage_summary_sets_each_measured_speed_beside_its_prediction(tmp_path):
    """The summary of an answer-24 stage's work folder (an answer.json as `harness answer` leaves it, made
    here with fakes: the stage itself needs a GPU, and test_benchmarks checks that it can start) ends with
    the check the GPU session reports: every measured candidate's tokens/s and the prediction made before
    it ran."""
    from benchmarks.stage_summary import summary

    memory = FakeMemory({"amp": {80.0: 4}})
    doc = run_answer(
        plan(tmp_path, ["amp"]), inputs(FakeSpeed(memory, {"amp": 0.4}), peak=100.0, sizes=(80.0,)), memory
    )
    measured = [c for c in doc["sizes"][0]["candidates"] if c["tokens_per_s"]["source"] == "measured"]
    text = summary(tmp_path, "answer-24")
    assert doc["sizes"][0]["verdict"] in text
    rows = text.splitlines()[-len(measured) :]
    for c, row in zip(sorted(measured, key=lambda c: c["params"]), rows, strict=True):
        speed = c["tokens_per_s"]
        assert row.split()[:3] == ["80", "amp", c["preset"]]
        assert row.split()[-1] == f"{speed['predicted_value'] / speed['value']:.3f}"


def test_the_terminal_counts_only_speeds_it_has(tmp_path):
    from harness.cli.text.answer import format_answer

    memory = FakeMemory({"amp": {80.0: 4}})
    failing = failing_at("gpt2-124m", FakeSpeed(memory, {"amp": 0.4}))

    doc = run_answer(plan(tmp_path, ["amp"]), inputs(failing, peak=100.0, sizes=(80.0,)), memory)
    sources = [c["tokens_per_s"] for c in doc["sizes"][0]["candidates"]]
    measured = sum(s["source"] == "measured" and s["value"] is not None for s in sources)
    predicted = sum(s["source"] == "predicted" for s in sources)
    assert f"speeds: {measured} measured, {predicted} predicted, 1 unknown" in format_answer(doc)
