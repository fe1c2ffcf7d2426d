"""What a config field says of itself, declared beside it (`field(metadata=option(...))`): one line of help,
its valid values (a range or a list of choices), the flag that sets it where that is not its name, and how
its text is read. The command line is generated from these fields, `--set key=value` reads the same ones,
and the config checks them when it is built (`check_fields`): one declaration, one validation."""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from dataclasses import MISSING, Field, fields
from pathlib import Path
from typing import Any

from harness.core.errors import UserError
from harness.core.ranges import RANGE, check_ranges

HELP, FLAG, PARSE, CHOICES, SHOWN_DEFAULT, NONE_WORD, INTERNAL, METAVAR = (
    "help",
    "flag",
    "parse",
    "choices",
    "shown_default",
    "none_word",
    "internal",
    "metavar",
)
NONE_WORDS = ("none", "null", "")


def option(
    help: str,
    range: dict | None = None,
    *,
    flag: str | None = None,
    choices: tuple[str, ...] | None = None,
    parse: Callable[[str], Any] | None = None,
    shown_default: str | None = None,
    none_word: str | None = None,
    metavar: str | None = None,
) -> dict:
    """Field metadata. `range`: `within(...)`; `flag`: when not `--<name-with-dashes>`; `parse`: reads the
    field's text when its type's own reading will not do (a budget of '24h'); `shown_default`: the default as
    `--help` shows it; `none_word`: the word that means None (micro_batch: auto); `metavar`: what
    `--help` calls its value, where its type does not say (DURATION)."""
    meta: dict[str, Any] = {HELP: help, **(range or {})}
    for key, value in (
        (FLAG, flag),
        (CHOICES, choices),
        (PARSE, parse),
        (SHOWN_DEFAULT, shown_default),
        (NONE_WORD, none_word),
        (METAVAR, metavar),
    ):
        if value is not None:
            meta[key] = value
    return meta


INTERNAL_FIELD = {INTERNAL: True}  # set by the harness, never by a user (a run's id, its command line)


def settable(cls: type, only: tuple[str, ...] | None = None) -> list[Field]:
    """The fields of `cls` a user may set, in declaration order (`only`: these names alone)."""
    return [
        f
        for f in fields(cls)
        if not f.metadata.get(INTERNAL) and HELP in f.metadata and (only is None or f.name in only)
    ]


def flag_of(f: Field) -> str:
    return f.metadata.get(FLAG, "--" + f.name.replace("_", "-"))


def hint(cls: type, name: str) -> Any:
    return typing.get_type_hints(cls)[name]


def optional_of(kind: Any) -> Any | None:
    """T for `T | None`, else None."""
    if typing.get_origin(kind) in (typing.Union, types.UnionType) and type(None) in typing.get_args(kind):
        (inner,) = [a for a in typing.get_args(kind) if a is not type(None)]
        return inner
    return None


def has_default(f: Field) -> bool:
    return f.default is not MISSING or f.default_factory is not MISSING


def check_fields(obj: Any) -> None:
    """UserError (one line) for the first field of `obj` out of its range or not one of its choices."""
    check_ranges(obj)
    for f in fields(obj):
        choices = f.metadata.get(CHOICES)
        value = getattr(obj, f.name)
        if choices is not None and value not in choices:
            raise UserError(f"{f.name} must be one of {', '.join(choices)}, got {value!r}")


def parse_value(cls: type, f: Field, raw: str, label: str) -> Any:
    """The text of field `f` of `cls` as the value its type says; `label` names where the text came from
    (`override lr='fast'`, `--micro-batch 'lots'`) in the one-line error. Ranges and choices are the
    config's to check when it is built."""
    kind = hint(cls, f.name)
    inner = optional_of(kind)
    if inner is not None:
        if raw.strip().lower() in (*NONE_WORDS, f.metadata.get(NONE_WORD, "none")):
            return None
        kind = inner
    if PARSE in f.metadata:
        return f.metadata[PARSE](raw)
    if typing.get_origin(kind) is tuple:
        (item,) = typing.get_args(kind)[:1]
        return read_list(raw, lambda s: _read(s, item, label, f), label)
    return _read(raw, kind, label, f)


def read_list(raw: str, read: Callable[[str], Any], label: str) -> tuple:
    """'a, b' -> (read('a'), read('b')); '' -> (). Every command reads a list flag this way: an empty entry
    ('24,,80', '24,') or a value named twice ('24,24') is refused, naming the flag."""
    parts = [s.strip() for s in raw.split(",")]
    if not any(parts):
        return ()
    if not all(parts):
        raise UserError(f"{label} has an empty entry: write values separated by single commas")
    values = tuple(read(s) for s in parts)
    twice = [parts[i] for i, v in enumerate(values) if v in values[:i]]
    if twice:
        raise UserError(f"{label} names {', '.join(dict.fromkeys(twice))} twice: name each once")
    return values


def _read(raw: str, kind: Any, label: str, f: Field) -> Any:
    try:
        if kind is bool:
            return _boolean(raw)
        if kind is int:
            return _integer(raw)
        if kind is float:
            return float(raw)
        if kind in (str, Path):
            return kind(raw)
    except ValueError:
        raise UserError(f"{label}: expected {type_text(kind, f)}") from None
    raise UserError(f"{label}: unsupported type {kind}")


def type_text(kind: Any, f: Field) -> str:
    """How an error names what the field takes: `int (a positive integer, or auto)`."""
    name = getattr(kind, "__name__", str(kind))
    rule = f.metadata.get(RANGE)
    if kind is int and rule is not None and rule.lo is not None and rule.lo >= 1:
        name += " (a positive integer" + (
            f", or {f.metadata[NONE_WORD]})" if NONE_WORD in f.metadata else ")"
        )
    return name


def _boolean(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


def _integer(raw: str) -> int:
    """Exact for any integer written out (a seed of 2**63 - 1 must not round through a float); `1e6` is
    accepted as the whole number it names."""
    try:
        return int(raw.strip())
    except ValueError:
        value = float(raw)
        if not value.is_integer():
            raise ValueError(raw) from None
        return int(value)
