"""Result files of a run: result.json (versioned schema), metrics.jsonl, run.log. Written atomically,
so a partial run never looks complete; read back strictly, so a corrupt file is named, not trusted."""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
STATUSES = ("ok", "oom", "error", "interrupted")
RESULT_FILE = "result.json"
METRICS_FILE = "metrics.jsonl"
LOG_FILE = "run.log"
CONFIG_FILE = "config.json"


class CorruptResult(ValueError):
    """A result file that is not a harness result of a schema this version reads."""


@dataclass
class Summary:
    """Every figure carries its unit in its name. None means 'not measured here', never zero."""

    steps: int = 0
    tokens: int = 0
    params: int | None = None
    flops_per_token: int | None = None
    tokens_per_s: float | None = None  # training tokens / training-clock seconds
    steady_tokens_per_s: float | None = None  # median per-step throughput after warm-up
    mfu: float | None = None  # from the steady-state throughput
    peak_tflops: float | None = None
    peak_tflops_source: str | None = None
    train_s: float = 0.0
    budget_s: float | None = None
    setup_s: float | None = None
    fit_s: float | None = None
    warmup_s: float | None = None
    eval_s: float | None = None
    checkpoint_s: float | None = None
    wall_s: float | None = None
    data_wait_s: float | None = None
    compiles_in_training: int | None = None  # graphs torch.compile built inside the training loop
    data_tokens_per_s: float | None = None
    peak_allocated_gib: float | None = None
    peak_reserved_gib: float | None = None
    peak_nvml_used_gib: float | None = None
    peak_host_rss_gib: float | None = None
    pinned_host_gib: float | None = None
    optimizer_state_gib: float | None = None
    energy_j: float | None = None
    joules_per_token: float | None = None
    final_train_loss: float | None = None
    final_val_loss: float | None = None
    floor_loss: float | None = None
    gap_to_floor: float | None = None
    time_to_target_s: dict[str, float | None] = field(default_factory=dict)
    epochs: float | None = None


@dataclass
class RunResult:
    run_id: str
    status: str
    strategy: dict[str, Any]
    recipe: dict[str, Any]
    recipe_fingerprint: str
    settings: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)
    summary: Summary = field(default_factory=Summary)
    memory_facts: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    resumes: list[dict[str, Any]] = field(default_factory=list)
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        return _finite(asdict(self))


def _finite(value: Any) -> Any:
    """JSON has no NaN/inf: a non-finite figure is written as null (unknown), never as a number."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def write_atomic(path: Path, text: str) -> None:
    """Write via a temporary file in the same folder, fsync, rename: readers see old or new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; results and reports are meant to be read
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_json_atomic(path: Path, payload: Any) -> None:
    write_atomic(path, json.dumps(_finite(payload), indent=2, sort_keys=False, allow_nan=False) + "\n")


def write_result(run_dir: Path, result: RunResult) -> Path:
    if result.status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}, got {result.status!r}")
    path = run_dir / RESULT_FILE
    write_json_atomic(path, result.to_dict())
    return path


def parse_result(payload: Any, origin: str = "result") -> RunResult:
    if not isinstance(payload, dict):
        raise CorruptResult(f"{origin}: not a JSON object")
    version = payload.get("schema_version")
    if version != SCHEMA_VERSION:
        raise CorruptResult(f"{origin}: schema_version {version!r}, this harness reads {SCHEMA_VERSION}")
    known = {f.name for f in fields(RunResult)}
    missing = {"run_id", "status", "strategy", "recipe", "recipe_fingerprint"} - set(payload)
    if missing:
        raise CorruptResult(f"{origin}: missing keys {sorted(missing)}")
    if payload["status"] not in STATUSES:
        raise CorruptResult(f"{origin}: unknown status {payload['status']!r}")
    summary_keys = {f.name for f in fields(Summary)}
    summary = payload.get("summary") or {}
    if not isinstance(summary, dict) or set(summary) - summary_keys:
        raise CorruptResult(f"{origin}: summary has unknown keys {sorted(set(summary) - summary_keys)}")
    kwargs = {k: v for k, v in payload.items() if k in known}
    kwargs["summary"] = Summary(**summary)
    return RunResult(**kwargs)


def load_result(path: Path) -> RunResult:
    """Read one result.json; CorruptResult (naming the file) if it is unreadable or foreign."""
    try:
        payload = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptResult(f"{path}: unreadable ({exc.__class__.__name__}: {exc})") from None
    return parse_result(payload, str(path))


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """metrics.jsonl lines; a torn last line (the process died mid-write) is dropped."""
    rows = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError:
        return rows
    for line in lines:
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows
