"""Progress, the parent's side: the worker's events shown live (a bar on a terminal, plain periodic lines
otherwise)."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from harness.core.units import format_duration


class ProgressDisplay:
    """Parent side: one live line with loss, tokens/s, budget left and ETA; for a run that stops after a
    number of steps (`max_steps`, e.g. the answer's measuring runs), its steps instead: its budget then
    only bounds it, and the time left in it says nothing."""

    def __init__(
        self, label: str, budget_s: float, stream: TextIO | None = None, max_steps: int | None = None
    ) -> None:
        self.label = label
        self.budget_s = budget_s
        self.max_steps = max_steps
        self.stream = stream or sys.stderr
        self.live = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._bar = None
        self._state: dict[str, Any] = {}
        # Without a terminal, print a train line at most every 1% of the budget (at least 1 s, at most 5 min).
        self._plain_every_s = min(300.0, max(1.0, budget_s / 100))
        self._plain_last_s = self._plain_eval_s = -float("inf")  # each kind of line at that pace

    def _ensure_bar(self):
        if self._bar is None and self.live:
            from tqdm import tqdm

            unit = "steps" if self.max_steps else "s of training clock"
            self._bar = tqdm(
                total=self.max_steps or round(self.budget_s, 1),
                desc=self.label,
                file=self.stream,
                leave=True,
                bar_format="{desc} {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} " + unit + "{postfix}",
            )
        return self._bar

    def _postfix(self) -> str:
        s = self._state
        parts = [s.get("phase", "")]
        if "loss" in s:
            parts.append(f"loss {s['loss']:.4f}")
        if s.get("val_loss") is not None:
            parts.append(f"val {s['val_loss']:.4f}")
        if s.get("tokens_per_s"):
            parts.append(f"{s['tokens_per_s']:,.0f} tok/s")
        if self.max_steps:
            parts.append(f"step {s.get('step', 0):,}/{self.max_steps:,}")
        elif "train_s" in s:
            left = max(0.0, self.budget_s - s["train_s"])
            parts.append(f"left {format_duration(left)}")
            if s.get("wall_per_train"):
                parts.append(f"ETA {format_duration(left * s['wall_per_train'])}")
        return " | ".join(p for p in parts if p)

    def handle(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "phase":
            # with its detail (a warm-up's micro-batch, a fit's probe), so that a live bar shows progress too
            self._state["phase"] = f"{event.get('phase', '')} {event.get('detail', '')}".strip()
            if not self.live and event.get("phase") not in ("train", "eval", "checkpoint"):
                self._print(f"{self.label}: {event.get('phase')} {event.get('detail', '')}".rstrip())
        elif kind == "metric":
            if event.get("kind") == "eval":
                self._state["val_loss"] = event.get("val_loss")
                train_s = event.get("train_s", 0.0)
                if not self.live and train_s - self._plain_eval_s >= self._plain_every_s:
                    self._plain_eval_s = train_s
                    self._print(
                        f"{self.label}: eval at {event.get('train_s', 0):.1f}s:"
                        f" val loss {event.get('val_loss', float('nan')):.4f}"
                    )
            else:
                for key in ("loss", "tokens_per_s", "train_s", "wall_per_train", "step"):
                    if event.get(key) is not None:
                        self._state[key] = event[key]
                train_s = self._state.get("train_s", 0.0)
                if not self.live and train_s - self._plain_last_s >= self._plain_every_s:
                    self._plain_last_s = train_s
                    self._print(f"{self.label}: {self._postfix()}")
        elif kind == "message":
            self._print(f"{self.label}: {event.get('text', '')}")
        bar = self._ensure_bar()
        if bar is not None:
            done = self._state.get("step", 0) if self.max_steps else round(self._state.get("train_s", 0.0), 1)
            bar.n = min(done, bar.total)
            bar.set_postfix_str(self._postfix(), refresh=True)

    def _print(self, line: str) -> None:
        if self._bar is not None:
            self._bar.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
