"""`harness answer`: for a budget and a GPU (each memory size of it), the (strategy, size) that trains the
best model (the lowest loss the scaling law expects from the tokens it sees) and the biggest that trains.

Candidates are the sizes the memory model fits. Speeds are predicted by the throughput model for all of
them, then, on a device that is here, measured for the candidates that decide the verdict (each strategy's
best, its ladder neighbours and its largest), each by a real run in a child process; a run that runs out
of memory takes its size out. The document (answer.json) is rewritten after every run."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import strategies
from harness.capacity import calibration
from harness.capacity.law import PRIOR_IN_USE, LawInUse
from harness.capacity.memory_model import GIB
from harness.capacity.odds import CONTENDER, DRAWS
from harness.capacity.ranking import Candidate, interval_source, rank, verdict
from harness.capacity.search import HEADROOM, check_sizes
from harness.capacity.throughput import DEFAULT_EFFICIENCY, LINK_EFFICIENCY, predict_speed
from harness.core.presets import get_preset
from harness.core.results import document_head, write_json_atomic
from harness.model import param_count
from harness.orchestrate.answer_device import Target
from harness.orchestrate.answer_plan import AnswerPlan
from harness.orchestrate.answer_select import check_budget, to_measure

ANSWER_KIND, SCHEMA_VERSION = "answer", 1


class AnswerStopped(Exception):
    """A stop (Ctrl-C, SIGTERM) while a candidate was being measured: the answer ends where it is."""


# (candidate, memory size) -> the measuring run's record: {"outcome": "ok" | "gpu" | "host" | "error" |
# "refused", "tokens_per_s", "run", ...}
Measure = Callable[[Candidate, float], dict]
# (strategy, presets, memory GiB) -> [(preset, micro_batch, predicted GPU GiB, predicted host GiB)] that fit
Memory = Callable[[str, tuple[str, ...], float], list[tuple[str, int, float, float]]]


@dataclass
class Inputs:
    """What the answer is computed from, besides its candidates."""

    target: Target
    budget_s: float
    sizes: tuple[float, ...]
    host: dict[str, dict]  # host-step timings on this machine, by executor name
    calibrations: list
    measure: Measure | None  # None: nothing is measured
    host_unlimited: bool = (
        False  # no host memory limit applied (predict-only): the verdict says what it needs
    )
    set_aside: list[str] = field(default_factory=list)  # inputs not used, each with why (a damaged file)
    law: LawInUse = PRIOR_IN_USE  # the loss law: this recipe's fit on this data where one is stored
    law_record: dict = field(default_factory=dict)  # which law, from which fit document, or why the prior

    @property
    def precision(self) -> str:
        return "fp32" if self.target.kind == "cpu" else "bf16"


def memory_oracle(precision: str, host_bytes: float) -> Memory:
    """The memory model's verdict per size: the largest micro-batch that fits, its GPU and host figures."""

    def fits(strategy: str, presets: tuple[str, ...], size_gib: float) -> list[tuple[str, int, float, float]]:
        checks = check_sizes(strategy, presets, size_gib, host_bytes, precision)
        return [
            (c.preset, c.prediction.micro_batch, c.prediction.gpu_bytes / GIB, c.prediction.host_bytes / GIB)
            for c in checks
            if c.prediction is not None and c.host_refusal is None
        ]

    return fits


def candidates_for(inputs: Inputs, names: list[str], presets: tuple[str, ...], size: float, memory: Memory):
    """Every (strategy, size) the memory model fits at `size` GiB, each with its predicted speed."""
    found = [
        Candidate(
            name,
            preset,
            param_count(get_preset(preset).model),
            micro_batch,
            gpu_gib,
            host_gib,
            law=inputs.law,
        )
        for name in names
        for preset, micro_batch, gpu_gib, host_gib in memory(name, presets, size)
    ]
    predict(inputs, found)
    return found


def predict(inputs: Inputs, candidates: list[Candidate]) -> None:
    """A predicted speed for every candidate not measured, from the calibrations known so far."""
    for c in candidates:
        if c.measured is None:
            p = get_preset(c.preset)
            spec, device = strategies.resolve(c.strategy), inputs.target.device
            c.speed = predict_speed(
                p.model, spec, device, inputs.calibrations, inputs.host, p.global_batch_tokens, c.micro_batch
            )


def measure_candidates(inputs: Inputs, candidates: list[Candidate], size: float, ladder: list[str], write):
    """Measure what decides the verdict, until nothing new does: each strategy's best, its neighbours and
    its largest; a size found not to fit makes the next one down its largest. Each measured speed teaches
    the throughput model about this device, and the candidates not measured are predicted again."""
    while True:
        pending = to_measure(candidates, inputs.budget_s, ladder)
        if not pending:
            return
        for c in pending:
            record = inputs.measure(c, size)
            c.measured = record
            outcome = record.get("outcome")
            if outcome == "ok":
                c.speed = measured_speed(record, predicted=(c.speed or {}).get("value"))
                inputs.calibrations.append(_calibration(inputs, c, record))
            elif outcome in ("gpu", "host"):
                c.fits, c.speed = False, None
            else:  # it may fit, but no speed was measured: it cannot be the best
                c.speed = {"value": None, "source": "measured", "why_missing": record.get("error") or outcome}
            write()
        predict(inputs, candidates)


