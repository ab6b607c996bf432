"""Sample-quality metrics on feature vectors and class probabilities (pure functions).

Features are ``(N, D)`` tensors (e.g. a classifier's penultimate layer), probabilities are
``(N, C)`` tensors whose rows sum to 1. Inputs may live on any device and have any float
dtype; the statistics are computed in float64 so that results do not depend on the
precision the features were extracted in, and every metric returns plain python floats.

=====================  ============================================  ==================
metric                 reference                                     better
=====================  ============================================  ==================
Frechet distance       Heusel et al. 2017 (FID)                      lower
Inception Score        Salimans et al. 2016                          higher
KID                    Binkowski et al. 2018                         lower
precision / recall     Kynkaanniemi et al. 2019                      higher
classes covered        mode-coverage count over argmax predictions   higher
=====================  ============================================  ==================
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def _f64(x: Tensor | np.ndarray) -> Tensor:
    """Return ``x`` as a float64 tensor on its own device (MPS lacks float64: go to CPU)."""
    x = torch.as_tensor(x)
    if x.device.type == "mps":
        x = x.cpu()
    return x.to(torch.float64)


def _check_features(features: Tensor, name: str, min_rows: int = 1) -> Tensor:
    """Return ``features`` as float64 after checking it is ``(N, D)`` with ``N >= min_rows``."""
    features = _f64(features)
    if features.ndim != 2:
        raise ValueError(f"{name} must be 2-D (N, D), got shape {tuple(features.shape)}")
    if features.shape[0] < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} rows, got {features.shape[0]}")
    return features


def feature_stats(features: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and unbiased covariance of a feature set, in float64.

    Args:
        features: ``(N, D)`` tensor with ``N >= 2``.

    Returns:
        ``(mu, sigma)``: the ``(D,)`` mean and the ``(D, D)`` covariance normalised by
        ``N - 1``, as ``np.cov(features, rowvar=False)`` computes it.

    Raises:
        ValueError: if ``features`` is not 2-D or has fewer than two rows.
    """
    features = _check_features(features, "features", min_rows=2)
    mu = features.mean(dim=0)
    centred = features - mu
    sigma = centred.T @ centred / (features.shape[0] - 1)
    return mu, sigma


def _sqrt_psd(matrix: Tensor) -> Tensor:
    """Symmetric square root of a positive semi-definite matrix via ``eigh``."""
    eigvals, eigvecs = torch.linalg.eigh((matrix + matrix.T) / 2)
    # Rounding makes near-singular covariances show tiny negative eigenvalues; they are 0.
    root = eigvals.clamp(min=0).sqrt()
    return (eigvecs * root) @ eigvecs.T


def frechet_distance(mu1: Tensor, sigma1: Tensor, mu2: Tensor, sigma2: Tensor) -> float:
    """Frechet distance between the Gaussians ``N(mu1, sigma1)`` and ``N(mu2, sigma2)``.

    ``||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2))``, the quantity behind FID.

    Args:
        mu1: ``(D,)`` mean of the first distribution.
        sigma1: ``(D, D)`` covariance of the first distribution.
        mu2: ``(D,)`` mean of the second distribution.
        sigma2: ``(D, D)`` covariance of the second distribution.

    Returns:
        The distance as a float, clamped at 0 (rounding can push a tiny one below).

    Raises:
        ValueError: if the shapes do not agree.
    """
    mu1, sigma1, mu2, sigma2 = (_f64(t) for t in (mu1, sigma1, mu2, sigma2))
    dim = mu1.shape[-1]
    if mu1.shape != (dim,) or mu2.shape != (dim,) or sigma1.shape != (dim, dim) \
            or sigma2.shape != (dim, dim):
        raise ValueError("frechet_distance needs means (D,) and covariances (D, D) of one D")
    sigma2 = sigma2.to(sigma1.device)
    # tr((S1 S2)^(1/2)) = tr((sqrt(S1) S2 sqrt(S1))^(1/2)): S1 S2 is not symmetric, so
    # scipy.linalg.sqrtm on it can return complex values and is unstable when a covariance
    # is near-singular (fewer samples than dimensions). The symmetric form is PSD, so
    # eigvalsh gives real eigenvalues whose square roots sum to the same trace.
    root1 = _sqrt_psd(sigma1)
    inner = root1 @ sigma2 @ root1
    eigvals = torch.linalg.eigvalsh((inner + inner.T) / 2).clamp(min=0)
    trace_sqrt = eigvals.sqrt().sum()
    mean_term = (mu1 - mu2.to(mu1.device)).square().sum()
    distance = mean_term + sigma1.trace() + sigma2.trace() - 2 * trace_sqrt
    return max(float(distance), 0.0)


