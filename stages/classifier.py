"""Stage `classifier`: the domain classifier on data/prepared (independent of `loss`).

The work is dcgan.classifier.run.
"""

from __future__ import annotations

import argparse

from dcgan.classifier import run
from dcgan.config import load_params
from dcgan.errors import run_stage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--data", default="data/prepared")
    parser.add_argument("--out", default="data/classifier/classifier.pt")
    parser.add_argument("--details", default="data/classifier/details.json",
                        help="held-out accuracy, epochs, counts")
    args = parser.parse_args()
    run(load_params(args.params), args.data, args.out, args.details)


if __name__ == "__main__":
    run_stage(main)
