"""What is checked before work starts, so that nothing fails after it is done.

- :func:`validate_stage`: params.yaml, as every stage will load it, by the first DVC stage:
  DVC deletes a stage's outputs just before it runs that stage, so a value rejected inside,
  say, the train stage would already have cost the last results.
- :func:`before_training`: what only evaluation would find (too few real images to score,
  InceptionV3 weights that were asked for but are missing), by the train stage.
"""

from __future__ import annotations

from pathlib import Path

from dcgan import atomic
from dcgan.config import Params, load_params
from dcgan.data.prepared import check_scorable, load_meta


def check_inception(params: Params) -> None:
    """``evaluate.inception: true`` needs its weights: one line now if they are missing
    (``auto`` decides at evaluation and never fails)."""
    if params.evaluate.inception is True:
        from dcgan.inception import check_weights  # torch-fidelity: only when asked for

        check_weights(params.evaluate.inception_weights)


def validate_stage(path: str | Path, out: str | Path) -> None:
    """The validate stage: load ``path`` as every stage will and refuse what a later stage
    would, then write ``out``, whose content never changes (later stages depend on it for
    their order only, so a valid edit of params.yaml reruns nothing through it)."""
    params = load_params(path)
    check_inception(params)
    atomic.write_text(out, "params.yaml is valid\n")
    print(f"validate: {path} is valid")


def before_training(params: Params, data: str | Path) -> None:
    """The evaluation sets' sizes and the InceptionV3 weights, checked before training.
    Reads ``evaluate:`` params without depending on them in dvc.yaml: they change no
    training output, only whether the later stage can run."""
    e = params.evaluate
    check_scorable(load_meta(data), e.num_samples, e.pr_k)
    check_inception(params)
