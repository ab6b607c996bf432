"""Which recipe makes the best samples? Named param sets, a fixed G-step budget, one table.

A recipe is a set of params overrides (``RECIPES``). Each (data set, recipe, loss, seed)
trains one DCGAN for ``--steps`` G steps at ``--batch`` on one half of an IDX sample and is
scored in the domain classifier's space against the other half, which no G and no
classifier ever trains on: Inception-style score, Fréchet distance, KID, precision, recall,
classes covered, the class balance (largest deviation of a class's share from an even
one) and the share of near-copies of training images (``dcgan.memorisation``, in pixels).
The "floor" row scores the training half itself (its copies column: the real scoring
half's own near-copy rate, the reference for the others). The run samples from what the
pipeline's own outputs sample from (the EMA when the recipe turns it on, batch norm per
``train.sample_bn``). Needs torch only; prints a table, writes
``benchmarks/results/recipes-<device>-<date>.json``.

    python benchmarks/recipes.py                                    # every recipe, bce, mnist-5k
    python benchmarks/recipes.py --recipes baseline,default --losses bce,mse,hinge,wgan-gp
    python benchmarks/recipes.py --tiny                             # the CI smoke run
    python benchmarks/recipes.py --data fashion-900 --jsonl rows.jsonl   # a row per line as it ends
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import torch

from benchlib import REPO, Trainer, device_name, parse_set, slug
from dcgan import atomic, losses
from dcgan.classifier import DomainClassifier, epochs_for, fit
from dcgan.config import PAPER, load_params
from dcgan.data.download import download
from dcgan.data.preprocess import preprocess
from dcgan.data.prepared import load_meta, load_split, permutation
from dcgan.data.sources import parse_dataset, sample_dir
from dcgan.device import resolve_device
from dcgan.scoring import Settings, classifier_scores, samples_of
from dcgan.images import save_grid
from dcgan.memorisation import CopyCheck, Space

DATASETS = {name: sample_dir(name) for name in ("mnist-5k", "fashion-900")}  # built-in samples
# The defaults before each round of these runs, so every row stays reproducible as params.yaml
# moves on: the DCGAN paper's recipe (dcgan.config.PAPER: lr 2e-4, Adam betas 0.5/0.999,
# transposed convs, the paper's depth, one D step, no R1, no EMA), then round 1's (lr 1e-3),
# round 2's (depth 2, lazy R1) and round 3's (depth 4, resize-conv upsampling in G, betas
# 0/0.99, EMA 0.99, D at 32)
EMA_99 = {"train.ema": 0.99, "train.ema_start": 0}
BETAS0 = {"train.beta1": 0.0, "train.beta2": 0.99}
RESIZE = {"model.g_upsample": "resize"}
ROUND1 = {**PAPER, "train.lr_g": 0.001, "train.lr_d": 0.001}
ROUND2 = {**ROUND1, "model.extra_layers": 2, "train.r1": 1.0, "train.r1_every": 8}
ROUND3 = {**ROUND2, **BETAS0, **RESIZE, **EMA_99, "model.extra_layers": 4, "model.ndf": 32,
          "train.r1": "auto"}  # the loss's own (no R1 for wgan-gp), as params.yaml
WIDE_D = {"model.ndf": 64}
RECIPES = {  # name -> params overrides on top of params.yaml
    "default": {},  # params.yaml as it is
    "paper": PAPER,  # the DCGAN paper's recipe (what the write-ups ran)
    # round 1: the pytorch/examples recipe and what it lacks for 2,000 steps
    "baseline": {**PAPER, "train.sample_bn": "running"},
    "standing": {**PAPER, "train.sample_bn": "standing"},
    "ema": {**PAPER, "train.ema": 0.999, "train.ema_start": 500},
    "ema-0.99": {**PAPER, **EMA_99},
    "spectral": {**PAPER, "model.d_norm": "spectral"},
    "ttur": {**ROUND1, "train.lr_d": 0.0004, "train.lr_g": 0.0001},
    "diffaug": {**PAPER, "train.augment": "translation,cutout"},
    "diffaug-ema": {**PAPER, "train.augment": "translation,cutout", "train.ema": 0.999,
                    "train.ema_start": 500},
    "lr5e-4": {**ROUND1, "train.lr_g": 0.0005, "train.lr_d": 0.0005},
    "lr5e-4-ema": {**ROUND1, "train.lr_g": 0.0005, "train.lr_d": 0.0005, **EMA_99},
    "lr5e-4-dsteps2": {**ROUND1, "train.lr_g": 0.0005, "train.lr_d": 0.0005, "train.d_steps": 2},
    "lr1e-3": {**ROUND1},
    "lr2e-3": {**ROUND1, "train.lr_g": 0.002, "train.lr_d": 0.002},
    # round 2: depth, width and the R1 penalty, on round 1's lr 1e-3
    "ngf128": {**ROUND1, "model.ngf": 128},
    "ndf128": {**ROUND1, "model.ndf": 128},
    "depth1": {**ROUND1, "model.extra_layers": 1},
    "depth1-diffaug": {**ROUND1, "model.extra_layers": 1, "train.augment": "translation,cutout"},
    "depth2": {**ROUND1, "model.extra_layers": 2},
    "depth3": {**ROUND1, "model.extra_layers": 3},
    "depth4": {**ROUND1, "model.extra_layers": 4},
    "r1": {**ROUND2, "model.extra_layers": 0, "train.r1_every": 1},
    "depth2-r1": {**ROUND2, "train.r1_every": 1},
    "depth2-r1-gamma0.3": {**ROUND2, "train.r1": 0.3, "train.r1_every": 1},
    "depth2-r1-gamma3": {**ROUND2, "train.r1": 3.0, "train.r1_every": 1},
    "depth2-lazy-r1": ROUND2,  # the round-2 default (params.yaml)
    "depth2-lazy-r1-lr2e-3": {**ROUND2, "train.lr_g": 0.002, "train.lr_d": 0.002},
    "depth2-lazy-r1-lr2e-4": {**ROUND2, "train.lr_g": 0.0002, "train.lr_d": 0.0002},
    "depth4-lazy-r1": {**ROUND2, "model.extra_layers": 4},
    # round 3: EMA, Adam's betas and G's upsampling on round 2's default; depth and D's width
    "depth2-lazy-r1-ema": {**ROUND2, **EMA_99},
    "depth2-betas0": {**ROUND2, **BETAS0},
    "depth2-betas0-ema": {**ROUND2, **BETAS0, **EMA_99},
    "depth2-resize": {**ROUND2, **RESIZE},
    "depth2-resize-ema": {**ROUND2, **RESIZE, **EMA_99},
    "depth2-resize-betas0": {**ROUND2, **RESIZE, **BETAS0},
    "depth2-resize-betas0-ema": {**ROUND2, **RESIZE, **BETAS0, **EMA_99},
    "depth2-r1-gamma10-ema": {**ROUND2, **EMA_99, "train.r1": 10.0},
    "depth4-betas0": {**ROUND2, **BETAS0, "model.extra_layers": 4},
    "depth4-betas0-ema": {**ROUND2, **BETAS0, **EMA_99, "model.extra_layers": 4},
    "depth4-resize-betas0": {**ROUND3, **WIDE_D, "train.ema": "none"},
    "depth4-resize-betas0-ema": {**ROUND3, **WIDE_D},
    "depth4-resize-betas0-ema-gamma0.1": {**ROUND3, **WIDE_D, "train.r1": 0.1},
    "depth6-resize-betas0-ema": {**ROUND3, **WIDE_D, "model.extra_layers": 6},
    "depth4-resize-betas0-ema-ndf32": ROUND3,  # the round-3 default (params.yaml)
    "depth4-resize-betas0-ema-lr2e-3": {**ROUND3, **WIDE_D, "train.lr_g": 0.002,
                                        "train.lr_d": 0.002},
    "depth4-resize-betas0-ema-ndf16": {**ROUND3, "model.ndf": 16},
    "depth2-resize-betas0-ema-ndf32": {**ROUND3, "model.extra_layers": 2},
    # round 4: D steps and separate learning rates on round 3's default (its EMA rows: the
    # same recipe with --set train.ema=0.995 or 0.998)
    "ndf32-lrg2e-3": {**ROUND3, "train.lr_g": 0.002},
    "ndf32-lrg4e-3": {**ROUND3, "train.lr_g": 0.004},
    "ndf32-lrd2e-3": {**ROUND3, "train.lr_d": 0.002},
    "ndf32-dsteps2": {**ROUND3, "train.d_steps": 2},
    "ndf32-dsteps2-lrg2e-3": {**ROUND3, "train.d_steps": 2, "train.lr_g": 0.002},
    # the round-4 default (params.yaml; d_steps auto: 2, or 5 for wgan-gp)
    "ndf32-dsteps2-ema0.995": {**ROUND3, "train.d_steps": "auto", "train.ema": 0.995},
    # round 5: per-loss recipes on the round-4 default (mse and wgan-gp ran bce's), and more
    # D steps for the best loss
    "dsteps1": {"train.d_steps": 1},
    "dsteps3": {"train.d_steps": 3},
    "default-lr5e-4": {"train.lr_g": 0.0005, "train.lr_d": 0.0005},
    "dsteps2": {"train.d_steps": 2},
    "betas0-0.9-lr2e-4": {"train.lr_g": 0.0002, "train.lr_d": 0.0002, "train.beta2": 0.9},
    "r1-0.3": {"train.r1": 0.3},
    "r1-3": {"train.r1": 3.0},
    "ngf32": {"model.ngf": 32},  # a G a quarter the cost: more G steps in the quick run's time
    "augment-t": {"train.augment": "translation"},  # small data: D sees shifted images
    "augment-tc": {"train.augment": "translation,cutout"},
    # round 6: G and D at half width, 0.36x the default's cost per G step on 2 CPU cores
    # (what fits the quick run's 3 minutes)
    "ngf32-ndf16": {"model.ngf": 32, "model.ndf": 16},
}
TINY = {"model.ngf": 8, "model.ndf": 8, "model.nz": 16, "classifier.width": 4,
        "classifier.min_steps": 0, "classifier.epochs": 1}


def halves(source: Path, tmp: Path, classifier_overrides: dict, device: torch.device):
    """Preprocessed data split in two seeded halves: a prepared train folder, a scoring set,
    and a domain classifier trained on the train half."""
    params = load_params(REPO / "params.yaml", classifier_overrides)
    download(parse_dataset(f"idx:{source}"), tmp / "raw")
    preprocess(tmp / "raw", tmp / "all", seed=0)
    images, labels = load_split(tmp / "all", "train")
    order = permutation(len(images), seed=0)
    train, score = order[: len(order) // 2], order[len(order) // 2:]
    (tmp / "train").mkdir()
    torch.save({"images": images[train], "labels": labels[train]}, tmp / "train" / "train.pt")
    meta = load_meta(tmp / "all")
    meta["splits"] = {"train": {"count": len(train)}}
    atomic.write_json(tmp / "train" / "meta.json", meta)
    c = params.classifier
    torch.manual_seed(0)
    clf = DomainClassifier(nc=images.shape[1], num_classes=int(labels.max()) + 1, width=c.width)
    clf = fit(clf, images[train], labels[train], epochs=epochs_for(len(train), c.epochs,
              c.min_steps, c.batch_size), batch_size=c.batch_size, lr=c.lr, seed=0, device=device)
    return tmp / "train", images[train], images[score], clf.to(device)


def copy_check(data, device) -> CopyCheck:
    """Near-copies of the training half, against the scoring half's own rate."""
    _, train, score_half, clf = data
    from dcgan.classifier import outputs

    spaces = [Space("pixels", lambda x: x),
              Space("features", lambda x: outputs(clf, x, device).features)]
    return CopyCheck(train, score_half, spaces)


