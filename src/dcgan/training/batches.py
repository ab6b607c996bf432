"""How the training set becomes batches: where it lives, each epoch's order, each process's part.

Every process draws the same permutation from the shared seed; global batch b is its b-th
slice of ``train.batch_size`` and process r takes the r-th equal part of that. So the global
batches do not depend on how many processes train, and one process reproduces them exactly.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import torch

from dcgan.config import TrainParams
from dcgan.distributed import World
from dcgan.errors import UserError
from dcgan.losses import Loss


class Plan(NamedTuple):
    """How an epoch is cut: the global batch, G steps per epoch, D steps per G step."""

    batch_size: int
    iters: int
    d_steps: int


def plan_batches(loss: Loss, train: TrainParams, n: int, processes: int) -> Plan:
    """The epoch plan for ``n`` images split over ``processes``; one line if it cannot work."""
    d_steps = loss.steps_per_g(train.d_steps)
    # A data set smaller than a G step's batches: smaller batches, one G step an epoch
    batch = min(train.batch_size, n // d_steps)
    if batch == 0:
        raise UserError(f"train.d_steps {d_steps} is more than the {n} training images; "
                        "lower it")
    if batch % processes:
        raise UserError(f"train.batch_size {batch} does not split evenly over {processes} "
                        f"processes; use a multiple of {processes}")
    return Plan(batch, (n // batch) // d_steps, d_steps)


def shard_order(perm: torch.Tensor, batches: int, batch_size: int, world: World) -> torch.Tensor:
    """This process's indices, batch after batch, of the global batches cut from ``perm``."""
    used = perm[:batches * batch_size].view(batches, world.size, batch_size // world.size)
    return used[:, world.rank].reshape(-1)


class EpochData:
    """The training images of one process, served as this epoch's batches on ``device``."""

    def __init__(self, images: torch.Tensor, batches: int, batch_size: int, world: World,
                 device: torch.device, layout: torch.memory_format = torch.contiguous_format):
        self.batches, self.batch_size, self.world, self.device = batches, batch_size, world, device
        self.layout = layout  # the memory format batches are served in
        self.local = batch_size // world.size
        self.images = self._place(images)

    def __len__(self) -> int:
        return len(self.images)

    def _place(self, images: torch.Tensor) -> torch.Tensor:
        """Where the set lives; sets ``shard_fits`` (an epoch's shard is copied to the device).

        Alone on a GPU, the set stays on it when it and one shuffled copy fit in half the free
        memory. Otherwise it waits in pinned host memory and each epoch this process's shard
        (or, if even that is too big, each batch) is copied over.
        """
        self.shard_fits = True
        if self.device.type != "cuda":
            return images
        free = torch.cuda.mem_get_info(self.device)[0] // 2
        size = images.numel() * images.element_size()
        if self.world.size == 1 and 2 * size < free:
            return images.to(self.device)
        self.shard_fits = size // self.world.size < free
        return images.pin_memory()

    def mine(self, whole: torch.Tensor) -> torch.Tensor:
        """This process's part of a draw made for the whole global batch (noise, GP weights)."""
        return whole[self.world.rank * self.local:(self.world.rank + 1) * self.local]

    def noise(self, rng: torch.Generator, nz: int) -> torch.Tensor:
        """This process's part of one global batch of N(0, 1) latent vectors."""
        return self.mine(torch.randn(self.batch_size, nz, generator=rng, device=self.device))

    def uniform(self, rng: torch.Generator, *shape: int) -> torch.Tensor:
        """This process's part of U(0, 1) draws of shape ``shape`` per sample of a global batch."""
        return self.mine(torch.rand(self.batch_size, *shape, generator=rng, device=self.device))

    def epoch(self, rng: torch.Generator) -> Callable[[int], torch.Tensor]:
        """Draw this epoch's order from ``rng`` (on ``device``); returns batch ``b`` -> images."""
        perm = torch.randperm(len(self.images), generator=rng, device=self.device)
        order = shard_order(perm, self.batches, self.batch_size, self.world)
        order = order.to(self.images.device)
        n, layout = self.local, self.layout
        if not self.shard_fits:
            return lambda b: self.images[order[b * n:(b + 1) * n]].to(
                self.device, non_blocking=True, memory_format=layout)
        shard = self.images[order].to(self.device, non_blocking=True, memory_format=layout)
        return lambda b: shard[b * n:(b + 1) * n]
