"""Training one DCGAN: the networks, the two GAN steps, the epoch loop, its hooks and state.

``Trainer(params, prepared, workdir).run(hooks)`` trains, resuming from a checkpoint when
the same run (:func:`run_id`) was interrupted; hooks do what happens after each epoch.
This package imports neither MLflow nor DVC: trackers are hooks written elsewhere.
"""

from dcgan.training.hooks import BestGenerator, Checkpoint, EpochEnd, FixedNoiseGrid, Hook, Scorer, standard
from dcgan.training.identity import run_id
from dcgan.training.loop import Trainer
from dcgan.training.state import TrainingDiverged

__all__ = ["BestGenerator", "Checkpoint", "EpochEnd", "FixedNoiseGrid", "Hook", "Scorer",
           "Trainer", "TrainingDiverged", "run_id", "standard"]
