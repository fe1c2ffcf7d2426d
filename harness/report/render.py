"""Rendering: groups of runs by recipe fingerprint, one comparison each, plus one page per run. Every
string from a result file goes through Jinja's autoescaping; charts are images (data URIs)."""

from __future__ import annotations

import hashlib
import math
import re
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

from harness import __version__
from harness.core.errors import UserError
from harness.core.results import write_atomic
from harness.core.units import format_duration
from harness.report import charts
from harness.report.hardware import Matrix, build_matrix, hardware_of, neighbours_of, recipe_key
from harness.report.load import LoadedRun, load_runs
from harness.report.table import Column, base_columns, comparison, run_frame, target_columns

ONE_DAY_S = 86400.0
RUN_PAGES = "run_pages"
ENV_KEYS = (
    "gpu_name",
    "gpu_memory_gib",
    "driver",
    "cuda_runtime",
    "device",
    "python",
    "cpu_model",
    "cpu_cores",
    "host_ram_gib",
    "git_commit",
    "git_dirty",
    "code_fingerprint",
    "container_image",
    "hostname",
)


@dataclass
class Group:
    fingerprint: str
    runs: list[LoadedRun]
    table: pd.DataFrame
    columns: list[Column]
    recipe: dict[str, Any]
    charts: dict[str, str | None] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    environment: dict[str, list[str]] = field(default_factory=dict)
    failures: list[LoadedRun] = field(default_factory=list)
    hardware: str = ""  # one GPU model (and memory cap), or the CPU: only that is compared here
    recipe_key: str = ""  # the recipe whatever the hardware (the matrix across hardware joins on it)


def page_name(run: LoadedRun) -> str:
    """A file name for a run's page that no run id can turn into a path or markup."""
    slug = re.sub(r"[^A-Za-z0-9._-]", "_", run.run_dir.name)[:80]
    digest = hashlib.sha256(run.run_dir.name.encode()).hexdigest()[:6]
    return f"{slug}-{digest}.html"


def fmt(value: Any, spec: str = ".4g") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    try:
        return format(value, spec)
    except (TypeError, ValueError):
        return str(value)


def _environment(runs: list[LoadedRun]) -> dict[str, list[str]]:
    env: dict[str, list[str]] = {}
    for key in ENV_KEYS:
        values = sorted({fmt(run.result.environment.get(key), ".4g") for run in runs})
        env[key] = values
    libraries = sorted(
        {f"{k} {v}" for run in runs for k, v in (run.result.environment.get("libraries") or {}).items()}
    )
    env["libraries"] = libraries
    return env


def _holdout_note(run) -> str | None:
    """How validation was held out, when it is not the recipe's whole documents."""
    data = run.result.data
    holdout, val = data.get("holdout"), data.get("val_tokens", "?")
    if holdout == "tail":
        return (
            f"{run.strategy}: the corpus has too few documents to hold out whole ones, so validation is "
            f"the last {val} tokens of its stream."
        )
    if holdout == "documents+tail":
        return (
            f"{run.strategy}: the held-out documents were too few tokens for one evaluation, so the "
            f"training stream's last {data.get('holdout_extended_tokens', '?')} tokens were held out too "
            f"({val} in all)."
        )
    return None


def _notes(group: Group) -> list[str]:
    notes = []
    budget = group.recipe.get("budget_s")
    if isinstance(budget, int | float) and budget < ONE_DAY_S:
        notes.append(
            f"The budget ({format_duration(budget)}) is shorter than the one day of the question: "
            "setup-like costs weigh more and the ranking at 24 h can differ."
        )
    for run in group.runs:
        said = [run.result.strategy.get("changes_math"), *(run.result.strategy.get("notes") or [])]
        experimental = run.result.strategy.get("experimental") or []
        if experimental:
            said.append(
                f"experimental ({', '.join(experimental)}): its CUDA path has not yet passed its GPU tests "
                "on a real GPU"
            )
        for text in filter(None, said):
            note = f"{run.strategy}: {text}."
            if note not in notes:  # once per strategy, however many repeats
                notes.append(note)
    for run in group.runs:
        s = run.result.summary
        note = _holdout_note(run)
        if note and note not in notes:
            notes.append(note)
        if s.epochs is not None and s.epochs > 1:
            notes.append(
                f"{run.strategy} ({run.result.run_id}) repeated data: {s.epochs:.2f} epochs of the corpus."
            )
        if s.data_tokens_per_s and s.tokens_per_s and s.data_tokens_per_s < 10 * s.tokens_per_s:
            notes.append(
                f"{run.strategy} ({run.result.run_id}): data arrived at {s.data_tokens_per_s:,.0f} tokens/s,"
                f" less than 10x training ({s.tokens_per_s:,.0f}); data may have slowed it."
            )
    notes.extend(_neighbour_notes(group.runs))
    notes.extend(_energy_notes(group.runs))
    return notes


