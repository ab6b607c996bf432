"""The domain classifier: a small CNN trained on the real data, whose features and class
probabilities make IS/FID-style scores meaningful on 28x28 grayscale, where InceptionV3
(trained on 299x299 ImageNet photos) cannot tell generators apart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm


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
