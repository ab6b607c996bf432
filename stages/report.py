"""Stage `report`: loss curves, D outputs, real next to generated, a GIF of the epochs, a summary."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import torch

from dcgan import atomic, checkpoint
from dcgan.config import load_params
from dcgan.data.prepared import load_meta, load_split
from dcgan.errors import run_stage
from dcgan.evaluate import sample, take
from dcgan.models import Generator
from dcgan.report import curves, progress_gif, real_vs_fake, summary
from dcgan.tracking import log_folder_to_training_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--data", default="data/prepared")
    parser.add_argument("--train", default="data/train")
    parser.add_argument("--train-metrics", default="metrics/train.json",
                        help="read when the train stage wrote no <train>/details.json")
    parser.add_argument("--eval", default="data/eval/details.json", help="evaluate's details")
    parser.add_argument("--out", default="data/report")
    args = parser.parse_args()
    params = load_params(args.params)
    train = Path(args.train)
    title = f"{load_meta(args.data)['dataset']} · {params.loss} · seed {params.seed}"
    grids = sorted((train / "grids").glob("epoch_*.png"))
    generator = checkpoint.load_model(train / "generator.pt", Generator)
    train_images = load_split(args.data, "train")[0]
    real = take(train_images, 64, params.seed)
    fake = sample(generator, len(real), generator.nz, torch.device("cpu"), params.seed)
    with atomic.output_dir(args.out) as tmp:
        curves(train / "plots", tmp, title)
        frames = progress_gif(grids, tmp / "progress.gif")
        shutil.copyfile(grids[-1], tmp / "final_grid.png")
        real_vs_fake(real, fake, tmp / "real_vs_fake.png")
        details = train / "details.json"  # every training number; metrics/ holds the headline
        numbers = json.loads((details if details.is_file() else Path(args.train_metrics)).read_text())
        best_samples = min(params.train.eval_samples, len(train_images))  # what the scorer took
        text = summary(title, numbers, json.loads(Path(args.eval).read_text()), best_samples)
        atomic.write_text(tmp / "summary.md", text)
    if problem := log_folder_to_training_run(train / "mlflow_run.json", Path(args.out), "report"):
        print(f"warning: {problem}", file=sys.stderr)
    print(f"report: {frames}-frame GIF, curves, real vs generated, summary -> {args.out}")


if __name__ == "__main__":
    run_stage(main)
