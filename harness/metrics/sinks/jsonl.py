"""`metrics.jsonl`: one JSON line per metric row, flushed per row; always written."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from harness.core.results import METRICS_FILE
from harness.metrics.sinks.base import MetricSink


class JsonlSink(MetricSink):
    name = "jsonl"
    description = "metrics.jsonl in the run folder (always written)"

    def open(self, resume_rows: int | None, resume_step: int | None) -> None:
        """Append to metrics.jsonl, first cutting it to its first `resume_rows` complete lines: the rows
        written after the checkpoint are dropped, because the resumed run writes them again."""
        self.close()
        path = self.run_dir / METRICS_FILE
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True) if path.exists() else []
        complete = [line for line in lines if line.endswith("\n")]
        kept = complete if resume_rows is None else complete[:resume_rows]
        if kept != lines:
            path.write_text("".join(kept), encoding="utf-8")
        self.rows = len(kept)
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 (held for the run)

    def write(self, row: dict[str, Any]) -> None:
        self._file.write(json.dumps(row) + "\n")
        self._file.flush()
        self.rows += 1

    def close(self) -> None:
        file = getattr(self, "_file", None)
        self._file = None
        if file is not None:
            with contextlib.suppress(OSError, ValueError):
                file.close()
