"""Image grids written as PNG (torchvision's grid, written atomically)."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from dcgan import atomic


def save_grid(images: torch.Tensor, path: str | Path, nrow: int | None = None) -> None:
    """Save images in [-1, 1] (N, C, H, W) as one PNG grid, ``nrow`` per row (default √N)."""
    from torchvision.utils import save_image  # ~1.5 s to import: not for processes that only train

    nrow = nrow or max(1, math.isqrt(len(images)))
    images = images.detach().float().cpu()
    atomic.save_with(path, lambda tmp: save_image(images, tmp, nrow=nrow, normalize=True,
                                                  value_range=(-1, 1), format="png"))
