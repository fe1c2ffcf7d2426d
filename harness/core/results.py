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
from typing import Any, ClassVar

from harness.core.errors import UserError
from harness.core.recipe import RunConfig
from harness.core.serialize import from_dict

SCHEMA_VERSION = 1
STATUSES = ("ok", "oom", "error", "interrupted")
RESULT_FILE = "result.json"
METRICS_FILE = "metrics.jsonl"
LOG_FILE = "run.log"
CONFIG_FILE = "config.json"
RESUME_FAILED_FILE = (
    "resume_failed.json"  # a resume that failed before restoring; result.json stays as it was
)


class CorruptResult(ValueError):
    """A result file that is not a harness result of a schema this version reads."""


class Summary(dict):
    """A run's figures by metric key (every key carries its unit: `tokens_per_s`, `peak_reserved_gib`).
    None, or an absent key, means 'not measured here', never zero. The keys and how each is computed are
    the metric registry's (`harness.metrics.definitions`); this layer only knows the shape of a figure:
    a finite number, None, or a mapping of names to those (e.g. time to each target loss)."""

    BASE: ClassVar[dict[str, Any]] = {"steps": 0, "tokens": 0, "train_s": 0.0}  # every run has these

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for key, value in self.BASE.items():
            self.setdefault(key, value)

    def __getattr__(self, key: str) -> Any:
        if key.startswith("__"):
            raise AttributeError(key)
        return self.get(key)

    def __setattr__(self, key: str, value: Any) -> None:
        self[key] = value

    def __getstate__(self) -> dict:
        return dict(self)

    def __setstate__(self, state: dict) -> None:
        self.update(state)


@dataclass
class RunResult:
    run_id: str
    status: str
    strategy: dict[str, Any]
    recipe: dict[str, Any]
    recipe_fingerprint: str
    settings: dict[str, Any] = field(default_factory=dict)
    # The run configuration as given: every field of RunConfig but its recipe (which `recipe` holds, resolved)
    run_config: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)
    summary: Summary = field(default_factory=Summary)
    memory_facts: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    resumes: list[dict[str, Any]] = field(default_factory=list)
    schema_version: int = SCHEMA_VERSION
    # Figures a reader dropped as non-finite (read-side only, never written).
    dropped_figures: list[str] = field(default_factory=list, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        payload = asdict(self)
        payload.pop("dropped_figures")
        payload["summary"] = dict(self.summary)
        return _finite(payload)


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


def write_result(run_dir: Path, result: RunResult, name: str = RESULT_FILE) -> Path:
    if result.status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}, got {result.status!r}")
    path = run_dir / name
    write_json_atomic(path, result.to_dict())
    return path


_TYPES: dict[str, tuple[type, ...]] = {
    "run_id": (str,),
    "status": (str,),
    "strategy": (dict,),
    "recipe": (dict,),
    "recipe_fingerprint": (str,),
    "settings": (dict,),
    "run_config": (dict,),
    "data": (dict,),
    "environment": (dict,),
    "summary": (dict,),
    "memory_facts": (dict,),
    "error": (str, type(None)),
    "started_at": (str, type(None)),
    "finished_at": (str, type(None)),
    "resumes": (list,),
    "schema_version": (int,),
}
READS_VERSIONS = (SCHEMA_VERSION,)


