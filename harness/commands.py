"""What each CLI subcommand does. Heavy imports stay inside the commands that need them."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from harness.config import PRESETS, format_duration
from harness.errors import UserError
from harness.results import CONFIG_FILE, RESULT_FILE, CorruptResult, RunResult, load_result


def _fmt(value, spec: str = ".3g", none: str = "n/a") -> str:
    return none if value is None else format(value, spec)


def format_summary(result: RunResult, run_dir: Path | None = None) -> str:
    s, settings = result.summary, result.settings
    lines = [
        f"{result.strategy.get('name', '?')}: {result.status}"
        + (f" — {result.error}" if result.error else "")
    ]
    if result.status in ("ok", "interrupted"):
        lines += [
            f"  steps {s.steps}, tokens {s.tokens:,}, training clock {format_duration(s.train_s)}"
            f" of {format_duration(s.budget_s or 0)}",
            f"  tokens/s {_fmt(s.tokens_per_s, ',.0f')}"
            f" (steady median {_fmt(s.steady_tokens_per_s, ',.0f')}),"
            " MFU "
            + (
                "n/a (no known peak for this device)"
                if s.mfu is None
                else f"{100 * s.mfu:.1f}% of {s.peak_tflops:g} TFLOP/s ({s.peak_tflops_source})"
            ),
            f"  micro-batch {settings.get('micro_batch')} x {settings.get('grad_accum')} accumulation,"
            f" precision {settings.get('precision')}, compile {settings.get('compile')}",
            f"  val loss {_fmt(s.final_val_loss, '.4f')}, floor {_fmt(s.floor_loss, '.4f')},"
            f" gap {_fmt(s.gap_to_floor, '.4f')}",
            f"  GPU peak allocated {_fmt(s.peak_allocated_gib, '.2f')} GiB, reserved"
            f" {_fmt(s.peak_reserved_gib, '.2f')} GiB, NVML {_fmt(s.peak_nvml_used_gib, '.2f')} GiB;"
            f" host RSS {_fmt(s.peak_host_rss_gib, '.2f')} GiB, pinned {_fmt(s.pinned_host_gib, '.2f')} GiB",
            f"  not in the budget: setup {_fmt(s.setup_s, '.1f')}s, warm-up {_fmt(s.warmup_s, '.1f')}s,"
            f" eval {_fmt(s.eval_s, '.1f')}s, checkpoints {_fmt(s.checkpoint_s, '.1f')}s",
        ]
    if run_dir is not None:
        lines.append(f"  run folder: {run_dir}")
    return "\n".join(lines)


def _resume_dir(runs_dir: Path, which: str, strategy: str, preset: str) -> Path:
    from harness.checkpoint import CHECKPOINT_DIR

    if which != "latest":
        run_dir = runs_dir / which
        if not (run_dir / CONFIG_FILE).is_file():
            raise UserError(f"no run {which!r} under {runs_dir}: pass a run id from `ls {runs_dir}`")
        return run_dir
    candidates = []
    for config in sorted(runs_dir.glob(f"*/{CONFIG_FILE}")):
        try:
            data = json.loads(config.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        same_run = data.get("strategy") == strategy and data.get("recipe", {}).get("preset") == preset
        if same_run and (config.parent / CHECKPOINT_DIR).is_dir():
            candidates.append(config.parent)
    if not candidates:
        raise UserError(f"nothing to resume: no {strategy}/{preset} run with checkpoints under {runs_dir}")
    return max(candidates, key=lambda p: p.stat().st_mtime)


def cmd_bench(args: argparse.Namespace) -> int:
    import strategies
    from harness.checkpoint import CHECKPOINT_DIR, Checkpointer
    from harness.cli import EXIT_FOR_STATUS, prepare_data, run_config_from_args
    from harness.launcher import StopSignal, launch
    from harness.worker import load_run_config

    spec = strategies.resolve(args.strategy)
    if args.resume:
        run_dir = _resume_dir(args.runs_dir, args.resume, spec.name, args.preset)
        previous = run_dir / RESULT_FILE
        if previous.exists():
            try:
                if load_result(previous).status == "ok":
                    raise UserError(f"run {run_dir.name} already finished (status ok): nothing to resume")
            except CorruptResult:
                pass
        cfg = load_run_config(run_dir)
        checkpoints = Checkpointer(run_dir / CHECKPOINT_DIR)
        if not checkpoints.any_intact():
            raise UserError(
                f"run {run_dir.name} has no intact checkpoint to resume from: start it again without --resume"
            )
        print(
            f"resuming {run_dir.name} with its own recipe (budget {format_duration(cfg.recipe.budget_s)})",
            file=sys.stderr,
        )
    else:
        cfg = run_config_from_args(args, spec.name)
        prepare_data(cfg)
        run_dir = None
    with StopSignal() as stop:
        result = launch(cfg, args.runs_dir, resume_dir=run_dir, stop=stop, show_progress=not args.quiet)
    print(format_summary(result, run_dir or args.runs_dir / cfg.run_id))
    return EXIT_FOR_STATUS[result.status]


def cmd_sweep(args: argparse.Namespace) -> int:
    from harness.sweep import run_sweep

    return run_sweep(args)


def cmd_parity(args: argparse.Namespace) -> int:
    from harness.parity import run_parity

    return run_parity(args)


def cmd_report(args: argparse.Namespace) -> int:
    from harness.report import render_report

    out = render_report(args.runs, args.out)
    print(f"report: {out}")
    return 0


def cmd_list(_args: argparse.Namespace) -> int:
    import strategies
    from harness.model import flops_per_token, param_count

    print("strategies (combine with +, e.g. adam8bit+act_ckpt):")
    for name, plugin in strategies.REGISTRY.items():
        extras = []
        if plugin.requires:
            extras.append("needs " + ", ".join(plugin.requires))
        if plugin.composes_with:
            extras.append("composes with " + ", ".join(sorted(plugin.composes_with)))
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
    from harness.doctor import run_doctor

    return run_doctor(args.strategies, as_json=args.json)


def cmd_prepare(args: argparse.Namespace) -> int:
    from harness.config import build_run_config, parse_overrides
    from harness.data.spec import validate_data_spec

    overrides = parse_overrides(args.overrides)
    if args.tokenizer:
        overrides.setdefault("tokenizer", args.tokenizer)
    cfg = build_run_config(strategy="amp", preset=args.preset, data=args.data, overrides=overrides)
    validate_data_spec(cfg.recipe.data, cfg.recipe.text_field)
    if cfg.recipe.data == "synthetic":
        raise UserError("the synthetic corpus needs no preparation: give --data a file, folder or hf:<id>")
    from harness.data.corpus import open_corpus

    print(json.dumps(open_corpus(cfg.recipe).describe(), indent=2))
    return 0
