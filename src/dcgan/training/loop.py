"""The epoch loop: one DCGAN, one loss, hooks after each epoch, exact resume.

The hot loop never waits for the device: per-iteration statistics accumulate in a device
tensor that is read once per epoch (and a few times for the progress bar). Each epoch's
shuffled images sit on the device when they fit, so a batch is a slice, not a host copy.

Under torchrun (``train.nproc > 1``) every process draws the same permutation and noise from
the shared seed and takes its slice of each global batch: the data order does not depend on
the number of processes, and DDP averages the gradients. Hooks run on rank 0 only.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

import torch
from tqdm import tqdm

from dcgan import augment, distributed, losses
from dcgan.batches import EpochData, plan_batches
from dcgan.config import Params
from dcgan.data.prepared import load_meta, load_split
from dcgan.device import resolve_device
from dcgan.distributed import World
from dcgan.history import COLUMNS, History
from dcgan.training import hooks as hook_lib
from dcgan.training import networks, outputs, sampling, state
from dcgan.training.identity import run_id
from dcgan.training.steps import GanSteps


class Trainer:
    """Trains one G/D pair on a prepared data set; :meth:`run` resumes from ``workdir``."""

    def __init__(self, params: Params, prepared: str | Path, workdir: str | Path,
                 world: World | None = None):
        t = params.train
        self.p, self.epochs, self.world = params, t.epochs, world or World()
        # channels_last: the convolution layout oneDNN and cuDNN run fastest (benchmarks/NOTES.md)
        layout = torch.channels_last if t.channels_last else torch.contiguous_format
        self.device = resolve_device(t.device, self.world)
        self.amp = t.precision == "bf16" and self.device.type == "cuda"
        self.meta = load_meta(prepared)
        self.workdir = Path(workdir) / run_id(params, self.meta)
        images, _ = load_split(prepared, "train")
        self.batch_size, self.iters, self.d_steps = plan_batches(params, len(images),
                                                                 self.world.size)
        self.data = EpochData(images, self.iters * self.d_steps, self.batch_size, self.world,
                              self.device, layout)
        distributed.init(self.world, self.device)
        self.nets = networks.build(params, self.meta["image_shape"], self.device, self.world, layout)
        # One generator for noise, shuffling and the GP's interpolation: its state is the
        # whole randomness of the loop, so a checkpoint that saves it resumes exactly.
        self.rng = torch.Generator(self.device).manual_seed(params.seed)
        self.fixed_noise = torch.randn(t.grid_images, params.model.nz, generator=self.rng,
                                       device=self.device)
        policy = augment.parse(t.augment)
        loss = losses.get(params.loss)
        self.steps = GanSteps(self.nets, loss, amp=self.amp, r1=loss.r1_for(t.r1),
                              r1_every=t.r1_every,
                              separate=t.d_batches == "separate", gp_weight=t.gp_weight,
                              penalty_weights=lambda: self.data.uniform(self.rng),
                              augment=policy and (lambda x: augment.augment(
                                  x, policy, lambda k: self.data.uniform(self.rng, k))))
        self.epoch, self.history, self.wall_time = 0, History(), 0.0
        self.hooks: list[hook_lib.Hook] = []
        self._step_hooks: list[hook_lib.Hook] = []
        self.sample_from = self.G  # what grids and scores sample (a hook may swap in an EMA)

    @property
    def G(self) -> torch.nn.Module:
        return self.nets.G

    @property
    def D(self) -> torch.nn.Module:
        return self.nets.D

    def train_epoch(self) -> torch.Tensor:
        """Train one epoch; returns per-iteration [d_loss, g_loss, D(x), D(G(z))] on the device."""
        d_steps, nz, steps = self.d_steps, self.p.model.nz, self.steps
        batch = self.data.epoch(self.rng)
        stats = torch.zeros(self.iters, len(COLUMNS), device=self.device)
        bar = tqdm(range(self.iters), desc=f"epoch {self.epoch + 1}/{self.epochs}", unit="it",
                   leave=False, mininterval=1.0, disable=not self.world.main)
        refresh = max(1, self.iters // 10)  # a host sync ~10 times an epoch, for the bar
        first = self.epoch * self.iters * d_steps  # the run's D steps before this epoch
        for it in bar:
            for k in range(d_steps):
                z = self.data.noise(self.rng, nz)
                with torch.set_grad_enabled(k == d_steps - 1), steps.autocast():
                    fake = self.nets.g_train(z)  # G's graph is kept only for the step G trains on
                i = it * d_steps + k
                d_loss, dx, dgz = steps.d_step(batch(i), fake, step=first + i)
                stats[it, [0, 2, 3]] += torch.stack([d_loss, dx, dgz]) / d_steps
            stats[it, 1] = steps.g_step(fake)
            for hook in self._step_hooks:
                hook.after_step(self)
            if (it + 1) % refresh == 0 and self.world.main:
                bar.set_postfix(dict(zip(COLUMNS, [round(v, 3) for v in stats[it].tolist()])))
        return distributed.mean(stats, self.world)

    def sampler(self, generator: torch.nn.Module | None = None) -> torch.nn.Module:
        """A copy of ``generator`` (default: ``sample_from``) ready to sample in eval mode,
        its batch-norm statistics as ``train.sample_bn`` says (:mod:`.sampling`)."""
        return sampling.prepare(generator or self.sample_from, self.p.train.sample_bn,
                                self.p.model.nz, self.batch_size, self.p.seed)

    @torch.no_grad()
    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """The images that :meth:`sampler` makes of latent vectors ``z``."""
        with self.steps.autocast():
            return self.sampler()(z)

    def run(self, hooks: Sequence[hook_lib.Hook] | None = None) -> bool:
        """Train up to ``train.epochs`` (default hooks: grid, checkpoint); True if it resumed."""
        self.hooks = list(hook_lib.standard() if hooks is None else hooks)
        if self.world.main:
            self.workdir.mkdir(parents=True, exist_ok=True)
        resumed = state.resume(self)
        self._step_hooks = [h for h in self.hooks if self.world.main
                            and type(h).after_step is not hook_lib.Hook.after_step]
        for hook in self.hooks if self.world.main else ():
            hook.before_run(self)
        while self.epoch < self.epochs:
            start = time.perf_counter()
            stats = self.train_epoch()
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            self._end_epoch(stats, time.perf_counter() - start)
        return resumed

    def _end_epoch(self, stats: torch.Tensor, seconds: float) -> None:
        rows = stats.cpu()  # the one full sync of the epoch
        state.check_finite(rows, self.epoch + 1, self.workdir / "last.pt")
        self.epoch += 1
        self.wall_time += seconds
        images = self.iters * self.d_steps * self.batch_size
        means = self.history.add_epoch(self.epoch, rows, images / seconds)
        if not self.world.main:
            return  # the others go on to the next epoch's first all-reduce and wait there
        end = hook_lib.EpochEnd(self.epoch, means, seconds)
        for hook in self.hooks:
            hook.after_epoch(self, end)

    def write_outputs(self, out: str | Path) -> dict[str, Any]:
        """Write weights, the hooks' files and loss CSVs into ``out`` (atomically); return metrics."""
        return outputs.write(self, Path(out))

    def metrics(self) -> dict[str, Any]:
        """Final-epoch means, wall time, throughput and the hooks' numbers (metrics/train.json)."""
        return outputs.metrics(self)

