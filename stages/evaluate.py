"""Stage `evaluate`: the generator and a real-data floor, in classifier and InceptionV3 space.

Headline numbers go to metrics/eval/<row>.json (one file per row, so `dvc metrics show` prints
one row each); everything, histograms, near-copies and Inception numbers included, to
data/eval/details.json (with data/eval/nearest.png, the samples closest to a training image)
and to the training run in MLflow. The work is dcgan.evaluation.run.
"""

from __future__ import annotations

import argparse

from dcgan.config import load_params
from dcgan.errors import run_stage
from dcgan.evaluation import run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--data", default="data/prepared")
    parser.add_argument("--classifier", default="data/classifier/classifier.pt")
    parser.add_argument("--train", default="data/train")
    parser.add_argument("--metrics", default="metrics/eval", help="folder: one JSON per row")
    parser.add_argument("--out", default="data/eval", help="details.json and nearest.png")
    args = parser.parse_args()
    run(load_params(args.params), args.data, args.classifier, args.train, args.metrics, args.out)


if __name__ == "__main__":
    run_stage(main)
