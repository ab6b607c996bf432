"""Scoring generators against real data, and the real-data floor, with one code path.

Two feature spaces: the domain classifier (meaningful on 28x28 grayscale) and, optionally,
InceptionV3 through torch-fidelity (the literature's numbers). The floor scores real
held-out data against real train data with the same code, so it says what a perfect
generator would get at this sample size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from tqdm import tqdm

from dcgan import metrics
from dcgan.classifier import DomainClassifier, Outputs, outputs
from dcgan.data.prepared import permutation


@dataclass(frozen=True)
class Settings:
    """How scores are computed (from params ``evaluate:``)."""

    is_splits: int
    kid_subset_size: int
    pr_k: int
    batch_size: int
    seed: int
    labelled: bool = True  # False: the classifier is untrained (no labels), skip class scores


@torch.no_grad()
def samples_of(generator: torch.nn.Module, n: int, nz: int, device: torch.device, seed: int,
           batch_size: int = 500) -> torch.Tensor:
    """``n`` images from ``generator`` (eval mode) for seeded noise, on the CPU in [-1, 1]."""
    generator.to(device).eval()
    rng = torch.Generator(device).manual_seed(seed)
    chunks = []
    for start in tqdm(range(0, n, batch_size), desc="sample", leave=False, mininterval=1.0):
        z = torch.randn(min(batch_size, n - start), nz, generator=rng, device=device)
        chunks.append(generator(z).float().clamp(-1, 1).cpu())
    return torch.cat(chunks)


def noise_like(reference: torch.Tensor, seed: int) -> torch.Tensor:
    """Uniform noise in [-1, 1] shaped like ``reference``: the bottom row of every report."""
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(reference.shape, generator=gen) * 2 - 1


def classifier_scores(model: DomainClassifier, candidate: torch.Tensor,
                      reference: torch.Tensor | Outputs, device: torch.device,
                      s: Settings) -> dict[str, Any]:
    """Classifier-space scores of ``candidate`` images against ``reference`` images.

    Inception-style score from the class probabilities; Fréchet distance, KID and
    precision/recall (k-NN manifolds) in the penultimate features; the predicted-class
    histogram and the number of classes covered (mode collapse shows there). Without labels
    (``s.labelled`` False) only the feature-space scores: the class ones would be noise.
    ``reference`` may be its :class:`Outputs` already, for callers that score many
    candidates against one reference.
    """
    cand = outputs(model, candidate, device, s.batch_size)
    ref = reference if isinstance(reference, Outputs) else outputs(model, reference, device,
                                                                   s.batch_size)
    kid_mean, kid_std = metrics.kid(cand.features, ref.features, s.kid_subset_size, seed=s.seed)
    scores = {
        "frechet_distance": metrics.frechet_distance_features(cand.features, ref.features),
        "kid": {"mean": kid_mean, "std": kid_std},
        **metrics.precision_recall(ref.features, cand.features, k=s.pr_k),
    }
    if not s.labelled:
        return scores
    is_mean, is_std = metrics.inception_score(cand.probs, s.is_splits)
    counts = metrics.class_histogram(cand.probs, cand.probs.shape[1])
    return {"inception_score": {"mean": is_mean, "std": is_std}, **scores,
            "classes_covered": metrics.classes_covered(counts),
            "class_histogram": {str(i): c for i, c in enumerate(counts)}}


def take(images: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """A seeded random subset of at most ``n`` images, in shuffled order.

    Shuffled on purpose: data sets are often stored sorted by class, and the Inception-style
    score's splits are contiguous chunks, so a sorted set would score ~1 for every chunk.
    """
    keep = permutation(len(images), seed)[:n]
    return images[keep]


def real_sets(train: torch.Tensor, heldout: torch.Tensor | None, n: int,
              seed: int) -> tuple[torch.Tensor, torch.Tensor, str]:
    """The reference set and the floor's real candidate set, of equal size (at most ``n``).

    The reference is the held-out split and the floor's candidate a train subset; with no
    held-out split, two disjoint halves of train. Generated samples are scored against the
    same reference at the same size, so generator and floor rows compare like for like.
    """
    if heldout is not None:
        reference = take(heldout, n, seed)
        return reference, take(train, len(reference), seed + 1), "held-out split vs train"
    perm = permutation(len(train), seed)
    half = min(n, len(train) // 2)
    return (train[perm[:half]], train[perm[half:2 * half]],
            "half of train vs the other half (the data has no held-out split)")


def fd_scorer(model: DomainClassifier, reference: torch.Tensor, nz: int, device: torch.device,
              seed: int, batch_size: int = 500):
    """A training-time scorer: classifier-space Fréchet distance of ``len(reference)`` samples.

    The reference features are computed once; each call samples the same seeded noise.
    """
    ref = outputs(model, reference, device, batch_size).features

    def score(generator: torch.nn.Module) -> float:
        fake = samples_of(generator, len(reference), nz, device, seed, batch_size)
        return metrics.frechet_distance_features(outputs(model, fake, device, batch_size).features, ref)

    return score
