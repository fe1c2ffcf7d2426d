"""The on-disk form of run checkpoints, readable without torch: a folder per checkpoint, sealed with a
manifest of SHA-256 checksums. The engine writes and restores them; the parent verifies them before it
starts a resume."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

CHECKPOINT_DIR = "checkpoints"  # inside a run folder
MANIFEST = "manifest.json"
STATE = "train_state.json"
PREFIX = "step"


class CorruptCheckpoint(ValueError):
    pass


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def checkpoints(root: Path) -> list[Path]:
    """Sealed checkpoints under `root`, newest first."""
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and p.name.startswith(PREFIX)]
    return sorted(found, key=lambda p: p.name, reverse=True)


def verify(path: Path, *, checksums: bool = True) -> None:
    """Raise CorruptCheckpoint naming the first file that is missing, truncated or (with checksums)
    altered. Without checksums it reads only the manifest and file sizes: cheap for huge checkpoints."""
    try:
        manifest = json.loads((path / MANIFEST).read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CorruptCheckpoint(f"{path.name}: no readable manifest ({exc})") from None
    if not isinstance(manifest, dict) or STATE not in manifest:
        raise CorruptCheckpoint(f"{path.name}: manifest is not a checkpoint manifest")
    for name, meta in manifest.items():
        file = path / name
        if not isinstance(meta, dict) or not file.is_file():
            raise CorruptCheckpoint(f"{path.name}: {name} is missing")
        if file.stat().st_size != meta.get("bytes"):
            raise CorruptCheckpoint(f"{path.name}: {name} is truncated or grown")
        if checksums and sha256(file) != meta.get("sha256"):
            raise CorruptCheckpoint(f"{path.name}: {name} fails its checksum")


def newest_intact(root: Path, *, checksums: bool = True) -> Path | None:
    """The newest checkpoint that verifies, or None."""
    for path in checkpoints(root):
        try:
            verify(path, checksums=checksums)
            return path
        except CorruptCheckpoint:
            continue
    return None
