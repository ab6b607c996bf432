"""What is checked before work starts, so that nothing fails after it is done.

- :func:`dcgan.runnable.validate_stage`: params.yaml, as every stage will load it, by the
  first DVC stage (everything a later stage would refuse from params and sources).
- :func:`before_training`: what only evaluation would find (too few real images to score,
  InceptionV3 weights that were asked for but are missing), by the train stage.
"""

from __future__ import annotations

from pathlib import Path

from dcgan.config import Params
from dcgan.data.prepared import check_scorable, load_meta


def check_inception(params: Params) -> None:
    """``evaluate.inception: true`` needs its weights: one line now if they are missing
    (``auto`` decides at evaluation and never fails)."""
    if params.evaluate.inception is True:
        from dcgan.inception import check_weights  # torch-fidelity: only when asked for

        check_weights(params.evaluate.inception_weights)


def before_training(params: Params, data: str | Path) -> None:
    """The evaluation sets' sizes and the InceptionV3 weights, checked before training.
    Reads ``evaluate:`` params without depending on them in dvc.yaml: they change no
    training output, only whether the later stage can run."""
    e = params.evaluate
    check_scorable(load_meta(data), e.num_samples, e.pr_k)
    check_inception(params)
