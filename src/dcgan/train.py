"""The training loop: one DCGAN, one loss, full-state checkpoints every epoch, exact resume.

The hot loop never waits for the device: per-iteration statistics accumulate in a device
tensor that is read once per epoch (and a few times for the progress bar). Each epoch's
shuffled images sit on the device when they fit, so a batch is a slice, not a host copy.

Under torchrun (``train.nproc > 1``) every process draws the same permutation and noise from
the shared seed and takes its slice of each global batch: the data order does not depend on
the number of processes, and DDP averages the gradients.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Callable, Protocol

import torch
from tqdm import tqdm

from dcgan import atomic, batches, checkpoint, distributed, losses, models
from dcgan.batches import EpochData, plan_batches
from dcgan.config import Params
from dcgan.data.prepared import load_meta, load_split
from dcgan.distributed import World
from dcgan.errors import UserError
from dcgan.history import COLUMNS, History
from dcgan.images import save_grid
from dcgan.models import Discriminator, Generator


class TrainingDiverged(UserError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""


Scorer = Callable[[torch.nn.Module], float]  # G -> score, lower is better (e.g. an FD)


class EpochLogger(Protocol):
    """What the trainer reports to after each epoch (MLflow lives behind this, in stages/)."""

    def log_epoch(self, epoch: int, metrics: dict[str, float], grid: Path) -> None: ...


def fingerprint(params: Params, meta: dict) -> str:
    """This run's id (:func:`checkpoint.run_id`), over the model, loss, batching and loop code."""
    return checkpoint.run_id(params, meta, (models, losses, batches, sys.modules[__name__]))


