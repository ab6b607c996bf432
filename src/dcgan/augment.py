"""Differentiable augmentation for D's inputs (DiffAugment; Zhao et al., 2020).

On small data sets D memorises the real images within a few dozen epochs and G stops
improving. Showing D randomly translated and cut-out versions of both real and generated
images, with the same kind of transform on both sides and gradients flowing through it
into G, keeps D from memorising without changing what G learns to produce. Written here
rather than taken from a library because every draw must come from the loop's seeded
generator (a checkpoint then resumes bit for bit) and be cut from one global draw per batch,
so that several training processes see the same augmentations as one.

``train.augment`` lists the transforms, e.g. ``translation,cutout``.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

POLICIES = ("translation", "cutout")
Draw = Callable[[int], Tensor]  # k -> U(0, 1) of shape (this process's images, k)


def _translation(x: Tensor, draw: Draw, ratio: float = 0.125) -> Tensor:
    """Shift each image by up to ``ratio`` of its size in x and y, zero-padded."""
    n, _, h, w = x.shape
    sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    shift = draw(2)
    dy = (shift[:, 0] * (2 * sy + 1)).long() - sy
    dx = (shift[:, 1] * (2 * sx + 1)).long() - sx
    padded = F.pad(x, (sx, sx, sy, sy))
    rows = (torch.arange(h, device=x.device) + sy)[None, :] - dy[:, None]  # (n, h)
    cols = (torch.arange(w, device=x.device) + sx)[None, :] - dx[:, None]  # (n, w)
    batch = torch.arange(n, device=x.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]
    return out.permute(0, 3, 1, 2).contiguous(memory_format=_layout(x))


def _cutout(x: Tensor, draw: Draw, ratio: float = 0.5) -> Tensor:
    """Zero one square of ``ratio`` times the image size per image, at a random place."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    where = draw(2)
    top = (where[:, 0] * (h + 1 - ch % 2)).long() - ch // 2
    left = (where[:, 1] * (w + 1 - cw % 2)).long() - cw // 2
    ys = torch.arange(h, device=x.device)[None, :]
    xs = torch.arange(w, device=x.device)[None, :]
    inside_y = (ys >= top[:, None]) & (ys < top[:, None] + ch)  # (n, h)
    inside_x = (xs >= left[:, None]) & (xs < left[:, None] + cw)  # (n, w)
    keep = ~(inside_y[:, :, None] & inside_x[:, None, :])
    return x * keep[:, None].to(x.dtype)


def _layout(x: Tensor) -> torch.memory_format:
    return torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) and \
        not x.is_contiguous() else torch.contiguous_format


_TRANSFORMS = {"translation": _translation, "cutout": _cutout}


def parse(policy: str | None) -> tuple[str, ...]:
    """``"translation,cutout"`` -> ("translation", "cutout"); None or "" -> ()."""
    names = tuple(p.strip() for p in (policy or "").split(",") if p.strip())
    unknown = [p for p in names if p not in POLICIES]
    if unknown:
        raise ValueError(f"unknown augmentation {unknown[0]!r}; allowed: {', '.join(POLICIES)}")
    return names


def augment(x: Tensor, policy: tuple[str, ...], draw: Draw) -> Tensor:
    """``x`` through each transform of ``policy`` in order, drawing from ``draw``."""
    for name in policy:
        x = _TRANSFORMS[name](x, draw)
    return x
