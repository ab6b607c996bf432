"""Stage `evaluate`: the generator and a real-data floor, in classifier and InceptionV3 space.

Headline numbers go to metrics/eval/<row>.json (one file per row, so `dvc metrics show` prints
one row each); everything, histograms and Inception numbers included, to data/eval/details.json
and to the training run in MLflow.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dcgan import results
from dcgan.config import load_params
from dcgan.device import resolve_device
from dcgan.errors import run_stage
from dcgan.evaluation import evaluate
from dcgan.tracking import log_to_training_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--data", default="data/prepared")
    parser.add_argument("--classifier", default="data/classifier/classifier.pt")
    parser.add_argument("--train", default="data/train")
    parser.add_argument("--metrics", default="metrics/eval", help="folder: one JSON per row")
    parser.add_argument("--details", default="data/eval/details.json")
    args = parser.parse_args()
    params = load_params(args.params)
    result = evaluate(args.data, args.classifier, args.train, params,
                      resolve_device(params.train.device))
    results.write("eval", result, args.metrics, args.details)
    if problem := log_to_training_run(Path(args.train) / "mlflow_run.json", result):
        print(f"warning: {problem}", file=sys.stderr)
    g, f = result["generator"]["classifier"], result["floor"]["classifier"]
    classes = (f", IS {g['inception_score']['mean']:.2f} (floor {f['inception_score']['mean']:.2f}), "
               f"{g['classes_covered']} classes covered" if "inception_score" in g else
               " (no labels: class scores skipped)")
    print(f"evaluate: classifier FD {g['frechet_distance']:.3f} (floor {f['frechet_distance']:.3f})"
          f"{classes} -> {args.metrics}/, {args.details}")


if __name__ == "__main__":
    run_stage(main)
