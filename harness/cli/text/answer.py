"""The answer on the terminal (the HTML section is `harness.report.answer`): per memory size the verdict,
then per strategy its best size, its loss's interval, how far above the lowest estimate it lies, its
P(best), where its speed came from, and its biggest size; the GPU table for `--gpu list`."""

from __future__ import annotations

COLUMNS = (
    ("strategy", 22), ("best", 10), ("est loss", 8), ("90%", 9), ("above by", 8), ("P(any)", 7),
    ("tokens/s", 11), ("speed", 9), ("tok/param", 9), ("biggest", 10), ("its tok/param", 13),
)  # fmt: skip


def _value(figure: dict | None) -> float | None:
    return None if figure is None else figure.get("value")


def _num(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _rows(entry: dict) -> list[list[str]]:
    by_key = {(c["strategy"], c["preset"]): c for c in entry["candidates"]}
    rows = []
    for name, own in entry["strategies"].items():
        best = by_key.get((own["best"]["strategy"], own["best"]["preset"])) if own["best"] else None
        big = by_key.get((own["biggest"]["strategy"], own["biggest"]["preset"])) if own["biggest"] else None
        speed = (best or {}).get("tokens_per_s") or {}
        interval = ((best or {}).get("estimated_loss") or {}).get("interval")
        rows.append(
            [
                name,
                best["preset"] if best else "none",
                _num(_value((best or {}).get("estimated_loss")), ".2f"),
                "-" if not interval else f"{interval[0]:.2f}-{interval[1]:.2f}",
                _num(own["worse_by"], "+.3f"),
                _num(own.get("p_best"), ".0%"),
                _num(speed.get("value"), ",.0f"),
                speed.get("source", "-"),
                _num(_value((best or {}).get("tokens_per_param")), ".3g"),
                big["preset"] if big else "none",
                _num(_value((big or {}).get("tokens_per_param")), ".3g"),
            ]
        )
    return rows


def format_answer(document: dict) -> str:
    """Each memory size's verdict and its table; how many speeds were measured; the law's caveat."""
    lines = []
    for entry in document["sizes"]:
        lines.append(entry["verdict"])
        for note in (entry.get("beyond"), entry.get("law_note")):
            if note:
                lines.append(f"  note: {note}")
        rows = [[name for name, _ in COLUMNS], *_rows(entry)]
        lines += [
            "  " + " ".join(c.ljust(w) for c, (_, w) in zip(r, COLUMNS, strict=True)).rstrip() for r in rows
        ]
        speeds = [c.get("tokens_per_s") or {} for c in entry["candidates"] if c.get("fits", True)]
        known = [speed["source"] for speed in speeds if speed.get("value") is not None]
        counts = f"{known.count('measured')} measured, {known.count('predicted')} predicted"
        lines.append(f"  speeds: {counts}, {len(speeds) - len(known)} unknown")
        lines.append("")
    trained = document.get("trained") or []
    lines += backtest_lines(trained, document.get("backtest") or {})
    lines.append(f"est loss: {document['method']['loss']}")
    law = document.get("law") or {}
    if law.get("why"):
        lines.append(f"law: the {law.get('used', 'prior')} is used: {law['why']}")
    lines += [f"set aside: {why}" for why in document.get("set_aside") or []]
    if document.get("stopped"):
        stage = "training its candidates" if trained else "measuring"
        lines.append(f"stopped while {stage}: the answer above is partial")
    return "\n".join(lines)


def format_prediction_check(document: dict) -> str:
    """Each measured candidate's tokens/s beside what the throughput model predicted for it before it ran
    (a candidate measured before any run of its device had none)."""
    lines = [
        f"{'size GiB':>8}  {'strategy':22} {'preset':10} {'measured':>10} {'predicted':>10} {'pred/meas':>9}"
    ]
    for entry in document["sizes"]:
        for c in entry["candidates"]:
            speed = c.get("tokens_per_s") or {}
            if speed.get("source") != "measured" or speed.get("value") is None:
                continue
            predicted = speed.get("predicted_value")
            ratio = "-" if predicted is None else f"{predicted / speed['value']:.3f}"
            where = f"{entry['gpu_memory_gib']:>8g}  {c['strategy']:22} {c['preset']:10}"
            lines.append(f"{where} {speed['value']:>10,.0f} {_num(predicted, ',.0f'):>10} {ratio:>9}")
    return "\n".join(lines)


def format_gpus() -> str:
    from harness.metrics.gpus import GPUS

    lines = [f"{'GPU (--gpu NAME)':30} {'GiB':>5} {'TFLOP/s':>8}  host link"]
    for g in GPUS.values():
        lines.append(f"{g.name:30} {g.memory_gib:>5g} {g.peak[0] or 0:>8g}  {g.link} ({g.link_gb_s:g} GB/s)")
    return "\n".join(lines)


def backtest_lines(trained: list[dict], backtest: dict) -> list[str]:
    """Each trained candidate's measured loss beside its estimate and interval; the two orders."""
    lines = [f"not trained: {backtest['error']}"] if backtest.get("error") else []
    for t in trained:
        estimate = t.get("estimated_loss") or {}
        low, high = estimate.get("interval") or (None, None)
        inside = {True: "inside", False: "outside", None: "-"}[t.get("inside_interval")]
        lines.append(
            f"trained {t['preset']} with {t['strategy']} ({t.get('status')}): final val loss "
            f"{_num(_value(t.get('final_val_loss')), '.3f')} measured, {_num(_value(estimate), '.3f')} "
            f"estimated (90%: {_num(low, '.2f')}-{_num(high, '.2f')}, {inside}); run {t['run']}"
        )
    if backtest.get("measured"):
        agrees = {True: "agrees", False: "differs", None: "one run: no order"}[backtest.get("agrees")]
        lines.append(
            f"backtest: measured order {', '.join(backtest['measured'])}; the predicted order {agrees}"
        )
    return lines
