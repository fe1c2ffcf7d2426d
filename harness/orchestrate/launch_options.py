"""How a plan's runs are placed and launched, typed: which launcher, which GPUs or how many runs at once on
the CPU, and the Slurm job's settings. The launchers check these up front (see `Launcher.check`)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SlurmOptions:
    partition: str | None = None
    time: str | None = None  # Slurm's forms (HH:MM:SS, D-HH:MM:SS, minutes) or 4h; None: the run's allowance
    gres: str = "gpu:1"
    account: str | None = None
    container: str | None = None  # an image for pyxis (srun --container-image), or an Apptainer .sif file

    def given(self) -> list[str]:
        """The flags set to something other than their default (for refusing them elsewhere)."""
        default = SlurmOptions()
        names = {
            "partition": "--slurm-partition",
            "time": "--slurm-time",
            "gres": "--slurm-gres",
            "account": "--slurm-account",
            "container": "--container",
        }
        return [flag for key, flag in names.items() if getattr(self, key) != getattr(default, key)]


@dataclass(frozen=True)
class LaunchOptions:
    launcher: str = "local"
    gpus: str | None = None  # "all" or "0,1,3": one run per listed GPU at a time
    parallel: int | None = None  # runs at once on the CPU, each on its own share of the cores
    slurm: SlurmOptions = field(default_factory=SlurmOptions)
