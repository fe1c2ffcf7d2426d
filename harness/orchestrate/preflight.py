"""Checks of where results will go, before anything starts: a report that cannot be written must not be
found out after a day of runs. The image runs as uid 1000 with a mounted reports folder, which makes an
unwritable output the likeliest real-world failure."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from harness.core.errors import UserError
from harness.core.recipe import PRECISIONS, RunConfig
from harness.core.units import format_bytes


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _fix(flag: str) -> str:
    return "set HARNESS_CACHE_DIR to a writable folder" if flag == CACHE else f"pass another {flag}"


CACHE = "the corpus cache"


def check_folder(path: Path, flag: str) -> None:
    """`path` is, or can be created as, a folder this process may write in (flag: what the user set)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{flag} {path} is a file, not a folder: {_fix(flag)}")
    base = _nearest_existing(path.absolute())
    if not base.is_dir():
        raise UserError(f"{flag} {path}: {base} is a file, not a folder: {_fix(flag)}")
    try:
        with tempfile.TemporaryFile(dir=base):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UserError(f"{flag} {path} cannot be written ({reason} in {base}): {_fix(flag)}") from None
    if not os.access(base, os.W_OK | os.X_OK):
        raise UserError(f"{flag} {path} cannot be written (no permission in {base}): {_fix(flag)}")


def check_file(path: Path, flag: str, example: str = "report.html") -> None:
    """`path` can be written as a file (its folder exists or can be made, and is writable)."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{flag} {path} is a folder, not a file: give a file name such as {example}")
    if path.exists() and not path.is_file():  # a device or a pipe: writing would replace it with a file
        raise UserError(f"{flag} {path} is not a regular file: give a file name such as {example}")
    check_folder(path.parent, flag)


def check_document(out: Path, kind: str) -> None:
    """A command's document (`<kind>.json`) and its page beside it (`.html`) can be written, as two files."""
    if out.with_suffix(".html") == out:
        raise UserError(f"--out {out}: the {kind} is a .json document (its page goes beside it as .html)")
    check_file(out, "--out", f"{kind}.json")
    check_file(out.with_suffix(".html"), "--out (its page)", f"{kind}.json")


def check_outputs(runs_dir: Path, report: Path | None, *extra: Path) -> None:
    check_folder(runs_dir, "--runs-dir")
    if report is not None:
        check_file(report, "--report")
    for path in extra:
        check_folder(path, "--out")


# What a checkpoint holds (the strategy's model and optimizer, strategies/base.py `save`): these kinds of
# its state footprint, not the gradients or buffers that live only in memory.
CHECKPOINT_KINDS = ("weights", "master_weights", "optimizer_state")
CHECKPOINT_FILES_BYTES = 2**20  # a checkpoint's own files (RNG state, the loop's state, manifest, headers)
RUN_FILES_BYTES = 64 * 2**20  # a run's log, metrics and result: well under this


def checkpoint_bytes(cfg: RunConfig) -> float:
    """The bytes of one checkpoint of this run, from its strategy's declared state footprint; at the
    precision that needs the most where the precision is left to the device ("auto")."""
    import strategies
    from harness.capacity.memory_model import param_shapes

    executor = strategies.resolve(cfg.strategy).executor
    shapes = param_shapes(cfg.recipe.model)
    asked = cfg.recipe.precision
    sizes = []
    for precision in [asked] if asked != "auto" else [p for p in PRECISIONS if p != "auto"]:
        try:
            kinds = executor.state_footprint(shapes, precision).by_kind()
        except (UserError, ValueError, KeyError):  # a precision this executor does not run
            continue
        sizes.append(sum(kinds[kind].total for kind in CHECKPOINT_KINDS))
    return max(sizes, default=0.0) + CHECKPOINT_FILES_BYTES


def check_room(configs: list[RunConfig], runs_dir: Path, free_bytes: int | None = None) -> None:
    """Refuse, before anything starts, a plan whose runs would fill the runs folder's file system: each
    run keeps `keep_checkpoints` checkpoints, and one more is written before the oldest is removed."""
    sizes = [checkpoint_bytes(cfg) for cfg in configs]
    need = sum(
        size * cfg.keep_checkpoints + RUN_FILES_BYTES for size, cfg in zip(sizes, configs, strict=True)
    )
    need += max(sizes, default=0.0)
    if free_bytes is None:
        free_bytes = shutil.disk_usage(_nearest_existing(Path(runs_dir).absolute())).free
    if need <= free_bytes:
        return
    runs = f"{len(configs)} runs" if len(configs) > 1 else "the run"
    kept = configs[0].keep_checkpoints
    raise UserError(
        f"--runs-dir {runs_dir} has {format_bytes(free_bytes)} free, but {runs} will write up to "
        f"{format_bytes(need)} (checkpoints of {format_bytes(max(sizes))} each, {kept} kept per run): "
        "free some space there, or pass another --runs-dir"
    )
