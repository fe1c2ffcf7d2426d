"""Plug-ins outside the project: HARNESS_PLUGINS names importable modules (comma-separated) that register
strategies, data sources, metrics, charts or sinks through the registries, as the built-in ones do. The
parent and every run's child process load them, so a plug-in is seen end to end."""

from __future__ import annotations

import importlib
import os

from harness.core.errors import UserError

PLUGINS_ENV = "HARNESS_PLUGINS"
_loaded: set[str] = set()


def load_plugins() -> list[str]:
    """Import the modules HARNESS_PLUGINS names (once each); UserError, one line, if one cannot load."""
    names = [n.strip() for n in os.environ.get(PLUGINS_ENV, "").split(",") if n.strip()]
    for name in names:
        if name in _loaded:
            continue
        try:
            importlib.import_module(name)
        except Exception as exc:
            raise UserError(
                f"{PLUGINS_ENV}: cannot load plug-in {name!r} ({type(exc).__name__}: {exc})"
            ) from None
        _loaded.add(name)
    return names
