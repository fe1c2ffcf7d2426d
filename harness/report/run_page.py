"""A run's page: every figure of its summary, in the metric registry's order, with its label, its value as
the registry formats it, and its unit (read from the key, which carries it). A figure the registry does not
know (a plug-in's, or a newer harness's) is shown as written, never dropped."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.core.units import unit_of
from harness.metrics.definitions import METRICS
from harness.report.groups import fmt


@dataclass(frozen=True)
class SummaryRow:
    label: str
    key: str
    value: str
    unit: str


def _text(value: Any, spec: str) -> str:
    if isinstance(value, dict):  # a figure per name, e.g. the time to each target loss
        return "; ".join(f"{name}: {fmt(v, spec)}" for name, v in value.items()) or "none"
    return fmt(value, spec)


def summary_rows(summary: dict[str, Any]) -> list[SummaryRow]:
    rows = [
        SummaryRow(
            metric.label.replace("{target}", "each target"),
            key,
            _text(summary[key], metric.fmt),
            unit_of(key),
        )
        for key, metric in METRICS.items()
        if key in summary
    ]
    rows += [
        SummaryRow(key, key, _text(summary[key], ".6g"), unit_of(key))
        for key in summary
        if key not in METRICS
    ]
    return rows
