"""Stage `train`: one DCGAN on data/prepared with params `loss`, `model`, `train`; resumable.

The work is dcgan.training.stage.run (the Session trains and finishes the run); this script
parses the arguments, takes the trainer lock first, before the heavy imports, so a second
trainer on the same folder is refused in a second, and hands it the MLflow tracker.
"""

from __future__ import annotations

import argparse
import os

from dcgan.config import load_params
from dcgan.errors import run_stage
from dcgan.lock import locked

# What Ctrl-C leaves: each finished epoch's checkpoint (data/checkpoints/<run>/last.pt)
INTERRUPTED = ("outputs were not written; the checkpoint of the last finished epoch is kept: "
               "rerun the same command to resume from it")


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
    with locked(args.workdir, main=os.environ.get("RANK", "0") == "0") as holder:
        from dcgan.tracking import MlflowLogger  # torch, mlflow's helpers: after the lock
        from dcgan.training.stage import run

        run(params, args, holder, tracker=MlflowLogger)


if __name__ == "__main__":
    run_stage(main, INTERRUPTED)
