"""Which device a stage runs on."""

from __future__ import annotations

import torch

from dcgan.errors import UserError


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when present, else CPU; asking for CUDA without one is a UserError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"train.device: {name} requested but no CUDA device is visible; use auto or cpu")
    return torch.device(name)
