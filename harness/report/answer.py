"""The report's answer section, from an answer document (answer.json): per memory size the verdict sentence,
each strategy's best and biggest size, and two charts: the loss each size is expected to reach in the
budget against its size (a line per strategy, ending where the strategy stops fitting; measured points
filled, predicted ones hollow; the best ringed), and tokens/s against size."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.core.errors import UserError
from harness.core.results import read_document
from harness.core.schema import (
    NON_NEGATIVE,
    NUMBER,
    POSITIVE,
    TEXT,
    Flag,
    Invalid,
    Items,
    Named,
    Number,
    Record,
    Text,
    check,
)
from harness.core.units import finite_number
from harness.report import svg
from harness.report.charts import colors


@dataclass
class SizeView:
    entry: dict[str, Any]
    rows: list[dict[str, Any]] = field(default_factory=list)
    loss_chart: str = ""
    speed_chart: str = ""


@dataclass
class AnswerSection:
    document: dict[str, Any]
    sizes: list[SizeView] = field(default_factory=list)


_SHARE = Number(low=0, high=1)


def _figure(value: Number) -> Record:
    return Record(
        {"value": value, "source": TEXT, "predicted_value": POSITIVE, "interval": Items(value, optional=True)}
    )


def _interval(figure: Any) -> str | None:
    interval = figure.get("interval") if isinstance(figure, dict) else None
    return (
        f"{interval[0]:.2f}-{interval[1]:.2f}" if isinstance(interval, list) and len(interval) == 2 else None
    )


_NAME = Text(optional=False)
REF = Record({"strategy": _NAME, "preset": _NAME}, required=("strategy", "preset"))
CANDIDATE = Record(
    {
        "strategy": _NAME,
        "preset": _NAME,
        "params": Number(above=0, high=1e15, integer=True, optional=False),  # past any model trained
        "fits": Flag(),
        "p_best": _SHARE,
        "tokens_per_s": _figure(POSITIVE),
        "tokens": _figure(NON_NEGATIVE),
        "tokens_per_param": _figure(NON_NEGATIVE),
        "estimated_loss": _figure(NON_NEGATIVE),
    },
    required=("strategy", "preset", "params"),
    optional=False,
)
SIZE = Record(
    {
        "gpu_memory_gib": Number(above=0, high=1e6),
        "where": TEXT,
        "verdict": Text(optional=False),
        "beyond": TEXT,
        "law_note": TEXT,
        "best": REF,
        "biggest": REF,
        "contenders": Items(REF),
        "strategies": Named(
            Record({"best": REF, "biggest": REF, "worse_by": NUMBER, "p_best": _SHARE}, optional=False)
        ),
        "candidates": Items(CANDIDATE, optional=False),
    },
    required=("verdict", "candidates"),
    optional=False,
)
ANSWER = Record(
    {
        "budget": TEXT,
        "created_at": TEXT,
        "command": Items(TEXT),
        "complete": Flag(),
        "measured_here": Flag(),
        "device": Record(
            {"name": TEXT, "peak_tflops": POSITIVE, "peak_source": TEXT, "link": TEXT, "link_source": TEXT}
        ),
        "method": Named(TEXT),
        "law": Record({"used": TEXT, "why": TEXT, "fit": TEXT, "fitted": Flag()}),
        "set_aside": Items(TEXT),
        "sizes": Items(SIZE, optional=False),
        "trained": Items(
            Record(
                {
                    "strategy": TEXT,
                    "preset": TEXT,
                    "status": TEXT,
                    "run": TEXT,
                    "error": TEXT,
                    "p_best": _SHARE,
                    "final_val_loss": _figure(NON_NEGATIVE),
                    "estimated_loss": _figure(NON_NEGATIVE),
                    "inside_interval": Flag(),
                },
                required=("strategy", "preset", "run"),
                optional=False,
            )
        ),
        "backtest": Record(
            {
                "predicted": Items(TEXT),
                "measured": Items(TEXT),
                "agrees": Flag(),
                "measured_best_was_best": Flag(),
                "error": TEXT,
            }
        ),
    },
    required=("sizes",),
)


def load_answer(path: Path) -> dict[str, Any]:
    """An answer document, checked against its schema so that rendering cannot fail on it; UserError
    naming the file and the first field that fails."""
    document = read_document(path, "answer")
    try:
        return check(ANSWER, document)
    except Invalid as exc:
        raise UserError(f"{path} is damaged: {exc}") from None


def _value(figure: Any) -> float | None:
    return finite_number(figure.get("value")) if isinstance(figure, dict) else None


def _source(candidate: dict) -> str | None:
    speed = candidate.get("tokens_per_s")
    return speed.get("source") if isinstance(speed, dict) else None


def _refs(entry: dict, key: str) -> set[tuple[Any, Any]]:
    """(strategy, preset) of the candidates the entry names under `key` (the best, or its contenders)."""
    named = entry.get(key)
    named = [named] if isinstance(named, dict) else named if isinstance(named, list) else []
    return {(r.get("strategy"), r.get("preset")) for r in named if isinstance(r, dict)}


def _series(entry: dict, key: str, palette: dict[str, str]) -> list[svg.Series]:
    """One line per strategy over the sizes that fit: `key` is estimated_loss or tokens_per_s. On the loss
    chart the best is ringed and its contenders ringed with a dashed line."""
    best, contenders = _refs(entry, "best"), _refs(entry, "contenders")
    lines = []
    for name, color in palette.items():
        points = sorted(
            (c for c in entry["candidates"] if c.get("strategy") == name and c.get("fits", True)),
            key=lambda c: c["params"],
        )
        points = [c for c in points if _value(c.get(key)) is not None]
        ringed = next((c["params"] for c in points if (name, c.get("preset")) in best), None)
        marked = tuple(c["params"] for c in points if (name, c.get("preset")) in contenders)
        lines.append(
            svg.Series(
                str(name),
                [c["params"] for c in points],
                [_value(c[key]) for c in points],
                color,
                dots=True,
                hollow=tuple(_source(c) != "measured" for c in points),
                ringed=ringed if key == "estimated_loss" else None,
                marked=marked if key == "estimated_loss" else (),
            )
        )
    return svg.styled(lines)


def _ladder(entry: dict) -> list[tuple[float, str]]:
    """The sizes the candidates span, named: the charts' x ticks."""
    named = {c.get("preset"): c["params"] for c in entry["candidates"] if isinstance(c.get("preset"), str)}
    return [(params, name) for name, params in named.items() if params > 0]


