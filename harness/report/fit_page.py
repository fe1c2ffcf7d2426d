"""The fit's page (its .html beside its document): the law with its intervals, the IsoFLOP profiles with
the fitted law and its band over them, each run's predicted loss against its measured one, the residuals,
and approach 2 beside approach 3. It reads the document only: the law's figures were computed by the fit."""

from __future__ import annotations

from pathlib import Path

from harness.report import svg
from harness.report.charts import colors


def _runs(document: dict) -> list[dict]:
    return [r for r in (document.get("runs") or {}).values() if r.get("final_val_loss") is not None]


def profile_chart(document: dict) -> str:
    """Each compute level's runs (points), the fitted law along its IsoFLOP line, and the band between the
    5th and 95th percentiles of the bootstrap refits there (dotted, one outline)."""
    runs = _runs(document)
    levels = sorted({r["level"] for r in runs})
    palette = colors([f"level {k + 1}" for k in levels])
    curves = {c["level"]: c for c in document.get("curves") or []}
    series = []
    for k in levels:
        own = sorted((r for r in runs if r["level"] == k), key=lambda r: r["params"])
        color = palette[f"level {k + 1}"]
        xs, ys = [r["params"] for r in own], [r["final_val_loss"] for r in own]
        series.append(svg.Series(f"level {k + 1}: measured", xs, ys, color, joined=False))
        curve = curves.get(k)
        if curve is None:
            continue
        said = "the law" if document.get("converged") else "the fit (not believed)"
        series.append(svg.Series(f"level {k + 1}: {said}", curve["params"], curve["loss"], color))
        outline = (curve["params"] + curve["params"][::-1], curve["low"] + curve["high"][::-1])
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
    predicted = document.get("predicted") or {}
    pairs = sorted(
        (
            (r["final_val_loss"], predicted[k])
            for k, r in (document.get("runs") or {}).items()
            if k in predicted
        ),
    )
    if not pairs:
        return None
    measured, expected = [m for m, _ in pairs], [p for _, p in pairs]
    span = [min(measured + expected), max(measured + expected)]
    series = [
        svg.Series("runs", measured, expected, "#1f77b4", joined=False),
        svg.Series("agreement", span, span, "#888888", dash="4 4"),
    ]
    return svg.line_chart("The law against each run", "measured loss", "predicted loss", series)


def rows(document: dict) -> list[dict]:
    predicted = document.get("predicted") or {}
    found = []
    for k, r in (document.get("runs") or {}).items():
        expected, measured = predicted.get(k), r.get("final_val_loss")
        residual = None if expected is None or measured is None else measured - expected
        found.append({**r, "predicted": expected, "residual": residual})
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
    )
    write_atomic(out, html)
    return out
