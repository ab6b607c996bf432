"""The MLflow run as a training hook (only the train stage imports this: it needs dcgan.training)."""

from __future__ import annotations

from typing import Any

from dcgan.tracking.runs import MlflowLogger
from dcgan.training.hooks import EpochEnd, Hook, grid_path


class LogEpochs(Hook):
    """Each epoch's metrics and fixed-noise grid to the run; put it last, after the hooks
    whose metrics it should see. It opens the run once training knows where it starts."""

    def __init__(self, run: MlflowLogger):
        self.run = run

    def before_run(self, trainer: Any) -> None:
        done = range(1, trainer.epoch + 1)  # what a resumed run's MLflow run may lack
        grids = {e: grid_path(trainer.workdir, e) for e in done}
        self.run.start(trainer.workdir, trainer.epoch, trainer.history.epochs,
                       {e: path for e, path in grids.items() if path.is_file()})

    def after_epoch(self, trainer: Any, end: EpochEnd) -> None:
        self.run.log_epoch(end.epoch, end.metrics, end.images.get("fixed_noise_grid"))
