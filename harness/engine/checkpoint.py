"""Run checkpoints: the strategy's model/optimizer/scaler state plus the harness's own state (step, data
position, training-clock seconds, RNG, evals so far). Each checkpoint is a folder written under a
temporary name, sealed with a manifest of SHA-256 checksums, then renamed: a torn or corrupt one is
detected and the previous one is used instead."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import torch

from harness.core.checkpoint_files import (
    MANIFEST,
    PREFIX,
    STATE,
    CorruptCheckpoint,
    checkpoints,
    newest_intact,
    sha256,
    verify,
)
from harness.core.errors import UserError
from harness.core.results import write_json_atomic
from harness.core.tempfiles import sweep_stale
from harness.engine.state import TrainState

RNG = "rng.pt"


def _fsync_tree(root: Path) -> None:
    for path in sorted(root.rglob("*")):
        if path.is_file():
            with open(path, "rb") as f:
                os.fsync(f.fileno())


class Checkpointer:
    def __init__(self, root: Path, keep: int = 2) -> None:
        self.root = Path(root)
        self.keep = max(1, keep)
        sweep_stale(self.root, ".tmp-")  # half-written by a session that was killed mid-save

    def checkpoints(self) -> list[Path]:
        """Sealed checkpoints, newest first."""
        return checkpoints(self.root)

    def save(self, strategy, state: TrainState) -> Path:
        final = self.root / f"{PREFIX}{state.step:010d}"
        tmp = self.root / f".tmp-{final.name}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            strategy.save(tmp)
            rng = {"torch": torch.get_rng_state()}
            if torch.cuda.is_available():
                rng["cuda"] = torch.cuda.get_rng_state_all()
            torch.save(rng, tmp / RNG)
            write_json_atomic(tmp / STATE, asdict(state))
            files = sorted(p for p in tmp.rglob("*") if p.is_file())
            manifest = {
                str(p.relative_to(tmp)): {"sha256": sha256(p), "bytes": p.stat().st_size} for p in files
            }
            write_json_atomic(tmp / MANIFEST, manifest)
            _fsync_tree(tmp)
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        for old in self.checkpoints()[self.keep :]:
            shutil.rmtree(old, ignore_errors=True)
        return final

    verify = staticmethod(verify)

    def any_intact(self) -> bool:
        """Whether some checkpoint has its manifest and every file at its recorded size."""
        return newest_intact(self.root, checksums=False) is not None

    def load_latest(self, strategy, warn: Callable[[str], None]) -> tuple[TrainState, Path]:
        """Restore the newest checkpoint that verifies; warn (one line each) about those skipped."""
        candidates = self.checkpoints()
        if not candidates:
            raise UserError(f"nothing to resume: no checkpoint under {self.root}")
        for path in candidates:
            try:
                self.verify(path)
                state = TrainState.from_dict(json.loads((path / STATE).read_text()))
                strategy.load(path)
            except CorruptCheckpoint as exc:
                warn(f"checkpoint {exc}; trying the previous one")
                continue
            rng = torch.load(path / RNG, weights_only=False)
            torch.set_rng_state(rng["torch"])
            if "cuda" in rng and torch.cuda.is_available():
                with contextlib.suppress(RuntimeError):
                    torch.cuda.set_rng_state_all(rng["cuda"])
            return state, path
        raise UserError(
            f"every checkpoint under {self.root} is corrupt; start the run again without --resume"
        )