def _calibration(inputs: Inputs, c: Candidate, record: dict):
    p = get_preset(c.preset)
    run = record.get("run") or "a measuring run"
    return calibration.measured(
        inputs.target.device.name,
        c.strategy,
        c.preset,
        p.model,
        p.global_batch_tokens,
        record["tokens_per_s"],
        run,
    )


def measured_speed(record: dict, predicted: float | None) -> dict:
    """A measuring run's tokens/s as a figure, with the prediction it replaces beside it."""
    return {
        "value": record["tokens_per_s"],
        "source": "measured",
        "run": record.get("run"),
        "micro_batch": record.get("micro_batch"),
        "predicted_value": predicted,
    }


def size_entry(inputs: Inputs, size: float, candidates: list[Candidate], ladder: list[str]) -> dict:
    """One memory size's answer, as the document holds it."""
    ranking = rank(candidates, inputs.budget_s, ladder)
    where = inputs.target.where(size, inputs.measure is not None)

    def ref(c: Candidate | None) -> dict | None:
        return None if c is None else {"strategy": c.strategy, "preset": c.preset}

    return {
        "gpu_memory_gib": size,
        "where": where,
        "verdict": verdict(where, inputs.budget_s, ranking, host_note=inputs.host_unlimited),
        "beyond": ranking.beyond,
        "law_note": None if ranking.best is None else _law_note(inputs, ranking.best),
        "best": ref(ranking.best),
        "contenders": [ref(c) for c in ranking.contenders],  # P(best) of 10% or more, likeliest first
        "biggest": ref(ranking.biggest),
        "strategies": {
            name: {
                "best": ref(r["best"]),
                "biggest": ref(r["biggest"]),
                "worse_by": r["worse_by"],
                "p_best": r["p_best"],
            }
            for name, r in ranking.by_strategy.items()
        },
        "candidates": [c.to_dict(inputs.budget_s) for c in candidates],
    }


def _law_note(inputs: Inputs, best: Candidate) -> str | None:
    tokens = (best.outlook(inputs.budget_s)["tokens"] or {}).get("value") or 0.0
    return inputs.law.extrapolation(best.params, tokens)


def run_answer(plan: AnswerPlan, inputs: Inputs, memory: Memory) -> dict:
    """Answer every memory size; the document is written after every measuring run and at the end."""
    names = [strategies.resolve(s).name for s in plan.strategies]
    presets = tuple(sorted(plan.ladder(inputs.target.kind), key=lambda p: param_count(get_preset(p).model)))
    ladder, entries = list(presets), []

    def write(current: list[Candidate] | None = None, size: float | None = None) -> dict:
        partial = [] if current is None else [size_entry(inputs, size, current, ladder)]
        document = _document(plan, inputs, presets, entries + partial, complete=current is None)
        write_json_atomic(plan.out, document)
        return document

    for size in inputs.sizes:
        candidates = candidates_for(inputs, names, presets, size, memory)
        check_budget(inputs.budget_s, candidates)
        if inputs.measure is not None:
            try:
                measure_candidates(inputs, candidates, size, ladder, lambda c=candidates, s=size: write(c, s))
            except AnswerStopped:
                return {**write(candidates, size), "stopped": True}
        entries.append(size_entry(inputs, size, candidates, ladder))
    return write()


def _document(plan: AnswerPlan, inputs: Inputs, presets, entries: list[dict], complete: bool) -> dict:
    return {
        **document_head(ANSWER_KIND, SCHEMA_VERSION, plan.command, complete),
        "budget": plan.budget,
        "budget_s": inputs.budget_s,
        "device": inputs.target.to_dict(),
        "measured_here": inputs.measure is not None,
        "ladder": list(presets),
        "method": {
            "memory": f"the memory model at the largest micro-batch that fits, {HEADROOM:.0%} of the memory "
            "kept free; a measuring run that runs out of memory takes the size out",
            "speed_measured": "a real run at its fitted micro-batch: one untimed warm-up step, then timed "
            "optimizer steps of the full global batch; their steady tokens/s",
            "speed_predicted": "executed FLOPs per token over the FLOP rate a measured run of the device "
            "sustained (the same strategy, else its executor, else amp; nearest size), else "
            f"{DEFAULT_EFFICIENCY} of its peak; plus, unless a run of its executor carries it, the host "
            "step benchmarked here and the bytes the GPU waits for over its host link (at "
            f"{LINK_EFFICIENCY:.0%} of its rate); the copies during compute bound the step when longer",
            "loss": inputs.law.source,
            "loss_interval": interval_source(inputs.law),
            "p_best": f"the share of {DRAWS} joint draws of the law and the speeds in which it is the best; "
            f"a contender has {CONTENDER:.0%} or more",
        },
        "law": {**inputs.law.law.to_dict(), "fitted": inputs.law.fitted, **inputs.law_record},
        "host_steps": inputs.host,
        "calibrations": [c.to_dict() for c in inputs.calibrations],
        "set_aside": list(inputs.set_aside),
        "sizes": entries,
        "trained": [],  # --train: the backtest's runs, the best first
        "backtest": None,
    }