def frechet_distance_features(f1: Tensor, f2: Tensor) -> float:
    """Frechet distance between Gaussians fitted to two ``(N, D)`` feature sets (FID)."""
    return frechet_distance(*feature_stats(f1), *feature_stats(f2))


def inception_score(probs: Tensor, splits: int = 10) -> tuple[float, float]:
    """Inception Score ``exp(E_x KL(p(y|x) || p(y)))``, averaged over contiguous chunks.

    The chunks come from ``torch.tensor_split`` (sizes differ by at most one), so every
    sample counts; the original code dropped the last ``N % splits`` samples.

    Args:
        probs: ``(N, C)`` class probabilities, rows summing to 1.
        splits: number of chunks; clamped to ``N``. ``p(y)`` is each chunk's mean row.

    Returns:
        ``(mean, std)`` of the per-chunk scores, std with ddof=0 as in the original code.

    Raises:
        ValueError: if ``probs`` is not 2-D and non-empty, or ``splits < 1``.
    """
    probs = _check_features(probs, "probs")
    if splits < 1:
        raise ValueError(f"splits must be >= 1, got {splits}")
    scores = []
    for chunk in torch.tensor_split(probs, min(splits, probs.shape[0])):
        marginal = chunk.mean(dim=0, keepdim=True)
        # xlogy makes p = 0 entries contribute 0 instead of 0 * log(0) = nan; where the
        # marginal is 0 every p in that column is 0 too, so xlogy(0, 0) = 0 covers it.
        kl = (torch.xlogy(chunk, chunk) - torch.xlogy(chunk, marginal)).sum(dim=1)
        scores.append(kl.mean().exp())
    scores_t = torch.stack(scores)
    return float(scores_t.mean()), float(scores_t.std(correction=0))


def _polynomial_mmd2(x: Tensor, y: Tensor) -> Tensor:
    """Unbiased MMD^2 of equal-size samples with the kernel ``(x.y / d + 1)^3``."""
    m, dim = x.shape
    k_xx = (x @ x.T / dim + 1) ** 3
    k_yy = (y @ y.T / dim + 1) ** 3
    k_xy = (x @ y.T / dim + 1) ** 3
    # Unbiased: the within-set sums leave out the diagonal k(x_i, x_i) terms.
    within = (k_xx.sum() - k_xx.diagonal().sum() + k_yy.sum() - k_yy.diagonal().sum())
    return within / (m * (m - 1)) - 2 * k_xy.sum() / (m * m)


def kid(f1: Tensor, f2: Tensor, subset_size: int = 1000, subsets: int = 100,
        seed: int = 0) -> tuple[float, float]:
    """Kernel Inception Distance: unbiased polynomial-kernel MMD^2 averaged over subsets.

    Each subset draws ``m = min(subset_size, len(f1), len(f2))`` rows of each set without
    replacement, from a CPU ``torch.Generator`` seeded with ``seed``: the result is the
    same on every run and device. Unlike FID it is unbiased, so it can be slightly < 0.

    Args:
        f1: ``(N1, D)`` features of the first set.
        f2: ``(N2, D)`` features of the second set.
        subset_size: rows per subset before clamping to the set sizes.
        subsets: number of subsets averaged.
        seed: seed of the subset draws.

    Returns:
        ``(mean, std)`` over subsets, std with ddof=0 (0 when ``subsets == 1``).

    Raises:
        ValueError: if ``m < 2``, ``subsets < 1`` or the feature widths differ.
    """
    f1, f2 = _check_features(f1, "f1"), _check_features(f2, "f2")
    if f1.shape[1] != f2.shape[1]:
        raise ValueError(f"feature widths differ: {f1.shape[1]} vs {f2.shape[1]}")
    m = min(subset_size, f1.shape[0], f2.shape[0])
    if m < 2:
        raise ValueError(f"KID needs subsets of at least 2 rows, got m = {m}")
    if subsets < 1:
        raise ValueError(f"subsets must be >= 1, got {subsets}")
    gen = torch.Generator().manual_seed(seed)
    values = []
    for _ in range(subsets):
        idx1 = torch.randperm(f1.shape[0], generator=gen)[:m].to(f1.device)
        idx2 = torch.randperm(f2.shape[0], generator=gen)[:m].to(f2.device)
        values.append(_polynomial_mmd2(f1[idx1], f2[idx2].to(f1.device)))
    values_t = torch.stack(values)
    return float(values_t.mean()), float(values_t.std(correction=0))


