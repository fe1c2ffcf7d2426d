"""Rendering the HTML: the index (one comparison per group of runs, harness.report.groups) and one page per
run, with the comparison's CSV and JSON beside it (harness.report.exports). Every string from a result
file goes through Jinja's autoescaping; charts are inline SVG or images (data URIs)."""

from __future__ import annotations

import hashlib
import re
import sys
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
from harness.report.exports import export_comparison
from harness.report.groups import ENV_KEYS, build_groups, build_matrices, fmt
from harness.report.load import LoadedRun, load_runs
from harness.report.run_page import summary_rows
from harness.report.story import command_words

RUN_PAGES = "run_pages"


def page_name(run: LoadedRun) -> str:
    """A file name for a run's page that no run id can turn into a path or markup."""
    slug = re.sub(r"[^A-Za-z0-9._-]", "_", run.run_dir.name)[:80]
    digest = hashlib.sha256(run.run_dir.name.encode()).hexdigest()[:6]
    return f"{slug}-{digest}.html"


def page_environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("harness.report", "templates"),
        autoescape=True,  # every string from a result file is escaped, always
        undefined=jinja2.StrictUndefined,
    )
    env.filters["fmt"] = fmt
    env.filters["duration"] = lambda s: "n/a" if s is None else format_duration(s)
    env.filters["command"] = lambda c: " ".join(command_words(c)) if c else "?"
    env.globals.update(page_name=page_name, pd=pd, RUN_PAGES=RUN_PAGES)
    return env


def render_report(runs_dir: Path, out: Path, capacity: Path | None = None) -> Path:
    """Render out (index.html), its run pages, and the comparison as CSV and JSON beside it; opening with
    the answer when an answer document lies beside `out` (answer.json), and with the capacity section when
    a capacity document is given or lies beside it (capacity.json)."""
    runs_dir, out = Path(runs_dir), Path(out)
    capacity_section = _section("capacity", capacity or out.with_name("capacity.json"), capacity is not None)
    answer_section = _section("answer", out.with_name("answer.json"), False)
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
        answer=answer_section,
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
                summary=summary_rows(run.result.summary),
                css=css,
                generated=generated,
                index_name=out.name,
                env_keys=ENV_KEYS,
            )
            write_atomic(pages / page_name(run), page)
    export_comparison(groups, out)
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


def render_answer_page(document: dict[str, Any], out: Path) -> Path:
    """A page of its own for the answer (the main report opens with the same section)."""
    from harness.report.answer import answer_section

    css = (Path(__file__).parent / "templates" / "style.css").read_text()
    template = page_environment().get_template("answer_page.html")
    html = template.render(answer=answer_section(document), css=css)
    write_atomic(out, html)
    return out


def _section(kind: str, path: Path, named: bool):
    """The capacity or the answer section, if there is a document; a damaged one beside the report is a
    warning, not a lost report (a named one is the user's error)."""
    if kind == "capacity":
        from harness.report.capacity import capacity_section as build
        from harness.report.capacity import load_capacity as load
    else:
        from harness.report.answer import answer_section as build
        from harness.report.answer import load_answer as load

    if not path.exists() and not named:
        return None
    try:
        document = load(path)
    except UserError as exc:
        if named:
            raise
        print(f"warning: {kind} section left out: {exc}", file=sys.stderr)
        return None
    for warning in document.get("read_warnings") or []:
        print(f"warning: {kind}: {warning}", file=sys.stderr)
    return build(document)
