"""The fit's page (fit.html beside its document): the law with its intervals, the IsoFLOP profiles with the
fitted law and its band over them, each run's predicted loss against its measured one, the residuals, and
approach 2 beside approach 3."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from harness.capacity.law import Law
from harness.report import svg
from harness.report.charts import colors

LAW_FIELDS = ("E", "A", "B", "alpha", "beta")
CURVE_POINTS = 40


def _law(fields: dict) -> Law:
    return Law(**{k: fields[k] for k in LAW_FIELDS}, source="")


def profile_chart(document: dict) -> str:
    """Each compute level's runs (points), the fitted law along its IsoFLOP line, and the 5th and 95th
    percentiles of the bootstrap refits there (dashed)."""
    runs = [r for r in document["runs"].values() if r.get("final_val_loss") is not None]
    levels = sorted({r["level"] for r in runs})
    palette = colors([f"level {k + 1}" for k in levels])
    law = _law(document["law"]) if document.get("law") else None
    refits = [_law(r) for r in document.get("refits") or []]
    series = []
    for k in levels:
        own = sorted((r for r in runs if r["level"] == k), key=lambda r: r["params"])
        color = palette[f"level {k + 1}"]
        compute = float(np.median([r["compute"] for r in own]))
        series.append(
            svg.Series(
                f"level {k + 1}: measured",
                [r["params"] for r in own],
                [r["final_val_loss"] for r in own],
                color,
                joined=False,
            )
        )
        if law is None:
            continue
        ns = np.geomspace(own[0]["params"] * 0.7, own[-1]["params"] * 1.4, CURVE_POINTS)
        along = [law.loss(n, compute / (6 * n)) for n in ns]
        series.append(svg.Series(f"level {k + 1}: the law", list(ns), along, color))
        if refits:
            band = np.array([[s.loss(n, compute / (6 * n)) for n in ns] for s in refits])
            low, high = np.nanpercentile(band, [5, 95], axis=0)
            outline = (list(ns) + list(ns[::-1]), list(low) + list(high[::-1]))  # one closed outline
            series.append(svg.Series(f"level {k + 1}: 90% band", *outline, color, dash="2 2"))
    return svg.line_chart(
        "IsoFLOP profiles: final loss against size at each compute",
        "parameters (log)",
        "final validation loss",
        series,
        log_x=True,
    )


def predicted_chart(document: dict) -> str | None:
    """Each run's loss as the law predicts it against the loss it measured, and the line where they agree."""
    if not document.get("law"):
        return None
    law = _law(document["law"])
    runs = sorted(
        (r for r in document["runs"].values() if r.get("final_val_loss") is not None),
        key=lambda r: r["final_val_loss"],
    )
    predicted = [law.loss(r["params"], r["tokens"]) for r in runs]
    measured = [r["final_val_loss"] for r in runs]
    span = [min(predicted + measured), max(predicted + measured)]
    series = [
        svg.Series("runs", measured, predicted, "#1f77b4", joined=False),
        svg.Series("agreement", span, span, "#888888", dash="4 4"),
    ]
    return svg.line_chart("The law against each run", "measured loss", "predicted loss", series)


def rows(document: dict) -> list[dict]:
    law = _law(document["law"]) if document.get("law") else None
    found = []
    for r in document["runs"].values():
        predicted = None if law is None else law.loss(r["params"], r["tokens"])
        measured = r.get("final_val_loss")
        residual = None if predicted is None or measured is None else measured - predicted
        found.append({**r, "predicted": predicted, "residual": residual})
    return sorted(found, key=lambda r: (r["level"], r["params"]))


def render_fit_page(document: dict, out: Path) -> Path:
    from harness.core.results import write_atomic
    from harness.report.render import page_environment

    css = (Path(__file__).parent / "templates" / "style.css").read_text()
    template = page_environment().get_template("fit_page.html")
    html = template.render(
        doc=document,
        rows=rows(document),
        profiles=profile_chart(document),
        predicted=predicted_chart(document),
        css=css,
        isfinite=math.isfinite,
    )
    write_atomic(out, html)
    return out
