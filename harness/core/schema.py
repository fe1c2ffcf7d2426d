"""How the harness reads back what it (or a damaged disk, or a hand) wrote: every document has a spec built
from these few parts, and `check` walks a value against it. A value passes through unchanged or `Invalid`
names the first field that fails (`summary.tokens_per_s: -3 is below 0`), so a reader can skip the file
or the row with a warning that names both. Nothing here converts: a text is never read as a number."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


class Invalid(ValueError):
    """A value that does not match its spec; `where` is the path of the field within the document."""

    def __init__(self, where: str, why: str) -> None:
        super().__init__(f"{where}: {why}" if where else why)
        self.where, self.why = where, why


def _join(where: str, key: Any) -> str:
    return f"{where}[{key}]" if isinstance(key, int) else f"{where}.{key}" if where else str(key)


def _name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


@dataclass(frozen=True)
class Number:
    """A finite number (never a bool, never a text), within [low, high]; `above`: strictly above it."""

    low: float | None = None
    high: float | None = None
    above: float | None = None
    integer: bool = False
    optional: bool = True  # None ("not measured") passes

    def check(self, value: Any, where: str) -> Any:
        if value is None and self.optional:
            return value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise Invalid(where, f"{_name(value)} where a number belongs")
        if not math.isfinite(value):
            raise Invalid(where, f"{value} is not a finite number")
        if self.integer and not (isinstance(value, int) or value.is_integer()):
            raise Invalid(where, f"{value:g} is not a whole number")
        if self.low is not None and value < self.low:
            raise Invalid(where, f"{value:g} is below {self.low:g}")
        if self.above is not None and value <= self.above:
            raise Invalid(where, f"{value:g} is not above {self.above:g}")
        if self.high is not None and value > self.high:
            raise Invalid(where, f"{value:g} is above {self.high:g}")
        return value


@dataclass(frozen=True)
class Text:
    """A text; `choices`: one of these."""

    choices: tuple[str, ...] | None = None
    optional: bool = True

    def check(self, value: Any, where: str) -> Any:
        if value is None and self.optional:
            return value
        if not isinstance(value, str):
            raise Invalid(where, f"{_name(value)} where a text belongs")
        if self.choices is not None and value not in self.choices:
            raise Invalid(where, f"{value[:40]!r} is not one of {', '.join(self.choices)}")
        return value


@dataclass(frozen=True)
class Flag:
    optional: bool = True

    def check(self, value: Any, where: str) -> Any:
        if (value is None and self.optional) or isinstance(value, bool):
            return value
        raise Invalid(where, f"{_name(value)} where true or false belongs")


@dataclass(frozen=True)
class Items:
    """A list of values of one spec."""

    of: Any
    optional: bool = True

    def check(self, value: Any, where: str) -> Any:
        if value is None and self.optional:
            return value
        if not isinstance(value, list):
            raise Invalid(where, f"{_name(value)} where a list belongs")
        for i, item in enumerate(value):
            self.of.check(item, _join(where, i))
        return value


@dataclass(frozen=True)
class Named:
    """A mapping of any names to values of one spec (a figure per target loss, a timing per executor)."""

    of: Any
    optional: bool = True

    def check(self, value: Any, where: str) -> Any:
        if value is None and self.optional:
            return value
        if not isinstance(value, dict):
            raise Invalid(where, f"{_name(value)} where a mapping belongs")
        for key, item in value.items():
            self.of.check(item, _join(where, key))
        return value


@dataclass(frozen=True)
class Record:
    """A mapping with known fields (others pass: a newer writer may add some). A field must be there when
    `required` names it or its spec is not optional."""

    fields: dict[str, Any] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    optional: bool = True

    def check(self, value: Any, where: str) -> Any:
        if value is None and self.optional:
            return value
        if not isinstance(value, dict):
            raise Invalid(where, f"{_name(value)} where a record belongs")
        needed = [*self.required, *(k for k, spec in self.fields.items() if not spec.optional)]
        missing = [k for k in dict.fromkeys(needed) if k not in value]
        if missing:
            raise Invalid(where, f"no {', '.join(missing)}")
        for key, spec in self.fields.items():
            if key in value:
                spec.check(value[key], _join(where, key))
        return value


class Anything:
    """Kept as written (descriptive text, a library's settings): never read as a figure."""

    optional = True

    def check(self, value: Any, where: str) -> Any:
        return value


ANY = Anything()
COUNT = Number(low=0, integer=True)
POSITIVE = Number(above=0)
NON_NEGATIVE = Number(low=0)
NUMBER = Number()
TEXT = Text()


def check(spec: Any, value: Any, where: str = "") -> Any:
    """`value`, unchanged, if it matches `spec`; else `Invalid` naming the first field that does not."""
    return spec.check(value, where)


def problem(spec: Any, value: Any, where: str = "") -> str | None:
    """What is wrong with `value` (one line naming the field), or None."""
    try:
        spec.check(value, where)
    except Invalid as exc:
        return str(exc)
    return None
