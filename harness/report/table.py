"""The comparison table: one row per strategy within one recipe fingerprint. Repeats are aggregated: the
median (with three or more runs, after dropping the fastest and the slowest, as MLPerf does) and the spread
(min - max over all runs, so a reader sees what is noise). The best value of each column is marked and
every figure is also given as a ratio to the `amp` baseline."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from harness.report.load import LoadedRun

BASELINE = "amp"


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    better: str | None  # "high", "low" or None (no best mark)
    fmt: str
    ratio: bool = True


COLUMNS = (
    Column("tokens_per_s", "tokens/s", "high", ",.0f"),
    Column("mfu", "MFU", "high", ".1%"),
    Column("micro_batch", "micro-batch", None, ".0f", ratio=False),
    Column("peak_allocated_gib", "GPU allocated GiB", "low", ".2f"),
    Column("peak_reserved_gib", "GPU reserved GiB", "low", ".2f"),
    Column("peak_nvml_used_gib", "GPU NVML GiB", "low", ".2f"),
    Column("peak_host_rss_gib", "host RAM GiB", "low", ".2f"),
    Column("joules_per_token", "J/token", "low", ".3g"),
    Column("final_val_loss", "val loss", "low", ".4f"),
    Column("gap_to_floor", "gap to floor", "low", ".4f", ratio=False),
)


def target_columns(runs: list[LoadedRun]) -> list[Column]:
    targets = sorted(
        {t for run in runs for t in run.result.summary.time_to_target_s}, key=float, reverse=True
    )
    return [Column(f"time_to_{t}", f"time to loss {t} (s)", "low", ".1f") for t in targets]


def run_frame(runs: list[LoadedRun]) -> pd.DataFrame:
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
            "micro_batch": r.settings.get("micro_batch"),
            "epochs": s.epochs,
            "data_tokens_per_s": s.data_tokens_per_s,
            "train_s": s.train_s,
            "finished_at": r.finished_at,
        }
        for col in COLUMNS:
            if col.key != "micro_batch":
                record[col.key] = getattr(s, col.key)
        for target, seconds in s.time_to_target_s.items():
            record[f"time_to_{target}"] = seconds
        records.append(record)
    frame = pd.DataFrame.from_records(records)
    numeric = [
        c
        for c in frame.columns
        if c not in ("run_id", "strategy", "status", "fingerprint", "error", "finished_at")
    ]
    return frame.astype({c: "float64" for c in numeric}) if len(frame) else frame


def _kept(group: pd.DataFrame) -> pd.DataFrame:
    """With three or more runs, drop the fastest and the slowest (by tokens/s) before aggregating."""
    if len(group) < 3 or group["tokens_per_s"].isna().all():
        return group
    order = group.sort_values("tokens_per_s", kind="stable")
    return order.iloc[1:-1]


def comparison(frame: pd.DataFrame, columns: list[Column]) -> pd.DataFrame:
    """Aggregate the ok runs per strategy; add spread, best marks and ratios to the baseline."""
    ok = frame[frame["status"] == "ok"]
    rows = []
    for strategy, group in ok.groupby("strategy", sort=False):
        kept = _kept(group)
        row = {"strategy": strategy, "status": "ok", "runs": len(group), "runs_used": len(kept)}
        for col in columns:
            values = kept[col.key].dropna() if col.key in kept else pd.Series(dtype="float64")
            every = group[col.key].dropna() if col.key in group else pd.Series(dtype="float64")
            row[col.key] = values.median() if len(values) else None
            row[f"{col.key}_min"] = every.min() if len(every) > 1 else None
            row[f"{col.key}_max"] = every.max() if len(every) > 1 else None
        rows.append(row)
    for strategy, group in frame[frame["status"] != "ok"].groupby("strategy", sort=False):
        if strategy not in ok["strategy"].values:
            rows.append(
                {
                    "strategy": strategy,
                    "status": group["status"].iloc[-1],
                    "runs": 0,
                    "runs_used": 0,
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
        if col.better is not None and values.notna().any():
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
