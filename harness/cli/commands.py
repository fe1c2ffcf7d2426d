"""What each subcommand does: translate its arguments, call the Python API, print. Heavy imports stay
inside the commands that need them."""

from __future__ import annotations

import argparse
import json
import sys

from harness import api
from harness.cli.parser import capacity_plan_from_args, device_of, plan_from_args, strategy_list
from harness.core.errors import UserError

EXIT_FOR_STATUS = {"ok": 0, "oom": 1, "error": 1, "interrupted": 130}


def cmd_bench(args: argparse.Namespace) -> int:
    import strategies
    from harness.cli.text.summary import format_summary

    named = None if args.strategy is None else strategies.resolve(args.strategy).name
    plan = plan_from_args(args, (named or strategies.BASELINE,))
    if args.resume:
        preset = plan.run.recipe.preset
        result, run_dir = api.resume(plan.runs_dir, args.resume, named, preset, quiet=plan.quiet)
    else:
        result = api.bench(plan)
        run_dir = plan.runs_dir / result.run_id
    print(format_summary(result, run_dir))
    return EXIT_FOR_STATUS[result.status]


def cmd_sweep(args: argparse.Namespace) -> int:
    outcome = api.sweep(plan_from_args(args, strategy_list(args.strategies, device_of(args))))
    if outcome.submitted is not None:
        print(outcome.submitted)
    if outcome.report is not None:
        print(f"report: {outcome.report}")
    if outcome.stopped:
        return 130
    return 1 if any(r.status == "error" for r in outcome.results) else 0


def cmd_parity(args: argparse.Namespace) -> int:
    from harness.cli.text.parity import format_parity

    outcome = api.parity(
        plan_from_args(args, strategy_list(args.strategies, device_of(args))), args.steps, args.out
    )
    print(format_parity(outcome))
    print(f"parity record: {outcome.record}", file=sys.stderr)
    if outcome.stopped:
        return 130
    return 1 if outcome.failed else 0


def cmd_runs(args: argparse.Namespace) -> int:
    from harness.cli.text.runs import format_states

    states = api.runs(args.runs_dir)
    if args.json:
        print(json.dumps([state.to_dict() for state in states], indent=2))
    else:
        print(format_states(states, args.runs_dir))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    print(f"report: {api.report(args.runs, args.out)}")
    return 0


def cmd_list(_args: argparse.Namespace) -> int:
    from harness.cli.text.listing import format_listing

    print(format_listing())
    return 0


def cmd_capacity(args: argparse.Namespace) -> int:
    from harness.cli.text.capacity import format_capacity

    document = api.capacity(capacity_plan_from_args(args))
    print(json.dumps(document, indent=2) if args.json else format_capacity(document))
    print(f"capacity: {args.out} and {args.out.with_suffix('.html')}", file=sys.stderr)
    return 0


def cmd_answer(args: argparse.Namespace) -> int:
    from harness.cli.parser import answer_plan_from_args
    from harness.cli.text.answer import format_answer, format_gpus

    plan = answer_plan_from_args(args)
    if plan.gpu == "list":
        from harness.orchestrate.answer_runs import check_flags

        check_flags(plan)  # the flags beside it are read as with any GPU: a bad one is refused
        print(format_gpus())
        return 0
    document = api.answer(plan)
    print(json.dumps(document, indent=2) if args.json else format_answer(document))
    print(f"answer: {plan.out} and {plan.out.with_suffix('.html')}", file=sys.stderr)
    return 130 if document.get("stopped") else 0


def cmd_fit(args: argparse.Namespace) -> int:
    from harness.cli.parser import fit_plan_from_args
    from harness.cli.text.fit import format_fit

    plan = fit_plan_from_args(args)
    document = api.fit(plan)
    print(format_fit(document))
    path = plan.out / document["key"]
    print(f"fit: {path.with_suffix('.json')} and {path.with_suffix('.html')}", file=sys.stderr)
    return 130 if document.get("stopped") else 0


def cmd_env(args: argparse.Namespace) -> int:
    from harness.cli.text.doctor import format_doctor
    from harness.orchestrate.doctor import examine

    names = None if args.strategies is None else strategy_list(args.strategies)
    findings = examine(names)
    print(json.dumps(findings, indent=2, default=str) if args.json else format_doctor(findings))
    return 1 if findings["blocked"] else 0  # a strategy asked for cannot run here


def cmd_prepare(args: argparse.Namespace) -> int:
    from harness.cli.flags import given
    from harness.core.overrides import build_run_config, parse_overrides
    from harness.core.recipe import Recipe
    from harness.data import open_source, validate_source

    values = given(args, Recipe, ("preset", "data", "tokenizer"))
    cfg = build_run_config(strategy="amp", overrides=parse_overrides(args.overrides), **values)
    if cfg.recipe.data == "synthetic":
        raise UserError("the synthetic corpus needs no preparation: give --data a file, folder or hf:<id>")
    validate_source(cfg.recipe)
    from harness.core.cache import cache_root
    from harness.orchestrate.preflight import CACHE, check_folder

    check_folder(cache_root(), CACHE)
    source = open_source(cfg.recipe, progress=lambda text: print(text, file=sys.stderr, flush=True))
    print(json.dumps(source.describe(), indent=2))
    return 0