def _rows(entry: dict) -> list[dict[str, Any]]:
    by_key = {(c.get("strategy"), c.get("preset")): c for c in entry["candidates"]}
    rows = []
    for name, own in (entry.get("strategies") or {}).items():
        best = by_key.get(tuple((own.get("best") or {}).get(k) for k in ("strategy", "preset")), {})
        big = by_key.get(tuple((own.get("biggest") or {}).get(k) for k in ("strategy", "preset")), {})
        rows.append(
            {
                "strategy": name,
                "best": best.get("preset"),
                "loss": _value(best.get("estimated_loss")),
                "worse_by": own.get("worse_by"),
                "p_best": own.get("p_best"),
                "interval": _interval(best.get("estimated_loss")),
                "tokens_per_s": _value(best.get("tokens_per_s")),
                "source": _source(best) or "-",
                "tokens_per_param": _value(best.get("tokens_per_param")),
                "biggest": big.get("preset"),
                "biggest_tokens_per_param": _value(big.get("tokens_per_param")),
                "is_best": (entry.get("best") or {}).get("strategy") == name,
            }
        )
    return rows


def answer_section(document: dict[str, Any]) -> AnswerSection:
    section = AnswerSection(document)
    for entry in document["sizes"]:
        palette = colors([str(c.get("strategy")) for c in entry["candidates"]])
        where = entry.get("where", "")
        view = SizeView(entry, _rows(entry))
        view.loss_chart = svg.line_chart(
            f"Expected loss in the budget: {where}", "model size (log scale of parameters)", "estimated loss",
            _series(entry, "estimated_loss", palette), log_x=True, x_names=_ladder(entry),
        )  # fmt: skip
        view.speed_chart = svg.line_chart(
            f"Speed: {where}", "model size (log scale of parameters)", "tokens/s (log scale)",
            _series(entry, "tokens_per_s", palette), log_x=True, log_y=True, x_names=_ladder(entry),
        )  # fmt: skip
        section.sizes.append(view)
    return section
