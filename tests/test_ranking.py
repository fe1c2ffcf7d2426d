"""The answer's arithmetic, figure by figure: what a candidate reaches in the budget and how the document
holds it, the best and the biggest over all and per strategy, where the optimum may lie beyond the ladder,
the verdict's words for every case, and the law's range."""

import pytest

from harness.capacity.law import PRIOR
from harness.capacity.odds import CONTENDER
from harness.capacity.ranking import Candidate, _budget, rank, verdict
from harness.capacity.scaling import (
    LAW_SOURCE,
    DayOutlook,
    estimated_loss,
)

DAY = 86400.0
LADDER = ["gpt-30m", "gpt2-124m", "gpt-350m"]


def candidate(strategy="amp", preset="gpt2-124m", params=124_000_000, speed=100_000.0, source="measured"):
    figure = None if speed is None else {"value": speed, "source": source}
    return Candidate(strategy, preset, params, 8, 20.0, 3.0, figure)


def test_a_candidates_outlook_is_its_tokens_in_the_budget_labelled_by_its_speeds_source():
    c = candidate(speed=1000.0, source="predicted")
    assert c.outlook(10.0) == {
        "tokens": {"value": 10_000.0, "source": "predicted tokens/s x the budget"},
        "tokens_per_param": {"value": 10_000.0 / 124e6, "source": "predicted tokens / parameters"},
        "estimated_loss": {"value": estimated_loss(124e6, 10_000.0), "source": LAW_SOURCE},
    }
    assert c.loss(10.0) == estimated_loss(124e6, 10_000.0)
    nothing = {"tokens": None, "tokens_per_param": None, "estimated_loss": None}
    assert candidate(speed=None).outlook(DAY) == nothing and candidate(speed=None).loss(DAY) is None
    oom = candidate()
    oom.fits = False
    assert oom.outlook(DAY) == nothing  # a size that ran out of memory reaches nothing


def test_the_document_holds_every_figure_of_a_candidate_with_its_source():
    c = candidate(speed=1000.0)
    c.measured = {"outcome": "ok", "run": "runs/x"}
    assert c.to_dict(10.0) == {
        "strategy": "amp",
        "preset": "gpt2-124m",
        "params": 124_000_000,
        "fits": True,
        "memory": {"micro_batch": 8, "predicted_gpu_gib": 20.0, "predicted_host_gib": 3.0,
                   "source": "the memory model"},
        "tokens_per_s": {"value": 1000.0, "source": "measured"},
        "measured": {"outcome": "ok", "run": "runs/x"},
        **c.outlook(10.0),
        "p_best": None,
    }  # fmt: skip
    rank([c], 10.0, LADDER)  # ranked: its P(best) and its loss's interval join it
    ranked = c.to_dict(10.0)
    assert ranked["p_best"] == 1.0 and ranked["estimated_loss"]["interval"][0] <= c.loss(10.0)
    c.fits = False
    assert c.to_dict(10.0)["memory"]["source"] == "the memory model (a measuring run ran out of memory)"


def test_the_best_is_the_lowest_loss_the_biggest_the_most_parameters_each_strategys_own_too():
    small = candidate("amp", "gpt-30m", 30_000_000, 400_000.0)
    mid = candidate("amp", "gpt2-124m", 124_000_000, 100_000.0)
    big = candidate("zero_offload", "gpt-350m", 350_000_000, 1_000.0)
    unknown = candidate("zero_offload", "gpt2-124m", 124_000_000, None)
    oom = candidate("adam8bit", "gpt-350m", 350_000_000, 50_000.0)
    oom.fits = False
    ranking = rank([small, mid, big, unknown, oom], DAY, LADDER)
    losses = {c.preset + c.strategy: c.loss(DAY) for c in (small, mid, big)}
    assert min(losses, key=losses.get) == "gpt2-124mamp" and ranking.best is mid
    assert ranking.biggest is big  # the most parameters among those that fit, the one out of memory aside
    assert ranking.by_strategy["amp"]["best"] is mid and ranking.by_strategy["amp"]["worse_by"] == 0.0
    assert ranking.by_strategy["amp"]["p_best"] == pytest.approx(small.odds.p_best + mid.odds.p_best)
    assert mid.odds.p_best > 0.9
    own = ranking.by_strategy["zero_offload"]
    assert own["best"] is big and own["biggest"] is big  # the one without a speed is never a best
    assert own["worse_by"] == pytest.approx(big.loss(DAY) - mid.loss(DAY))
    assert ranking.by_strategy["adam8bit"] == {
        "best": None,
        "biggest": None,
        "worse_by": None,
        "p_best": None,
    }
    assert ranking.beyond == (
        "the best is the largest size amp fits here (gpt2-124m): a larger one that fit might do better"
    )
    assert ranking.contenders == []