def _energy_notes(runs: list[LoadedRun]) -> list[str]:
    """Energy figures say what they cover: a run whose host counters could not be read is GPU only."""
    gpu_only = [
        r.strategy
        for r in runs
        if r.result.status == "ok"
        and r.result.summary.get("energy_j") is not None
        and r.result.summary.get("host_energy_j") is None
    ]
    if not gpu_only:
        return []
    return [
        f"J/token of {', '.join(dict.fromkeys(gpu_only))} is GPU only: the host's energy counters (RAPL, "
        "/sys/class/powercap) could not be read, so CPU work such as an offloaded optimizer step is not "
        "in it and no energy column is marked best."
    ]


def _neighbour_notes(runs: list[LoadedRun]) -> list[str]:
    """Figures measured while other runs shared the node (its CPU, memory bandwidth, PCIe) say so."""
    notes = []
    for strategy in dict.fromkeys(r.strategy for r in runs):
        own = [r for r in runs if r.strategy == strategy and r.result.status == "ok"]
        shared = [r for r in own if neighbours_of(r.result)]
        if shared:
            beside = sorted({n for r in shared for n in neighbours_of(r.result)})
            notes.append(
                f"{strategy}: {len(shared)} of {len(own)} runs were measured with other runs beside it on "
                f"the node ({', '.join(beside)}); they shared its CPU, memory bandwidth and PCIe (‡)."
            )
    return notes


def build_groups(runs: list[LoadedRun]) -> list[Group]:
    """One comparison per recipe fingerprint and hardware: figures from different GPUs never share a
    table (the matrix across hardware puts them side by side instead)."""
    by_key: dict[tuple[str, Any], list[LoadedRun]] = {}
    for run in runs:
        by_key.setdefault((run.result.recipe_fingerprint, hardware_of(run.result)), []).append(run)
    groups = []
    for (fingerprint, hardware), members in by_key.items():
        members.sort(key=lambda r: r.result.started_at or "")
        columns = [*base_columns(), *target_columns(members)]
        table = comparison(run_frame(members, columns), columns)
        floors = [r.result.summary.floor_loss for r in members if r.result.summary.floor_loss is not None]
        group = Group(fingerprint, members, table, columns, members[-1].result.recipe)
        group.hardware, group.recipe_key = hardware.label, recipe_key(members[-1].result)
        group.failures = [r for r in members if r.result.status != "ok"]
        group.notes = _notes(group)
        group.environment = _environment(members)
        ok_runs = [r for r in members if r.result.status == "ok"]
        palette = charts.colors([*table.index, *(r.strategy for r in members)])  # one color per strategy
        group.charts = charts.draw_all(
            charts.ChartInput(members, ok_runs, table, palette, floors[0] if floors else None)
        )
        groups.append(group)
    groups.sort(key=lambda g: max(r.result.finished_at or "" for r in g.runs), reverse=True)
    return groups


def build_matrices(groups: list[Group]) -> list[Matrix]:
    """A strategy x hardware matrix for every recipe that ran on more than one kind of hardware."""
    by_recipe: dict[str, list[Group]] = {}
    for group in groups:
        if not group.table.empty:
            by_recipe.setdefault(group.recipe_key, []).append(group)
    matrices = []
    for members in by_recipe.values():
        if len({g.hardware for g in members}) > 1:
            members.sort(key=lambda g: hardware_of(g.runs[-1].result).sort_key())
            matrices.append(build_matrix(members[-1].recipe, [(g.hardware, g.table) for g in members]))
    return matrices


