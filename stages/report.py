"""Stage `report`: loss curves, D outputs, real next to generated, a GIF of the epochs, a summary.

The work is dcgan.report.run.
"""

from __future__ import annotations

import argparse

from dcgan.config import load_params
from dcgan.errors import run_stage
from dcgan.report import run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--data", default="data/prepared")
    parser.add_argument("--train", default="data/train")
    parser.add_argument("--train-metrics", default="metrics/train.json",
                        help="read when the train stage wrote no <train>/details.json")
    parser.add_argument("--eval", default="data/eval", help="evaluate's outputs (details.json, "
                        "nearest.png)")
    parser.add_argument("--out", default="data/report")
    args = parser.parse_args()
    run(load_params(args.params), args.data, args.train, args.train_metrics, args.eval, args.out)


if __name__ == "__main__":
    run_stage(main)