def test_candidates_that_speed_noise_could_make_the_best_are_named_as_contenders():
    """Within a measured speed's band (3%) of the best, a candidate wins a fair share of the draws: a
    contender; 20% slower, never. The tie threshold is the speeds' own noise, not a constant."""
    a = candidate("amp", "gpt2-124m", 124_000_000, 100_000.0)
    b = candidate("adam8bit", "gpt2-124m", 124_000_000, 100_000.0 * (1 - 1e-9))
    ranking = rank([a, b], DAY, LADDER)
    assert ranking.best in (a, b) and ranking.contenders == [b if ranking.best is a else a]
    assert 0.4 < a.odds.p_best < 0.6 and a.odds.p_best + b.odds.p_best == pytest.approx(1.0)
    near = candidate("adam8bit", "gpt2-124m", 124_000_000, 99_000.0)  # 1% slower: within the noise
    slow = candidate("zero_offload", "gpt2-124m", 124_000_000, 80_000.0)  # 20% slower: outside it
    ranking = rank([a, near, slow], DAY, LADDER)
    assert ranking.best is a and ranking.contenders == [near] and slow.odds.p_best < CONTENDER
    said = verdict("a GPU", DAY, ranking)
    low, high = a.odds.low, a.odds.high
    assert f"best gpt2-124m with amp (P(best) {a.odds.p_best:.0%}), est. loss {a.loss(DAY):.2f} " in said
    assert (
        f"(90%: {low:.2f}-{high:.2f})" in said
        and f"contenders: gpt2-124m with adam8bit ({near.odds.p_best:.0%})" in said
    )
    unknown_big = candidate("x", "gpt-350m", 350_000_000, None)
    known_big = candidate("y", "gpt-350m", 350_000_000, 1_000.0)
    assert rank([unknown_big, known_big], DAY, LADDER).biggest is known_big  # the one with a loss wins


def test_the_optimum_may_lie_beyond_the_ladder_at_either_end_or_past_what_the_strategy_fits():
    fast = candidate("amp", "gpt-30m", 30_000_000, 10_000_000.0)  # so fast the smallest wins
    slow = candidate("amp", "gpt2-124m", 124_000_000, 1.0)
    assert rank([fast, slow], DAY, LADDER).beyond == (
        "the best is the smallest size asked for (gpt-30m): the optimum may lie below it"
    )
    top = candidate("amp", "gpt-350m", 350_000_000, 10_000_000.0)
    low = candidate("amp", "gpt-30m", 30_000_000, 1.0)
    assert rank([low, top], DAY, LADDER).beyond == (
        "the best is the largest size asked for (gpt-350m): the optimum may lie above it"
    )
    fits = candidate("amp", "gpt2-124m", 124_000_000, 10_000_000.0)
    others = candidate("zero_offload", "gpt-350m", 350_000_000, 1.0)
    tiny = candidate("amp", "gpt-30m", 30_000_000, 1.0)
    assert rank([tiny, fits, others], DAY, LADDER).beyond == (
        "the best is the largest size amp fits here (gpt2-124m): a larger one that fit might do better"
    )


