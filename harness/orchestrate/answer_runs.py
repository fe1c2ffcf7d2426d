"""`harness answer` end to end: the plan checked before anything runs (one line for bad input), its inputs
gathered (the device, the host step timed on this machine, the measured runs the throughput model reads),
the answer computed, and with `--train` its best candidate trained for the budget as a normal bench run."""

from __future__ import annotations

import math
from pathlib import Path

import strategies
from harness.capacity.calibration import read_calibrations
from harness.capacity.host_optimizer import host_step_timings
from harness.capacity.memory_model import GIB
from harness.capacity.ranking import Candidate
from harness.core.errors import UserError
from harness.core.presets import get_preset
from harness.core.recipe import command_budget_s
from harness.orchestrate.answer import (
    AnswerStopped,
    Inputs,
    Measure,
    Memory,
    memory_oracle,
    run_answer,
)
from harness.orchestrate.answer_device import Target, target_for
from harness.orchestrate.answer_plan import AnswerPlan
from harness.orchestrate.capacity import MEMORY_GIB, once, probe_outcome
from harness.orchestrate.plan import Plan, check_device
from harness.orchestrate.preflight import check_document, check_folder

PUBLISHED = Path(__file__).resolve().parents[2] / "docs" / "results"  # the published runs, in a checkout
MEASURE_WARMUP_STEPS, MEASURE_STEPS = 1, 10  # a measuring run: one untimed step (compile), then 10 timed


def validate(plan: AnswerPlan) -> tuple[list[str], float, Target, tuple[float, ...], bool]:
    """(strategy names, budget seconds, the device, memory sizes, whether candidates are measured here);
    UserError for anything that cannot work, before anything runs."""
    names, budget_s = check_flags(plan)
    target = target_for(plan.gpu, plan.predict_only)
    _check_list("--presets", plan.ladder(target.kind))
    for preset in plan.ladder(target.kind):
        get_preset(preset)
    measured = target.present and not plan.predict_only
    sizes = plan.gpu_memory_gib or (target.memory_gib,)
    _check_list("--gpu-memory-gib", sizes, MAX_SIZES)
    for size in (*sizes, *([] if plan.host_memory_gib is None else [plan.host_memory_gib])):
        if not math.isfinite(size) or not MEMORY_GIB[0] <= size <= MEMORY_GIB[1]:
            raise UserError(
                f"memory size {size:g} GiB is out of range: give a size a machine has, from "
                f"{MEMORY_GIB[0]:g} to {MEMORY_GIB[1]:g} GiB, e.g. 24"
            )
    for size in sizes:  # a GPU memory size stands for a smaller card, never a larger one
        if size > target.memory_gib + 1e-9:
            raise UserError(
                f"--gpu-memory-gib {size:g} is more than the {target.memory_gib:.1f} GiB of the "
                f"{target.device.name}: give sizes up to that (a smaller size stands for a smaller card)"
            )
    if plan.train and not measured:
        raise UserError("--train trains on this machine: leave out --predict-only, and --gpu of another GPU")
    if plan.train and len(sizes) != 1:
        raise UserError("--train trains one model: give one --gpu-memory-gib size")
    _check_outputs(plan)
    _check_data(plan, target.kind)
    if measured:
        check_device(target.kind, names)
        for name in names:
            strategies.resolve(name).require_libraries()
        check_folder(plan.measure_dir, "--out")
    return names, budget_s, target, tuple(sizes), measured


MAX_SIZES = 16  # memory sizes one answer compares


def check_flags(plan: AnswerPlan) -> tuple[list[str], float]:
    """(strategy names, budget seconds): the checks that need no device, so that `--gpu list` makes them
    too; UserError for a bad flag."""
    names = [strategies.resolve(s).name for s in plan.strategies]
    if not names:
        raise UserError("--strategies is empty: name at least one, e.g. amp,zero_offload")
    once("--strategies", names)
    budget_s = command_budget_s(plan.budget)
    if plan.gpu_memory_gib:
        _check_list("--gpu-memory-gib", plan.gpu_memory_gib, MAX_SIZES)
    return names, budget_s


def _check_list(flag: str, items: tuple, most: int | None = None) -> None:
    """Each item named once (and at most `most` of them)."""
    once(flag, items)
    if most is not None and len(items) > most:
        raise UserError(f"{flag} names {len(items)} sizes: an answer compares up to {most}")


def _check_data(plan: AnswerPlan, kind: str) -> None:
    """A --data that cannot work is one line before anything runs."""
    from harness.core.overrides import build_run_config
    from harness.data import validate_source

    preset = plan.ladder(kind)[0]
    validate_source(build_run_config(strategy="amp", preset=preset, data=plan.data).recipe)