def page_environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("harness.report", "templates"),
        autoescape=True,  # every string from a result file is escaped, always
        undefined=jinja2.StrictUndefined,
    )
    env.filters["fmt"] = fmt
    env.filters["duration"] = lambda s: "n/a" if s is None else format_duration(s)
    env.globals.update(page_name=page_name, pd=pd, RUN_PAGES=RUN_PAGES)
    return env


def render_report(runs_dir: Path, out: Path, capacity: Path | None = None) -> Path:
    """Render out (index.html), its run pages, and the comparison as CSV and JSON beside it; with the
    capacity section when a capacity document is given or lies beside `out` (capacity.json)."""
    runs_dir, out = Path(runs_dir), Path(out)
    capacity_section = _capacity(capacity or out.with_name("capacity.json"), capacity is not None)
    if not runs_dir.is_dir():
        raise UserError(f"no runs folder at {runs_dir}: run `make bench` first, or pass --runs")
    runs, warnings = load_runs(runs_dir)
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    groups = build_groups(runs)
    env = page_environment()
    generated = datetime.now(UTC).isoformat(timespec="seconds")
    css = (Path(__file__).parent / "templates" / "style.css").read_text()
    index = env.get_template("index.html").render(
        groups=groups,
        warnings=warnings,
        runs_dir=str(runs_dir),
        generated=generated,
        version=__version__,
        css=css,
        n_runs=len(runs),
        capacity=capacity_section,
        matrices=build_matrices(groups),
    )
    write_atomic(out, index)
    pages = out.parent / RUN_PAGES
    for group in groups:
        for run in group.runs:
            floor = run.result.summary.floor_loss
            page = env.get_template("run.html").render(
                run=run,
                result=run.result,
                chart=charts.run_curves(run, floor) if run.metrics else None,
                css=css,
                generated=generated,
                index_name=out.name,
                env_keys=ENV_KEYS,
            )
            write_atomic(pages / page_name(run), page)
    _export(groups, out)
    return out


def render_capacity_page(document: dict[str, Any], out: Path) -> Path:
    """A page of its own for the capacity section (the main report includes the same section)."""
    from harness.report.capacity import capacity_section

    css = (Path(__file__).parent / "templates" / "style.css").read_text()
    html = (
        page_environment()
        .get_template("capacity_page.html")
        .render(capacity=capacity_section(document), css=css)
    )
    write_atomic(out, html)
    return out


def _capacity(path: Path, named: bool):
    """The capacity section, if there is a document; a damaged one beside the report is a warning, not a
    lost report (a named one is the user's error)."""
    from harness.report.capacity import capacity_section, load_capacity

    if not path.exists() and not named:
        return None
    try:
        return capacity_section(load_capacity(path))
    except UserError as exc:
        if named:
            raise
        print(f"warning: capacity section left out: {exc}", file=sys.stderr)
        return None


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def inert_for_spreadsheets(table: pd.DataFrame) -> pd.DataFrame:
    """Text that a spreadsheet would run as a formula (it starts with = + - @, a tab or a carriage return)
    gets a leading apostrophe, so a run name or an error message can never become one."""

    def inert(value: Any) -> Any:
        return f"'{value}" if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value

    table = table.copy()
    table.columns = [inert(c) for c in table.columns]
    for column in table.columns:
        if not pd.api.types.is_numeric_dtype(table[column]):
            table[column] = table[column].map(inert)
    return table


def _export(groups: list[Group], out: Path) -> None:
    frames = []
    for group in groups:
        if group.table.empty:
            continue
        keep = [c for c in group.table.columns if not c.endswith("_best")]
        frame = group.table[keep].reset_index()
        frame.insert(0, "recipe_fingerprint", group.fingerprint)
        frame.insert(1, "preset", group.recipe.get("preset"))
        frame.insert(2, "hardware", group.hardware)
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    write_atomic(out.with_name("comparison.csv"), inert_for_spreadsheets(table).to_csv(index=False))
    write_atomic(out.with_name("comparison.json"), table.to_json(orient="records", indent=2))
