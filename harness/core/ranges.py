"""Valid ranges, declared next to each config field (`field(metadata=within(...))`) and checked in one place
when a config is built: in the parent, before any run starts."""

from __future__ import annotations

import math
import types
import typing
from dataclasses import dataclass, fields
from typing import Any

from harness.core.errors import UserError

RANGE = "range"


@dataclass(frozen=True)
class Range:
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False  # lo itself excluded
    hi_open: bool = False

    def text(self) -> str:
        lo = "-inf" if self.lo is None else _shown(self.lo)
        hi = "inf" if self.hi is None else _shown(self.hi)
        return f"{'(' if self.lo_open else '['}{lo}, {hi}{')' if self.hi_open else ']'}"

    def holds(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.lo is not None and (value < self.lo or (self.lo_open and value == self.lo)):
            return False
        return not (self.hi is not None and (value > self.hi or (self.hi_open and value == self.hi)))


def _shown(x: float) -> str:
    """A bound as people read it: 2^40 rather than 1099511627776, 2^63-1 for the largest seed."""
    if float(x).is_integer():
        n = int(x)
        for offset, text in ((0, ""), (1, "-1")):
            k = (n + offset).bit_length() - 1
            if n >= 1 << 20 and n + offset == 1 << k:
                return f"2^{k}{text}"
        return str(n)
    return f"{x:g}"


def within(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False, hi_open: bool = False):
    """Field metadata: the field's values (each element, for a tuple) must be finite and in this range."""
    return {RANGE: Range(lo, hi, lo_open, hi_open)}


def _numbers(value: Any) -> list:
    return list(value) if isinstance(value, tuple) else [value]


def check_ranges(obj: Any) -> None:
    """UserError (one line) for the first field of `obj` whose value is not a number in its range. None is
    allowed where the field's type allows it."""
    hints = typing.get_type_hints(type(obj))
    for f in fields(obj):
        rule = f.metadata.get(RANGE)
        value = getattr(obj, f.name)
        if rule is None or (value is None and _optional(hints[f.name])):
            continue
        for item in _numbers(value):
            if isinstance(item, bool) or not isinstance(item, int | float) or not rule.holds(item):
                shown = item if isinstance(item, int | float) and not isinstance(item, bool) else repr(item)
                raise UserError(
                    f"{f.name}={shown} is out of range: {f.name} must be a number in {rule.text()}"
                )


def _optional(kind: Any) -> bool:
    return typing.get_origin(kind) in (typing.Union, types.UnionType) and type(None) in typing.get_args(kind)