def _check_outputs(plan: AnswerPlan) -> None:
    """The document and its page can be written, as two files; a runs folder and a fits folder (read
    only) are folders."""
    check_document(plan.out, "answer")
    if plan.runs_dir.exists() and not plan.runs_dir.is_dir():
        raise UserError(f"--runs-dir {plan.runs_dir} is not a folder: give the folder runs are kept in")
    if plan.fits.exists() and not plan.fits.is_dir():
        raise UserError(f"--fits {plan.fits} is not a folder: give the folder harness fit keeps its laws in")
    if plan.train:
        check_folder(plan.runs_dir, "--runs-dir")


def prepare(plan: AnswerPlan, measure: Measure | None = None, memory: Memory | None = None):
    """The answer's inputs and its memory oracle (the memory model unless one is given, as tests do)."""
    names, budget_s, target, sizes, measured = validate(plan)
    host = host_step_timings(strategies.resolve(name).executor for name in names)
    folders = [plan.runs_dir, plan.measure_dir, *published_runs()]
    if measured and measure is None:
        measure = measure_with_runs(plan, target)
    limit = host_bytes(plan, measured)
    calibrations, set_aside = read_calibrations(folders)
    set_aside += [t["set_aside"] for t in host.values() if t.get("set_aside")]
    law, law_record = law_in_use(plan, target.kind)
    inputs = Inputs(target, budget_s, sizes, host, calibrations, measure if measured else None,
                    host_unlimited=math.isinf(limit), set_aside=set_aside, law=law,
                    law_record=law_record)  # fmt: skip
    if memory is None:
        memory = memory_oracle(inputs.precision, limit)
    return inputs, memory


def law_in_use(plan: AnswerPlan, kind: str):
    """This recipe's law on `plan.data` where `harness fit` stored one, else the prior; and which, why."""
    from harness.orchestrate.fit import law_key
    from harness.orchestrate.fit_runs import stored_law

    key, _ = law_key(plan.data, kind, plan.ladder(kind))
    return stored_law(plan.fits, key)


def published_runs() -> list:
    """The published results' run folders: in this checkout, or under the working folder (the image's)."""
    found: dict = {}
    for root in (PUBLISHED, Path.cwd() / "docs" / "results"):
        for folder in sorted(root.glob("*/runs")) if root.is_dir() else []:
            found.setdefault(folder.resolve(), folder)
    return list(found.values())


def host_bytes(plan: AnswerPlan, measured: bool) -> float:
    """Host memory a size may need: as given; when measuring here, also no more than what is free."""
    limit = math.inf if plan.host_memory_gib is None else plan.host_memory_gib * GIB
    if measured:
        import psutil

        limit = min(limit, psutil.virtual_memory().available)
    return limit


def measure_with_runs(plan: AnswerPlan, target: Target) -> Measure:
    """A candidate's speed from a real run in a child process, under the memory size's cap."""
    from harness.orchestrate.sweep import run_plan

    def measure(c: Candidate, size: float) -> dict:
        if not plan.quiet:
            print(f"answer: measuring {c.strategy} at {c.preset} ({size:g} GiB)", flush=True)
        run = Plan.of(
            (c.strategy,),
            preset=c.preset,
            budget="24h",
            data=plan.data,
            max_steps=MEASURE_STEPS,
            warmup_steps=MEASURE_WARMUP_STEPS,
            device=target.kind,
            gpu_memory_gib=target.cap(size),
            runs_dir=plan.measure_dir,
            quiet=plan.quiet,
        )
        try:
            outcome = run_plan(run)
        except UserError as exc:  # e.g. a CPU step estimated to take too long: refused, never started
            return {"outcome": "refused", "error": str(exc)}
        if outcome.stopped:
            raise AnswerStopped("stopped while measuring")
        result = outcome.results[0]
        record = probe_outcome(result) or {"outcome": "gpu", "error": result.error}
        return {"outcome": "ok", **record, "run": str(plan.measure_dir / result.run_id)}

    return measure


def answer(plan: AnswerPlan, *, measure: Measure | None = None, memory: Memory | None = None) -> dict:
    """Answer the plan; with --train, train its likeliest candidates for the budget (the backtest). The
    document is written as it grows."""
    inputs, memory = prepare(plan, measure, memory)
    document = run_answer(plan, inputs, memory)
    if plan.train and document.get("complete"):
        from harness.orchestrate.backtest import backtest

        document = backtest(plan, inputs, document)
    return document
