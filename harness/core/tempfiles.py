"""Temporary files and folders carry the pid of the process writing them (`<name>.tmp<pid>`,
`.tmp-<name>-<pid>`). A process that is killed cannot remove its own; the next one to look sweeps those
whose writer is gone."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

_PID = re.compile(r"(?:\.tmp|-)(\d+)$")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def sweep_stale(folder: Path, marker: str) -> list[Path]:
    """Remove entries of `folder` whose name contains `marker` and ends with the pid of a dead process."""
    removed = []
    if not Path(folder).is_dir():
        return removed
    for entry in Path(folder).iterdir():
        match = _PID.search(entry.name)
        if (
            marker in entry.name
            and match
            and int(match.group(1)) != os.getpid()
            and not alive(int(match.group(1)))
        ):
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed
