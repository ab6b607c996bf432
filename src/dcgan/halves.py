"""The fixed-budget protocol of ``benchmarks/recipes.py`` and ``dcgan tune``: one data set in
two seeded halves, a DCGAN trained for a fixed number of G steps on one, scored in the domain
classifier's space against the other, which no G and no classifier ever trains on.

Needs torch only (no dvc, no mlflow), so the benchmarks run on a bare GPU machine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from dcgan import atomic, losses
from dcgan.classifier import DomainClassifier, epochs_for, fit, outputs
from dcgan.config import Params, load_params
from dcgan.data.download import download
from dcgan.data.prepared import load_meta, load_split, permutation
from dcgan.data.preprocess import preprocess
from dcgan.data.sources import parse_dataset
from dcgan.memorisation import CopyCheck, Space
from dcgan.scoring import Settings, classifier_scores
from dcgan.training import Hook, Trainer


@dataclass
class Halves:
    """A prepared train half (folder), its images, the scoring half and the classifier."""

    prepared: Path
    train: torch.Tensor
    score: torch.Tensor
    classifier: DomainClassifier
    total: int  # images in the whole (preprocessed) data set


def halves(dataset: str, tmp: Path, params: Params, device: torch.device) -> Halves:
    """``dataset`` (a params ``dataset`` value, e.g. ``mnist-5k``)
    preprocessed and split in two seeded halves in ``tmp``, and a domain classifier (params
    ``classifier:``) trained on the train half."""
    download(parse_dataset(dataset), tmp / "raw")
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
    return Halves(tmp / "train", images[train], images[score], clf.to(device), len(images))


def copy_check(data: Halves, device: torch.device) -> CopyCheck:
    """Near-copies of the training half, against the scoring half's own rate."""
    spaces = [Space("pixels", lambda x: x),
              Space("features", lambda x: outputs(data.classifier, x, device).features)]
    return CopyCheck(data.train, data.score, spaces)


def scores(clf, candidate: torch.Tensor, reference: torch.Tensor, device) -> dict:
    """The benchmark's numbers for ``candidate`` images against ``reference`` images."""
    s = classifier_scores(clf, candidate, reference, device,
                          Settings(is_splits=10, kid_subset_size=min(1000, len(reference)),
                                   pr_k=3, batch_size=500, seed=0))
    counts = list(s["class_histogram"].values())
    even = sum(counts) / len(counts)
    return {"IS": s["inception_score"]["mean"], "FD": s["frechet_distance"],
            "KID": s["kid"]["mean"], "precision": s["precision"], "recall": s["recall"],
            "classes": s["classes_covered"],
            "balance": max(abs(c / even - 1) for c in counts), "counts": counts}


def budget_params(params_file: Path, prepared: Path, overrides: dict, steps: int,
                  batch: int) -> Params:
    """Params with ``overrides`` whose whole epochs make at least ``steps`` G steps at
    ``batch`` on the prepared set (no periodic evaluation: the caller adds its own hooks)."""
    probe = load_params(params_file, {**overrides, "train.batch_size": batch})
    n = load_meta(prepared)["splits"]["train"]["count"]
    d_steps = losses.get(probe.loss).steps_per_g(probe.train.d_steps)
    epochs = max(1, math.ceil(steps / max(1, (n // batch) // d_steps)))
    return load_params(params_file, {**overrides, "train.batch_size": batch,
                                     "train.epochs": epochs, "train.eval_every": 0})


def train_one(params: Params, prepared: Path, hooks: Sequence[Hook] = ()) -> Trainer:
    """Train ``params`` (from :func:`budget_params`) with the library's loop alone: no run
    folder, no checkpoints; ``hooks`` run after each epoch."""
    trainer = Trainer(params, load_split(prepared, "train")[0], hooks=hooks)
    trainer.run()
    return trainer
