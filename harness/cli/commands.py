"""What each subcommand does: translate its arguments, call the Python API, print. Heavy imports stay
inside the commands that need them."""

from __future__ import annotations

import argparse
import json
import sys

from harness import api
from harness.cli.parser import plan_from_args, strategy_list
from harness.core.errors import UserError

EXIT_FOR_STATUS = {"ok": 0, "oom": 1, "error": 1, "interrupted": 130}


def cmd_bench(args: argparse.Namespace) -> int:
    import strategies
    from harness.orchestrate.summary_text import format_summary

    named = None if args.strategy is None else strategies.resolve(args.strategy).name
    if args.resume:
        result, run_dir = api.resume(args.runs_dir, args.resume, named, args.preset, quiet=args.quiet)
    else:
        result = api.bench(plan_from_args(args, (named or strategies.BASELINE,)))
        run_dir = args.runs_dir / result.run_id
    print(format_summary(result, run_dir))
    return EXIT_FOR_STATUS[result.status]


def cmd_sweep(args: argparse.Namespace) -> int:
    outcome = api.sweep(plan_from_args(args, strategy_list(args.strategies)))
    if outcome.submitted is not None:
        print(outcome.submitted)
    if outcome.report is not None:
        print(f"report: {outcome.report}")
    if outcome.stopped:
        return 130
    return 1 if any(r.status == "error" for r in outcome.results) else 0


def cmd_parity(args: argparse.Namespace) -> int:
    from harness.orchestrate.parity import format_parity

    outcome = api.parity(plan_from_args(args, strategy_list(args.strategies)), args.steps, args.out)
    print(format_parity(outcome))
    print(f"parity record: {outcome.record}", file=sys.stderr)
    if outcome.stopped:
        return 130
    return 1 if outcome.failed else 0


def cmd_runs(args: argparse.Namespace) -> int:
    from harness.orchestrate.runs_state import format_states

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
    import strategies
    from harness.core.presets import PRESETS
    from harness.model import flops_per_token, param_count

    print("strategies (combine with +, e.g. adam8bit+act_ckpt):")
    for name, plugin in strategies.REGISTRY.items():
        extras = []
        if plugin.requires:
            extras.append("needs " + ", ".join(plugin.requires))
        if plugin.composes_with:
            extras.append("composes with " + ", ".join(sorted(plugin.composes_with)))
        if plugin.experimental:
            extras.append("experimental: not yet verified on a GPU")
        print(f"  {name:<14} {plugin.description}" + (f" [{'; '.join(extras)}]" if extras else ""))
    print("presets:")
    for p in PRESETS.values():
        m = p.model
        print(
            f"  {p.name:<10} {param_count(m) / 1e6:>8.1f}M params,"
            f" {flops_per_token(m) / 1e6:>9,.1f} MFLOP/token,"
            f" L{m.n_layer} d{m.d_model} h{m.n_head} seq {m.seq_len}, batch {p.global_batch_tokens:,} tokens"
            f" — {p.description}"
        )
    return 0


def cmd_env(args: argparse.Namespace) -> int:
    from harness.orchestrate.doctor import run_doctor

    names = None if args.strategies is None else strategy_list(args.strategies)
    return run_doctor(names, as_json=args.json)


def cmd_prepare(args: argparse.Namespace) -> int:
    from harness.core.overrides import build_run_config, parse_overrides
    from harness.data import open_source, validate_source

    overrides = parse_overrides(args.overrides)
    if args.tokenizer:
        overrides.setdefault("tokenizer", args.tokenizer)
    cfg = build_run_config(strategy="amp", preset=args.preset, data=args.data, overrides=overrides)
    if cfg.recipe.data == "synthetic":
        raise UserError("the synthetic corpus needs no preparation: give --data a file, folder or hf:<id>")
    validate_source(cfg.recipe)
    from harness.data.tokenize import cache_root
    from harness.orchestrate.preflight import CACHE, check_folder

    check_folder(cache_root(), CACHE)
    source = open_source(cfg.recipe, progress=lambda text: print(text, file=sys.stderr, flush=True))
    print(json.dumps(source.describe(), indent=2))
    return 0