def _knn_radii(points: Tensor, k: int, batch: int) -> Tensor:
    """Distance from each point to its k-th nearest neighbour in ``points``, itself excluded."""
    radii = []
    for start in range(0, points.shape[0], batch):
        dist = torch.cdist(points[start:start + batch], points)
        # The k+1 smallest include the point itself (distance 0, the minimum), so index
        # k is the k-th neighbour; an exact duplicate still counts as a neighbour.
        radii.append(dist.topk(k + 1, dim=1, largest=False).values[:, k])
    return torch.cat(radii)


def _inside_manifold(queries: Tensor, points: Tensor, radii: Tensor, batch: int) -> float:
    """Fraction of ``queries`` lying within ``radii[i]`` of some ``points[i]``."""
    inside = 0
    for start in range(0, queries.shape[0], batch):
        dist = torch.cdist(queries[start:start + batch], points)
        inside += int((dist <= radii[None, :]).any(dim=1).sum())
    return inside / queries.shape[0]


def precision_recall(real: Tensor, fake: Tensor, k: int = 3,
                     batch: int = 1024) -> dict[str, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019) of ``fake`` against ``real``.

    Each set's manifold is the union of balls around its points, each ball's radius being
    the distance to the point's k-th nearest neighbour in the same set (itself excluded).
    Distances are computed ``batch`` query rows at a time, so memory stays
    ``O(batch * N)`` (10k x 10k sets fit easily).

    Args:
        real: ``(N, D)`` real features.
        fake: ``(M, D)`` generated features.
        k: neighbour that sets the ball radii; needs ``k < N`` and ``k < M``.
        batch: query rows per ``torch.cdist`` call.

    Returns:
        ``{"precision": share of fake points inside the real manifold,
        "recall": share of real points inside the fake manifold}``.

    Raises:
        ValueError: on bad shapes, ``k < 1``, ``k`` not below both set sizes, or ``batch < 1``.
    """
    real, fake = _check_features(real, "real"), _check_features(fake, "fake")
    fake = fake.to(real.device)
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"feature widths differ: {real.shape[1]} vs {fake.shape[1]}")
    if not 1 <= k < min(real.shape[0], fake.shape[0]):
        raise ValueError(f"k must be in [1, min(N, M)), got k = {k}")
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    real_radii = _knn_radii(real, k, batch)
    fake_radii = _knn_radii(fake, k, batch)
    precision = _inside_manifold(fake, real, real_radii, batch)
    recall = _inside_manifold(real, fake, fake_radii, batch)
    return {"precision": precision, "recall": recall}


def class_histogram(probs: Tensor, num_classes: int) -> list[int]:
    """Number of samples whose argmax prediction is each class.

    Args:
        probs: ``(N, C)`` class probabilities (or logits: only the argmax matters).
        num_classes: length of the histogram; must be at least ``C``.

    Returns:
        ``num_classes`` counts summing to ``N``.

    Raises:
        ValueError: if ``probs`` is not 2-D or has more columns than ``num_classes``.
    """
    probs = torch.as_tensor(probs)
    if probs.ndim != 2 or probs.shape[1] > num_classes:
        raise ValueError(f"probs must be (N, C) with C <= {num_classes}, "
                         f"got shape {tuple(probs.shape)}")
    preds = probs.argmax(dim=1).cpu()
    return [int(c) for c in torch.bincount(preds, minlength=num_classes)]


def classes_covered(counts: list[int], min_share: float = 0.1) -> int:
    """Number of classes predicted often enough to count as covered by the generator.

    With ``N = sum(counts)`` samples over ``C = len(counts)`` classes, class ``c`` is
    covered when ``counts[c] >= min_share * N / C`` and ``counts[c] > 0``: by default at
    least 10% of the share a uniform generator would give it. A few stray predictions of
    a class the generator has collapsed away from therefore do not count as coverage.

    Args:
        counts: per-class prediction counts, e.g. from :func:`class_histogram`.
        min_share: fraction of the uniform share ``N / C`` a class needs.

    Returns:
        The number of covered classes, between 0 (no samples) and ``C``.
    """
    total, num_classes = sum(counts), len(counts)
    # Compare count * C with min_share * N: no division, so exact shares are not lost
    # to rounding, and an empty histogram covers nothing.
    return sum(1 for c in counts if c > 0 and c * num_classes >= min_share * total)