class Trainer:
    """Trains one G/D pair on a prepared data set; ``run()`` resumes from ``workdir`` if it can."""

    def __init__(self, params: Params, prepared: str | Path, workdir: str | Path,
                 scorer: Scorer | None = None, world: World | None = None):
        self.p, self.loss, self.scorer = params, params.loss, scorer
        self.world = world or World()
        # channels_last: the convolution layout oneDNN and cuDNN run fastest (benchmarks/NOTES.md)
        self.layout = torch.channels_last if params.train.channels_last else torch.contiguous_format
        self.device = distributed.device_for(params.train.device, self.world)
        self.amp = params.train.precision == "bf16" and self.device.type == "cuda"
        self.meta = load_meta(prepared)
        self.workdir = Path(workdir) / fingerprint(params, self.meta)
        images, _ = load_split(prepared, "train")
        self.batch_size, self.iters = plan_batches(params, len(images), self.world.size)
        self.data = EpochData(images, self.iters * params.d_steps, self.batch_size, self.world,
                              self.device, self.layout)
        distributed.init(self.world, self.device)
        self._build(self.meta["image_shape"])

    def _build(self, shape: list[int]) -> None:
        p, m, t = self.p, self.p.model, self.p.train
        torch.manual_seed(p.seed)  # weight init draws from the global RNG
        self.g_kwargs = dict(nz=m.nz, ngf=m.ngf, nc=shape[0], image_size=shape[1],
                             activation=m.g_activation, extra_layers=m.extra_layers)
        self.d_kwargs = dict(nc=shape[0], ndf=m.ndf, image_size=shape[1],
                             activation=m.d_activation, norm=p.d_norm, extra_layers=m.extra_layers)
        self.G = Generator(**self.g_kwargs).to(self.device, memory_format=self.layout)
        self.D = Discriminator(**self.d_kwargs).to(self.device, memory_format=self.layout)
        if t.sync_bn and self.world.size > 1:
            self.G, self.D = (distributed.sync_batch_norm(n, self.device) for n in (self.G, self.D))
        self._nets()
        fused = self.device.type == "cuda"  # one kernel per step instead of one per tensor
        self.opt_g = torch.optim.Adam(self.G.parameters(), t.lr_g, (t.beta1, t.beta2), fused=fused)
        self.opt_d = torch.optim.Adam(self.D.parameters(), t.lr_d, (t.beta1, t.beta2), fused=fused)
        # One generator for noise, shuffling and the GP's interpolation: its state is the
        # whole randomness of the loop, so a checkpoint that saves it resumes exactly.
        self.rng = torch.Generator(self.device).manual_seed(p.seed)
        self.fixed_noise = torch.randn(t.grid_images, m.nz, generator=self.rng, device=self.device)
        self.epoch, self.history, self.wall_time = 0, History(), 0.0
        self.best: dict[str, Any] = {}  # {"epoch", "score"} of the best checkpoint so far

    def _nets(self) -> None:
        """What the loop calls: DDP-wrapped when distributed, ``torch.compile``d when asked.

        G and D stay plain modules for checkpoints and sampling. The G step calls D without
        DDP (DDP would wait for D gradients that never come); the WGAN-GP penalty calls the
        eager critic, because compiled graphs have no double backward.
        """
        g = distributed.wrap(self.G, self.world, self.device)
        d = distributed.wrap(self.D, self.world, self.device)
        self.d_penalty, self.d_for_g = d, self.D
        if self.p.train.compile is not None:
            mode = None if self.p.train.compile == "default" else self.p.train.compile
            g, d, self.d_for_g = (torch.compile(n, mode=mode) for n in (g, d, self.D))
        self.g_net, self.d_net = g, d

    # ----------------------------------------------------------------------------- steps
    def _autocast(self) -> contextlib.AbstractContextManager:
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp)

    def _d_update(self, loss: torch.Tensor) -> None:
        self.opt_d.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_d.step()

    def _d_step(self, real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """One D update (two for ``d_batches: separate``); returns loss, D(x), D(G(z))."""
        fake = fake.detach()
        if self.p.train.d_batches == "separate":  # the Keras write-up: fake batch, then real
            with self._autocast():
                f = self.d_net(fake)
            self._d_update(loss_f := losses.d_loss_fake(self.loss, f))
            with self._autocast():
                r = self.d_net(real)
            self._d_update(loss_r := losses.d_loss_real(self.loss, r))
            loss = loss_f + loss_r
        else:
            with self._autocast():
                r, f = self.d_net(real), self.d_net(fake)
            loss = losses.d_loss(self.loss, r, f)
            if self.loss == "wgan-gp":  # fp32: the penalty differentiates through D twice
                eps = self.data.mine(torch.rand(self.batch_size, generator=self.rng,
                                                device=self.device))
                loss = loss + self.p.train.gp_weight * losses.gradient_penalty(
                    self.d_penalty, real, fake, eps=eps)
            self._d_update(loss)
        return (loss.detach(), losses.d_output_score(self.loss, r),
                losses.d_output_score(self.loss, f))

    def _g_step(self, fake: torch.Tensor) -> torch.Tensor:
        # G's backward needs no D weight gradients; the plain D (not DDP's) is used, since
        # DDP would wait for D gradients that never come.
        self.D.requires_grad_(False)
        with self._autocast():
            loss = losses.g_loss(self.loss, self.d_for_g(fake))
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_g.step()
        self.D.requires_grad_(True)
        return loss.detach()

    def train_epoch(self) -> torch.Tensor:
        """Train one epoch; returns per-iteration [d_loss, g_loss, D(x), D(G(z))] on the device."""
        d_steps, nz = self.p.d_steps, self.p.model.nz
        batch = self.data.epoch(self.rng)
        stats = torch.zeros(self.iters, 4, device=self.device)
        bar = tqdm(range(self.iters), desc=f"epoch {self.epoch + 1}/{self.p.train.epochs}",
                   unit="it", leave=False, mininterval=1.0, disable=not self.world.main)
        refresh = max(1, self.iters // 10)  # a host sync ~10 times an epoch, for the bar
        for it in bar:
            for k in range(d_steps):
                z = self.data.mine(torch.randn(self.batch_size, nz, generator=self.rng,
                                               device=self.device))
                with torch.set_grad_enabled(k == d_steps - 1), self._autocast():
                    fake = self.g_net(z)  # G's graph is kept only for the step G trains on
                d_loss, dx, dgz = self._d_step(batch(it * d_steps + k), fake)
                stats[it, [0, 2, 3]] += torch.stack([d_loss, dx, dgz]) / d_steps
            stats[it, 1] = self._g_step(fake)
            if (it + 1) % refresh == 0 and self.world.main:
                bar.set_postfix(dict(zip(COLUMNS, [round(v, 3) for v in stats[it].tolist()])))
        return distributed.mean(stats, self.world)

    # ------------------------------------------------------------------------ epochs
    def _state(self) -> dict[str, Any]:
        return {"G": self.G.state_dict(), "D": self.D.state_dict(),
                "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
                "rng": self.rng.get_state(), "global_rng": checkpoint.rng_state(),
                "fixed_noise": self.fixed_noise, "epoch": self.epoch,
                "history": self.history.state_dict(), "wall_time": self.wall_time,
                "best": self.best, "world_size": self.world.size}

    def _read_checkpoint(self) -> dict[str, Any] | None:
        """Rank 0 reads ``last.pt`` and hands it to every process (no shared disk needed)."""
        path = self.workdir / "last.pt"
        state = checkpoint.load(path) if self.world.main and path.is_file() else None
        return distributed.broadcast(state, self.world)

    def _resume(self) -> bool:
        """Load ``last.pt`` if this run was checkpointed before; False when starting fresh."""
        state = self._read_checkpoint()
        if state is None or state["epoch"] > self.p.train.epochs:
            return False  # nothing saved, or the earlier run went further than asked
        saved_world = state.get("world_size", 1)
        if state["epoch"] == self.p.train.epochs and saved_world != self.world.size:
            return False  # finished with another process count: train this one afresh
        if saved_world != self.world.size and self.world.main:
            print(f"train: checkpoint written by {saved_world} process(es), resuming with "
                  f"{self.world.size}: same data order and noise; batch-norm statistics are "
                  f"now over batches of {self.data.local}")
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.rng.set_state(state["rng"].cpu())
        checkpoint.set_rng_state(state["global_rng"])
        self.fixed_noise, self.epoch = state["fixed_noise"].to(self.device), state["epoch"]
        self.history, self.wall_time = History.from_state(state["history"]), state["wall_time"]
        self.best = state["best"]
        return True

    def _sample_grid(self) -> Path:
        """Rank 0 draws the fixed-noise grid of this epoch."""
        self.G.eval()
        with torch.no_grad(), self._autocast():
            images = self.G(self.fixed_noise)
        self.G.train()
        path = self.workdir / "grids" / f"epoch_{self.epoch:03d}.png"
        save_grid(images, path)
        return path

    def _end_epoch(self, stats: torch.Tensor, seconds: float, logger: EpochLogger | None) -> None:
        rows = stats.cpu()  # the one full sync of the epoch
        bad = (~torch.isfinite(rows)).any(dim=1).nonzero()
        if len(bad):
            it = int(bad[0])
            raise TrainingDiverged(
                f"non-finite loss at epoch {self.epoch + 1}, iteration {it + 1} "
                f"({dict(zip(COLUMNS, rows[it].tolist()))}); last good checkpoint kept at "
                f"{self.workdir / 'last.pt'}; lower the learning rates or try another loss")
        self.epoch += 1
        self.wall_time += seconds
        images = self.iters * self.p.d_steps * self.batch_size
        means = self.history.add_epoch(self.epoch, rows, images / seconds)
        if not self.world.main:
            return  # the others go on to the next epoch's first all-reduce and wait there
        grid = self._sample_grid()
        self._periodic_eval(means)
        checkpoint.save(self.workdir / "last.pt", self._state())
        if logger is not None:
            logger.log_epoch(self.epoch, means, grid)

    def _periodic_eval(self, means: dict[str, float]) -> None:
        """Every ``eval_every`` epochs (and at the end) score G; keep the best weights.

        GAN runs often peak and then collapse, so the last epoch is not always the one to keep.
        """
        every = self.p.train.eval_every
        if self.scorer is None or not every:
            return
        if self.epoch % every and self.epoch != self.p.train.epochs:
            return
        score = float(self.scorer(self.G))
        self.G.train()
        means["eval_fd"] = score
        if not self.best or score < self.best["score"]:
            self.best = {"epoch": self.epoch, "score": score}
            checkpoint.save_model(self.workdir / "best.pt", self.G, self.g_kwargs)

    def run(self, logger: EpochLogger | None = None) -> bool:
        """Train up to ``train.epochs``; returns True if it resumed from a checkpoint."""
        if self.world.main:
            self.workdir.mkdir(parents=True, exist_ok=True)
        resumed = self._resume()
        if resumed and self.world.main:
            print(f"train: resuming {self.workdir.name} after epoch {self.epoch}")
        while self.epoch < self.p.train.epochs:
            start = time.perf_counter()
            stats = self.train_epoch()
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            self._end_epoch(stats, time.perf_counter() - start, logger)
        return resumed

    def write_outputs(self, out: str | Path) -> dict[str, Any]:
        """Write weights, grids and loss CSVs into ``out`` (atomically); return the metrics."""
        with atomic.output_dir(out) as tmp:
            checkpoint.save_model(tmp / "generator.pt", self.G, self.g_kwargs)
            checkpoint.save_model(tmp / "discriminator.pt", self.D, self.d_kwargs)
            shutil.copytree(self.workdir / "grids", tmp / "grids")
            if self.best:
                t = self.p.train
                shutil.copyfile(self.workdir / "best.pt", tmp / "generator_best.pt")
                atomic.write_json(tmp / "best.json", {**self.best, "rule": (
                    f"lowest classifier-space Fréchet distance on {t.eval_samples} samples, "
                    f"checked every {t.eval_every} epoch(s) and at the end")})
            self.history.write_csvs(tmp / "plots")
        return self.metrics()

    def metrics(self) -> dict[str, Any]:
        """Final-epoch means, wall time and throughput, for metrics/train.json."""
        last = self.history.epochs[-1]
        return {**{k: last[k] for k in COLUMNS}, "epochs": self.epoch,
                "iterations": len(self.history.rows), "wall_time_s": round(self.wall_time, 3),
                "images_per_second": round(self.history.images_per_second(), 1),
                "device": str(self.device), "dtype": "bf16" if self.amp else "fp32",
                "processes": self.world.size,
                **({"best_epoch": self.best["epoch"], "best_eval_fd": self.best["score"]}
                   if self.best else {})}
