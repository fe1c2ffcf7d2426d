"""The loss side of the answer: the prior's two published laws and its band, the odds every verdict states,
and the fit of L(N, D) on runs generated from a known law (recovered within its bootstrap intervals, and
its compute-optimal size at 30 times the largest fitted compute within 15%)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.capacity.law import HOFFMANN, PRIOR, PRIOR_SPAN, REPLICATION, between, prior_samples
from harness.capacity.law_fit import Run, bootstrap, fit
from harness.capacity.odds import CONTENDER, odds


def test_the_prior_is_the_replications_refit_with_hoffmanns_law_at_one_end_of_its_span():
    assert PRIOR is REPLICATION
    assert (REPLICATION.E, REPLICATION.A, REPLICATION.B) == (1.8172, 482.01, 2085.43)
    assert (REPLICATION.alpha, REPLICATION.beta) == (0.3478, 0.3658)
    for u, law in ((0.0, HOFFMANN), (1.0, REPLICATION)):
        drawn = between(u)
        assert [getattr(drawn, k) for k in ["E", "A", "B", "alpha", "beta"]] == pytest.approx(
            [getattr(law, k) for k in ["E", "A", "B", "alpha", "beta"]], rel=1e-12
        )
    drawn = prior_samples(500)
    assert len({d.E for d in drawn}) == 500 and all(d.B > 0 and d.A > 0 for d in drawn)
    us = [
        (math.log(d.E) - math.log(HOFFMANN.E)) / (math.log(REPLICATION.E) - math.log(HOFFMANN.E))
        for d in drawn
    ]
    assert PRIOR_SPAN[0] <= min(us) < -0.2 and 1.2 < max(us) <= PRIOR_SPAN[1]  # past both laws


@pytest.mark.parametrize("compute", [1e18, 1e20, 1e22])
def test_the_optimum_is_the_lowest_loss_at_its_compute_and_its_tokens_invert_it(compute):
    params, tokens = PRIOR.optimum(compute)
    assert 6 * params * tokens == pytest.approx(compute, rel=1e-12)
    for f in (0.8, 1.25):
        other = params * f
        assert PRIOR.loss(other, compute / 6 / other) > PRIOR.loss(params, tokens)
    assert PRIOR.optimal_tokens(params) == pytest.approx(tokens, rel=1e-9)


def test_the_compute_optimal_ratio_is_the_laws_own():
    """Near 23 tokens per parameter for the replication at these budgets, near 36-40 for Hoffmann's."""
    at = 1e20
    assert 20 < REPLICATION.optimum(at)[1] / REPLICATION.optimum(at)[0] < 26
    assert 34 < HOFFMANN.optimum(at)[1] / HOFFMANN.optimum(at)[0] < 45


def test_odds_sum_to_one_and_name_a_clear_winner_or_the_contenders():
    clear = odds([(350e6, 20e9, 0.03), (124e6, 20e9, 0.03), (2e9, 1e9, 0.03)])
    assert sum(o.p_best for o in clear) == pytest.approx(1.0)
    assert clear[0].p_best > 0.9 and all(o.low <= o.high for o in clear)
    close = odds([(350e6, 10e9, 0.15), (540e6, 6.5e9, 0.15)])  # two rungs a few thousandths apart
    assert all(o.p_best >= CONTENDER for o in close)
    central = [PRIOR.loss(350e6, 10e9), PRIOR.loss(540e6, 6.5e9)]
    assert all(o.low <= c <= o.high for o, c in zip(close, central, strict=True))


def test_odds_are_reproducible_and_a_wider_speed_band_widens_the_interval():
    a = odds([(350e6, 10e9, 0.03)])[0]
    assert odds([(350e6, 10e9, 0.03)])[0] == a
    wide = odds([(350e6, 10e9, 0.30)])[0]
    assert wide.high - wide.low > a.high - a.low


def _grid(seed: int, noise: float = 0.005) -> list[Run]:
    """An IsoFLOP design from the replication's law: 3 compute levels, 5 sizes around each optimum, each
    loss with lognormal noise of the size measured final losses show between seeds (0.5%)."""
    rng = np.random.default_rng(seed)
    runs = []
    for compute in (1e17, 3e17, 1e18):
        best, _ = REPLICATION.optimum(compute)
        for f in (0.25, 0.5, 1, 2, 4):
            n = best * f
            d = compute / 6 / n
            runs.append(Run(n, d, REPLICATION.loss(n, d) * math.exp(rng.normal(0, noise))))
    return runs


def test_a_noise_free_grid_gives_its_law_back():
    law = fit(_grid(0, noise=0.0))
    for key in ("E", "A", "B", "alpha", "beta"):
        assert getattr(law, key) == pytest.approx(getattr(REPLICATION, key), rel=0.02), key


@pytest.mark.slow
def test_the_fit_recovers_a_known_law_within_its_bootstrap_intervals():
    """Five seeds of noisy runs (10 seeds, 200 resamples, measured: 49 of 50 intervals covered the truth,
    N_opt within 13.5%): 90% of the (parameter, seed) intervals cover the true value, and N_opt at 30 times
    the largest fitted compute is within 15% of the true one for every seed."""
    covered, total = 0, 0
    for seed in range(5):
        result = bootstrap(_grid(seed), resamples=200, seed=seed)
        assert len(result.samples) >= 190
        for key in ("E", "A", "B", "alpha", "beta"):
            low, high = result.interval(key)
            covered += low <= getattr(REPLICATION, key) <= high
            total += 1
        truth = REPLICATION.optimum(30e18)[0]
        assert result.law.optimum(30e18)[0] == pytest.approx(truth, rel=0.15)
    assert covered >= 0.9 * total


def test_a_speeds_band_is_where_ninety_percent_of_its_draws_fall():
    from harness.capacity.odds import SPEED_BAND, speed_band, speed_factors

    factors = speed_factors(0.15, 20_000, np.random.default_rng(3))
    inside = np.mean((factors >= 1 / 1.15) & (factors <= 1.15))
    assert inside == pytest.approx(0.90, abs=0.01)
    assert speed_band({"source": "measured"}) == SPEED_BAND["measured"] == 0.03
    assert speed_band({"source": "predicted"}) == speed_band({}) == SPEED_BAND["predicted"] == 0.15


def test_without_speed_error_the_interval_is_the_laws_own_draws():
    """Band 0: the interval is the 5th and 95th percentile of the drawn laws' losses, seed by seed."""
    for seed in (0, 1):
        (o,) = odds([(350e6, 10e9, 0.0)], seed=seed)
        losses = [law.loss(350e6, 10e9) for law in prior_samples(2000, seed)]
        assert (o.low, o.high) == pytest.approx(tuple(np.percentile(losses, [5, 95])), rel=1e-12)
    assert odds([(350e6, 10e9, 0.0)]) == odds([(350e6, 10e9, 0.0)], seed=0)
    twins = odds([(124e6, 20e9, 0.0), (124e6, 20e9, 0.0)])
    assert [o.p_best for o in twins] == [1.0, 0.0]  # an exact tie goes to the first listed


def test_a_drawn_law_says_where_it_lies_and_the_draws_follow_their_seed():
    assert between(0.5).source == "0.50 of the way from Hoffmann's law to the replication's"
    assert prior_samples(10) == prior_samples(10, 0) != prior_samples(10, 1)
    assert REPLICATION.to_dict() == {"E": 1.8172, "A": 482.01, "B": 2085.43, "alpha": 0.3478, "beta": 0.3658,
                                     "source": REPLICATION.source, "fitted_params": (70e6, 16e9)}  # fmt: skip
