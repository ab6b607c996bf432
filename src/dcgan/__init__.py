"""A reproducible DCGAN pipeline: data, models, losses, training and metrics.

The library imports neither dvc nor mlflow, so it runs on machines that only have
torch (GPU boxes, benchmarks); tracking lives in ``dcgan.tracking`` and ``stages/``.
"""

__version__ = "0.1.0"
