"""The train stage: checks before training, several processes when asked, the MLflow run, outputs.

``stages/train.py`` parses its arguments, takes the trainer lock (``dcgan.lock``, before
anything slow) and calls :func:`run`. With ``train.nproc > 1`` the stage relaunches itself
through torchrun's launcher, one process per GPU (or CPU processes with gloo); it also runs
as is under a user's own ``torchrun``.
"""

from __future__ import annotations

import sys
from argparse import Namespace
from pathlib import Path

import torch

from dcgan import atomic, checkpoint, distributed, results
from dcgan.classifier import DomainClassifier
from dcgan.config import Params
from dcgan.data.prepared import load_meta, load_split
from dcgan.device import resolve_device
from dcgan.errors import UserError
from dcgan.preflight import before_training
from dcgan.scoring import fd_scorer, take
from dcgan.training import workdir
from dcgan.training.batches import plan_batches
from dcgan.training.hooks import BestGenerator, Hook
from dcgan.training.identity import run_id
from dcgan.training.session import Session
from dcgan.training.workdir import RunFolder

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
    t = params.train
    every = eval_every(params, load_meta(data)["splits"]["train"]["count"])
    if not every:
        return []
    if not classifier.is_file():
        raise UserError(f"{classifier} not found: run `dvc repro classifier`, or set "
                        "train.eval_every: 0 to train without periodic evaluation")
    device = resolve_device(t.device)
    model = checkpoint.load_model(classifier, DomainClassifier).to(device)
    reference = take(load_split(data, "train")[0], t.eval_samples, params.seed)
    scorer = fd_scorer(model, reference, params.model.nz, device, params.seed + 1)
    rule = (f"lowest classifier-space Fréchet distance of what the run samples from, "
            f"{len(reference)} samples against as many training images, checked every "
            f"{every} epoch(s) and at the end")
    return [BestGenerator(scorer, "eval_fd", rule, every, folder)]


def resume_hint(params: Params, args: Namespace) -> str:
    """Where a failed run left its checkpoint, for the launcher's error line."""
    base = Path(args.workdir) / run_id(params, load_meta(args.data))
    found = workdir.newest(base)
    folder = RunFolder.place(base, found and found[1], params.train.epochs)
    found = workdir.newest(folder.path)
    if found is None:
        return "No epoch had finished, so there is no checkpoint: rerun to start again"
    path, epoch = found
    return f"{path} (epoch {epoch}) is intact: rerun `dvc repro train` to resume from it"


def launch(params: Params, args: Namespace) -> None:
    """Start ``train.nproc`` copies of the stage under torchrun's launcher, and wait."""
    from dcgan.losses import get

    t = params.train
    device = resolve_device(t.device)
    if device.type == "cuda" and t.nproc > torch.cuda.device_count():
        raise UserError(f"train.nproc {t.nproc} but {torch.cuda.device_count()} GPU(s) visible; "
                        "lower train.nproc")
    resolve_device(t.device, distributed.World(0, t.nproc))  # a pinned GPU fails here
    if t.sync_bn and device.type != "cuda":
        raise UserError(distributed.SYNC_BN_ON_CPU)
    plan_batches(get(params.loss), t, load_meta(args.data)["splits"]["train"]["count"], t.nproc)
    distributed.launch(t.nproc, sys.argv, lambda: resume_hint(params, args))


def say_budget(session: Session) -> None:
    """One line each on a batch smaller than asked and a budget below the recipe's need."""
    t, p = session.trainer, session.params.train
    if t.batch_size < p.batch_size:
        d = t.d_steps
        print(f"train: {len(t.data)} training images, fewer than train.batch_size "
              f"{p.batch_size}" + (f" x {d} D steps" if d > 1 else "") + ": each "
              f"epoch is {'one batch' if d == 1 else f'{d} batches'} of {t.batch_size}")
    steps = t.iters * p.epochs
    if steps < RECIPE_G_STEPS:
        need = -(-RECIPE_G_STEPS // t.iters)
        print(f"train: warning: {p.epochs} epoch(s) are {steps} G steps, below the "
              f"~{RECIPE_G_STEPS} the recipe needs for recognisable samples (docs/training.md); "
              f"expect blurs or one repeated shape, or set train.epochs to {need} or more")


def train(params: Params, args: Namespace, world: distributed.World) -> None:
    """Train in this process; rank 0 also writes the outputs and the MLflow run."""
    if not world.main:
        Session(params, args.data, args.workdir, world).run()
        return
    from dcgan.tracking import MlflowLogger

    tracker = MlflowLogger(params, load_meta(args.data))
    session = Session(params, args.data, args.workdir, world, tracker=tracker,
                      hooks=lambda f: best_generator(params, Path(args.classifier), args.data, f))
    for leftover in (args.out, args.metrics):  # of a run killed while writing them
        atomic.remove_leftovers(leftover)
    say_budget(session)
    with session.tracked():
        session.run()
        metrics = session.write_outputs(args.out)
        results.write("train", metrics, args.metrics, Path(args.out) / "details.json")
        tracker.finish(Path(args.out), metrics, session.trainer.sampler().cpu(), params.model.nz)
    if problem := tracker.problem():
        print(f"warning: {problem}", file=sys.stderr)
    print(f"train: {params.loss}, {metrics['epochs']} epochs ({metrics['iterations']} G steps), "
          f"{world.size} process(es), {metrics['images_per_second']:.0f} images/s on "
          f"{metrics['device']} -> {args.out}")


def run(params: Params, args: Namespace, holder: bool) -> None:
    """The stage, in a process that holds the trainer lock (``holder``) or shares it."""
    world = distributed.world_from_env()
    if holder:
        before_training(params, args.data)
    if params.train.nproc > 1 and not distributed.launched():
        launch(params, args)
        return
    try:
        train(params, args, world)
    finally:
        distributed.close()