def test_the_verdict_says_when_nothing_fits_when_nothing_has_a_speed_and_when_the_biggest_is_trained():
    assert verdict("a GPU", DAY, rank([], DAY, LADDER)) == (
        "On a GPU in 24 h: no size asked for fits with any strategy asked for."
    )
    blind = rank([candidate(speed=None)], DAY, LADDER)
    assert verdict("a GPU", DAY, blind) == (
        "On a GPU in 24 h: no speed known for any candidate, so no best; biggest gpt2-124m with amp "
        "(no speed known)."
    )
    trained = candidate("amp", "gpt-30m", 30_000_000, 100_000.0)  # 288 tokens per parameter in a day
    text = verdict("a GPU", DAY, rank([trained], DAY, LADDER))
    optimal = PRIOR.optimal_tokens(30e6) / 30e6
    assert text.endswith(
        f"biggest gpt-30m with amp, 8.64B tokens (288 per parameter): at least the law's compute-optimal "
        f"{optimal:.3g} tokens per parameter."
    )


@pytest.mark.parametrize(
    ("seconds", "said"),
    [(86400, "24 h"), (2 * 86400, "2 d"), (7 * 86400, "7 d"), (3600, "1 h"), (1800, "30 min"),
     (60, "1 min"), (45, "45 s"), (1, "1 s"), (90, "90 s"), (90.5, "1m30s"), (5400, "90 min")],
)  # fmt: skip
def test_a_budget_is_said_in_its_largest_whole_unit(seconds, said):
    assert _budget(seconds) == said


def test_the_law_is_said_to_extrapolate_outside_the_sizes_it_was_fitted_on():
    from harness.capacity.law import PRIOR_IN_USE

    outside_the_law = lambda params: PRIOR_IN_USE.extrapolation(params, 0.0)  # noqa: E731 (sizes only)
    assert outside_the_law(70e6) is None and outside_the_law(16e9) is None and outside_the_law(1e9) is None
    note = "the law was fitted on models of 70M to 16B parameters: it extrapolates here"
    assert outside_the_law(69e6) == note and outside_the_law(17e9) == note


def test_a_days_outlook_in_the_capacity_document():
    assert DayOutlook(100, 10.0, 50.0).to_dict() == {
        "budget_s": 10.0, "tokens_per_s": 50.0, "tokens": 500.0, "tokens_per_param": 5.0,
        "compute_optimal_tokens": PRIOR.optimal_tokens(100), "estimated_loss": estimated_loss(100, 500.0),
        "loss_source": LAW_SOURCE, "why_missing": None,
    }  # fmt: skip
    unknown = DayOutlook(100, 10.0, None).to_dict()
    assert unknown["tokens"] is None and unknown["estimated_loss"] is None
    assert unknown["why_missing"] == "no measured speed (predict-only)"
    assert estimated_loss(1e9, 2e10) == pytest.approx(1.8172 + 482.01 / 1e9**0.3478 + 2085.43 / 2e10**0.3658)


def test_contenders_come_likeliest_first_and_every_interval_says_how_it_was_drawn():
    from harness.capacity.ranking import INTERVAL_SOURCE

    best = candidate("amp", "gpt2-124m", 124_000_000, 100_000.0)
    near = candidate("adam8bit", "gpt2-124m", 124_000_000, 99_000.0)
    nearer = candidate("ao_adam8bit", "gpt2-124m", 124_000_000, 99_500.0)
    ranking = rank([best, near, nearer], DAY, LADDER)
    assert ranking.contenders == sorted([near, nearer], key=lambda c: -c.odds.p_best)
    assert len(ranking.contenders) == 2 and ranking.contenders[0] is nearer
    loss = best.to_dict(DAY)["estimated_loss"]
    assert loss["interval_source"] == INTERVAL_SOURCE and loss["interval"] == [best.odds.low, best.odds.high]
