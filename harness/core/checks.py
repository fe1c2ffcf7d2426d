"""A doctor check: what `harness env` reports for one thing a plug-in needs (a library that loads, an op
that builds). Every plug-in states its own checks; the doctor only runs and prints them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
