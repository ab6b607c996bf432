"""The domain classifier: a small CNN trained on the real data, whose features and class
probabilities make IS/FID-style scores meaningful on 28x28 grayscale, where InceptionV3
(trained on 299x299 ImageNet photos) cannot tell generators apart.

:func:`run` is the classifier stage. Unlabelled data (a flat image folder) has no classes to
learn: the stage then saves the same network untrained, seeded, as a label-free feature
space, and says so in its details.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from dcgan import atomic, checkpoint
from dcgan.config import Params
from dcgan.data.prepared import check_scorable, heldout_split, hold_out, load_meta, load_split
from dcgan.device import resolve_device

UNLABELLED = ("the data has no labels: features of the classifier network untrained (seeded "
              "random weights), a label-free space for Fréchet distance, KID and precision/"
              "recall; the scores that need classes (Inception-style score, classes covered) "
              "are skipped")


def _block(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]


class DomainClassifier(nn.Module):
    """conv-conv-pool twice, a wider conv, global average pool -> features -> class logits.

    Shapes for a 28x28 input and width w::

        (nc, 28, 28) -> conv w, conv w, pool  -> (w, 14, 14)
                     -> conv 2w, conv 2w, pool -> (2w, 7, 7)
                     -> conv 4w, avg pool      -> (4w,)  = features()
                     -> dropout, linear        -> (num_classes,) logits
    """

    def __init__(self, *, nc: int = 1, num_classes: int = 10, width: int = 16):
        super().__init__()
        w = width
        self.body = nn.Sequential(
            *_block(nc, w), *_block(w, w), nn.MaxPool2d(2),
            *_block(w, 2 * w), *_block(2 * w, 2 * w), nn.MaxPool2d(2),
            *_block(2 * w, 4 * w), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(4 * w, num_classes))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features (N, 4 * width): the space Fréchet distance etc. are measured in."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


@dataclass
class Outputs:
    """Class probabilities and penultimate features of a set of images."""

    probs: torch.Tensor
    features: torch.Tensor


@torch.no_grad()
def outputs(model: DomainClassifier, images: torch.Tensor, device: torch.device,
            batch_size: int = 500) -> Outputs:
    """Run ``model`` (eval mode) over ``images`` in batches; results on the CPU in float32."""
    model.eval()
    probs, feats = [], []
    for start in range(0, len(images), batch_size):
        x = images[start:start + batch_size].to(device, non_blocking=True)
        f = model.features(x)
        feats.append(f.float().cpu())
        probs.append(F.softmax(model.head(f).float(), dim=1).cpu())
    return Outputs(torch.cat(probs), torch.cat(feats))


def accuracy(model: DomainClassifier, images: torch.Tensor, labels: torch.Tensor,
             device: torch.device) -> float:
    """Top-1 accuracy on a labelled set."""
    return (outputs(model, images, device).probs.argmax(1) == labels).float().mean().item()


def epochs_for(n: int, epochs: int, min_steps: int, batch_size: int) -> int:
    """``epochs``, or more for a small set: enough to take ``min_steps`` optimizer steps."""
    return max(epochs, math.ceil(min_steps / math.ceil(n / batch_size)))


def fit(model: DomainClassifier, images: torch.Tensor, labels: torch.Tensor, *, epochs: int,
        batch_size: int, lr: float, seed: int, device: torch.device) -> DomainClassifier:
    """Train with Adam and cross-entropy, shuffling by ``seed`` (deterministic on CPU)."""
    # channels_last: oneDNN's (CPU) and cuDNN's fastest convolution layout; 1.5x per step
    # on the 2-core CPU (benchmarks/NOTES.md). Weights save the same in either layout.
    model.to(device, memory_format=torch.channels_last).train()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    # Cosine decay to zero: a high starting rate converges in few steps, and the last steps
    # settle, so small data sets get a confident classifier in a few hundred steps.
    steps = epochs * math.ceil(len(images) / batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    gen = torch.Generator().manual_seed(seed)
    data = images.to(device).contiguous(memory_format=torch.channels_last)
    targets = labels.to(device)
    for epoch in range(epochs):
        perm = torch.randperm(len(data), generator=gen).to(device)
        bar = tqdm(range(0, len(data), batch_size), desc=f"classifier {epoch + 1}/{epochs}",
                   leave=False, mininterval=1.0)
        for start in bar:
            idx = perm[start:start + batch_size]
            loss = F.cross_entropy(model(data[idx]), targets[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            schedule.step()
    return model.eval()


def _untrained(params: Params, meta: dict, out: Path, details: Path) -> None:
    """The label-free feature space: the classifier's network at its seeded initialisation."""
    torch.manual_seed(params.seed)
    kwargs = dict(nc=meta["image_shape"][0], num_classes=1, width=params.classifier.width)
    checkpoint.save_model(out, DomainClassifier(**kwargs).eval(), kwargs)
    atomic.write_json(details, {"labelled": False, "note": UNLABELLED,
                                "train_count": meta["splits"]["train"]["count"]})
    print(f"classifier: {UNLABELLED} -> {out}")


def run(params: Params, data: str | Path, out: str | Path, details: str | Path) -> None:
    """The stage: train on the train split, score on the held-out one (or 10% of train)."""
    c, meta = params.classifier, load_meta(data)
    # Evaluation needs enough real images: say so before training anything on too few
    # (evaluate's params are read, not depended on: they change nothing this stage writes).
    check_scorable(meta, params.evaluate.num_samples, params.evaluate.pr_k)
    if not meta["classes"]:
        return _untrained(params, meta, Path(out), Path(details))
    images, labels = load_split(data, "train")
    heldout, note = heldout_split(data, meta)
    if heldout is None:  # no test/val split: hold out 10% of train (at least 1), by seed
        n = len(images)
        (images, labels), heldout = hold_out(images, labels, params.seed)
        note = "10% of train (the data has no test or val split)"
        if n < 10:
            note = f"1 of {n} train images (10% of so few is none; no test or val split)"
            print(f"classifier: holding out {note}")
    torch.manual_seed(params.seed)
    kwargs = dict(nc=meta["image_shape"][0], num_classes=len(meta["classes"]), width=c.width)
    epochs = epochs_for(len(images), c.epochs, c.min_steps, c.batch_size)
    model = fit(DomainClassifier(**kwargs), images, labels, epochs=epochs,
                batch_size=c.batch_size, lr=c.lr, seed=params.seed,
                device=resolve_device(params.train.device))
    acc = accuracy(model, *heldout, resolve_device(params.train.device))
    checkpoint.save_model(out, model.cpu(), kwargs)
    # Not a DVC metric: one more column would push `dvc metrics show` past 120 characters,
    # and the instrument's accuracy stays the same across the experiments it compares.
    atomic.write_json(details, {"accuracy": round(acc, 5), "heldout": note, "epochs": epochs,
                                "heldout_count": len(heldout[0]), "train_count": len(images),
                                "labelled": True})
    print(f"classifier: {acc:.2%} accuracy on {note} -> {out}")
