"""TensorBoard event files under the run folder (`--tracker tensorboard`), readable with
`tensorboard --logdir reports/runs`: losses, perplexity, learning rate, gradient norm, throughput and,
at the end, the memory peaks."""

from __future__ import annotations

import math
from typing import Any

from harness.metrics.sinks.base import MetricSink

TB_DIR = "tensorboard"
# metric row key -> TensorBoard tag, per row kind
TAGS = {
    "train": {
        "loss": "train/loss",
        "lr": "train/lr",
        "grad_norm": "train/grad_norm",
        "tokens_per_s": "speed/tokens_per_s",
    },
    "eval": {"val_loss": "eval/val_loss", "val_ppl": "eval/val_ppl"},
}
SUMMARY_TAGS = ("peak_allocated_gib", "peak_reserved_gib", "peak_nvml_used_gib", "peak_host_rss_gib")


class TensorBoardSink(MetricSink):
    name = "tensorboard"
    description = "TensorBoard event files in <run>/tensorboard"
    requires = ("tensorboard",)

    def open(self, resume_rows: int | None, resume_step: int | None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        # On resume, events after the checkpoint's step are purged: the resumed run logs them again.
        purge = None if resume_step is None else resume_step + 1  # the checkpoint holds its own step
        self._writer = SummaryWriter(str(self.run_dir / TB_DIR), purge_step=purge)
        self._last_step = 0

    def write(self, row: dict[str, Any]) -> None:
        step = int(row.get("step", 0))
        self._last_step = max(self._last_step, step)
        for key, tag in TAGS.get(row.get("kind"), {}).items():
            value = row.get(key)
            if isinstance(value, int | float) and math.isfinite(value):
                self._writer.add_scalar(tag, value, step)

    def finish(self, summary: dict[str, Any]) -> None:
        for key in SUMMARY_TAGS:
            value = summary.get(key)
            if isinstance(value, int | float):
                self._writer.add_scalar(f"memory/{key}", value, self._last_step)

    def close(self) -> None:
        writer = getattr(self, "_writer", None)
        self._writer = None
        if writer is not None:
            writer.close()
