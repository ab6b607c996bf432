"""Tracking: MLflow runs for the stages, and the cross-run comparison read back from MLflow.

The only part of the package that imports mlflow (lazily); the core (models, losses,
training, metrics, data) never imports this sub-package's mlflow-using code.
"""

from dcgan.tracking.attach import log_evaluation, log_folder_to_training_run
from dcgan.tracking.runs import EXPERIMENT, MlflowLogger, import_mlflow, tracking_uri

__all__ = ["EXPERIMENT", "MlflowLogger", "import_mlflow", "log_evaluation",
           "log_folder_to_training_run", "tracking_uri"]
