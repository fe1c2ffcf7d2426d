"""Units: durations as people write them ('30s', '2h', '1h30m') and as the harness prints them; the unit a
figure's key names (every key carries its unit)."""

from __future__ import annotations

import math
import re

from harness.core.errors import UserError

GIB = 2**30

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNIT_S = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """'30s', '10m', '2h', '24h', '1h30m' -> seconds."""
    cleaned = text.strip().lower()
    parts = _DURATION_PART.findall(cleaned)
    if not parts or "".join(n + u for n, u in parts) != cleaned:
        raise UserError(
            f"malformed budget {text!r}: use a number with a unit, e.g. 30s, 10m, 2h, 24h or 1h30m"
        )
    seconds = sum(float(n) * _UNIT_S[u] for n, u in parts)
    if seconds <= 0:
        raise UserError(f"budget {text!r} is zero: give a positive duration such as 30s")
    if not math.isfinite(seconds):
        raise UserError(f"budget {text!r} is not a finite duration: give one such as 24h")
    return seconds


def parse_budget(text: str) -> float:
    """A budget as a duration ('24h', '1h30m') or as a plain number of seconds ('3600', 'inf': the range
    check then refuses it)."""
    try:
        return float(text)
    except ValueError:
        return parse_duration(text)


def format_duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, sec = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{sec:02d}s" if hours else f"{minutes}m{sec:02d}s"


def format_count(n: float) -> str:
    """9.1B, 520M, 4.2K: a count as a sentence or an axis says it."""
    for scale, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= scale:
            return f"{n / scale:.3g}{suffix}"
    return f"{n:.3g}"


def format_bytes(n: float) -> str:
    """Bytes as GiB (MiB below one GiB)."""
    return f"{n / GIB:,.1f} GiB" if n >= GIB else f"{n / 2**20:,.1f} MiB"


def finite_number(value: object) -> float | None:
    """A figure read from a file as a number: an int or a float that is finite (never a bool, a text or
    NaN); None otherwise, so that nothing else can pass for a figure."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else None


# The unit a key ends with (every key carries its unit), longest first; counts are their own unit.
UNITS = (
    ("joules_per_token", "J/token"),
    ("flops_per_token", "FLOPs/token"),
    ("tokens_per_s", "tokens/s"),
    ("_tflops", "TFLOP/s"),
    ("_gib", "GiB"),
    ("_loss", "nats"),
    ("gap_to_floor", "nats"),
    ("_j", "J"),
    ("_s", "s"),
    ("steps", "steps"),
    ("tokens", "tokens"),
    ("params", "parameters"),
    ("micro_batch", "sequences"),
    ("epochs", "epochs"),
    ("compiles_in_training", "graphs"),
)


def unit_of(key: str) -> str:
    """The unit a figure's key names ("" for a share, shown as a percentage, or a plain number)."""
    return next((unit for suffix, unit in UNITS if key.endswith(suffix)), "")
