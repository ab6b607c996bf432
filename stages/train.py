"""Stage `train`: one DCGAN on data/prepared with params `loss`, `model`, `train`; resumable.

With ``train.nproc > 1`` it relaunches itself through torchrun's launcher, one process per
GPU (or CPU processes with gloo); it also runs as is under a user's own ``torchrun``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from dcgan import atomic, checkpoint, distributed, results
from dcgan.batches import plan_batches
from dcgan.classifier import DomainClassifier
from dcgan.config import Params, load_params
from dcgan.data.prepared import check_scorable, load_meta, load_split
from dcgan.device import resolve_device
from dcgan.errors import UserError, run_stage
from dcgan.evaluate import fd_scorer, take
from dcgan.tracking import MlflowLogger
from dcgan.tracking.hook import LogEpochs
from dcgan.training import BestGenerator, Hook, Trainer, run_id, standard, workdir
from dcgan.training.ema import EmaGenerator


def best_generator(params: Params, classifier: Path, data: str) -> list[Hook]:
    """The periodic-evaluation hook: classifier-space FD against a seeded train subset."""
    t = params.train
    if not t.eval_every:
        return []
    if not classifier.is_file():
        raise UserError(f"{classifier} not found: run `dvc repro classifier`, or set "
                        "train.eval_every: 0 to train without periodic evaluation")
    device = resolve_device(t.device)
    model = checkpoint.load_model(classifier, DomainClassifier).to(device)
    reference = take(load_split(data, "train")[0], t.eval_samples, params.seed)
    scorer = fd_scorer(model, reference, params.model.nz, device, params.seed + 1)
    rule = (f"lowest classifier-space Fréchet distance on {t.eval_samples} samples, "
            f"checked every {t.eval_every} epoch(s) and at the end")
    return [BestGenerator(scorer, "eval_fd", rule, t.eval_every)]


def preflight(params: Params, args: argparse.Namespace) -> None:
    """What would fail only after training, checked before it: the evaluation sets' sizes
    and the InceptionV3 weights. Reads ``evaluate:`` params without depending on them in
    dvc.yaml: they change no training output, only whether the later stage can run."""
    e = params.evaluate
    check_scorable(load_meta(args.data), e.num_samples, e.pr_k)
    if e.inception:
        from dcgan.inception import check_weights

        check_weights(e.inception_weights)


def resume_hint(params: Params, args: argparse.Namespace) -> str:
    """Where a failed run left its checkpoint, for the launcher's error line."""
    folder, epochs = Path(args.workdir) / run_id(params, load_meta(args.data)), params.train.epochs
    found = workdir.newest(folder)
    if found is not None and found[1] > epochs:  # a longer run's folder: this run trains inside
        folder = folder / f"epochs-{epochs}"
        found = workdir.newest(folder)
    if found is None:
        return "No epoch had finished, so there is no checkpoint: rerun to start again"
    path, epoch = found
    return f"{path} (epoch {epoch}) is intact: rerun `dvc repro train` to resume from it"


def launch(params: Params, args: argparse.Namespace) -> None:
    """Start ``train.nproc`` copies of this script under torchrun's launcher, and wait."""
    t = params.train
    device = resolve_device(t.device)
    if device.type == "cuda" and t.nproc > torch.cuda.device_count():
        raise UserError(f"train.nproc {t.nproc} but {torch.cuda.device_count()} GPU(s) visible; "
                        "lower train.nproc")
    resolve_device(t.device, distributed.World(0, t.nproc))  # a pinned GPU fails here
    if t.sync_bn and device.type != "cuda":
        raise UserError(distributed.SYNC_BN_ON_CPU)
    plan_batches(params, load_meta(args.data)["splits"]["train"]["count"], t.nproc)
    distributed.launch(t.nproc, [__file__, *sys.argv[1:]], lambda: resume_hint(params, args))


def train(params: Params, args: argparse.Namespace, world: distributed.World) -> None:
    """Train in this process; rank 0 also writes the outputs and the MLflow run."""
    t = params.train
    extra = [EmaGenerator(t.ema, t.ema_start)] if t.ema is not None and world.main else []
    if world.main:  # after the EMA: it scores what the run samples from
        extra += best_generator(params, Path(args.classifier), args.data)
    trainer = Trainer(params, args.data, args.workdir, world)
    if not world.main:
        trainer.run()
        return
    for leftover in (args.out, args.metrics):  # of a run killed while writing them
        atomic.remove_leftovers(leftover)
    if trainer.batch_size < params.train.batch_size:
        d = trainer.d_steps
        print(f"train: {len(trainer.data)} training images, fewer than train.batch_size "
              f"{params.train.batch_size}" + (f" x {d} D steps" if d > 1 else "") + ": each "
              f"epoch is {'one batch' if d == 1 else f'{d} batches'} of {trainer.batch_size}")
    logger = MlflowLogger(trainer.workdir, params, trainer.meta)  # opened by LogEpochs
    try:
        trainer.run([*standard(*extra), LogEpochs(logger)])
        metrics = trainer.write_outputs(args.out)
        run_file = trainer.workdir / "mlflow_run.json"
        if run_file.is_file():  # lets `evaluate` log into this training run
            atomic.write_bytes(Path(args.out) / run_file.name, run_file.read_bytes())
        results.write("train", metrics, args.metrics, Path(args.out) / "details.json")
        logger.finish(Path(args.out), metrics, trainer.sampler().cpu(), params.model.nz)
    except BaseException:
        logger.end("FAILED")
        raise
    logger.end()
    if problem := logger.problem():
        print(f"warning: {problem}", file=sys.stderr)
    print(f"train: {params.loss}, {metrics['epochs']} epochs, {world.size} process(es), "
          f"{metrics['images_per_second']:.0f} images/s on {metrics['device']} -> {args.out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--data", default="data/prepared")
    parser.add_argument("--workdir", default="data/checkpoints",
                        help="resumable checkpoints and per-epoch grids, one folder per run")
    parser.add_argument("--classifier", default="data/classifier/classifier.pt",
                        help="domain classifier for periodic evaluation (train.eval_every)")
    parser.add_argument("--out", default="data/train")
    parser.add_argument("--metrics", default="metrics/train.json")
    args = parser.parse_args()
    params = load_params(args.params)
    world = distributed.world_from_env()
    # One trainer per checkpoint folder: the lock's holder checks, launches or trains.
    with workdir.locked(args.workdir, world.main) as holder:
        if holder:
            preflight(params, args)
        if params.train.nproc > 1 and not distributed.launched():
            launch(params, args)
            return
        try:
            train(params, args, world)
        finally:
            distributed.close()


if __name__ == "__main__":
    run_stage(main)
