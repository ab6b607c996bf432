"""Does a generator copy its training images? Nearest-neighbour distances against real ones.

A generator trained on a few thousand images with a strong, R1-regularised D can reproduce
training images, and IS, FD and precision reward it. So every generated set is checked in
pixels and in the domain classifier's features:

- each sample's distance to its nearest training image and to its nearest held-out image
  (a generator that memorises sits closer to the first than to the second);
- the share of **near-copies**: samples closer to a training image than 1 in 100 real
  unseen images are (the 1st percentile of held-out-to-train distances, measured on one half
  of the held-out images). The other half, scored the same way, is the real data's own rate
  (about 1%, by construction): the reference a generator is read against.

Without a held-out split, the unseen images are replaced by each training image's distance
to its nearest *other* training image (leave one out). No library does this for image sets
(torch-fidelity and torchmetrics score distributions, not copies), hence the few lines here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

PERCENTILE = 1.0  # what counts as "as close as a near-duplicate": 1 in 100 unseen images
CHUNK = 1024  # queries per distance block: bounded memory at 60k x 784 pixels


@torch.no_grad()
def nearest(queries: torch.Tensor, points: torch.Tensor, skip_self: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Euclidean distance from each row of ``queries`` to its nearest row of ``points``, and
    that row's index. ``skip_self``: ``queries`` is ``points`` and a row is not its own
    neighbour."""
    q, p = queries.flatten(1).float(), points.flatten(1).float()
    dists, index = [], []
    for start in range(0, len(q), CHUNK):
        d = torch.cdist(q[start:start + CHUNK], p)
        if skip_self:
            rows = torch.arange(start, min(start + CHUNK, len(q)))
            d[rows - start, rows] = float("inf")
        best = d.min(dim=1)
        dists.append(best.values)
        index.append(best.indices)
    return torch.cat(dists), torch.cat(index)


@dataclass
class Space:
    """One space the check runs in: a name and how images map into it."""

    name: str
    embed: Callable[[torch.Tensor], torch.Tensor]


class CopyCheck:
    """Thresholds from real data, then :meth:`score` for any set of images.

    Args:
        train: The images the generator trained on.
        heldout: Real images it never saw, or None (leave-one-out on ``train`` instead).
        spaces: Where distances are measured (pixels, the classifier's features).
        seed: Which held-out half sets the threshold.
    """

    def __init__(self, train: torch.Tensor, heldout: torch.Tensor | None, spaces: list[Space],
                 seed: int = 0):
        self.spaces, self.train = spaces, train
        self.train_emb = {s.name: s.embed(train) for s in spaces}
        self.how = ("held-out images" if heldout is not None else
                    "training images against the nearest other one (no held-out split)")
        self.threshold, self.real_rate = {}, {}
        for s in spaces:
            if heldout is not None:
                d, _ = nearest(s.embed(heldout), self.train_emb[s.name])
            else:
                d, _ = nearest(self.train_emb[s.name], self.train_emb[s.name], skip_self=True)
            order = torch.randperm(len(d), generator=torch.Generator().manual_seed(seed))
            calibrate, measure = d[order[: len(d) // 2]], d[order[len(d) // 2:]]
            self.threshold[s.name] = torch.quantile(calibrate.double(), PERCENTILE / 100).item()
            self.real_rate[s.name] = (measure < self.threshold[s.name]).float().mean().item()
        self.heldout_emb = ({s.name: s.embed(heldout) for s in spaces}
                            if heldout is not None else None)

    def score(self, images: torch.Tensor) -> tuple[dict, tuple[torch.Tensor, torch.Tensor]]:
        """Per space: the near-copy share, the threshold, the mean distance to the nearest
        training image (and held-out image); and, in the first space, each sample's distance
        to its nearest training image with that image's index (for :func:`closest_pairs`)."""
        out, first = {}, None
        for s in self.spaces:
            emb = s.embed(images)
            to_train, index = nearest(emb, self.train_emb[s.name])
            row = {"share": (to_train < self.threshold[s.name]).float().mean().item(),
                   "threshold": self.threshold[s.name],
                   "mean_to_train": to_train.mean().item()}
            if self.heldout_emb is not None:
                to_held, _ = nearest(emb, self.heldout_emb[s.name])
                row["mean_to_heldout"] = to_held.mean().item()
            out[s.name] = row
            first = first or (to_train, index)
        return out, first

    def reference(self) -> dict:
        """The real data's own near-copy rate per space (what a generator is read against)."""
        return {s.name: {"share": self.real_rate[s.name], "threshold": self.threshold[s.name]}
                for s in self.spaces}


def closest_pairs(images: torch.Tensor, train: torch.Tensor,
                  nearest_to_train: tuple[torch.Tensor, torch.Tensor],
                  k: int = 8) -> tuple[torch.Tensor, torch.Tensor, list[float]]:
    """The ``k`` samples closest to a training image, closest first: (samples, their nearest
    training images, the distances), for :func:`dcgan.figures.nearest_pairs`."""
    dist, index = nearest_to_train
    top = dist.argsort()[:k]
    return images[top], train[index[top]], dist[top].tolist()
