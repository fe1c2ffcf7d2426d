"""The fit's runs, its document and its reading: each grid run trained as a normal run (its schedule ending
at its own tokens), the document rewritten after every run, the law fitted once all have ended, and the
stored fit read back, validated, as the law an answer uses (`stored_law`)."""

from __future__ import annotations

import math
import time
from pathlib import Path

from harness.capacity import law_fit
from harness.capacity.law import PRIOR_IN_USE, Law, LawInUse
from harness.capacity.law_fit import approach_two, curves, implausible
from harness.capacity.law_grid import GridRun
from harness.core.results import document_head, read_json_object, write_json_atomic
from harness.core.schema import COUNT, POSITIVE, TEXT, Invalid, Items, Named, Number, Record, check
from harness.orchestrate.fit import FIT_KIND, SCHEMA_VERSION, STRATEGY, FitPlan, FitSetup

LAW_FIELDS = ("E", "A", "B", "alpha", "beta")
# A stored law's figures: finite, E, A and B not negative (a law not believed is kept as fitted: its
# exponents may be anything finite; `implausible` says why it is not used).
LAW = Record({k: Number(low=0) if k in "EAB" else Number() for k in LAW_FIELDS}, required=LAW_FIELDS)
RUN = Record(
    {
        "params": POSITIVE,
        "tokens": POSITIVE,
        "compute": POSITIVE,
        "level": COUNT,
        "final_val_loss": Number(above=0, high=100),
    }
)
FIT = Record(
    {"kind": TEXT, "key": TEXT, "runs": Named(RUN), "law": LAW, "refits": Items(LAW)},
    required=("kind", "key", "runs"),
)


MIN_REFITS = 10  # bootstrap refits a believed law needs at the least (its odds draw from them)


class FitStopped(Exception):
    """A stop while a fitting run trained: the document keeps the runs that ended."""


def run_plan_of(plan: FitPlan, setup: FitSetup, g: GridRun):
    """The bench plan of one grid run (UserError for one that cannot run: every run is built before any
    trains). Its micro-batch is the largest divisor of its batch up to its preset's."""
    from harness.core.presets import get_preset
    from harness.orchestrate.plan import Plan

    seqs = g.global_batch_tokens // g.rung.seq_len
    micro = max(m for m in range(1, min(get_preset(g.rung.preset).micro_batch, seqs) + 1) if seqs % m == 0)
    return Plan.of(
        (STRATEGY,),
        preset=g.rung.preset,
        budget="30d",  # the run ends at its steps: the schedule follows them (max_steps)
        max_steps=g.steps,
        warmup_steps=1,
        global_batch_tokens=g.global_batch_tokens,
        micro_batch=micro,
        eval_points=2,
        data=plan.data,
        device=setup.kind,
        runs_dir=plan.runs_dir,
        quiet=plan.quiet,
        **g.rung.shape,
    )


def train_run(plan: FitPlan, setup: FitSetup, g: GridRun) -> dict:
    """Train one grid run (a bench run of STRATEGY) and return its record."""
    from harness.orchestrate.sweep import run_plan

    t0 = time.perf_counter()
    outcome = run_plan(run_plan_of(plan, setup, g))
    if outcome.stopped:
        raise FitStopped("stopped while a fitting run trained")
    result = outcome.results[0]
    return {
        "rung": g.rung.name,
        "params": g.rung.params,
        "level": g.level,
        "compute": 6 * g.rung.params * g.tokens,
        "tokens": g.tokens,
        "steps": g.steps,
        "global_batch_tokens": g.global_batch_tokens,
        "final_val_loss": result.summary.final_val_loss,
        "status": result.status,
        "error": result.error,
        "run": str(plan.runs_dir / result.run_id),
        "wall_s": time.perf_counter() - t0,
        "predicted_s": g.seconds,
    }


def read_fit(path: Path, key: str) -> dict | None:
    """The fit document at `path` if it is one for `key` and reads back valid; else None."""
    document = read_json_object(path)
    if document is None:
        return None
    try:
        check(FIT, document)
    except Invalid:
        return None
    return document if document.get("kind") == FIT_KIND and document.get("key") == key else None


def run_fit(plan: FitPlan, setup: FitSetup, train=train_run) -> dict:
    """Train every grid run the stored fit lacks, then fit; the document is written after every run."""
    for g in setup.grid:
        run_plan_of(plan, setup, g)
    path = plan.out / setup.path_in
    earlier = read_fit(path, setup.key) or {}
    runs = reusable(earlier.get("runs") or {}, setup.grid)  # only this grid's: another's levels differ
    reused = len(runs)

    def write(fitted: dict | None, stopped: bool = False) -> dict:
        document = _document(plan, setup, runs, reused, fitted, stopped)
        write_json_atomic(path, document)
        return document

    pending = [g for g in setup.grid if g.key not in runs]
    if pending:  # a finished fit stays whole on disk until it is fitted again
        write(None)
    for g in pending:
        if not plan.quiet:
            print(
                f"fit: {g.rung.name}, {g.tokens:,} tokens ({g.steps} steps), level {g.level + 1}", flush=True
            )
        try:
            runs[g.key] = train(plan, setup, g)
        except FitStopped:
            return write(None, stopped=True)
        write(None)
    return write(fit_law(runs, plan.resamples))


