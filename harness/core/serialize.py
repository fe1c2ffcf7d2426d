"""Config dataclasses to and from plain JSON data, strictly; fingerprints of JSON payloads."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import typing
from dataclasses import fields
from typing import Any


def to_dict(obj: Any) -> dict[str, Any]:
    return dataclasses.asdict(obj)


def _from_value(kind: Any, value: Any) -> Any:
    if dataclasses.is_dataclass(kind):
        return from_dict(kind, value)
    if typing.get_origin(kind) is tuple:
        return tuple(value)
    return value


def from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Rebuild a (nested) config dataclass, rejecting unknown or missing keys."""
    if not isinstance(data, dict):
        raise ValueError(f"{cls.__name__}: expected an object, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown keys {sorted(unknown)}")
    return cls(**{k: _from_value(hints[k], v) for k, v in data.items()})


def fingerprint(payload: dict[str, Any]) -> str:
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