def _figure(value: Any, where: str, dropped: list[str]) -> Any:
    """A summary figure as this version reads it: a finite number, a short text (e.g. which peak table
    entry was used) or None; a mapping or a list of those. A non-finite number is dropped (None) and named;
    anything else is a corrupt file. Whether a figure has the kind its metric declares is the readers'
    check."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | float):
        if math.isfinite(value):
            return value
        dropped.append(where)
        return None
    if isinstance(value, dict):
        return {str(k): _figure(v, f"{where}.{k}", dropped) for k, v in value.items()}
    if isinstance(value, list):
        return [_figure(v, f"{where}[{i}]", dropped) for i, v in enumerate(value)]
    raise CorruptResult(f"{where} is {type(value).__name__}, not a number")


def parse_result(payload: Any, origin: str = "result") -> RunResult:
    """Validate a result's structure and types; CorruptResult names the first problem. Non-finite figures
    become None and are listed in `result.dropped_figures` (the report says which)."""
    if not isinstance(payload, dict):
        raise CorruptResult(f"{origin}: not a JSON object")
    version = payload.get("schema_version")
    if version not in READS_VERSIONS:
        raise CorruptResult(f"{origin}: schema_version {version!r}, this harness reads {SCHEMA_VERSION}")
    missing = {"run_id", "status", "strategy", "recipe", "recipe_fingerprint"} - set(payload)
    if missing:
        raise CorruptResult(f"{origin}: missing keys {sorted(missing)}")
    for key, types in _TYPES.items():
        if (key in payload and not isinstance(payload[key], types)) or isinstance(payload.get(key), bool):
            raise CorruptResult(f"{origin}: {key} is {type(payload[key]).__name__}, not {types[0].__name__}")
    if payload["status"] not in STATUSES:
        raise CorruptResult(f"{origin}: unknown status {payload['status']!r}")
    if payload.get("summary") and "steps" not in payload["summary"]:
        raise CorruptResult(f"{origin}: its summary is not a harness summary (it has no steps)")
    dropped: list[str] = []
    try:
        summary = Summary(
            {k: _figure(v, f"summary.{k}", dropped) for k, v in payload.get("summary", {}).items()}
        )
    except CorruptResult as exc:
        raise CorruptResult(f"{origin}: {exc}") from None
    known = {f.name for f in fields(RunResult)} - {"dropped_figures"}
    kwargs = {k: v for k, v in payload.items() if k in known}
    kwargs["summary"] = summary
    return RunResult(**kwargs, dropped_figures=dropped)


# What reading a JSON file that another (or a broken) process wrote can raise: unreadable, not UTF-8, not
# JSON, a number past Python's integer-digit limit (ValueError), or nesting past the recursion limit.
JSON_READ_ERRORS = (OSError, UnicodeDecodeError, ValueError, RecursionError)


def read_json_object(path: Path) -> dict[str, Any] | None:
    """A JSON file that holds an object; None for anything else, whatever is wrong with it."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except JSON_READ_ERRORS:
        return None
    return data if isinstance(data, dict) else None


def load_result(path: Path) -> RunResult:
    """Read one result.json; CorruptResult (naming the file) if it is unreadable or foreign."""
    try:
        payload = json.loads(Path(path).read_text(encoding="utf-8"))
    except JSON_READ_ERRORS as exc:
        raise CorruptResult(f"{path}: unreadable ({exc.__class__.__name__}: {exc})") from None
    return parse_result(payload, str(path))


def read_run_config(run_dir: Path) -> RunConfig:
    """A run folder's config.json; UserError (one line) when it is missing or corrupt."""
    path = Path(run_dir) / CONFIG_FILE
    try:
        return from_dict(RunConfig, json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise UserError(f"{path} is missing: is {run_dir} a run folder?") from None
    except (*JSON_READ_ERRORS, TypeError) as exc:
        raise UserError(f"{path} is corrupt ({type(exc).__name__}); start a new run instead") from None


def document_head(kind: str, schema_version: int, command: tuple[str, ...], complete: bool) -> dict[str, Any]:
    """What every document a command writes beside the runs (capacity.json, answer.json) opens with."""
    from datetime import UTC, datetime

    return {
        "kind": kind,
        "schema_version": schema_version,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": list(command),
        "complete": complete,  # False while runs go on (or when the command was killed meanwhile)
    }


def read_document(path: Path, kind: str) -> dict[str, Any]:
    """A document of this kind (written by `harness <kind>`); one line naming the file otherwise."""
    try:
        document = json.loads(Path(path).read_text())
    except JSON_READ_ERRORS as exc:
        raise UserError(f"{path} is not a readable {kind} document: {exc}") from None
    if not isinstance(document, dict) or document.get("kind") != kind:
        raise UserError(f"{path} is not a {kind} document (written by `harness {kind}`)")
    return document
