"""The report's comparisons: runs grouped by recipe fingerprint and hardware, each group with its table,
charts, notes and environment; and the strategy x hardware matrix for a recipe run on several kinds."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from harness.report import charts, story
from harness.report.hardware import Matrix, build_matrix, hardware_of, recipe_key
from harness.report.load import LoadedRun
from harness.report.notes import group_notes
from harness.report.table import Column, base_columns, comparison, run_frame, target_columns

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
    shown: list[Column] = field(default_factory=list)  # the table's columns with a figure (story.py)
    left_out: list[str] = field(default_factory=list)  # the labels of those no run of the group measured
    sentence: str | None = None  # what the comparison says, in words
    rows: dict[str, list[LoadedRun]] = field(default_factory=dict)  # the runs each row aggregates
    commands: list[str] = field(default_factory=list)  # the commands that started its runs


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
        group.shown, group.left_out = story.shown_columns(table, columns)
        group.sentence, group.rows = story.sweep_sentence(table), story.runs_by_row(members)
        group.notes = group_notes(group.recipe, members) + story.mixed_rows(group.rows)
        group.commands = sorted({story.command_of(r) for r in members})
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
