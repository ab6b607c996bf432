"""Stage `classifier`: the domain classifier on data/prepared (independent of `loss`)."""

from __future__ import annotations

import argparse

import torch

from dcgan import atomic, checkpoint
from dcgan.classifier import DomainClassifier, accuracy, epochs_for, fit
from dcgan.config import load_params
from dcgan.device import resolve_device
from dcgan.data.prepared import heldout_split, hold_out, load_meta, load_split
from dcgan.errors import UserError, run_stage


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
    if not meta["classes"]:
        raise UserError(f"{args.data}: the data has no labels, so no domain classifier can be "
                        "trained; use a labelled source (one sub-folder per class)")
    images, labels = load_split(args.data, "train")
    heldout, note = heldout_split(args.data, meta)
    if heldout is None:  # no test/val split: hold out 10% of train, chosen by seed
        (images, labels), heldout = hold_out(images, labels, params.seed)
        note = "10% of train (the data has no test or val split)"
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
                                     "heldout_count": len(heldout[0]), "train_count": len(images)})
    print(f"classifier: {acc:.2%} accuracy on {note} -> {args.out}")


if __name__ == "__main__":
    run_stage(main)
