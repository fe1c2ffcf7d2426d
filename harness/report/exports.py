"""The comparison as data beside the HTML: comparison.csv (inert for spreadsheets) and comparison.json,
one row per strategy and recipe, with the recipe's fingerprint, preset and hardware."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from harness.core.results import write_atomic

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


def export_comparison(groups: list, out: Path) -> None:
    """comparison.csv and comparison.json beside `out`, from the groups' tables (without the best marks)."""
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
