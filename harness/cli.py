"""Command line: `harness bench|sweep|parity|report|list|env|prepare`. Bad input is one line on stderr and
exit status 2; a run that ends in error or OOM exits 1; an interrupted run exits 130."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.config import DEFAULT_BUDGET, OVERRIDE_KEYS, PRESETS, build_run_config, parse_overrides
from harness.errors import UserError

DEFAULT_RUNS_DIR = Path("reports/runs")
DEFAULT_REPORT = Path("reports/index.html")
EXIT_FOR_STATUS = {"ok": 0, "oom": 1, "error": 1, "interrupted": 130}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not usage + message
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


def _run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", default="gpt2-124m", help=f"model size: {', '.join(PRESETS)}")
    p.add_argument("--budget", default=DEFAULT_BUDGET, help="training-clock budget, e.g. 30s, 10m, 2h, 24h")
    p.add_argument(
        "--data", default="synthetic", help="synthetic, a local file/folder, or hf:<id>[:<config>]"
    )
    p.add_argument(
        "--tokenizer", default=None, help="tokenizer.json for a real corpus (else a BPE is trained)"
    )
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--device", default="auto", choices=("auto", "cuda", "cpu"))
    p.add_argument("--micro-batch", default="auto", help="sequences per micro-batch, or auto (fit on CUDA)")
    p.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="torch.compile for every strategy that supports it (default: on for CUDA)",
    )
    p.add_argument("--warmup-steps", type=int, default=None, help="untimed warm-up steps (default 2)")
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many optimizer steps")
    p.add_argument(
        "--gpu-memory-gib",
        type=float,
        default=None,
        help="cap the GPU memory the run may use, e.g. 24 to stand for a 24 GiB card",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe field (strict): " + ", ".join(OVERRIDE_KEYS),
    )
    p.add_argument("--runs-dir", type=Path, default=DEFAULT_RUNS_DIR, help="where run folders go")
    p.add_argument("--quiet", action="store_true", help="no live progress display")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="harness", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    bench = sub.add_parser("bench", help="train one strategy within the budget; write its run folder")
    bench.add_argument("--strategy", default="amp", help="a strategy or a + combination (see `harness list`)")
    bench.add_argument(
        "--resume",
        nargs="?",
        const="latest",
        default=None,
        metavar="RUN_ID",
        help="continue an interrupted run from its latest good checkpoint",
    )
    _run_options(bench)

    sweep = sub.add_parser("sweep", help="run several strategies one after another, then render the report")
    sweep.add_argument("--strategies", default="amp,adam8bit,zero_offload,act_ckpt")
    sweep.add_argument(
        "--repeats", type=int, default=1, help="runs per strategy (the report shows the spread)"
    )
    sweep.add_argument("--report", type=Path, default=DEFAULT_REPORT)
    _run_options(sweep)

    parity = sub.add_parser("parity", help="train N steps per strategy from one init; compare with amp")
    parity.add_argument("--strategies", default="amp,adam8bit,zero_offload,act_ckpt")
    parity.add_argument("--steps", type=int, default=20)
    parity.add_argument("--out", type=Path, default=Path("reports/parity"))
    _run_options(parity)

    report = sub.add_parser("report", help="render the HTML comparison from saved result files")
    report.add_argument("--runs", type=Path, default=DEFAULT_RUNS_DIR)
    report.add_argument("--out", type=Path, default=DEFAULT_REPORT)

    sub.add_parser("list", help="strategies and presets")

    env = sub.add_parser("env", help="what this machine has, and which strategies can run here")
    env.add_argument("--strategies", default=None, help="exit 1 if any of these cannot run here")
    env.add_argument("--json", action="store_true", help="machine-readable output")

    prepare = sub.add_parser("prepare", help="tokenize and cache a real corpus (outside any training clock)")
    prepare.add_argument("--data", required=True)
    prepare.add_argument("--preset", default="gpt2-124m")
    prepare.add_argument("--tokenizer", default=None)
    prepare.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    return parser


def run_config_from_args(args: argparse.Namespace, strategy: str, **extra):
    from harness.launcher import new_run_id

    overrides = parse_overrides(args.overrides)
    if args.seed is not None:
        overrides.setdefault("seed", str(args.seed))
    if args.tokenizer is not None:
        overrides.setdefault("tokenizer", args.tokenizer)
    if args.compile is not None:
        overrides.setdefault("compile", str(args.compile))
    micro = None if args.micro_batch == "auto" else _positive_int("--micro-batch", args.micro_batch)
    run_fields = {
        "device": args.device,
        "micro_batch": micro,
        "max_steps": args.max_steps,
        "gpu_memory_gib": args.gpu_memory_gib,
        "run_id": new_run_id(strategy, args.preset),
        "command": tuple(sys.argv),
        **extra,
    }
    if args.warmup_steps is not None:
        run_fields["warmup_steps"] = args.warmup_steps
    cfg = build_run_config(
        strategy=strategy,
        preset=args.preset,
        budget=args.budget,
        data=args.data,
        overrides=overrides,
        **run_fields,
    )
    from harness.data.spec import validate_data_spec
    from harness.runtime import check_micro_batch

    validate_data_spec(cfg.recipe.data, cfg.recipe.text_field)
    if cfg.micro_batch is not None:
        check_micro_batch(cfg.micro_batch, cfg.recipe.global_batch_seqs)
    return cfg


def prepare_data(cfg) -> None:
    """Tokenize a real corpus here, before any run starts: outside every clock, with progress on the
    terminal, and a bad corpus is a one-line error rather than a failed run."""
    if cfg.recipe.data != "synthetic":
        from harness.data.corpus import open_corpus

        recipe = cfg.recipe
        open_corpus(recipe).val_tokens(recipe.eval_seqs, recipe.model.seq_len + 1)  # enough held out?


def _positive_int(flag: str, text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise UserError(f"{flag} must be a positive integer or auto, got {text!r}") from None
    if value < 1:
        raise UserError(f"{flag} must be a positive integer or auto, got {text!r}")
    return value


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        from harness import commands

        return getattr(commands, f"cmd_{args.command}")(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
