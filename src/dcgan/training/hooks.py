"""What happens on rank 0 after each epoch, as hooks: the loop calls them and names none.

A hook overrides what it needs of :class:`Hook`. Stateful hooks (the best generator so far)
return their state from ``state_dict`` so that checkpoints hold it and a resumed run goes on
exactly; hooks that add files to the stage's output folder do so in ``write_outputs``. Order
matters: what changes a checkpoint's content runs before :class:`Checkpoint`, and loggers run
last (they see every metric the others added). Hooks see the run through :class:`Run`, the
few things of the trainer they may use.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

import torch

from dcgan import atomic, checkpoint
from dcgan.images import save_grid
from dcgan.training import workdir
from dcgan.training.history import History
from dcgan.training.workdir import RunFolder

Scorer = Callable[[torch.nn.Module], float]  # G -> score, lower is better (e.g. an FD)


class Run(Protocol):
    """What a hook sees of the training run (:class:`dcgan.training.loop.Trainer` is one)."""

    epoch: int  # epochs finished
    epochs: int  # epochs asked for
    fixed_noise: torch.Tensor
    history: History

    def sampler(self) -> torch.nn.Module: ...  # a copy of what the run samples from, eval mode

    def generate(self, z: torch.Tensor) -> torch.Tensor: ...

    def state_dict(self) -> dict[str, Any]: ...

    @property
    def g_kwargs(self) -> dict[str, Any]: ...  # what rebuilds G from a file


@dataclass
class EpochEnd:
    """One finished epoch as the hooks see it; hooks may add metrics and images.

    ``metrics`` is the history's row of the epoch (``epoch``, the means of d_loss, g_loss, ...,
    throughput): what a hook adds there is kept in checkpoints with the rest of the history.
    """

    epoch: int
    metrics: dict[str, float]
    seconds: float
    images: dict[str, Path] = field(default_factory=dict)  # name -> PNG (for loggers)


class Hook:
    """Base class: every method is optional. ``name`` keys a hook's state in checkpoints."""

    name = ""

    def before_run(self, run: Run) -> None:
        """Called on rank 0 once the run is set up: resumed (``run.epoch`` > 0) or fresh."""

    def after_epoch(self, run: Run, end: EpochEnd) -> None:
        """Called after each epoch, on rank 0 only."""

    def state_dict(self) -> dict[str, Any] | None:
        """What a checkpoint must hold for this hook (None: stateless)."""
        return None

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s value on resume."""

    def write_outputs(self, run: Run, out: Path) -> None:
        """Add this hook's files to the stage's output folder (written atomically as a whole)."""

    def metrics(self) -> dict[str, Any]:
        """Numbers for the stage's metrics file."""
        return {}


class FixedNoiseGrid(Hook):
    """The fixed-noise grid of each epoch, ``<run folder>/grids/epoch_NNN.png``: comparable frames."""

    def __init__(self, folder: RunFolder):
        self.folder = folder

    def after_epoch(self, run: Run, end: EpochEnd) -> None:
        path = self.folder.grid(end.epoch)
        save_grid(run.generate(run.fixed_noise), path)
        end.images["fixed_noise_grid"] = path

    def write_outputs(self, run: Run, out: Path) -> None:
        # Epochs 1..now only: a run folder that was trained further once holds later grids.
        (out / "grids").mkdir()
        for epoch in range(1, run.epoch + 1):
            src = self.folder.grid(epoch)
            shutil.copyfile(src, out / "grids" / src.name)


class BestGenerator(Hook):
    """Score what the run samples from every ``every`` epochs and at the end; keep the best.

    GAN runs often peak and then collapse, so the last epoch is not always the one to keep.
    The scorer and the words that describe it come from the caller: this hook knows no metric.

    Args:
        scorer: G -> score, lower is better.
        metric: The score's name in the epoch metrics (e.g. ``periodic_fd_vs_train``).
        rule: One sentence saying how the best was chosen (written to ``best.json``).
        every: Score every this many epochs (and at the last epoch).
        folder: The run folder, where ``best.pt`` is kept.
    """

    name = "best"

    def __init__(self, scorer: Scorer, metric: str, rule: str, every: int, folder: RunFolder):
        self.scorer, self.metric, self.rule, self.every = scorer, metric, rule, every
        self.folder = folder
        self.best: dict[str, Any] = {}  # {"epoch", "score"} of the best so far

    def after_epoch(self, run: Run, end: EpochEnd) -> None:
        if end.epoch % self.every and end.epoch != run.epochs:
            return
        generator = run.sampler()
        score = float(self.scorer(generator))
        end.metrics[self.metric] = score
        if not self.best or score < self.best["score"]:
            self.best = {"epoch": end.epoch, "score": score}
            checkpoint.save_model(self.folder.best, generator, run.g_kwargs)

    def state_dict(self) -> dict[str, Any]:
        return dict(self.best)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = dict(state)

    def write_outputs(self, run: Run, out: Path) -> None:
        if self.best:
            shutil.copyfile(self.folder.best, out / "generator_best.pt")
            atomic.write_json(out / "best.json", {**self.best, "rule": self.rule})

    def metrics(self) -> dict[str, Any]:
        if not self.best:
            return {}
        return {"best_epoch": self.best["epoch"], f"best_{self.metric}": self.best["score"]}


class Checkpoint(Hook):
    """The full training state to ``last.pt`` after each epoch (atomically), the one before
    kept as ``prev.pt``."""

    def __init__(self, folder: RunFolder):
        self.folder = folder

    def after_epoch(self, run: Run, end: EpochEnd) -> None:
        workdir.save(self.folder, run.state_dict())


class LogEpochs(Hook):
    """Each epoch's numbers and grid to a tracker (``log_epoch(epoch, metrics, grid)``, e.g.
    ``dcgan.tracking.MlflowLogger``); put it last, so that it sees every hook's metrics."""

    def __init__(self, tracker: Any):
        self.tracker = tracker

    def after_epoch(self, run: Run, end: EpochEnd) -> None:
        numbers = {k: v for k, v in end.metrics.items() if k != "epoch"}
        self.tracker.log_epoch(end.epoch, numbers, end.images.get("fixed_noise_grid"))


def standard(folder: RunFolder, *extra: Hook) -> list[Hook]:
    """The grid, then ``extra`` (scores, ...), then the checkpoint that saves their state."""
    return [FixedNoiseGrid(folder), *extra, Checkpoint(folder)]
