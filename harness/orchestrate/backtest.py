"""`harness answer --train`: the backtest. The answer's likeliest candidates (the best, then by P(best), up to
`--top`) each trained for the budget as a normal bench run on the answer's data; each one's measured loss
is recorded beside its estimate and interval, and the measured order beside the predicted one."""

from __future__ import annotations

from harness.core.results import write_json_atomic
from harness.orchestrate.answer import Inputs
from harness.orchestrate.answer_plan import AnswerPlan


def picks(entry: dict, top: int) -> list[dict]:
    """The candidates to train: the best first, then the others by P(best), ties by the lower estimated
    loss, `top` in all (each for the whole budget; `--top 1` trains the best alone). A candidate that never
    wins a draw is trained too when `top` reaches it: that the predicted loser loses is what a backtest
    checks as much as that the winner wins."""
    best = entry["best"]
    if best is None:
        return []
    ranked = sorted(
        (c for c in entry["candidates"] if c.get("p_best") is not None and c.get("estimated_loss")),
        key=lambda c: (-c["p_best"], c["estimated_loss"]["value"]),
    )
    first = [c for c in ranked if (c["strategy"], c["preset"]) == (best["strategy"], best["preset"])]
    return (first + [c for c in ranked if c not in first])[:top]


def train_one(plan: AnswerPlan, inputs: Inputs, entry: dict, c: dict) -> tuple[dict, bool]:
    """Train candidate `c` for the budget; (its record, whether a stop ended it). Its measured loss is set
    against the estimate's interval only under a fitted law: the prior's is another corpus's loss."""
    from harness.orchestrate.plan import Plan
    from harness.orchestrate.sweep import run_plan

    run = Plan.of(
        (c["strategy"],),
        preset=c["preset"],
        budget=plan.budget,
        data=plan.data,
        device=inputs.target.kind,
        gpu_memory_gib=inputs.target.cap(entry["gpu_memory_gib"]),
        runs_dir=plan.runs_dir,
        quiet=plan.quiet,
    )
    outcome = run_plan(run)
    result, s = outcome.results[0], outcome.results[0].summary
    estimate = c["estimated_loss"]
    low, high = estimate.get("interval") or (None, None)
    measured = s.final_val_loss
    record = {
        "strategy": c["strategy"],
        "preset": c["preset"],
        "p_best": c.get("p_best"),
        "run": str(plan.runs_dir / result.run_id),
        "status": result.status,
        "error": result.error,
        "final_val_loss": {"value": measured, "source": f"measured on {plan.data}"},
        "estimated_loss": estimate,
        "inside_interval": None
        if measured is None or low is None or not inputs.law.fitted or result.status != "ok"
        else low <= measured <= high,
        "tokens": s.tokens,
        "tokens_per_s": s.steady_tokens_per_s or s.tokens_per_s,
    }
    return record, outcome.stopped


def order(trained: list[dict]) -> dict:
    """The predicted order (by estimated loss) and the measured one (by final loss) of the trained runs."""
    done = [
        t
        for t in trained
        if t.get("status") == "ok" and (t.get("final_val_loss") or {}).get("value") is not None
    ]
    name = lambda t: f"{t['preset']} with {t['strategy']}"  # noqa: E731
    predicted = [name(t) for t in sorted(done, key=lambda t: t["estimated_loss"]["value"])]
    measured = [name(t) for t in sorted(done, key=lambda t: t["final_val_loss"]["value"])]
    return {
        "predicted": predicted,
        "measured": measured,
        "agrees": predicted == measured if len(done) > 1 else None,
        "measured_best_was_best": None
        if not done or done[0] is not trained[0]
        else measured[0] == name(trained[0]),
    }


def backtest(plan: AnswerPlan, inputs: Inputs, document: dict) -> dict:
    """Train the picks one after another, the document written after each; a stop ends it (exit 130)."""
    entry = document["sizes"][0]
    chosen = picks(entry, plan.top)
    document["trained"] = []
    if not chosen:
        document["backtest"] = {"error": "no candidate had a speed, so none was best: nothing trained"}
    for c in chosen:
        record, stopped = train_one(plan, inputs, entry, c)
        document["trained"].append(record)
        document["backtest"] = order(document["trained"])
        write_json_atomic(plan.out, document)
        if stopped:  # stopped while one trained: recorded, and the command exits 130
            document["stopped"] = True
            break
    write_json_atomic(plan.out, document)
    return document
