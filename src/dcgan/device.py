"""Which device a stage, or one of several training processes, runs on."""

from __future__ import annotations

from typing import Protocol

import torch

from dcgan.errors import UserError


class Place(Protocol):
    """A process's place among the training processes (``distributed.World`` is one)."""

    @property
    def rank(self) -> int: ...

    @property
    def size(self) -> int: ...

    @property
    def local_rank(self) -> int: ...


def resolve_device(name: str, world: Place | None = None) -> torch.device:
    """The device for ``train.device`` (``auto``, ``cpu``, ``cuda``, ``cuda:N``) in this process.

    ``auto`` is CUDA when present, else the CPU; asking for CUDA without one is a UserError.
    Among several processes (``world.size > 1``) on CUDA each takes GPU ``world.local_rank``,
    so a pinned ``cuda:N`` is an error there.
    """
    if name == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    elif name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"train.device: {name} requested but no CUDA device is visible; use auto or cpu")
    else:
        device = torch.device(name)
    if world is None or world.size == 1 or device.type != "cuda":
        return device
    if device.index is not None:
        raise UserError(f"train.device: {name} pins one GPU, but {world.size} processes need one "
                        "each; use auto or cuda (process i uses GPU LOCAL_RANK)")
    if world.local_rank >= torch.cuda.device_count():
        raise UserError(f"process {world.rank} wants GPU {world.local_rank} but only "
                        f"{torch.cuda.device_count()} are visible; lower train.nproc")
    return torch.device("cuda", world.local_rank)
