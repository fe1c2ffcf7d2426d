"""`harness report`: a self-contained HTML comparison rendered only from saved result files."""

from harness.report.render import render_report

__all__ = ["render_report"]
