"""The train stage: checks before training, several processes when asked, the session.

``stages/train.py`` parses its arguments, takes the trainer lock (``dcgan.lock``, before
anything slow) and calls :func:`run` with the tracker to use (this package never imports the
tracking layer). With ``train.nproc > 1`` the stage relaunches itself through torchrun's
launcher, one process per GPU (or CPU processes with gloo); it also runs as is under a user's
own ``torchrun``. What happens to a run, from its folder to its outputs, is the
:class:`Session`'s.
"""

from __future__ import annotations

import sys
from argparse import Namespace
from pathlib import Path
from typing import Any, Callable

import torch

from dcgan import checkpoint, distributed, losses
from dcgan.classifier import DomainClassifier
from dcgan.config import Params
from dcgan.data.prepared import load_meta, load_split
from dcgan.device import resolve_device
from dcgan.errors import UserError
from dcgan.preflight import before_training
from dcgan.scoring import fd_scorer, take
from dcgan.training.batches import plan_batches
from dcgan.training.hooks import BestGenerator, Hook
from dcgan.training.session import Session, resume_hint
from dcgan.training.workdir import RunFolder

# The periodic score's name in the epoch metrics and MLflow: a classifier-space Fréchet
# distance against a seeded subset of the *training* images, to pick the best checkpoint.
# Not the headline FD (the evaluate stage's ``scores/FD``, against held-out images).
PERIODIC_FD = "periodic_fd_vs_train"
RECIPE_G_STEPS = 1000  # docs/training.md: what the default recipe needs for legible samples
# train.eval_every: auto checks about this often. Each check samples train.eval_samples images
# and recomputes G's batch-norm statistics: on the quick run's 39-G-step epochs a check every
# epoch cost ~5 s against ~29 s of training (a 2-core CPU under load), and a best checkpoint
# to the nearest ~200 G steps serves as well (data sets of 50,000 images or more still check
# every epoch at batch 128)
EVAL_G_STEPS = 200


def eval_every(params: Params, train_count: int) -> int:
    """Epochs between periodic checks: ``train.eval_every``, or for ``auto`` the fewest
    whole epochs that reach :data:`EVAL_G_STEPS` G steps (0: off)."""
    from dcgan.losses import get

    t = params.train
    if t.eval_every is not None:
        return t.eval_every
    iters = plan_batches(get(params.loss), t, train_count, t.nproc).iters
    return max(1, -(-EVAL_G_STEPS // max(iters, 1)))


def best_generator(params: Params, classifier: Path, data: str, folder: RunFolder) -> list[Hook]:
    """The periodic-evaluation hook: classifier-space FD against a seeded train subset."""
    train_params = params.train
    every = eval_every(params, load_meta(data)["splits"]["train"]["count"])
    if not every:
        return []
    if not classifier.is_file():
        raise UserError(f"{classifier} not found: run `dvc repro classifier`, or set "
                        "train.eval_every: 0 to train without periodic evaluation")
    device = resolve_device(train_params.device)
    model = checkpoint.load_model(classifier, DomainClassifier).to(device)
    reference = take(load_split(data, "train")[0], train_params.eval_samples, params.seed)
    scorer = fd_scorer(model, reference, params.model.nz, device, params.seed + 1)
    rule = (f"lowest classifier-space Fréchet distance of what the run samples from, "
            f"{len(reference)} samples against as many training images, checked every "
            f"{every} epoch(s) and at the end")
    return [BestGenerator(scorer, PERIODIC_FD, rule, every, folder)]


def launch(params: Params, args: Namespace) -> None:
    """Start ``train.nproc`` copies of the stage under torchrun's launcher, and wait."""
    train_params = params.train
    device = resolve_device(train_params.device)
    if device.type == "cuda" and train_params.nproc > torch.cuda.device_count():
        raise UserError(f"train.nproc {train_params.nproc} but {torch.cuda.device_count()} GPU(s) "
                        "visible; lower train.nproc")
    # a pinned GPU fails here
    resolve_device(train_params.device, distributed.World(0, train_params.nproc))
    if train_params.sync_bn and device.type != "cuda":
        raise UserError(distributed.SYNC_BN_ON_CPU)
    images = load_meta(args.data)["splits"]["train"]["count"]
    plan_batches(losses.get(params.loss), train_params, images, train_params.nproc)
    distributed.launch(train_params.nproc, sys.argv,
                       lambda: resume_hint(params, args.data, args.workdir))


def run(params: Params, args: Namespace, holder: bool,
        tracker: Callable[[Params, dict[str, Any]], Any] | None = None) -> None:
    """The stage, in a process that holds the trainer lock (``holder``) or shares it.

    ``tracker(params, meta)`` makes rank 0's tracker (``dcgan.tracking.MlflowLogger``).
    """
    world = distributed.world_from_env()
    if holder:
        before_training(params, args.data)
    if params.train.nproc > 1 and not distributed.launched():
        launch(params, args)
        return
    try:
        logger = tracker(params, load_meta(args.data)) if tracker and world.main else None
        session = Session(params, args.data, args.workdir, world, tracker=logger,
                          hooks=lambda f: best_generator(params, Path(args.classifier),
                                                         args.data, f))
        session.train_and_finish(args.out, args.metrics)
    finally:
        distributed.close()
