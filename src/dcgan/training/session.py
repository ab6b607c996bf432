"""One training run from its folder to its outputs: the run's one owner.

``Session(params, prepared, root)`` resolves the run's folder once (:class:`RunFolder`:
``root/<run id>``, or ``root/<run id>/epochs-<N>`` beside a longer run), builds the trainer
and its hooks, decides whether to resume and says why not, opens and closes the run's
tracker (MLflow, when given), and writes the outputs: ``generator.pt`` (what the run samples
from: the EMA of G's weights when ``train.ema`` is on), ``generator_no_ema.pt`` (G's own
weights, when the EMA is on), ``discriminator.pt``, the hooks' files and the loss CSVs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import torch

from dcgan import atomic, checkpoint, distributed, losses
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
        tracker: An MLflow logger (``dcgan.tracking.MlflowLogger``) or None.
    """

    def __init__(self, params: Params, prepared: str | Path, root: str | Path,
                 world: World | None = None,
                 hooks: Sequence[Hook] | Callable[[RunFolder], Sequence[Hook]] = (),
                 tracker: Any = None):
        self.params, self.world, self.tracker = params, world or World(), tracker
        self.loss = losses.get(params.loss)  # resolved once; the trainer passes it down
        self.meta = load_meta(prepared)
        self.run_id = run_id(params, self.meta)
        distributed.init(self.world, resolve_device(params.train.device, self.world))
        self.folder, saved = self._open(Path(root) / self.run_id)
        extra = hooks(self.folder) if callable(hooks) else list(hooks)
        logger = [LogEpochs(tracker)] if tracker is not None else []
        images, _ = load_split(prepared, "train")
        self.trainer = Trainer(params, images, self.loss, self.world,
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
        t = self.trainer
        if self.tracker is not None:
            done = range(1, t.epoch + 1)  # what a resumed run's MLflow run may lack
            self.tracker.start(self.folder.mlflow_record, t.epoch, t.history.epochs,
                               {e: self.folder.grid(e) for e in done if self.folder.grid(e).is_file()},
                               self.describe())
        try:
            t.run()
        except Diverged as err:
            p = self.params.train
            raise TrainingDiverged(f"{err}; {self.kept()}; lower train.lr_g and train.lr_d (now "
                                   f"{p.lr_g:g}, {p.lr_d:g}) or try another loss") from None

    def describe(self) -> str:
        """What this run is, in one sentence (the MLflow run's description)."""
        t, p = self.trainer, self.params
        return (f"{p.loss} on {self.meta['dataset']}: {p.train.epochs} epochs = "
                f"{t.iters * p.train.epochs:,} G steps at batch {t.batch_size} ({t.d_steps} D "
                f"step(s) each); grids, scores and the logged model are "
                + ("the EMA of G's weights" if t.ema is not None else "G's own weights"))

    def kept(self) -> str:
        """Where the run can resume from, in words (for error lines)."""
        found = workdir.newest(self.folder.path)
        if found is None:
            return "no epoch had finished, so there is no checkpoint yet"
        path, epoch = found
        return f"the last good checkpoint, {path} (epoch {epoch}), is kept"

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

    def write_outputs(self, out: str | Path) -> dict[str, Any]:
        """Write the generators, D, the hooks' files, the loss CSVs and the tracker's record
        into ``out`` as one atomic folder; return :meth:`metrics`."""
        t = self.trainer
        with atomic.output_dir(out) as tmp:
            # Saved ready to sample in eval mode (train.sample_bn), like every generator file
            checkpoint.save_model(tmp / "generator.pt", t.sampler(), t.g_kwargs)
            if t.ema is not None:
                checkpoint.save_model(tmp / "generator_no_ema.pt", t.sampler(t.G), t.g_kwargs)
            checkpoint.save_model(tmp / "discriminator.pt", t.D, t.nets.d_kwargs)
            for hook in t.hooks:
                hook.write_outputs(t, tmp)
            t.history.write_csvs(tmp / "plots")
            if self.folder.mlflow_record.is_file():  # lets `evaluate` log into this run
                shutil.copyfile(self.folder.mlflow_record, tmp / self.folder.mlflow_record.name)
        return self.metrics()

    def metrics(self) -> dict[str, Any]:
        """Final-epoch means, the budget, wall time, throughput and the hooks' numbers."""
        t = self.trainer
        last = t.history.epochs[-1]
        result = {**{k: last[k] for k in COLUMNS}, "epochs": t.epoch,
                  "iterations": len(t.history.rows), "batch_size": t.batch_size,
                  "d_steps": t.d_steps, "r1": t.r1, "run": self.run_id,
                  "exp": os.environ.get("DVC_EXP_NAME") or "workspace",
                  "wall_time_s": round(t.wall_time, 3),
                  "images_per_second": round(t.history.images_per_second(), 1),
                  "device": str(t.device), "dtype": "bf16" if t.amp else "fp32",
                  # CPU sums differ by thread count: bit-identical reruns need the same
                  "threads": torch.get_num_threads(),
                  "processes": self.world.size, "ema": t.ema is not None}
        for hook in t.hooks:
            result.update(hook.metrics())
        return result
