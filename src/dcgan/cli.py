"""``dcgan``: the commands a user runs by hand, beside the DVC stages.

    dcgan sample [GENERATOR] [-n N] [--format grid|folder|interp]   images from a generator
    dcgan compare [--dataset D]                                      loss variants side by side
    dcgan runs [--dataset D]                                         every trained run
    dcgan writeup NAME [-S KEY=VALUE] [--queue]                      a write-up as an experiment
    dcgan tune [--losses L,L] [--trials N] [--storage URL]           a study per loss, same budget

The parsers live here and import nothing heavy, so ``dcgan --help`` answers at once; each
command imports its module (torch, mlflow) only when it runs. Errors are one line on stderr
and exit code 2, as in the stages.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from dcgan.errors import run_stage
from dcgan.tracking.runs import EXPERIMENT  # mlflow itself is imported only when a run is used

DEFAULT_OUT = {"grid": "reports/samples/grid.png", "folder": "reports/samples/images",
               "interp": "reports/samples/interp.png"}


def _sample(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sample", help="images from a trained generator: a grid, PNGs, a walk",
                       description="Images from a trained DCGAN generator. The default file "
                       "is what the run samples from (the EMA of G's weights when train.ema is on).")
    p.add_argument("generator", nargs="?", default="data/train/generator.pt",
                   help="checkpoint file, or an MLflow URI: runs:/<run id>/generator, "
                        "models:/<model id> (default: %(default)s)")
    p.add_argument("--format", choices=list(DEFAULT_OUT), default="grid",
                   help="grid: one PNG; folder: one PNG per image; interp: a latent walk "
                        "(strip PNG + GIF)")
    p.add_argument("-n", type=int, default=64, help="images (interp: steps); default 64")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="output path (default: reports/samples/grid.png, "
                                 "reports/samples/images/ or reports/samples/interp.png)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.set_defaults(target="dcgan.generate:run")


def _tracked(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", help="the runs' data set (default for compare: params.yaml's)")
    p.add_argument("--params", default="params.yaml", help="what the recipe column calls default")
    p.add_argument("--experiment", default=EXPERIMENT, help="MLflow experiment name")


def _compare(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="loss variants on one data set, from their MLflow runs",
                       description="Every loss variant on one data set, the mean and its 95% "
                       "Student-t interval over seeds, one row per budget and recipe (default, "
                       "or tuned by `dcgan tune`), and a verdict per pair of losses (Welch's "
                       "t-test on FD), from the finished, evaluated MLflow runs; "
                       "writes compare.md, grids.png and losses.png and logs them to MLflow.")
    _tracked(p)
    p.add_argument("--out", help="report folder (default: reports/compare/<data set's name>, "
                                 "e.g. reports/compare/mnist-5k for mnist-5k or idx:/data/mnist-5k)")
    p.set_defaults(target="dcgan.compare:run")


def _runs(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("runs", help="every training run with its budget and scores",
                       description="The training runs in MLflow, newest first: run id (for "
                       "runs:/<run id>/generator), name, status, data set, loss, seed, epochs, G "
                       "steps, batch, recipe, IS and FD, as a table within 120 columns.")
    _tracked(p)
    p.add_argument("--limit", type=int, default=30, help="newest runs to list (default 30)")
    p.set_defaults(target="dcgan.compare:list_runs")


def _writeup(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("writeup", help="run a write-up (configs/seeds.yaml) as an experiment",
                       description="Run a write-up exactly as configs/seeds.yaml says, on the "
                       "committed params.yaml (not the workspace's, which the last `dvc exp "
                       "run` rewrote): every param is passed as its own -S to dvc exp run, and "
                       "the full set is printed first.")
    p.add_argument("name", help="a write-up in configs/seeds.yaml, e.g. S002")
    p.add_argument("--queue", action="store_true", help="queue instead of running now "
                   "(always for a grid); start with `dvc queue start`")
    p.add_argument("-S", "--set", dest="extra", action="append", default=[],
                   metavar="KEY=VALUE", help="your own override, after the write-up's")
    p.add_argument("--seeds", default="configs/seeds.yaml")
    p.set_defaults(target="dcgan.writeups:run")


def _tune(sub: argparse._SubParsersAction) -> None:
    from dcgan.tuning.options import add_options  # argparse only: --help stays instant

    p = sub.add_parser("tune", help="an Optuna study per loss, every loss the same trial budget",
                       description="A hyperparameter study per loss (Optuna: seeded TPE, "
                       "Hyperband pruning on the periodic FD): each trial trains at a fixed "
                       "G-step budget on one half of the data and is scored against the other "
                       "half. Run the same command on several processes or machines (one "
                       "--storage) to share the work; rerun it to continue. docs/tuning.md.")
    add_options(p)
    p.set_defaults(target="dcgan.tuning.command:run")


def parser() -> argparse.ArgumentParser:
    """The ``dcgan`` parser with every subcommand."""
    top = argparse.ArgumentParser(prog="dcgan", description="A reproducible DCGAN pipeline: "
                                  "the commands beside `dvc repro` (docs/ has the rest).")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_sample, _compare, _runs, _writeup, _tune):
        add(sub)
    return top


def _main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if getattr(args, "format", None) and not args.out:
        args.out = DEFAULT_OUT[args.format]
    module, function = args.target.split(":")
    getattr(importlib.import_module(module), function)(args)


def main(argv: list[str] | None = None) -> None:
    """The ``dcgan`` console script."""
    run_stage(lambda: _main(argv if argv is not None else sys.argv[1:]))