def reusable(earlier: dict, grid: list[GridRun]) -> dict:
    """The earlier runs that stand for runs of this grid, by the grid run's key: one that ended ok, of the
    same rung and level, within a quarter of its tokens (the grid moves a little with the speed measured
    at each start). A failed run, or one of another grid, is trained again."""
    found = {}
    for g in grid:
        for r in earlier.values():
            same = r.get("rung") == g.rung.name and r.get("level") == g.level
            if same and r.get("status", "ok") == "ok" and abs(r["tokens"] / g.tokens - 1) <= 0.25:
                found[g.key] = r
                break
    return found


def fitted_runs(runs: dict[str, dict]) -> dict[str, dict]:
    """The runs a law is fitted on: those that ended ok with a finite loss (a run that failed has a loss
    from an early evaluation, not from its tokens)."""
    return {
        k: r
        for k, r in runs.items()
        if r.get("status", "ok") == "ok"
        and r.get("final_val_loss") is not None
        and math.isfinite(r["final_val_loss"])
    }


def fit_law(runs: dict[str, dict], resamples: int) -> dict:
    """Approach 3 with its bootstrap, and approach 2 beside it; or why there is no law."""
    kept = fitted_runs(runs)
    usable = list(kept.values())
    if len(usable) < len(LAW_FIELDS) + 1:
        return {
            "converged": False,
            "why": f"{len(usable)} runs ended with a loss: a law of 5 parameters needs 6",
        }
    points = [law_fit.Run(r["params"], r["tokens"], r["final_val_loss"]) for r in usable]
    try:
        boot = law_fit.bootstrap(points, resamples=resamples)
    except ValueError as exc:
        return {"converged": False, "why": str(exc)}
    if len(boot.samples) < MIN_REFITS:
        return {
            "converged": False,
            "why": f"{len(boot.samples)} of {resamples} bootstrap refits ended finite",
        }
    law = boot.law
    intervals = {k: boot.interval(k) for k in LAW_FIELDS}
    doubt = implausible(law, min(p.loss for p in points))
    return {
        "converged": doubt is None,
        "why": doubt,
        "law": {k: getattr(law, k) for k in LAW_FIELDS},
        "intervals_95": intervals,
        "refits": [{k: getattr(s, k) for k in LAW_FIELDS} for s in boot.samples],
        "resamples": resamples,
        "refits_failed": resamples - len(boot.samples),
        "residuals": [r["final_val_loss"] - law.loss(r["params"], r["tokens"]) for r in usable],
        "predicted": {k: law.loss(r["params"], r["tokens"]) for k, r in kept.items()},
        "curves": curves(usable, law, boot.samples),
        "approach_2": approach_two(usable, None if doubt else law),
    }


def _document(plan: FitPlan, setup: FitSetup, runs: dict, reused: int, fitted: dict | None, stopped: bool):
    complete = fitted is not None
    return {
        **document_head(FIT_KIND, SCHEMA_VERSION, plan.command, complete),
        "key": setup.key,
        "identity": setup.identity,
        "data": plan.data,
        "budget_s": setup.budget_s,
        "fit_budget_s": setup.fit_budget_s,
        "method": {
            "grid": "IsoFLOP profiles: 3 compute levels 4x apart, the 4 sizes nearest the prior's optimum at "
            "each; each run's schedule ends at its own tokens; its rung's batch and learning rate, the batch "
            "smaller where it would leave fewer than 20 steps",
            "fit": "approach 3: Huber (delta 1e-3) on log L, L-BFGS from a grid of starts; a bootstrap over "
            "runs for the intervals; approach 2 (a parabola per profile) beside it",
        },
        "grid": [
            {
                "key": g.key,
                "rung": g.rung.name,
                "params": g.rung.params,
                "level": g.level,
                "tokens": g.tokens,
                "steps": g.steps,
                "predicted_s": g.seconds,
            }
            for g in setup.grid
        ],
        "runs": runs,
        "runs_reused": reused,
        "spent_s": sum(r.get("wall_s") or 0.0 for r in runs.values()),
        "stopped": stopped,
        **(fitted or {}),
    }


def stored_law(folder: Path, key: str) -> tuple[LawInUse, dict]:
    """The law an answer uses: the fit stored under `key` if it converged, else the prior; with a record
    of which, and why (no fit, a fit not finished, not converged, unreadable)."""
    path = folder / f"{key}.json"
    if not path.exists():
        return PRIOR_IN_USE, {
            "used": "prior",
            "why": f"no fit of this recipe and data in {folder} (harness fit)",
        }
    document = read_fit(path, key)
    if document is None:
        return PRIOR_IN_USE, {"used": "prior", "why": f"{path} does not read back as a fit: it is set aside"}
    if not document.get("complete") or not document.get("converged"):
        why = document.get("why") or "it has not finished (harness fit resumes it)"
        return PRIOR_IN_USE, {"used": "prior", "why": f"the fit in {path} has no law: {why}"}
    runs = list(fitted_runs(document["runs"]).values())
    params = [r["params"] for r in runs]
    computes = [r["compute"] for r in runs]
    source = f"fitted on {len(runs)} runs of this recipe on this data ({path})"
    law = Law(**document["law"], source=source, fitted_params=(min(params), max(params)))
    refits = tuple(Law(**r, source="a bootstrap refit") for r in document.get("refits") or [])
    if len(refits) < MIN_REFITS:
        return PRIOR_IN_USE, {
            "used": "prior",
            "why": f"the fit in {path} keeps {len(refits)} bootstrap refits",
        }
    return LawInUse(law, source, True, refits, (min(computes), max(computes))), {
        "used": "fitted",
        "fit": str(path),
    }
