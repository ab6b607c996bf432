"""Stage `classifier`: the domain classifier on data/prepared (independent of `loss`).

Unlabelled data (a flat image folder) has no classes to learn: the stage then saves the same
network untrained, seeded, as a label-free feature space, and says so in its details.
"""

from __future__ import annotations

import argparse

import torch

from dcgan import atomic, checkpoint
from dcgan.classifier import DomainClassifier, accuracy, epochs_for, fit
from dcgan.config import load_params
from dcgan.device import resolve_device
from dcgan.data.prepared import check_scorable, heldout_split, hold_out, load_meta, load_split
from dcgan.errors import run_stage

UNLABELLED = ("the data has no labels: features of the classifier network untrained (seeded "
              "random weights), a label-free space for Fréchet distance, KID and precision/"
              "recall; the scores that need classes (Inception-style score, classes covered) "
              "are skipped")


def untrained(args: argparse.Namespace, params, meta: dict) -> None:
    """The label-free feature space: the classifier's network at its seeded initialisation."""
    torch.manual_seed(params.seed)
    kwargs = dict(nc=meta["image_shape"][0], num_classes=1, width=params.classifier.width)
    checkpoint.save_model(args.out, DomainClassifier(**kwargs).eval(), kwargs)
    atomic.write_json(args.details, {"labelled": False, "note": UNLABELLED,
                                     "train_count": meta["splits"]["train"]["count"]})
    print(f"classifier: {UNLABELLED} -> {args.out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--data", default="data/prepared")
    parser.add_argument("--out", default="data/classifier/classifier.pt")
    parser.add_argument("--details", default="data/classifier/details.json",
                        help="held-out accuracy, epochs, counts")
    args = parser.parse_args()
    params = load_params(args.params)
    c, meta = params.classifier, load_meta(args.data)
    # Evaluation needs enough real images: say so before training anything on too few
    # (evaluate's params are read, not depended on: they change nothing this stage writes).
    check_scorable(meta, params.evaluate.num_samples, params.evaluate.pr_k)
    if not meta["classes"]:
        untrained(args, params, meta)
        return
    images, labels = load_split(args.data, "train")
    heldout, note = heldout_split(args.data, meta)
    if heldout is None:  # no test/val split: hold out 10% of train (at least 1), by seed
        n = len(images)
        (images, labels), heldout = hold_out(images, labels, params.seed)
        note = "10% of train (the data has no test or val split)"
        if n < 10:
            note = f"1 of {n} train images (10% of so few is none; no test or val split)"
            print(f"classifier: holding out {note}")
    torch.manual_seed(params.seed)
    device = resolve_device(params.train.device)
    kwargs = dict(nc=meta["image_shape"][0], num_classes=len(meta["classes"]), width=c.width)
    epochs = epochs_for(len(images), c.epochs, c.min_steps, c.batch_size)
    model = fit(DomainClassifier(**kwargs), images, labels, epochs=epochs,
                batch_size=c.batch_size, lr=c.lr, seed=params.seed, device=device)
    acc = accuracy(model, *heldout, device)
    checkpoint.save_model(args.out, model.cpu(), kwargs)
    # Not a DVC metric: one more column would push `dvc metrics show` past 120 characters,
    # and the instrument's accuracy stays the same across the experiments it compares.
    atomic.write_json(args.details, {"accuracy": round(acc, 5), "heldout": note, "epochs": epochs,
                                     "heldout_count": len(heldout[0]), "train_count": len(images),
                                     "labelled": True})
    print(f"classifier: {acc:.2%} accuracy on {note} -> {args.out}")


if __name__ == "__main__":
    run_stage(main)
