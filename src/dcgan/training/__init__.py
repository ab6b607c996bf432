"""Training one DCGAN: the networks, the two GAN steps, the epoch loop, its hooks, its folder.

``Session(params, prepared, root).run()`` trains one run in its folder under ``root``,
resuming from a checkpoint when the same run (:func:`run_id`) was interrupted, and
``write_outputs(out)`` leaves its files; :class:`Trainer` is the loop itself (no file I/O);
hooks do what happens after each epoch. Importing this package imports neither MLflow nor
DVC: the session takes a tracker object, written elsewhere (``dcgan.tracking``).
"""

from dcgan.training.hooks import BestGenerator, Checkpoint, EpochEnd, FixedNoiseGrid, Hook, Scorer, standard
from dcgan.training.identity import run_id
from dcgan.training.loop import Trainer
from dcgan.training.session import Session, TrainingDiverged
from dcgan.training.workdir import RunFolder

__all__ = ["BestGenerator", "Checkpoint", "EpochEnd", "FixedNoiseGrid", "Hook", "RunFolder",
           "Scorer", "Session", "Trainer", "TrainingDiverged", "run_id", "standard"]
