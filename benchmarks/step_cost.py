"""Seconds per G step of the default recipe (params.yaml) at 28x28x1 and at 64x64x3.

    python benchmarks/step_cost.py [--threads 2] [--batch 64] [--steps 10]
    python benchmarks/step_cost.py --set model.ngf=32 --set model.ndf=16   # another recipe

One G step is ``train.d_steps`` D steps plus G's own, as the recipe trains; the data are
random images (the cost does not depend on them). Prints a table; run it alone, since
other jobs on the cores distort every number.
"""

from __future__ import annotations

import argparse
import time

import torch

from benchlib import REPO, Trainer, get, load_params, parse_set

SHAPES = ((1, 28), (3, 64))


def seconds_per_g_step(channels: int, size: int, batch: int, steps: int,
                       overrides: dict) -> tuple[float, int]:
    """(seconds per G step, D steps per G step) after one warm-up epoch."""
    params = load_params(REPO / "params.yaml", {**overrides, "train.batch_size": batch,
                                                "train.device": "cpu", "train.epochs": 1,
                                                "train.eval_every": 0})
    loss = get(params.loss)
    d_steps = loss.steps_per_g(params.train.d_steps)
    images = torch.rand(batch * d_steps * steps, channels, size, size) * 2 - 1
    trainer = Trainer(params, images)
    trainer.train_epoch()  # warm-up: allocator, oneDNN kernels
    start = time.perf_counter()
    trainer.train_epoch()
    return (time.perf_counter() - start) / trainer.iters, trainer.d_steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10, help="G steps timed per shape")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a params override (YAML value), e.g. model.ngf=32")
    args = parser.parse_args()
    overrides = parse_set(parser, args.set)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    recipe = ", ".join(args.set) or "default recipe"
    print(f"{recipe}, batch {args.batch}, CPU, {args.threads} thread(s), torch {torch.__version__}")
    print("| images | s per G step | D steps each | x 28x28 |\n|---|---|---|---|")
    base = None
    for channels, size in SHAPES:
        seconds, d_steps = seconds_per_g_step(channels, size, args.batch, args.steps,
                                              overrides)
        base = base or seconds
        print(f"| {size}x{size}x{channels} | {seconds:.3f} | {d_steps} | {seconds / base:.1f} |",
              flush=True)


if __name__ == "__main__":
    main()
