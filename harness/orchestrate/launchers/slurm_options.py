"""The Slurm launcher's own settings, each with its command-line flag and help (the CLI is built from these
fields); light to import, so that the command line can offer them without loading submitit."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from harness.core.options import option


def _flag(name: str, help: str) -> dict:
    return option(help, flag=name)


@dataclass(frozen=True)
class SlurmOptions:
    """One Slurm job per run; these go into each job's sbatch script."""

    launcher: ClassVar[str] = "slurm"  # whose settings these are
    label: ClassVar[str] = "Slurm"  # how a refusal names them

    # the partition the jobs go to
    partition: str | None = field(
        default=None, metadata=_flag("--slurm-partition", "the partition the jobs go to")
    )
    # each job's limit, in Slurm's forms (HH:MM:SS, D-HH:MM:SS, minutes) or 4h; None: the run's allowance
    time: str | None = field(
        default=None,
        metadata=_flag(
            "--slurm-time",
            "each job's time limit, e.g. 4:00:00 (a longer run is requeued and resumes); "
            "default: the run's budget plus its setup allowance",
        ),
    )
    # generic resources per job
    gres: str = field(
        default="gpu:1", metadata=_flag("--slurm-gres", "generic resources per job (default gpu:1)")
    )
    # the account the jobs are charged to
    account: str | None = field(
        default=None, metadata=_flag("--slurm-account", "the account the jobs are charged to")
    )
    # an image for pyxis (srun --container-image), or an Apptainer .sif file
    container: str | None = field(
        default=None,
        metadata=_flag("--container", "run each job in this image (pyxis), or this Apptainer .sif file"),
    )
