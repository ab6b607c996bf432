"""Stage `validate`: params.yaml checked before any other stage touches its outputs.

DVC deletes a stage's outputs just before it runs the stage, so a params value rejected
inside, say, the train stage would already have cost the last results. Every other stage
runs after this one (download depends on its output, the rest on download's), so a bad
value stops `dvc repro` / `dvc exp run` here with one line and every output as it was.
The output never changes while params.yaml is valid, so this stage reruns nothing else.
"""

from __future__ import annotations

import argparse

from dcgan.runnable import validate_stage
from dcgan.errors import run_stage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", default="data/params.ok")
    args = parser.parse_args()
    validate_stage(args.params, args.out)


if __name__ == "__main__":
    run_stage(main)
