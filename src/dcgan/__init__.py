"""A reproducible DCGAN pipeline: data, models, losses, training and metrics.

The core (models, losses, training, metrics, data) imports neither dvc nor mlflow, so it
runs on machines that only have torch (GPU boxes, benchmarks); MLflow lives in the
``dcgan.tracking`` sub-package, used by ``stages/``.
"""

__version__ = "0.1.0"
