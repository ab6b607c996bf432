"""The MLflow run as a training hook (only the train stage imports this: it needs dcgan.training)."""

from __future__ import annotations

from typing import Any

from dcgan.tracking.runs import MlflowLogger
from dcgan.training.hooks import EpochEnd, Hook


class LogEpochs(Hook):
    """Each epoch's metrics and fixed-noise grid to the run; put it last, after the hooks
    whose metrics it should see."""

    def __init__(self, run: MlflowLogger):
        self.run = run

    def after_epoch(self, trainer: Any, end: EpochEnd) -> None:
        self.run.log_epoch(end.epoch, end.metrics, end.images.get("fixed_noise_grid"))
