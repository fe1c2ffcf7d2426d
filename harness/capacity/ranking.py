"""The answer's arithmetic: for one memory size, every (strategy, size) that fits, what each reaches in the
budget (tokens, tokens per parameter, the law's loss with its interval), its chance of being the best
(`odds`), the best (the likeliest) with every contender (P(best) of 10% or more) and the biggest, per
strategy and over all, and the verdict sentence. Every figure carries its source: a speed is "measured"
(with its run) or "predicted" (with what from); the figures made from a speed say which."""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.capacity.law import PRIOR_IN_USE, LawInUse
from harness.capacity.odds import CONTENDER, Odds, odds, speed_band
from harness.core.units import format_count, format_duration


@dataclass
class Candidate:
    """One (strategy, size) the memory model says fits, and what is known of its speed."""

    strategy: str
    preset: str
    params: int
    micro_batch: int | None  # the largest the memory model fits
    predicted_gpu_gib: float
    predicted_host_gib: float
    speed: dict | None = None  # {"value": tokens/s | None, "source": "measured" | "predicted", ...}
    measured: dict | None = None  # the measuring run's record, when one ran (its status, folder, why)
    fits: bool = True  # False once a measuring run ran out of memory
    odds: Odds | None = None  # its P(best) and loss interval, once ranked
    law: LawInUse = PRIOR_IN_USE  # the loss law its estimate reads (a fit of this recipe, else the prior)

    @property
    def tokens_per_s(self) -> float | None:
        return None if self.speed is None else self.speed.get("value")

    def outlook(self, budget_s: float) -> dict:
        """Tokens, tokens per parameter and estimated loss in the budget, labelled by the speed's source."""
        speed = self.tokens_per_s
        if speed is None or not self.fits:
            return {"tokens": None, "tokens_per_param": None, "estimated_loss": None}
        tokens = speed * budget_s
        source = self.speed["source"]
        loss = {"value": self.law.law.loss(self.params, tokens), "source": self.law.source}
        if self.odds is not None:
            loss.update(interval=[self.odds.low, self.odds.high], interval_source=interval_source(self.law))
        return {
            "tokens": {"value": tokens, "source": f"{source} tokens/s x the budget"},
            "tokens_per_param": {"value": tokens / self.params, "source": f"{source} tokens / parameters"},
            "estimated_loss": loss,
        }

    def loss(self, budget_s: float) -> float | None:
        figure = self.outlook(budget_s)["estimated_loss"]
        return None if figure is None else figure["value"]

    def to_dict(self, budget_s: float) -> dict:
        return {
            "strategy": self.strategy,
            "preset": self.preset,
            "params": self.params,
            "fits": self.fits,
            "memory": {
                "micro_batch": self.micro_batch,
                "predicted_gpu_gib": self.predicted_gpu_gib,
                "predicted_host_gib": self.predicted_host_gib,
                "source": "the memory model"
                + (" (a measuring run ran out of memory)" if not self.fits else ""),
            },
            "tokens_per_s": self.speed,
            "measured": self.measured,
            **self.outlook(budget_s),
            "p_best": None if self.odds is None else self.odds.p_best,
        }


INTERVAL_SOURCE = (
    "the 5th to 95th percentile over laws drawn across the prior's span and the speed's band (measured "
    "3%, predicted 15%, each holding 90% of its error)"
)
FITTED_INTERVAL_SOURCE = (
    "the 5th to 95th percentile over the fit's bootstrap refits and the speed's band (measured 3%, "
    "predicted 15%, each holding 90% of its error)"
)


def interval_source(law: LawInUse) -> str:
    return FITTED_INTERVAL_SOURCE if law.fitted else INTERVAL_SOURCE


@dataclass
class Ranking:
    """One memory size's answer."""

    best: Candidate | None  # the lowest estimated loss
    biggest: Candidate | None  # the most parameters that fit
    by_strategy: dict[str, dict] = field(default_factory=dict)  # name -> its best, biggest, worse_by
    beyond: str | None = None  # where the optimum may lie past what was ranked
    contenders: list[Candidate] = field(default_factory=list)  # others with P(best) of 10% or more


