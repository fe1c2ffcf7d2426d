"""The worker's side of the progress pipe (see harness.core.events)."""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any

from harness.core.events import EVENT_FD_ENV


class EventPipe:
    """Progress events to the parent; silent when there is no parent (in-process runs, tests)."""

    def __init__(self, fd: int | None = None) -> None:
        if fd is None and os.environ.get(EVENT_FD_ENV):
            fd = int(os.environ[EVENT_FD_ENV])
        self._pipe = os.fdopen(fd, "w", buffering=1, encoding="utf-8") if fd is not None else None

    def emit(self, event: str, **fields: Any) -> None:
        if self._pipe is None:
            return
        try:
            self._pipe.write(json.dumps({"event": event, **fields}) + "\n")
        except (BrokenPipeError, OSError, ValueError):
            self._pipe = None  # the parent went away: the worker's launcher watch stops the run

    def close(self) -> None:
        pipe, self._pipe = self._pipe, None
        if pipe is not None:
            with contextlib.suppress(OSError, ValueError):
                pipe.close()
