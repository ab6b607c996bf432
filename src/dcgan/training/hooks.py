"""What happens on rank 0 after each epoch, as hooks: the loop calls them and names none.

A hook overrides what it needs of :class:`Hook`. Stateful hooks (the best generator so far,
an EMA of G's weights) return their state from ``state_dict`` so that checkpoints hold it
and a resumed run goes on exactly; hooks that add files to the stage's output folder do so
in ``write_outputs``. Order matters: what changes a checkpoint's content runs before
:class:`Checkpoint`, and loggers run last (they see every metric the others added).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import torch

from dcgan import atomic, checkpoint
from dcgan.images import save_grid
from dcgan.training import state, workdir

if TYPE_CHECKING:
    from dcgan.training.loop import Trainer

Scorer = Callable[[torch.nn.Module], float]  # G -> score, lower is better (e.g. an FD)


@dataclass
class EpochEnd:
    """One finished epoch as the hooks see it; hooks may add metrics and images."""

    epoch: int
    metrics: dict[str, float]  # the epoch's means (d_loss, g_loss, ...) and throughput
    seconds: float
    images: dict[str, Path] = field(default_factory=dict)  # name -> PNG (for loggers)


class Hook:
    """Base class: every method is optional. ``name`` keys a hook's state in checkpoints."""

    name = ""

    def before_run(self, trainer: Trainer) -> None:
        """Called on rank 0 once the run is set up: resumed (``trainer.epoch`` > 0) or fresh."""

    def after_step(self, trainer: Trainer) -> None:
        """Called after every G step, on rank 0 only (keep it free of host syncs)."""

    def after_epoch(self, trainer: Trainer, end: EpochEnd) -> None:
        """Called after each epoch, on rank 0 only."""

    def state_dict(self) -> dict[str, Any] | None:
        """What a checkpoint must hold for this hook (None: stateless)."""
        return None

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s value on resume."""

    def write_outputs(self, trainer: Trainer, folder: Path) -> None:
        """Add this hook's files to the stage's output folder (written atomically as a whole)."""

    def metrics(self) -> dict[str, Any]:
        """Numbers for the stage's metrics file."""
        return {}


def grid_path(folder: Path, epoch: int) -> Path:
    """Where :class:`FixedNoiseGrid` keeps epoch ``epoch``'s grid in a run folder."""
    return folder / "grids" / f"epoch_{epoch:03d}.png"


class FixedNoiseGrid(Hook):
    """The fixed-noise grid of each epoch, ``<workdir>/grids/epoch_NNN.png``: comparable frames."""

    def after_epoch(self, trainer: Trainer, end: EpochEnd) -> None:
        path = grid_path(trainer.workdir, end.epoch)
        save_grid(trainer.generate(trainer.fixed_noise), path)
        end.images["fixed_noise_grid"] = path

    def write_outputs(self, trainer: Trainer, folder: Path) -> None:
        # Epochs 1..now only: a run folder that was trained further once holds later grids.
        (folder / "grids").mkdir()
        for epoch in range(1, trainer.epoch + 1):
            src = grid_path(trainer.workdir, epoch)
            shutil.copyfile(src, folder / "grids" / src.name)


class BestGenerator(Hook):
    """Score G every ``every`` epochs and at the end; keep the lowest-scoring weights.

    GAN runs often peak and then collapse, so the last epoch is not always the one to keep.
    The scorer and the words that describe it come from the caller: this hook knows no metric.

    Args:
        scorer: G -> score, lower is better.
        metric: The score's name in the epoch metrics (e.g. ``eval_fd``).
        rule: One sentence saying how the best was chosen (written to ``best.json``).
        every: Score every this many epochs (and at the last epoch).
    """

    name = "best"

    def __init__(self, scorer: Scorer, metric: str, rule: str, every: int):
        self.scorer, self.metric, self.rule, self.every = scorer, metric, rule, every
        self.best: dict[str, Any] = {}  # {"epoch", "score"} of the best so far

    def after_epoch(self, trainer: Trainer, end: EpochEnd) -> None:
        if end.epoch % self.every and end.epoch != trainer.epochs:
            return
        generator = trainer.sampler()  # what the run samples from (the EMA when on)
        score = float(self.scorer(generator))
        end.metrics[self.metric] = score
        if not self.best or score < self.best["score"]:
            self.best = {"epoch": end.epoch, "score": score}
            checkpoint.save_model(trainer.workdir / "best.pt", generator, trainer.nets.g_kwargs)

    def state_dict(self) -> dict[str, Any]:
        return dict(self.best)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = dict(state)

    def write_outputs(self, trainer: Trainer, folder: Path) -> None:
        if self.best:
            shutil.copyfile(trainer.workdir / "best.pt", folder / "generator_best.pt")
            atomic.write_json(folder / "best.json", {**self.best, "rule": self.rule})

    def metrics(self) -> dict[str, Any]:
        if not self.best:
            return {}
        return {"best_epoch": self.best["epoch"], f"best_{self.metric}": self.best["score"]}


class Checkpoint(Hook):
    """The full training state to ``<workdir>/last.pt`` after each epoch (atomically), the
    one before kept as ``prev.pt``."""

    def after_epoch(self, trainer: Trainer, end: EpochEnd) -> None:
        workdir.save(trainer.workdir, state.snapshot(trainer))


def standard(*extra: Hook) -> list[Hook]:
    """The grid, then ``extra`` (scores, EMA, ...), then the checkpoint that saves their state."""
    return [FixedNoiseGrid(), *extra, Checkpoint()]