def rank(candidates: list[Candidate], budget_s: float, ladder: list[str]) -> Ranking:
    """The best and the biggest over `candidates` (only those that fit; the best only among those with a
    speed), and each strategy's, with how far its best's central estimate lies above the lowest one."""
    fitting = [c for c in candidates if c.fits]
    scored = [c for c in fitting if c.loss(budget_s) is not None]
    entries = [(c.params, c.tokens_per_s * budget_s, speed_band(c.speed)) for c in scored]
    law = scored[0].law if scored else PRIOR_IN_USE  # one law for every candidate of an answer
    for c, o in zip(scored, odds(entries, law=law), strict=True):
        c.odds = o
    best = max(scored, key=lambda c: (c.odds.p_best, -c.loss(budget_s), c.params), default=None)
    biggest = max(fitting, key=lambda c: (c.params, -(c.loss(budget_s) or float("inf"))), default=None)
    ranking = Ranking(best, biggest)
    lowest = min((c.loss(budget_s) for c in scored), default=None)  # the lowest central estimate
    for name in dict.fromkeys(c.strategy for c in candidates):
        own = [c for c in scored if c.strategy == name]
        own_best = min(own, key=lambda c: c.loss(budget_s), default=None)
        own_biggest = max((c for c in fitting if c.strategy == name), key=lambda c: c.params, default=None)
        worse = None if own_best is None else own_best.loss(budget_s) - lowest
        ranking.by_strategy[name] = {"best": own_best, "biggest": own_biggest, "worse_by": worse,
                                     "p_best": sum(c.odds.p_best for c in own) if own else None}  # fmt: skip
    if best is not None:
        ranking.beyond = _beyond(best, fitting, ladder)
        others = [c for c in scored if c is not best and c.odds.p_best >= CONTENDER]
        ranking.contenders = sorted(others, key=lambda c: -c.odds.p_best)
    return ranking


def _beyond(best: Candidate, fitting: list[Candidate], ladder: list[str]) -> str | None:
    """Why the optimum may lie past the ranked sizes: the best is the ladder's smallest or largest rung, or
    the largest its strategy fits in this memory."""
    if best.preset == ladder[0]:
        return f"the best is the smallest size asked for ({best.preset}): the optimum may lie below it"
    if best.preset == ladder[-1]:
        return f"the best is the largest size asked for ({best.preset}): the optimum may lie above it"
    largest = max((c for c in fitting if c.strategy == best.strategy), key=lambda c: c.params)
    if largest is best:
        return (
            f"the best is the largest size {best.strategy} fits here ({best.preset}): a larger one that fit "
            "might do better"
        )
    return None


def verdict(where: str, budget_s: float, ranking: Ranking, host_note: bool = False) -> str:
    """The answer in one sentence: 'On <where> in <budget>: best <size> with <strategy> (P(best) ..), est.
    loss .. (90%: ..) ...; contenders: ...; biggest ...'. `host_note`: the biggest's host memory is said (no
    host limit was applied)."""
    head = f"On {where} in {_budget(budget_s)}:"
    if ranking.biggest is None:
        return f"{head} no size asked for fits with any strategy asked for."
    parts = []
    best = ranking.best
    if best is not None:
        o = best.outlook(budget_s)
        low, high = o["estimated_loss"]["interval"]
        loss, tokens = o["estimated_loss"]["value"], o["tokens"]["value"]
        parts.append(
            f"best {best.preset} with {best.strategy} (P(best) {best.odds.p_best:.0%}), est. loss {loss:.2f} "
            f"(90%: {low:.2f}-{high:.2f}) after {format_count(tokens)} tokens "
            f"({o['tokens_per_param']['value']:.3g} per parameter)"
        )
        if ranking.contenders:
            named = [f"{c.preset} with {c.strategy} ({c.odds.p_best:.0%})" for c in ranking.contenders]
            parts.append(f"contenders: {', '.join(named)}")
    else:
        parts.append("no speed known for any candidate, so no best")
    parts.append(_biggest(ranking.biggest, budget_s, host_note))
    return f"{head} {'; '.join(parts)}."


def _biggest(big: Candidate, budget_s: float, host_note: bool) -> str:
    host = f" ({big.predicted_host_gib:.0f} GiB of host memory)" if host_note else ""
    o = big.outlook(budget_s)
    if o["tokens"] is None:
        return f"biggest {big.preset} with {big.strategy}{host} (no speed known)"
    per_param = o["tokens_per_param"]["value"]
    optimal = big.law.law.optimal_tokens(big.params) / big.params  # where its size is the law's optimum
    if per_param < optimal:
        trained = f"undertrained (under the law's compute-optimal {optimal:.3g} tokens per parameter)"
    else:
        trained = f"at least the law's compute-optimal {optimal:.3g} tokens per parameter"
    return (
        f"biggest {big.preset} with {big.strategy}{host}, {format_count(o['tokens']['value'])} tokens "
        f"({per_param:.3g} per parameter): {trained}"
    )


def _budget(budget_s: float) -> str:
    """24 h, 7 d, 30 min: a budget as the verdict says it."""
    for unit, seconds, at_least in (("d", 86400, 2 * 86400), ("h", 3600, 3600), ("min", 60, 60), ("s", 1, 1)):
        if budget_s >= at_least and budget_s % seconds == 0:
            return f"{budget_s / seconds:g} {unit}"
    return format_duration(budget_s)