def scores(clf, candidate: torch.Tensor, reference: torch.Tensor, device) -> dict:
    """The table's numbers for ``candidate`` images against ``reference`` images."""
    s = classifier_scores(clf, candidate, reference, device,
                          Settings(is_splits=10, kid_subset_size=min(1000, len(reference)),
                                   pr_k=3, batch_size=500, seed=0))
    counts = list(s["class_histogram"].values())
    even = sum(counts) / len(counts)
    return {"IS": s["inception_score"]["mean"], "FD": s["frechet_distance"],
            "KID": s["kid"]["mean"], "precision": s["precision"], "recall": s["recall"],
            "classes": s["classes_covered"],
            "balance": max(abs(c / even - 1) for c in counts), "counts": counts}


def train_one(prepared: Path, workdir: Path, overrides: dict, steps: int, batch: int) -> Trainer:
    """Train for at least ``steps`` G steps (whole epochs) under ``overrides``: the training
    loop alone, with no checkpoints or grids to write (``workdir`` is unused)."""
    probe = load_params(REPO / "params.yaml", {**overrides, "train.batch_size": batch})
    n = load_meta(prepared)["splits"]["train"]["count"]
    d_steps = losses.get(probe.loss).steps_per_g(probe.train.d_steps)
    epochs = max(1, math.ceil(steps / ((n // batch) // d_steps)))
    params = load_params(REPO / "params.yaml", {**overrides, "train.batch_size": batch,
                                                "train.epochs": epochs, "train.eval_every": 0})
    trainer = Trainer(params, load_split(prepared, "train")[0])
    trainer.run()
    return trainer


def run_row(data, check: CopyCheck, name: str, overrides: dict, args, device, tmp: Path) -> dict:
    """Train and score one (recipe, loss, seed) on one data set."""
    prepared, _, score_half, clf = data
    start = time.perf_counter()
    trainer = train_one(prepared, tmp / f"{name}-{overrides['loss']}-{overrides['seed']}",
                        {**overrides, "train.device": str(device)}, args.steps, args.batch)
    wall = time.perf_counter() - start
    fake = samples_of(trainer.sampler(), len(score_half), trainer.p.model.nz, device, seed=1)
    if args.grids:
        seed = overrides["seed"]
        save_grid(fake[:100], Path(args.grids) / f"{name}-{overrides['loss']}-{seed}.png")
    copies, _ = check.score(fake)
    return {"G_steps": trainer.iters * trainer.epoch, "epochs": trainer.epoch,
            "wall_s": round(wall, 1), **scores(clf, fake, score_half, device),
            "copies": copies["pixels"]["share"], "copies_features": copies["features"]["share"]}


COLUMNS = ("data", "recipe", "loss", "seed", "G_steps", "IS", "FD", "KID", "precision",
           "recall", "classes", "balance", "copies", "wall_s")


def table(rows: list[dict]) -> str:
    """A markdown table of the rows."""
    def cell(v):
        return f"{v:.3f}" if isinstance(v, float) else str(v)
    lines = [" | ".join(COLUMNS), " | ".join("---" for _ in COLUMNS)]
    lines += [" | ".join(cell(r.get(c, "-")) for c in COLUMNS) for r in rows]
    return "\n".join(lines)


def _append(path: str | None, row: dict) -> None:
    if path:
        with open(path, "a") as f:
            f.write(json.dumps(row) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="mnist-5k", help=f"comma list of {', '.join(DATASETS)}")
    parser.add_argument("--recipes", default=",".join(RECIPES))
    parser.add_argument("--losses", default="bce")
    parser.add_argument("--seeds", default="0", help="comma list")
    parser.add_argument("--steps", type=int, default=2000, help="G steps per run (whole epochs)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="an override for every recipe (YAML value)")
    parser.add_argument("--tiny", action="store_true", help="a tiny model and budget (CI smoke)")
    parser.add_argument("--grids", metavar="DIR", help="save 100 samples of each row as a PNG")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    parser.add_argument("--jsonl", help="also append each row to this file as it ends")
    args = parser.parse_args()
    common = {**(TINY if args.tiny else {}), **parse_set(parser, args.set)}
    device = resolve_device("auto")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for data_name in args.data.split(","):
            work = Path(tmp) / data_name
            work.mkdir()
            data = halves(DATASETS[data_name], work, common, device)
            check = copy_check(data, device)
            rows.append({"data": data_name, "recipe": "floor (real train half)", "loss": "-",
                         "seed": "-", **scores(data[3], data[1], data[2], device),
                         "copies": check.reference()["pixels"]["share"],
                         "copies_features": check.reference()["features"]["share"]})
            _append(args.jsonl, rows[-1])
            for name in args.recipes.split(","):
                for loss in args.losses.split(","):
                    for seed in map(int, args.seeds.split(",")):
                        overrides = {**RECIPES[name], **common, "loss": loss, "seed": seed}
                        row = {"data": data_name, "recipe": name, "loss": loss, "seed": seed,
                               **run_row(data, check, name, overrides, args, device, work)}
                        rows.append(row)
                        _append(args.jsonl, row)
                        print(table([row]).splitlines()[-1], flush=True)
    print(table(rows))
    name = device_name(device)
    result = {"device": name, "date": dt.date.today().isoformat(), "torch": torch.__version__,
              "command": " ".join(sys.argv), "steps": args.steps, "batch": args.batch,
              "common_overrides": common, "recipes": {r: RECIPES[r] for r in args.recipes.split(",")},
              "rows": rows}
    path = Path(args.out) / f"recipes-{slug(name)}-{result['date']}.json"
    atomic.write_json(path, result)
    print(f"-> {path}")


if __name__ == "__main__":
    main()
