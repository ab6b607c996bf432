"""Stage `train`: one DCGAN on data/prepared with params `loss`, `model`, `train`; resumable."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dcgan import atomic
from dcgan.config import load_params
from dcgan.errors import run_stage
from dcgan.tracking import MlflowLogger
from dcgan.train import Trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--data", default="data/prepared")
    parser.add_argument("--workdir", default="data/checkpoints",
                        help="resumable checkpoints and per-epoch grids, one folder per run")
    parser.add_argument("--out", default="data/train")
    parser.add_argument("--metrics", default="metrics/train.json")
    args = parser.parse_args()
    params = load_params(args.params)
    trainer = Trainer(params, args.data, args.workdir)
    logger = MlflowLogger(trainer.workdir, params, trainer.meta)
    logger.start()
    try:
        trainer.run(logger)
        metrics = trainer.write_outputs(args.out)
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
