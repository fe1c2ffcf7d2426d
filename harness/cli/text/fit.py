"""The fit document as the terminal shows it: the law with its intervals, approach 2 beside it, the runs."""

from __future__ import annotations


def format_fit(document: dict) -> str:
    runs = document.get("runs") or {}
    lines = [
        f"fit {document['key']} on {document['data']}: {len(runs)} runs for a grid of "
        f"{len(document['grid'])} "
        f"({document['runs_reused']} from before), {document['spent_s']:.0f} s spent of "
        f"{document['fit_budget_s']:.0f} s"
    ]
    if document.get("stopped"):
        lines.append("stopped: the runs that ended are kept; run the same command again to go on")
    if document.get("law") is not None:
        law, box = document["law"], document["intervals_95"]
        lines.append("L(N, D) = E + A / N^alpha + B / D^beta, fitted (95% bootstrap interval):")
        for k in ("E", "A", "B", "alpha", "beta"):
            lines.append(f"  {k:5} {law[k]:10.4g}  ({box[k][0]:.4g} to {box[k][1]:.4g})")
        for p in document.get("approach_2") or []:
            parabola = p["n_opt_parabola"]
            said = (p.get("outside") or "none") if parabola is None else f"{parabola:,.0f}"
            by_law = "-" if p["n_opt_law"] is None else f"{p['n_opt_law']:,.0f}"
            lines.append(
                f"  level {p['level'] + 1}, {p['compute']:.3g} FLOPs: N_opt by its parabola {said}; "
                f"by the law {by_law}"
            )
    if not document.get("stopped") and not document.get("converged"):
        lines.append(f"not taken as this recipe's law: {document.get('why')}; answers use the prior")
    lines.append(f"{'rung':12} {'params':>10} {'tokens':>10} {'loss':>7}  run")
    for r in runs.values():
        loss = r.get("final_val_loss")
        lines.append(
            f"{r['rung']:12} {r['params']:>10,} {r['tokens']:>10,} "
            f"{'-' if loss is None else f'{loss:.3f}':>7}  {r.get('run')}"
        )
    return "\n".join(lines)
