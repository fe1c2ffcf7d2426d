"""Checks of where results will go, before anything starts: a report that cannot be written must not be
found out after a day of runs. The image runs as uid 1000 with a mounted reports folder, which makes an
unwritable output the likeliest real-world failure."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from harness.core.errors import UserError


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


def check_file(path: Path, flag: str) -> None:
    """`path` can be written as a file (its folder exists or can be made, and is writable)."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{flag} {path} is a folder, not a file: give a file name such as report.html")
    check_folder(path.parent, flag)


def check_outputs(runs_dir: Path, report: Path | None, *extra: Path) -> None:
    check_folder(runs_dir, "--runs-dir")
    if report is not None:
        check_file(report, "--report")
    for path in extra:
        check_folder(path, "--out")
