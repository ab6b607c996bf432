"""Stage `train`: one DCGAN on data/prepared with params `loss`, `model`, `train`; resumable."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dcgan import atomic, checkpoint
from dcgan.classifier import DomainClassifier
from dcgan.config import Params, load_params
from dcgan.data.prepared import load_split
from dcgan.device import resolve_device
from dcgan.errors import UserError, run_stage
from dcgan.evaluate import fd_scorer, take
from dcgan.tracking import MlflowLogger
from dcgan.train import Scorer, Trainer


def make_scorer(params: Params, classifier: Path, data: str) -> Scorer | None:
    """Classifier-space FD against a seeded train subset, for the best checkpoint."""
    t = params.train
    if not t.eval_every:
        return None
    if not classifier.is_file():
        raise UserError(f"{classifier} not found: run `dvc repro classifier`, or set "
                        "train.eval_every: 0 to train without periodic evaluation")
    device = resolve_device(t.device)
    model = checkpoint.load_model(classifier, DomainClassifier).to(device)
    reference = take(load_split(data, "train")[0], t.eval_samples, params.seed)
    return fd_scorer(model, reference, params.model.nz, device, params.seed + 1)


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
    scorer = make_scorer(params, Path(args.classifier), args.data)
    trainer = Trainer(params, args.data, args.workdir, scorer)
    logger = MlflowLogger(trainer.workdir, params, trainer.meta)
    logger.start()
    try:
        trainer.run(logger)
        metrics = trainer.write_outputs(args.out)
        run_file = trainer.workdir / "mlflow_run.json"
        if run_file.is_file():  # lets `evaluate` log into this training run
            atomic.write_bytes(Path(args.out) / run_file.name, run_file.read_bytes())
        atomic.write_json(args.metrics, metrics)
        logger.finish(Path(args.out), metrics, trainer.G, params.model.nz)
    except BaseException:
        logger.end("FAILED")
        raise
    logger.end()
    if problem := logger.problem():
        print(f"warning: {problem}", file=sys.stderr)
    print(f"train: {params.loss}, {metrics['epochs']} epochs, "
          f"{metrics['images_per_second']:.0f} images/s on {metrics['device']} -> {args.out}")


if __name__ == "__main__":
    run_stage(main)
