"""When a run has left the rails: the rule, checked while training, and the line it stops with.

A run is stopped at the first step where

- any statistic (D's loss, G's loss, D(x), D(G(z))) is NaN or infinite, or
- D's or G's loss is beyond ±:data:`LOSS_LIMIT`, or
- a weight of G or D is beyond ±:data:`WEIGHT_LIMIT`.

The bounds sit orders of magnitude above anything a healthy run of any of the four losses
reaches (``tests/test_divergence.py`` trains each one and checks): their losses are O(1) to
O(10) (WGAN-GP's critic, Lipschitz-bounded by its penalty, O(100) at most) and their weights
O(1). A run past them is one that blew up: ``train.lr_g: 10`` takes D's loss to 1e8 and the
weights to 1e11 within an epoch while every number stays finite.

Alone, the check runs every step on a CPU (a host sync costs nothing there) and ~10 times an
epoch on a GPU (where each sync would stall the queue), reporting the first bad step either
way. Among several processes it runs at each epoch's end, on the statistics all of them
share, so that every process stops at the same point.
"""

from __future__ import annotations

import math

import torch

from dcgan.distributed import World
from dcgan.training.history import COLUMNS

LOSS_LIMIT = 1e6
WEIGHT_LIMIT = 1e4


class Diverged(Exception):
    """Training left the rails; the message says where and why (the caller adds what to do)."""

    def __init__(self, epoch: int, iteration: int | None, what: str):
        at = f"epoch {epoch}" + (f", iteration {iteration}" if iteration else "")
        super().__init__(f"training diverged at {at}: {what}")
        self.epoch, self.iteration, self.what = epoch, iteration, what


def _bad_row(row: list[float]) -> str | None:
    """Why one iteration's statistics break the rule, or None."""
    values = dict(zip(COLUMNS, row))
    if not all(math.isfinite(v) for v in row):
        return "non-finite statistics (" + ", ".join(f"{k} {v:.4g}" for k, v in values.items()) + ")"
    for key in ("d_loss", "g_loss"):
        if abs(values[key]) > LOSS_LIMIT:
            return f"{key} {values[key]:.3g} is beyond ±{LOSS_LIMIT:.0e}"
    return None


def check_rows(rows: torch.Tensor, epoch: int, first: int = 0) -> None:
    """Raise :class:`Diverged` at the first of ``rows`` (iterations ``first``, ``first`` + 1,
    ... of the epoch, 0-based) that breaks the rule."""
    for i, row in enumerate(rows.tolist(), first):
        if (why := _bad_row(row)) is not None:
            raise Diverged(epoch, i + 1, why)


@torch.no_grad()
def check_weights(nets, epoch: int, iteration: int | None = None) -> None:
    """Raise :class:`Diverged` when a weight of G or D is non-finite or beyond the bound."""
    for name, module in (("G", nets.G), ("D", nets.D)):
        top = max(p.detach().abs().max() for p in module.parameters()).item()
        if not top <= WEIGHT_LIMIT:  # also true for NaN
            raise Diverged(epoch, iteration, f"a weight of {name} reached {top:.3g} "
                                             f"(beyond ±{WEIGHT_LIMIT:.0e})")


class Watch:
    """Decides when an epoch's running statistics are checked, and checks them."""

    def __init__(self, iters: int, device: torch.device, world: World, nets=None):
        alone = world.size == 1
        self.every = (1 if device.type == "cpu" else max(1, iters // 10)) if alone else 0
        self.iters, self.nets, self.checked = iters, nets, 0

    def due(self, it: int) -> bool:
        """Whether to check after iteration ``it`` (0-based) of the epoch."""
        return bool(self.every) and ((it + 1) % self.every == 0 or it + 1 == self.iters)

    def check(self, stats: torch.Tensor, it: int, epoch: int) -> None:
        """Check the iterations since the last check (and the weights, when given)."""
        check_rows(stats[self.checked: it + 1].cpu(), epoch, self.checked)
        self.checked = it + 1
        if self.nets is not None:
            check_weights(self.nets, epoch, it + 1)
