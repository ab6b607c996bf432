"""Tracking: MLflow runs for the stages, and the cross-run comparison read back from MLflow.

The only part of the package that imports mlflow (lazily); the core (models, losses,
training, metrics, data) never imports this sub-package.
"""

from dcgan.tracking.runs import (
    EXPERIMENT,
    MlflowLogger,
    import_mlflow,
    log_folder_to_training_run,
    log_evaluation,
    tracking_uri,
)

__all__ = ["EXPERIMENT", "MlflowLogger", "import_mlflow", "log_folder_to_training_run",
           "log_evaluation", "tracking_uri"]
