"""The comparison table: one row per strategy within one recipe fingerprint, its columns the metric
registry's. Repeats are aggregated column by column: each figure is the median of that figure over the
strategy's runs, with its min - max under it (so a reader sees what is noise); the exports also carry
MLPerf's rule (drop the lowest and highest, mean of the rest). The best value of each column is marked and
every figure is also given as a ratio to the baseline."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from harness.core.recipe import BASELINE
from harness.metrics.definitions import table_metrics
from harness.report.hardware import neighbours_of
from harness.report.load import LoadedRun


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    better: str | None  # "high", "low" or None (no best mark)
    fmt: str
    ratio: bool = True
    complete: bool = False  # the best mark only when every ok strategy has the figure


def base_columns() -> list[Column]:
    """The table's columns: every metric the registry marks as a table column (one per-target metric
    becomes a column per target, see `target_columns`)."""
    metrics = [m for m in table_metrics() if m.kind is not dict]
    return [Column(m.key, m.label, m.better, m.fmt, m.ratio, m.complete) for m in metrics]


def target_columns(runs: list[LoadedRun]) -> list[Column]:
    columns = []
    for metric in (m for m in table_metrics() if m.kind is dict):
        names = {t for run in runs for t in (run.result.summary.get(metric.key) or {})}
        for name in sorted(names, key=_number_first, reverse=True):
            label = metric.label.format(target=name)
            columns.append(Column(f"{metric.key}:{name}", label, metric.better, metric.fmt, metric.ratio))
    return columns


def _number_first(name: str) -> tuple[int, float, str]:
    try:
        return (1, float(name), name)
    except ValueError:
        return (0, 0.0, name)


def run_frame(runs: list[LoadedRun], columns: list[Column]) -> pd.DataFrame:
    """One row per run: identity, status and every figure of the table."""
    records = []
    for run in runs:
        r, s = run.result, run.result.summary
        record = {
            "run_id": r.run_id,
            "strategy": run.strategy,
            "status": r.status,
            "fingerprint": r.recipe_fingerprint,
            "error": r.error,
            "epochs": s.get("epochs"),
            "data_tokens_per_s": s.get("data_tokens_per_s"),
            "train_s": s.get("train_s"),
            "finished_at": r.finished_at,
            "neighbours": len(neighbours_of(r)),  # runs beside it on its node while it ran
        }
        for col in columns:
            key, _, name = col.key.partition(":")
            value = s.get(key)
            if key == "micro_batch" and value is None:  # results written before micro_batch was a metric
                value = r.settings.get("micro_batch")
            record[col.key] = (value or {}).get(name) if name else value
        records.append(record)
    frame = pd.DataFrame.from_records(records)
    text = ("run_id", "strategy", "status", "fingerprint", "error", "finished_at")
    numeric = [c for c in frame.columns if c not in text]
    return frame.astype({c: "float64" for c in numeric}) if len(frame) else frame


def aggregate(values: pd.Series) -> dict[str, float | None]:
    """One column of one strategy's runs: the median (the headline), the spread, and MLPerf's rule (drop
    the lowest and the highest, mean of the rest; with three runs or more)."""
    values = values.dropna().sort_values()
    n = len(values)
    return {
        "": values.median() if n else None,
        "_min": values.iloc[0] if n > 1 else None,
        "_max": values.iloc[-1] if n > 1 else None,
        "_trimmed_mean": values.iloc[1:-1].mean() if n >= 3 else None,
    }


def comparison(frame: pd.DataFrame, columns: list[Column]) -> pd.DataFrame:
    """Aggregate the ok runs per strategy, each column on its own; add best marks and ratios."""
    ok = frame[frame["status"] == "ok"]
    rows = []
    for strategy, group in ok.groupby("strategy", sort=False):
        shared = int((group["neighbours"] > 0).sum())
        row = {"strategy": strategy, "status": "ok", "runs": len(group), "with_neighbours": shared}
        for col in columns:
            column = group[col.key] if col.key in group else pd.Series(dtype="float64")
            row.update({f"{col.key}{suffix}": v for suffix, v in aggregate(column).items()})
        rows.append(row)
    for strategy, group in frame[frame["status"] != "ok"].groupby("strategy", sort=False):
        if strategy not in ok["strategy"].values:
            rows.append(
                {
                    "strategy": strategy,
                    "status": group["status"].iloc[-1],
                    "runs": 0,
                    "with_neighbours": 0,
                    **{c.key: None for c in columns},
                }
            )
    table = pd.DataFrame.from_records(rows)
    if table.empty:
        return table
    table = table.set_index("strategy")
    base = table.loc[BASELINE] if BASELINE in table.index and table.loc[BASELINE, "status"] == "ok" else None
    for col in columns:
        values = pd.to_numeric(table[col.key], errors="coerce")
        ok_values = values[table["status"] == "ok"]
        partial = col.complete and ok_values.isna().any()  # e.g. a total that some runs could not read
        if col.better is not None and values.notna().any() and not partial:
            best = values.max() if col.better == "high" else values.min()
            table[f"{col.key}_best"] = values == best
        else:
            table[f"{col.key}_best"] = False
        base_value = None if base is None else pd.to_numeric(pd.Series([base[col.key]]), errors="coerce")[0]
        if col.ratio and base_value is not None and pd.notna(base_value) and base_value != 0:
            table[f"{col.key}_ratio"] = values / base_value
        else:
            table[f"{col.key}_ratio"] = None
    order = sorted(table.index, key=lambda s: (s != BASELINE, table.loc[s, "status"] != "ok", s))
    return table.loc[order]
