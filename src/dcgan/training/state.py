"""What a checkpoint holds, whether a run resumes from one, and when a run must stop.

A checkpoint is everything a resumed run needs to equal an uninterrupted one: both networks
and optimisers, every RNG (the loop's generator and the global ones), the fixed noise, the
loss history and the hooks' state. It holds only tensors, numbers and containers of them,
so it loads with ``weights_only=True``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from dcgan import checkpoint, distributed
from dcgan.distributed import World
from dcgan.errors import UserError
from dcgan.history import COLUMNS, History
from dcgan.training import workdir

if TYPE_CHECKING:
    from dcgan.training.loop import Trainer


class TrainingDiverged(UserError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""


def snapshot(trainer: Trainer) -> dict[str, Any]:
    """The training state after ``trainer.epoch`` epochs."""
    nets = trainer.nets
    return {"G": nets.G.state_dict(), "D": nets.D.state_dict(),
            "opt_g": nets.opt_g.state_dict(), "opt_d": nets.opt_d.state_dict(),
            "rng": trainer.rng.get_state(), "global_rng": checkpoint.rng_state(),
            "fixed_noise": trainer.fixed_noise, "epoch": trainer.epoch,
            "history": trainer.history.state_dict(), "wall_time": trainer.wall_time,
            "hooks": {h.name: h.state_dict() for h in trainer.hooks if h.name},
            "world_size": trainer.world.size}


def restore(trainer: Trainer, state: dict[str, Any]) -> None:
    """Put ``trainer`` (and its hooks) back where :func:`snapshot` left it."""
    nets = trainer.nets
    for module, key in ((nets.G, "G"), (nets.D, "D"), (nets.opt_g, "opt_g"),
                        (nets.opt_d, "opt_d")):
        module.load_state_dict(state[key])
    trainer.rng.set_state(state["rng"].cpu())
    checkpoint.set_rng_state(state["global_rng"])
    trainer.fixed_noise = state["fixed_noise"].to(trainer.device)
    trainer.epoch, trainer.wall_time = state["epoch"], state["wall_time"]
    trainer.history = History.from_state(state["history"])
    saved = state.get("hooks", {})
    for hook in trainer.hooks:
        if hook.name in saved:
            hook.load_state_dict(saved[hook.name])


def read_last(folder: Path, world: World) -> dict[str, Any] | None:
    """Rank 0 reads the newest good checkpoint and hands it to every process (no shared
    disk needed)."""
    return distributed.broadcast(workdir.load(folder) if world.main else None, world)


def shorter_folder(trainer: Trainer, saved: dict[str, Any]) -> dict[str, Any] | None:
    """A run asked for fewer epochs than its folder holds trains in ``epochs-<N>/`` inside it,
    so the longer run's checkpoints and grids stay whole; returns that folder's checkpoint."""
    longer = trainer.workdir
    trainer.workdir = longer / f"epochs-{trainer.epochs}"
    if trainer.world.main:
        trainer.workdir.mkdir(exist_ok=True)
        print(f"train: {longer} holds a longer run (epoch {saved['epoch']}), kept; "
              f"training {trainer.epochs} epochs in {trainer.workdir}")
    return read_last(trainer.workdir, trainer.world)


def resumable(state: dict[str, Any] | None, epochs: int, world: World) -> bool:
    """Whether a run asked for ``epochs`` epochs goes on from ``state``.

    Not when nothing was saved, when the saved run went further than asked, or when it
    finished with another process count (its last epochs' batch norm differed: retrain).
    """
    if state is None or state["epoch"] > epochs:
        return False
    return not (state["epoch"] == epochs and state.get("world_size", 1) != world.size)


def resume(trainer: Trainer) -> bool:
    """Load the run's ``last.pt`` into ``trainer`` when it can go on from it; say so."""
    saved, world = read_last(trainer.workdir, trainer.world), trainer.world
    if saved is not None and saved["epoch"] > trainer.epochs:
        saved = shorter_folder(trainer, saved)
    if not resumable(saved, trainer.epochs, world):
        if world.main:
            _say_fresh(trainer, saved)
        return False
    if saved.get("world_size", 1) != world.size and world.main:
        print(f"train: checkpoint written by {saved.get('world_size', 1)} process(es), "
              f"resuming with {world.size}: same data order and noise; batch-norm "
              f"statistics are now over batches of {trainer.data.local}")
    restore(trainer, saved)
    if world.main:
        print(f"train: resuming {trainer.workdir.name} after epoch {trainer.epoch}")
    return True


def _say_fresh(trainer: Trainer, saved: dict[str, Any] | None) -> None:
    """One line on why a run starts from scratch, when a user could expect a resume."""
    here = trainer.workdir
    if saved is not None:
        print(f"train: {here / workdir.LAST} is after epoch {saved['epoch']} of "
              f"{saved.get('world_size', 1)} process(es); training {trainer.epochs} epochs "
              f"from scratch")
        return
    if here.name.startswith("epochs-"):
        return  # a shorter run beside a longer one: shorter_folder said so
    others = [d for d in here.parent.iterdir() if d != here and (d / workdir.LAST).is_file()]
    if others:
        print(f"train: no checkpoint of run {here.name} yet, training from scratch; the "
              f"{len(others)} other run folder(s) in {here.parent} (other params, data or "
              f"training code) are kept")


def check_finite(rows: torch.Tensor, epoch: int, last: Path) -> None:
    """Stop on the first non-finite statistic of ``epoch``, naming where training can resume."""
    bad = (~torch.isfinite(rows)).any(dim=1).nonzero()
    if len(bad):
        it = int(bad[0])
        raise TrainingDiverged(
            f"non-finite loss at epoch {epoch}, iteration {it + 1} "
            f"({dict(zip(COLUMNS, rows[it].tolist()))}); last good checkpoint kept at "
            f"{last}; lower the learning rates or try another loss")
