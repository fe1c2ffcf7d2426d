"""The single-rank distributed environment that `deepspeed` (or `torchrun`) would set for one process on
one device: strategies built on torch.distributed run in the harness's own worker, with no launcher."""

from __future__ import annotations

import os
import socket

import torch


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def single_rank_environment(device: torch.device) -> None:
    """What `deepspeed` the launcher would set for one process on one device."""
    os.environ.setdefault("DS_ACCELERATOR", "cuda" if device.type == "cuda" else "cpu")
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return  # an earlier engine in this process already set up the single-rank group
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    port = os.environ.get("MASTER_PORT")
    if port is None or not port.isdigit() or not _bindable(int(port)):
        # Unset, or taken (by another run on this machine): any free port serves a single rank.
        os.environ["MASTER_PORT"] = str(_free_port())
    for key in ("RANK", "LOCAL_RANK"):
        os.environ.setdefault(key, "0")
    os.environ.setdefault("WORLD_SIZE", "1")
