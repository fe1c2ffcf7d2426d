"""How a plan's runs are placed and launched, typed: which launcher, which GPUs or how many runs at once on
the CPU, and the settings of launchers that have their own (each launcher's options class lives beside it,
e.g. `launchers/slurm_options.py`). The launchers check these up front (see `Launcher.check`)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from harness.core.options import INTERNAL_FIELD, flag_of, option


@dataclass(frozen=True)
class LaunchOptions:
    launcher: str = field(
        default="local",
        metadata=option(
            "local (this machine), submitit-local (submitit jobs run as local processes), "
            "slurm (one Slurm job per run)"
        ),
    )
    gpus: str | None = field(
        default=None, metadata=option("all, or GPU indices such as 0,1,3: one run per GPU at a time")
    )
    parallel: int | None = field(
        default=None, metadata=option("runs at once on the CPU, each on its own share of the cores")
    )
    # the settings given for launchers with options of their own (an instance of each one's class)
    settings: tuple[object, ...] = field(default=(), metadata=INTERNAL_FIELD)

    def settings_of(self, cls: type):
        """The settings of this options class that were given, else its defaults."""
        return next((s for s in self.settings if isinstance(s, cls)), cls())


def flags_given(settings: object) -> list[str]:
    """The flags of an options dataclass set to something other than their default."""
    default = type(settings)()
    return [flag_of(f) for f in fields(settings) if getattr(settings, f.name) != getattr(default, f.name)]
