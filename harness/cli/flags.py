"""Command-line flags generated from config dataclasses: one flag per settable field (`options.settable`),
its help made of the field's own declaration (help, type, range or choices, default). A flag's text is read
here, at the command line's edge, by the field's own declaration (`options.parse_value`), and checked once,
when the dataclass it builds is made. Adding a field to a config adds its flag; nothing here names one."""

from __future__ import annotations

import argparse
import typing
from dataclasses import MISSING, Field
from pathlib import Path
from typing import Any

from harness.core.errors import UserError
from harness.core.options import (
    CHOICES,
    METAVAR,
    NONE_WORD,
    SHOWN_DEFAULT,
    flag_of,
    has_default,
    hint,
    optional_of,
    parse_value,
    settable,
)
from harness.core.ranges import RANGE

_METAVARS = {int: "INT", float: "FLOAT", str: "TEXT", Path: "PATH"}


def dest(cls: type, f: Field) -> str:
    return f"{cls.__name__}.{f.name}"


def add_flags(p: argparse._ActionsContainer, cls: type, only: tuple[str, ...] | None = None) -> None:
    """A flag for each settable field of `cls` (`only`: these alone). Absent flags leave no value, so the
    dataclass's own default (or the preset's) applies."""
    for f in settable(cls, only):
        kind = hint(cls, f.name)
        inner = optional_of(kind) or kind
        common = {"dest": dest(cls, f), "default": argparse.SUPPRESS, "help": help_text(f, inner)}
        if inner is bool:
            plain = kind is bool and f.default is False
            p.add_argument(
                flag_of(f), action="store_true" if plain else argparse.BooleanOptionalAction, **common
            )
        elif typing.get_origin(inner) is tuple:
            p.add_argument(flag_of(f), action="append", metavar=_metavar(f, inner), **common)
        else:
            p.add_argument(flag_of(f), metavar=_metavar(f, inner), **common)


def given(args: argparse.Namespace, cls: type, only: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The values of the flags of `cls` given on this command line, by field name, each read by its field's
    declaration; UserError (one line, naming the flag) for a text its type does not take."""
    values: dict[str, Any] = {}
    for f in settable(cls, only):
        raw = getattr(args, dest(cls, f), argparse.SUPPRESS)
        if raw is argparse.SUPPRESS:
            continue
        if isinstance(raw, bool):
            values[f.name] = raw
            continue
        text = ",".join(raw) if isinstance(raw, list) else raw
        values[f.name] = parse_value(cls, f, text, f"{flag_of(f)} {text!r}")
        if values[f.name] == ():  # only a list flag reads as empty: given, it must name something
            raise UserError(
                f"{flag_of(f)} {text!r} names nothing: give at least one value, or leave the flag out"
            )
    return values


def _metavar(f: Field, kind: Any) -> str:
    if METAVAR in f.metadata:
        return f.metadata[METAVAR]
    if CHOICES in f.metadata:
        return "{" + ",".join(f.metadata[CHOICES]) + "}"
    if typing.get_origin(kind) is tuple:
        return _METAVARS.get(typing.get_args(kind)[0], "TEXT") + ",..."
    return _METAVARS.get(kind, "TEXT")


def _kind_text(f: Field, kind: Any) -> str:
    if METAVAR in f.metadata:
        return f.metadata[METAVAR].lower()
    if typing.get_origin(kind) is tuple:
        return f"comma-separated {typing.get_args(kind)[0].__name__}s"
    return "text" if kind is str else getattr(kind, "__name__", "text").lower()


def help_text(f: Field, kind: Any) -> str:
    """`peak learning rate (float in (0, 10]; default: the preset's)`, escaped for argparse."""
    parts = [_kind_text(f, kind)]
    if RANGE in f.metadata:
        parts[0] += f" in {f.metadata[RANGE].text()}"
    parts.append(f"default: {_default_text(f)}")
    return f"{f.metadata['help']} ({'; '.join(parts)})".replace("%", "%%")


def _default_text(f: Field) -> str:
    if SHOWN_DEFAULT in f.metadata:
        return f.metadata[SHOWN_DEFAULT]
    if not has_default(f):
        return "the preset's"
    value = f.default if f.default is not MISSING else f.default_factory()
    if value is None:
        return f.metadata.get(NONE_WORD, "none")
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, tuple):
        return ",".join(map(str, value)) or "none"
    return str(value)
