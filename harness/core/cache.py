"""The harness's cache folder (tokenized corpora, trained tokenizers, this machine's host-step timings):
HARNESS_CACHE_DIR, else ~/.cache/gpt-strategy-harness."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    return Path(os.environ.get("HARNESS_CACHE_DIR") or Path.home() / ".cache" / "gpt-strategy-harness")
