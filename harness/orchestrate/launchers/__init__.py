"""Launchers by name (`--launcher`). Adding one is a `Launcher` subclass in this folder and one line here;
a launcher's module loads only when it is chosen, so its libraries do too (submitit for the submitit
launchers)."""

from __future__ import annotations

import importlib

from harness.core.errors import UserError
from harness.orchestrate.launch_options import LaunchOptions
from harness.orchestrate.launchers.base import Launcher

# name -> "module:class" under this package, imported when chosen
LAUNCHERS: dict[str, str] = {
    "local": "local:LocalLauncher",
    "submitit-local": "submitit_local:SubmititLocalLauncher",
    "slurm": "slurm:SlurmLauncher",
}


# launcher name -> "module:class" of its own settings (light modules: the command line offers their flags
# without importing the launchers, or submitit)
LAUNCHER_OPTIONS: dict[str, str] = {"slurm": "slurm_options:SlurmOptions"}


def option_classes() -> dict[str, type]:
    """Each launcher's own options class, by launcher name."""
    found = {}
    for name, where in LAUNCHER_OPTIONS.items():
        module, cls = where.split(":")
        found[name] = getattr(importlib.import_module(f"{__name__}.{module}"), cls)
    return found


def launcher_class(name: str) -> type[Launcher]:
    if name not in LAUNCHERS:
        raise UserError(f"unknown launcher {name!r}: choose from {', '.join(LAUNCHERS)}")
    module, cls = LAUNCHERS[name].split(":")
    return getattr(importlib.import_module(f"{__name__}.{module}"), cls)


def get_launcher(options: LaunchOptions | str = "local") -> Launcher:
    if isinstance(options, str):
        options = LaunchOptions(launcher=options)
    return launcher_class(options.launcher)(options)
