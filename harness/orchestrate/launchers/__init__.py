"""Launchers by name (`--launcher`). Adding one is a `Launcher` subclass in this folder and one line here."""

from __future__ import annotations

from harness.core.errors import UserError
from harness.orchestrate.launchers.base import Launcher
from harness.orchestrate.launchers.local import LocalLauncher

LAUNCHERS: dict[str, type[Launcher]] = {
    "local": LocalLauncher,
}


def get_launcher(name: str) -> Launcher:
    if name not in LAUNCHERS:
        raise UserError(f"unknown launcher {name!r}: choose from {', '.join(LAUNCHERS)}")
    return LAUNCHERS[name]()
