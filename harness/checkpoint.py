"""Run checkpoints: the strategy's model/optimizer/scaler state plus the harness's own state (step, data
position, training-clock seconds, RNG, evals so far). Each checkpoint is a folder written under a
temporary name, sealed with a manifest of SHA-256 checksums, then renamed: a torn or corrupt one is
detected and the previous one is used instead."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch

from harness.errors import UserError
from harness.results import write_json_atomic

CHECKPOINT_DIR = "checkpoints"  # inside a run folder
MANIFEST = "manifest.json"
STATE = "train_state.json"
RNG = "rng.pt"
PREFIX = "step"


@dataclass
class TrainState:
    """The harness's side of a resumable run. The data position is `step` (one global batch per step)."""

    step: int = 0
    tokens: int = 0
    train_s: float = 0.0
    next_eval_s: float = 0.0
    last_loss: float | None = None
    evals: list[dict[str, Any]] = field(default_factory=list)
    excluded_s: dict[str, float] = field(default_factory=dict)  # eval, checkpoint, warmup, setup, fit
    wall_s: float = 0.0  # wall seconds of earlier sessions, up to their last checkpoint
    metrics_rows: int = 0  # metrics.jsonl lines that belong to the run up to this checkpoint
    resumes: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainState:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


class CorruptCheckpoint(ValueError):
    pass


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_tree(root: Path) -> None:
    for path in sorted(root.rglob("*")):
        if path.is_file():
            with open(path, "rb") as f:
                os.fsync(f.fileno())


class Checkpointer:
    def __init__(self, root: Path, keep: int = 2) -> None:
        self.root = Path(root)
        self.keep = max(1, keep)

    def checkpoints(self) -> list[Path]:
        """Sealed checkpoints, newest first."""
        if not self.root.is_dir():
            return []
        found = [p for p in self.root.iterdir() if p.is_dir() and p.name.startswith(PREFIX)]
        return sorted(found, key=lambda p: p.name, reverse=True)

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
                str(p.relative_to(tmp)): {"sha256": _sha256(p), "bytes": p.stat().st_size} for p in files
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

    @staticmethod
    def verify(path: Path, *, checksums: bool = True) -> None:
        """Raise CorruptCheckpoint naming the first file that is missing, truncated or (with checksums)
        altered. Without checksums it reads only the manifest and file sizes: cheap for huge checkpoints."""
        try:
            manifest = json.loads((path / MANIFEST).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise CorruptCheckpoint(f"{path.name}: no readable manifest ({exc})") from None
        if not isinstance(manifest, dict) or STATE not in manifest:
            raise CorruptCheckpoint(f"{path.name}: manifest is not a checkpoint manifest")
        for name, meta in manifest.items():
            file = path / name
            if not file.is_file():
                raise CorruptCheckpoint(f"{path.name}: {name} is missing")
            if file.stat().st_size != meta.get("bytes"):
                raise CorruptCheckpoint(f"{path.name}: {name} is truncated or grown")
            if checksums and _sha256(file) != meta.get("sha256"):
                raise CorruptCheckpoint(f"{path.name}: {name} fails its checksum")

    def any_intact(self) -> bool:
        """Whether some checkpoint has its manifest and every file at its recorded size."""
        for path in self.checkpoints():
            try:
                self.verify(path, checksums=False)
                return True
            except CorruptCheckpoint:
                continue
        return False

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
