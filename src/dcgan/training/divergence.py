"""When a run has left the rails: the rule, checked while training, and the line it stops with.

A run is stopped at the first G step where

- any statistic (D's loss, G's loss, D(x), D(G(z)), G's spread) is NaN or infinite, or
- D's or G's loss is beyond ±:data:`LOSS_LIMIT`, or
- a weight of G or D is beyond ±:data:`WEIGHT_LIMIT`, or
- G's samples have been one image (the spread of a batch, the per-pixel standard deviation
  over its samples averaged over pixels, under :data:`SPREAD_FLOOR`) for
  :data:`COLLAPSE_STEPS` G steps in a row: a dead G, its tanh saturated, which D then beats
  completely (``train.lr_g: 10``: every sample black, D(x) 0.999, D(G(z)) 0.000, epoch
  after epoch, while every number stays finite).

The bounds sit orders of magnitude away from anything a healthy run of any of the four
losses reaches (``tests/test_divergence.py`` trains each one and checks; the 2,000-step runs
of ``benchmarks/recipes.py`` never trip them): their losses are O(1) to O(10) (WGAN-GP's
critic, Lipschitz-bounded by its penalty, O(100) at most), their weights O(1) (Adam moves a
weight by about the learning rate per step) and their samples' spread O(0.1) from the first
step on.

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
WEIGHT_LIMIT = 1e3
SPREAD_FLOOR = 1e-3
COLLAPSE_STEPS = 20


class Diverged(Exception):
    """Training left the rails; the message says where and why (the caller adds what to do)."""

    def __init__(self, epoch: int, iteration: int | None, what: str):
        at = f"epoch {epoch}" + (f", iteration {iteration}" if iteration else "")
        super().__init__(f"training diverged at {at}: {what}")
        self.epoch, self.iteration, self.what = epoch, iteration, what


def _bad_row(values: dict[str, float]) -> str | None:
    """Why one iteration's statistics break the rule by themselves, or None.

    G's spread is the standard deviation over a batch: NaN by definition for a batch of one
    image (a tiny data set's last batch, a process's share), not a sign of divergence. G ends
    in tanh, so its samples are bounded; a non-finite sample shows in D(G(z)) and the losses,
    which are checked.
    """
    if math.isnan(values.get("g_spread", 0.0)):
        values = {k: v for k, v in values.items() if k != "g_spread"}
    if not all(math.isfinite(v) for v in values.values()):
        return "non-finite statistics (" + ", ".join(f"{k} {v:.4g}" for k, v in values.items()) + ")"
    for key in ("d_loss", "g_loss"):
        if abs(values[key]) > LOSS_LIMIT:
            return f"{key} {values[key]:.3g} is beyond ±{LOSS_LIMIT:.0e}"
    return None


class Guard:
    """The rule, with what it carries from step to step: how long G has drawn one image."""

    def __init__(self, nets):
        self.nets, self.collapsed = nets, 0

    def rows(self, rows: torch.Tensor, epoch: int, first: int = 0) -> None:
        """Raise :class:`Diverged` at the first of ``rows`` (iterations ``first``,
        ``first`` + 1, ... of the epoch, 0-based) that breaks the rule."""
        for i, row in enumerate(rows.tolist(), first):
            values = dict(zip(COLUMNS, row))
            if (why := _bad_row(values)) is not None:
                raise Diverged(epoch, i + 1, why)
            self.collapsed = self.collapsed + 1 if values["g_spread"] < SPREAD_FLOOR else 0
            if self.collapsed >= COLLAPSE_STEPS:
                raise Diverged(epoch, i + 1, f"G's samples have been one image for "
                                             f"{COLLAPSE_STEPS} G steps (spread "
                                             f"{values['g_spread']:.1e}, under {SPREAD_FLOOR:.0e})")

    @torch.no_grad()
    def weights(self, epoch: int, iteration: int | None = None) -> None:
        """Raise :class:`Diverged` when a weight of G or D is non-finite or beyond the bound."""
        for name, module in (("G", self.nets.G), ("D", self.nets.D)):
            top = max(p.detach().abs().max() for p in module.parameters()).item()
            if not top <= WEIGHT_LIMIT:  # also true for NaN
                raise Diverged(epoch, iteration, f"a weight of {name} reached {top:.3g} "
                                                 f"(beyond ±{WEIGHT_LIMIT:.0e})")


class Watch:
    """One epoch's checks: when to look at the running statistics, and the last look."""

    def __init__(self, guard: Guard, iters: int, device: torch.device, world: World, epoch: int):
        alone = world.size == 1
        self.every = (1 if device.type == "cpu" else max(1, iters // 10)) if alone else 0
        self.guard, self.iters, self.epoch, self.checked = guard, iters, epoch, 0

    def due(self, it: int) -> bool:
        """Whether to check after iteration ``it`` (0-based) of the epoch."""
        return bool(self.every) and ((it + 1) % self.every == 0 or it + 1 == self.iters)

    def check(self, stats: torch.Tensor, upto: int) -> None:
        """Check the iterations since the last check, and the weights."""
        self.guard.rows(stats[self.checked:upto].cpu(), self.epoch, self.checked)
        self.checked = upto
        self.guard.weights(self.epoch, upto)

    def finish(self, stats: torch.Tensor) -> None:
        """At the epoch's end: what no check has seen yet (everything, among several
        processes: the statistics every process shares), and the weights."""
        if self.checked < len(stats):
            self.check(stats, len(stats))
        self.guard.weights(self.epoch)
