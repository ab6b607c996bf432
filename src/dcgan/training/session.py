"""One training run from its folder to its outputs: the run's one owner.

``Session(params, prepared, root)`` resolves the run's folder once (:class:`RunFolder`:
``root/<run id>``, or ``root/<run id>/epochs-<N>`` beside a longer run), builds the trainer
and its hooks, decides whether to resume and says why not, opens and closes the run's
tracker (MLflow, when given), and writes the outputs: ``generator.pt`` (what the run samples
from: the EMA of G's weights when ``train.ema`` is on), ``generator_no_ema.pt`` (G's own
weights, when the EMA is on), ``discriminator.pt``, the hooks' files and the loss CSVs.
:meth:`Session.train_and_finish` is the whole train stage on rank 0: the budget lines,
training, the outputs and the headline metrics, the tracker's final logs and its close, one
closing line. The stage only builds the session.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import torch

from dcgan import atomic, checkpoint, distributed, results
from dcgan.config import Params
from dcgan.data.prepared import load_meta, load_split
from dcgan.device import resolve_device
from dcgan.distributed import World
from dcgan.errors import UserError
from dcgan.training import workdir
from dcgan.training.divergence import Diverged
from dcgan.training.history import COLUMNS
from dcgan.training.hooks import Hook, LogEpochs, standard
from dcgan.training.identity import run_id
from dcgan.training.loop import Trainer
from dcgan.training.workdir import RunFolder

RECIPE_G_STEPS = 1000  # docs/training.md: what the default recipe needs for legible samples


class TrainingDiverged(UserError):
    """Training left the rails (:mod:`.divergence`); the last good checkpoint is kept."""


class Session:
    """One run of ``params`` on the prepared data set ``prepared``, in a folder under ``root``.

    Args:
        params: Validated params.
        prepared: The preprocess stage's folder.
        root: The folder of run folders (``data/checkpoints``).
        world: This process's place among the training processes (default: alone).
        hooks: Hooks after the grid, before the checkpoint (e.g. a best-generator score), or
            a callable that makes them from the run folder (which only the session resolves).
        tracker: An MLflow logger (``dcgan.tracking.MlflowLogger``: ``start``, ``log_epoch``,
            ``finish``, ``end``, ``problem``) or None; the caller makes it, so this package
            never imports the tracking layer.
    """

    def __init__(self, params: Params, prepared: str | Path, root: str | Path,
                 world: World | None = None,
                 hooks: Sequence[Hook] | Callable[[RunFolder], Sequence[Hook]] = (),
                 tracker: Any = None):
        self.params, self.world, self.tracker = params, world or World(), tracker
        self.meta = load_meta(prepared)
        self.run_id = run_id(params, self.meta)
        distributed.init(self.world, resolve_device(params.train.device, self.world))
        self.folder, saved = self._open(Path(root) / self.run_id)
        extra = hooks(self.folder) if callable(hooks) else list(hooks)
        logger = [LogEpochs(tracker)] if tracker is not None else []
        images, _ = load_split(prepared, "train")
        self.trainer = Trainer(params, images, self.world,
                               [*standard(self.folder, *extra), *logger])
        self.resumed = self._resume(saved)

    def _open(self, base: Path) -> tuple[RunFolder, dict[str, Any] | None]:
        """The run folder and its newest good checkpoint, read by rank 0 and sent to all."""
        if not self.world.main:
            return distributed.broadcast(None, self.world)
        epochs = self.params.train.epochs
        saved = workdir.load(base) if base.is_dir() else None
        folder = RunFolder.place(base, saved and saved["epoch"], epochs)
        if folder.path != base:
            print(f"train: {base} holds a longer run (epoch {saved['epoch']}), kept; "
                  f"training {epochs} epochs in {folder.path}")
            saved = workdir.load(folder.path) if folder.path.is_dir() else None
        folder.path.mkdir(parents=True, exist_ok=True)
        return distributed.broadcast((folder, saved), self.world)

    def _resume(self, saved: dict[str, Any] | None) -> bool:
        """Load ``saved`` into the trainer when the run goes on from it; say so, or why not.

        Not when nothing was saved, or when the saved run finished with another process count
        (its last epochs' batch norm differed: retrain).
        """
        size, main = self.world.size, self.world.main
        if saved is None or (saved["epoch"] == self.params.train.epochs
                             and saved.get("world_size", 1) != size):
            if main:
                self._say_fresh(saved)
            return False
        if saved.get("world_size", 1) != size and main:
            print(f"train: checkpoint written by {saved.get('world_size', 1)} process(es), "
                  f"resuming with {size}: same data order and noise; batch-norm "
                  f"statistics are now over batches of {self.trainer.data.local}")
        self.trainer.load_state_dict(saved)
        if main:
            print(f"train: resuming {self.folder.path.name} after epoch {saved['epoch']}")
        return True

    def _say_fresh(self, saved: dict[str, Any] | None) -> None:
        """One line on why a run starts from scratch, when a user could expect a resume."""
        here = self.folder.path
        if saved is not None:
            print(f"train: {self.folder.last} is after epoch {saved['epoch']} of "
                  f"{saved.get('world_size', 1)} process(es); training "
                  f"{self.params.train.epochs} epochs from scratch")
            return
        if self.folder.beside_longer:
            return  # a shorter run beside a longer one: _open said so
        others = [d for d in here.parent.iterdir() if d != here and (d / workdir.LAST).is_file()]
        if others:
            print(f"train: no checkpoint of run {here.name} yet, training from scratch; the "
                  f"{len(others)} other run folder(s) in {here.parent} (other params, data or "
                  f"training code) are kept")

    def run(self) -> None:
        """Train up to ``train.epochs``; a run that leaves the rails stops with one line."""
        trainer = self.trainer
        if self.tracker is not None:
            done = range(1, trainer.epoch + 1)  # what a resumed run's MLflow run may lack
            grids = {epoch: self.folder.grid(epoch) for epoch in done
                     if self.folder.grid(epoch).is_file()}
            self.tracker.start(self.folder.mlflow_record, trainer.epoch, trainer.history.epochs,
                               grids, self.describe())
        try:
            trainer.run()
        except Diverged as err:
            train_params = self.params.train
            raise TrainingDiverged(f"{err}; {workdir.kept(self.folder.path)}; lower train.lr_g "
                                   f"and train.lr_d (now {train_params.lr_g:g}, "
                                   f"{train_params.lr_d:g}) or try another loss") from None

    def describe(self) -> str:
        """What this run is, in one sentence (the MLflow run's description)."""
        trainer, params = self.trainer, self.params
        steps = trainer.iters * params.train.epochs
        return (f"{params.loss} on {self.meta['dataset']}: {params.train.epochs} epochs = "
                f"{steps:,} G steps at batch {trainer.batch_size} ({trainer.d_steps} D step(s) "
                "each); grids, scores and the logged model are "
                + ("the EMA of G's weights" if trainer.ema is not None else "G's own weights"))

    @contextlib.contextmanager
    def tracked(self) -> Iterator[None]:
        """End the tracker's run when the block ends: FINISHED, or FAILED on any error."""
        try:
            yield
        except BaseException:
            if self.tracker is not None:
                self.tracker.end("FAILED")
            raise
        if self.tracker is not None:
            self.tracker.end()

    def say_budget(self) -> None:
        """One line each on a batch smaller than asked and a budget below the recipe's need."""
        trainer, train_params = self.trainer, self.params.train
        if trainer.batch_size < train_params.batch_size:
            d_steps = trainer.d_steps
            print(f"train: {len(trainer.data)} training images, fewer than train.batch_size "
                  f"{train_params.batch_size}" + (f" x {d_steps} D steps" if d_steps > 1 else "")
                  + ": each epoch is " + ("one batch" if d_steps == 1 else f"{d_steps} batches")
                  + f" of {trainer.batch_size}")
        steps = trainer.iters * train_params.epochs
        if steps < RECIPE_G_STEPS:
            need = -(-RECIPE_G_STEPS // trainer.iters)
            print(f"train: warning: {train_params.epochs} epoch(s) are {steps} G steps, below the "
                  f"~{RECIPE_G_STEPS} the recipe needs for recognisable samples "
                  f"(docs/training.md); expect blurs or one repeated shape, or set "
                  f"train.epochs to {need} or more")

    def train_and_finish(self, out: str | Path, metrics_file: str | Path) -> dict[str, Any]:
        """The train stage's work: train, then write the outputs into ``out`` and the headline
        to ``metrics_file`` (details beside the outputs), log the end to the tracker and close
        its run (FAILED on any error), and say what ran. Other ranks only train."""
        if not self.world.main:
            self.run()
            return {}
        for leftover in (out, metrics_file):  # of a run killed while writing them
            atomic.remove_leftovers(leftover)
        self.say_budget()
        with self.tracked():
            self.run()
            metrics = self.write_outputs(out)
            results.write("train", metrics, metrics_file, Path(out) / "details.json")
            if self.tracker is not None:
                self.tracker.finish(Path(out), metrics, self.trainer.sampler().cpu(),
                                    self.params.model.nz)
        if self.tracker is not None and (problem := self.tracker.problem()):
            print(f"warning: {problem}", file=sys.stderr)
        print(f"train: {self.params.loss}, {metrics['epochs']} epochs ({metrics['iterations']} "
              f"G steps), {self.world.size} process(es), {metrics['images_per_second']:.0f} "
              f"images/s on {metrics['device']} -> {out}")
        return metrics

    def write_outputs(self, out: str | Path) -> dict[str, Any]:
        """Write the generators, D, the hooks' files, the loss CSVs and the tracker's record
        into ``out`` as one atomic folder; return :meth:`metrics`."""
        trainer = self.trainer
        with atomic.output_dir(out) as tmp:
            # Saved ready to sample in eval mode (train.sample_bn), like every generator file
            checkpoint.save_model(tmp / "generator.pt", trainer.sampler(), trainer.g_kwargs)
            if trainer.ema is not None:
                checkpoint.save_model(tmp / "generator_no_ema.pt", trainer.sampler(trainer.G),
                                      trainer.g_kwargs)
            checkpoint.save_model(tmp / "discriminator.pt", trainer.D, trainer.nets.d_kwargs)
            for hook in trainer.hooks:
                hook.write_outputs(trainer, tmp)
            trainer.history.write_csvs(tmp / "plots")
            if self.folder.mlflow_record.is_file():  # lets `evaluate` log into this run
                shutil.copyfile(self.folder.mlflow_record, tmp / self.folder.mlflow_record.name)
        return self.metrics()

    def metrics(self) -> dict[str, Any]:
        """Final-epoch means, the budget, wall time, throughput and the hooks' numbers."""
        trainer = self.trainer
        last = trainer.history.epochs[-1]
        result = {**{k: last[k] for k in COLUMNS}, "epochs": trainer.epoch,
                  "iterations": len(trainer.history.rows), "batch_size": trainer.batch_size,
                  "d_steps": trainer.d_steps, "r1": trainer.r1, "run": self.run_id,
                  "exp": os.environ.get("DVC_EXP_NAME") or "workspace",
                  "wall_time_s": round(trainer.wall_time, 3),
                  "images_per_second": round(trainer.history.images_per_second(), 1),
                  "device": str(trainer.device), "dtype": "bf16" if trainer.amp else "fp32",
                  # CPU sums differ by thread count: bit-identical reruns need the same
                  "threads": torch.get_num_threads(),
                  "processes": self.world.size, "ema": trainer.ema is not None}
        for hook in trainer.hooks:
            result.update(hook.metrics())
        return result


def resume_hint(params: Params, prepared: str | Path, root: str | Path) -> str:
    """Where a failed run left its checkpoint, in :func:`workdir.kept`'s words, and what to do:
    a sentence of its own in the launcher's error line (which has no session)."""
    base = Path(root) / run_id(params, load_meta(prepared))
    found = workdir.newest(base)
    folder = RunFolder.place(base, found and found[1], params.train.epochs)
    kept = workdir.kept(folder.path)
    then = "start again" if workdir.newest(folder.path) is None else "resume from it"
    return f"{kept[0].upper()}{kept[1:]}: rerun `dvc repro train` to {then}"
