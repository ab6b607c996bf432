"""The epoch loop: one DCGAN, one loss, hooks after each epoch, its whole state in one dict.

The hot loop never waits for the device on a GPU: per-iteration statistics accumulate in a
device tensor read ~10 times an epoch (progress bar, divergence check) and once at its end.
Each epoch's shuffled images sit on the device when they fit, so a batch is a slice.

Under torchrun (``train.nproc > 1``) every process draws the same permutation and noise from
the shared seed and takes its slice of each global batch: the data order does not depend on
the number of processes, and DDP averages the gradients. Hooks run on rank 0 only.
"""

from __future__ import annotations

import copy
import time
from typing import Any, Sequence

import torch
from tqdm import tqdm

from dcgan import augment, checkpoint, distributed, losses
from dcgan.config import Params
from dcgan.device import resolve_device
from dcgan.distributed import World
from dcgan.training import divergence, networks, standing
from dcgan.training.batches import EpochData, plan_batches
from dcgan.training.ema import EmaGenerator
from dcgan.training.history import COLUMNS, History
from dcgan.training.hooks import EpochEnd, Hook
from dcgan.training.steps import GanSteps


class Trainer:
    """Trains one G/D pair on ``images`` (float NCHW in [-1, 1]) with the loss ``params.loss``.

    It does no file I/O of its own: :meth:`state_dict` / :meth:`load_state_dict` hold every
    number a resumed run needs, and hooks (:mod:`.hooks`) write grids and checkpoints.
    """

    def __init__(self, params: Params, images: torch.Tensor, world: World | None = None,
                 hooks: Sequence[Hook] = ()):
        train_params = params.train
        loss = losses.get(params.loss)
        self.p, self.loss, self.world = params, loss, world or World()
        self.epochs = train_params.epochs
        self.hooks = list(hooks) if self.world.main else []
        # channels_last: the convolution layout oneDNN and cuDNN run fastest (benchmarks/NOTES.md)
        layout = torch.channels_last if train_params.channels_last else torch.contiguous_format
        self.device = resolve_device(train_params.device, self.world)
        self.amp = train_params.precision == "bf16" and self.device.type == "cuda"
        self.batch_size, self.iters, self.d_steps = plan_batches(loss, train_params, len(images),
                                                                 self.world.size)
        self.data = EpochData(images, self.iters * self.d_steps, self.batch_size, self.world,
                              self.device, layout)
        distributed.init(self.world, self.device)
        self.nets = networks.build(params, loss, list(images.shape[1:]), self.device,
                                   self.world, layout)
        # One generator for noise, shuffling and the penalties' draws: its state is the whole
        # randomness of the loop, so a checkpoint that saves it resumes exactly.
        self.rng = torch.Generator(self.device).manual_seed(params.seed)
        self.fixed_noise = torch.randn(train_params.grid_images, params.model.nz,
                                       generator=self.rng, device=self.device)
        policy = augment.parse(train_params.augment)
        self.r1 = loss.r1_for(train_params.r1)  # reported with the run: `auto` differs per loss
        self.steps = GanSteps(self.nets, loss, amp=self.amp, r1=self.r1,
                              r1_every=train_params.r1_every,
                              separate=train_params.d_batches == "separate",
                              gp_weight=train_params.gp_weight,
                              penalty_weights=lambda: self.data.uniform(self.rng),
                              augment=policy and (lambda x: augment.augment(
                                  x, policy, lambda k: self.data.uniform(self.rng, k))))
        # The average of G's weights is what the run samples from (rank 0 samples and saves)
        self.ema = (EmaGenerator(self.G, train_params.ema, train_params.ema_start)
                    if train_params.ema is not None and self.world.main else None)
        self.epoch, self.history, self.wall_time = 0, History(), 0.0
        self.guard = divergence.Guard(self.nets)  # the run that left the rails stops
        self._samplers: dict[int, torch.nn.Module] = {}  # :meth:`sampler`'s, until weights change

    @property
    def G(self) -> torch.nn.Module:
        return self.nets.G

    @property
    def D(self) -> torch.nn.Module:
        return self.nets.D

    @property
    def g_kwargs(self) -> dict[str, Any]:
        """The constructor arguments that rebuild G (and its EMA) from a file."""
        return self.nets.g_kwargs

    @property
    def sample_from(self) -> torch.nn.Module:
        """What grids, scores and ``generator.pt`` sample: the EMA of G when on, else G."""
        return self.ema.module if self.ema is not None else self.G

    def train_epoch(self) -> torch.Tensor:
        """Train one epoch; returns per-iteration [d_loss, g_loss, D(x), D(G(z)), G's spread]
        on the device; stops at the first step that breaks the divergence rule."""
        d_steps, nz, steps = self.d_steps, self.p.model.nz, self.steps
        self._samplers.clear()  # the weights change from here on
        batch = self.data.epoch(self.rng)
        stats = torch.zeros(self.iters, len(COLUMNS), device=self.device)
        bar = tqdm(range(self.iters), desc=f"epoch {self.epoch + 1}/{self.epochs}", unit="it",
                   leave=False, mininterval=1.0, disable=not self.world.main)
        watch = divergence.Watch(self.guard, self.iters, self.device, self.world, self.epoch + 1)
        refresh = max(1, self.iters // 10)  # the progress bar's numbers: a sync ~10 times an epoch
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
            # One image has no spread (NaN, which the divergence rule reads as undefined)
            stats[it, 4] = (fake.detach().float().std(dim=0).mean() if len(fake) > 1
                            else float("nan"))
            if self.ema is not None:
                self.ema.update(self.G)
            if watch.due(it):  # on CPU every step, on a GPU with the bar's syncs
                watch.check(stats, it + 1)
            if (it + 1) % refresh == 0 and self.world.main:
                bar.set_postfix(dict(zip(COLUMNS, [round(v, 3) for v in stats[it].tolist()])))
        stats = distributed.mean(stats, self.world)
        watch.finish(stats)
        return stats

    def sampler(self, generator: torch.nn.Module | None = None) -> torch.nn.Module:
        """A copy of ``generator`` (default: :attr:`sample_from`) ready to sample in eval mode,
        its batch-norm statistics as ``train.sample_bn`` says (:mod:`.standing`)."""
        generator = generator or self.sample_from
        # Prepared once per epoch end: the grid, the periodic score and the outputs all ask
        # for it, and standing statistics cost 16 batches through G each time (a copy is
        # returned, so a caller that moves or changes its model cannot touch the next one's).
        if id(generator) not in self._samplers:
            self._samplers[id(generator)] = standing.prepare(
                generator, self.p.train.sample_bn, self.p.model.nz, self.batch_size, self.p.seed)
        return copy.deepcopy(self._samplers[id(generator)])

    @torch.no_grad()
    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """The images that :meth:`sampler` makes of latent vectors ``z``."""
        with self.steps.autocast():
            return self.sampler()(z)

    def run(self) -> None:
        """Train from :attr:`epoch` up to ``train.epochs``, calling the hooks after each epoch."""
        for hook in self.hooks:
            hook.before_run(self)
        while self.epoch < self.epochs:
            start = time.perf_counter()
            stats = self.train_epoch()
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            self._end_epoch(stats, time.perf_counter() - start)

    def _end_epoch(self, stats: torch.Tensor, seconds: float) -> None:
        rows = stats.cpu()  # the one full sync of the epoch
        self.epoch += 1
        self.wall_time += seconds
        images = self.iters * self.d_steps * self.batch_size
        end = EpochEnd(self.epoch, self.history.add_epoch(self.epoch, rows, images / seconds),
                       seconds)
        for hook in self.hooks:  # what they add to end.metrics is in the history's epoch row
            hook.after_epoch(self, end)

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs to equal an uninterrupted one: both networks and
        optimisers, every RNG, the fixed noise, the history, the EMA and the hooks' state.
        Tensors, numbers and containers only, so it loads with ``weights_only=True``."""
        nets = self.nets
        return {"G": nets.G.state_dict(), "D": nets.D.state_dict(),
                "opt_g": nets.opt_g.state_dict(), "opt_d": nets.opt_d.state_dict(),
                "rng": self.rng.get_state(), "global_rng": checkpoint.rng_state(),
                "fixed_noise": self.fixed_noise, "epoch": self.epoch,
                "history": self.history.state_dict(), "wall_time": self.wall_time,
                "ema": self.ema.state_dict() if self.ema is not None else None,
                "hooks": {h.name: h.state_dict() for h in self.hooks if h.name},
                "world_size": self.world.size}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Go back to where :meth:`state_dict` was taken."""
        nets = self.nets
        self._samplers.clear()
        for module, key in ((nets.G, "G"), (nets.D, "D"), (nets.opt_g, "opt_g"),
                            (nets.opt_d, "opt_d")):
            module.load_state_dict(state[key])
        self.rng.set_state(state["rng"].cpu())
        checkpoint.set_rng_state(state["global_rng"])
        self.fixed_noise = state["fixed_noise"].to(self.device)
        self.epoch, self.wall_time = state["epoch"], state["wall_time"]
        self.history = History.from_state(state["history"])
        if self.ema is not None and state.get("ema") is not None:
            self.ema.load_state_dict(state["ema"])
        for hook in self.hooks:
            if hook.name in state.get("hooks", {}):
                hook.load_state_dict(state["hooks"][hook.name])
