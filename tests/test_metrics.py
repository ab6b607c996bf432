"""Tests for dcgan.metrics: closed forms, numpy/scipy references, and sanity orderings."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import scipy.stats
import torch

from dcgan import metrics


def _randn(n: int, d: int, seed: int) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _mixture(n: int, seed: int, dim: int = 8, modes: int = 4) -> torch.Tensor:
    """``n`` draws of a fixed Gaussian mixture (fixed centres; ``seed`` picks the draw)."""
    centres = np.random.default_rng(1234).normal(0.0, 3.0, (modes, dim))
    rng = np.random.default_rng(seed)
    return torch.from_numpy(centres[rng.integers(0, modes, n)] + rng.normal(size=(n, dim)))


# ---- references (numpy / scipy, written independently of the module) ----

def _fd_reference(mu1, s1, mu2, s2) -> float:
    """The pytorch-fid formula with scipy.linalg.sqrtm of the (non-symmetric) product."""
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def _is_reference(p: np.ndarray, splits: int) -> tuple[float, float]:
    scores = []
    for part in np.array_split(p, splits):
        py = part.mean(axis=0)
        scores.append(np.exp(np.mean([scipy.stats.entropy(row, py) for row in part])))
    return float(np.mean(scores)), float(np.std(scores))


def _mmd2_reference(x: np.ndarray, y: np.ndarray) -> float:
    m, d = x.shape
    total = 0.0
    for a, b, sign in ((x, x, 1), (y, y, 1)):
        k = (a @ b.T / d + 1) ** 3
        total += sign * (k.sum() - np.trace(k)) / (m * (m - 1))
    return total - 2 * ((x @ y.T / d + 1) ** 3).mean()


def _pr_reference(real: np.ndarray, fake: np.ndarray, k: int) -> dict[str, float]:
    def dists(a, b):
        return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))

    r_real = np.sort(dists(real, real), axis=1)[:, k]  # column 0 is the point itself
    r_fake = np.sort(dists(fake, fake), axis=1)[:, k]
    precision = (dists(fake, real) <= r_real[None, :]).any(axis=1).mean()
    recall = (dists(real, fake) <= r_fake[None, :]).any(axis=1).mean()
    return {"precision": float(precision), "recall": float(recall)}


# ---- Frechet distance ----

def test_frechet_diagonal_gaussians_closed_form():
    a = np.array([1.0, 2.0, 0.5, 3.0, 0.0])  # a zero variance: a singular covariance
    b = np.array([2.0, 0.5, 0.5, 1.0, 4.0])
    mu2 = np.arange(1.0, 6.0)
    expected = (mu2 ** 2).sum() + (a + b - 2 * np.sqrt(a * b)).sum()
    got = metrics.frechet_distance(torch.zeros(5), torch.diag(torch.tensor(a)),
                                   torch.tensor(mu2), torch.diag(torch.tensor(b)))
    assert got == pytest.approx(expected, rel=1e-10)


def test_frechet_non_diagonal_matches_scipy_sqrtm():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(6, 6)), rng.normal(size=(6, 6))
    s1, s2 = a @ a.T + 0.1 * np.eye(6), b @ b.T + 0.1 * np.eye(6)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    got = metrics.frechet_distance(*(torch.tensor(t) for t in (mu1, s1, mu2, s2)))
    assert got == pytest.approx(_fd_reference(mu1, s1, mu2, s2), rel=1e-8)


def test_feature_stats_match_numpy_cov_in_float64():
    f = _randn(300, 7, 0).float() * 3 + 1
    mu, sigma = metrics.feature_stats(f)
    ref = f.double().numpy()
    assert mu.dtype == sigma.dtype == torch.float64
    np.testing.assert_allclose(mu.numpy(), ref.mean(axis=0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(sigma.numpy(), np.cov(ref, rowvar=False), rtol=1e-10, atol=1e-12)


def test_frechet_features_match_numpy_scipy_reference():
    f1 = _randn(400, 10, 1)
    f2 = _randn(400, 10, 2) @ _randn(10, 10, 3) * 0.5 + 0.3
    x, y = f1.numpy(), f2.numpy()
    ref = _fd_reference(x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False))
    assert metrics.frechet_distance_features(f1, f2) == pytest.approx(ref, rel=1e-6)


@pytest.mark.parametrize("n", [500, 12])  # 12 < 32 dims: near-singular covariance
def test_frechet_of_a_set_to_itself_is_zero(n):
    f = _randn(n, 32, 4)
    assert abs(metrics.frechet_distance_features(f, f)) < 1e-6


def test_frechet_rejects_mismatched_shapes():
    with pytest.raises(ValueError):
        metrics.frechet_distance(torch.zeros(3), torch.eye(3), torch.zeros(4), torch.eye(4))
    with pytest.raises(ValueError):
        metrics.feature_stats(torch.zeros(1, 3))  # one row has no covariance


# ---- Inception Score ----

def test_is_uniform_probabilities_is_one():
    mean, std = metrics.inception_score(torch.full((50, 10), 0.1), splits=5)
    assert mean == pytest.approx(1.0, abs=1e-12) and std == pytest.approx(0.0, abs=1e-12)


def test_is_balanced_one_hot_is_number_of_classes():
    probs = torch.eye(10).repeat(10, 1)  # each of 10 contiguous chunks is one of each class
    mean, std = metrics.inception_score(probs, splits=10)
    assert mean == pytest.approx(10.0, rel=1e-12) and std == pytest.approx(0.0, abs=1e-9)


def test_is_matches_scipy_entropy_reference():
    p = np.random.default_rng(5).dirichlet(np.full(10, 0.3), size=103)  # 103 % 10 != 0
    got = metrics.inception_score(torch.tensor(p), splits=10)
    assert got == pytest.approx(_is_reference(p, 10), rel=1e-10)
    assert got[1] > 0


def test_is_splits_clamped_to_n():
    p = torch.tensor(np.random.default_rng(6).dirichlet(np.ones(4), size=3))
    assert metrics.inception_score(p, splits=10) == metrics.inception_score(p, splits=3)
    assert metrics.inception_score(p, splits=10) == pytest.approx(_is_reference(p.numpy(), 3))


# ---- KID ----

def test_kid_identical_sets_near_zero_shifted_sets_positive():
    x, y = _randn(500, 16, 7), _randn(500, 16, 8)
    same, _ = metrics.kid(x, x, subset_size=200, subsets=50)
    shifted, shifted_std = metrics.kid(x, y + 1.0, subset_size=200, subsets=50)
    assert shifted > 10 * shifted_std > 0
    assert abs(same) < 1e-2 * shifted


def test_kid_deterministic_for_a_seed():
    x, y = _randn(300, 8, 9), _randn(300, 8, 10)
    first = metrics.kid(x, y, subset_size=50, subsets=10, seed=3)
    assert metrics.kid(x, y, subset_size=50, subsets=10, seed=3) == first
    assert metrics.kid(x, y, subset_size=50, subsets=10, seed=4) != first


def test_kid_matches_numpy_unbiased_mmd2_without_subsampling():
    x, y = _randn(120, 6, 11), _randn(120, 6, 12) * 1.3 + 0.2
    mean, std = metrics.kid(x, y, subset_size=120, subsets=1)
    assert mean == pytest.approx(_mmd2_reference(x.numpy(), y.numpy()), rel=1e-10)
    assert std == 0.0


def test_kid_needs_two_rows_per_subset():
    with pytest.raises(ValueError):
        metrics.kid(_randn(1, 4, 0), _randn(10, 4, 1))
    with pytest.raises(ValueError):
        metrics.kid(_randn(10, 4, 0), _randn(10, 4, 1), subset_size=1)


# ---- precision / recall ----

def test_pr_identical_sets_full():
    x = _randn(200, 5, 13)
    assert metrics.precision_recall(x, x.clone()) == {"precision": 1.0, "recall": 1.0}


def test_pr_far_apart_clusters_zero():
    x = _randn(150, 5, 14)
    assert metrics.precision_recall(x, _randn(150, 5, 15) + 100.0) == {"precision": 0.0,
                                                                      "recall": 0.0}


def test_pr_half_the_modes_gives_full_precision_half_recall():
    blob_a, blob_b = _randn(400, 2, 16), _randn(400, 2, 17) + 50.0
    fake = _randn(400, 2, 18)  # a fresh draw of blob A only
    got = metrics.precision_recall(torch.cat([blob_a, blob_b]), fake, k=5)
    assert got["precision"] >= 0.98
    assert got["recall"] == pytest.approx(0.5, abs=0.03)
    # The same fake set against blob A alone covers it: the halving comes from blob B.
    assert metrics.precision_recall(blob_a, fake, k=5)["recall"] >= 0.96


@pytest.mark.parametrize("k", [1, 3, 5])
def test_pr_matches_brute_force_reference(k):
    real, fake = _randn(90, 3, 19), _randn(70, 3, 20) + 1.5
    ref = _pr_reference(real.numpy(), fake.numpy(), k)
    assert 0 < ref["precision"] < 1 and 0 < ref["recall"] < 1  # the case is not trivial
    for batch in (7, 1024):  # batching must not change the answer
        assert metrics.precision_recall(real, fake, k=k, batch=batch) == pytest.approx(ref)


def test_pr_ball_boundary_is_inclusive():
    # Real points 0..3 on a line, k=1: every radius is exactly 1. Fakes at -1 and 4 sit on
    # a ball's edge (inside, as in the reference code's ``<=``); 4.5 and 9 are outside.
    real = torch.tensor([[0.0], [1.0], [2.0], [3.0]])
    fake = torch.tensor([[-1.0], [4.0], [4.5], [9.0]])
    assert metrics.precision_recall(real, fake, k=1)["precision"] == 0.5


def test_pr_rejects_bad_k():
    with pytest.raises(ValueError):
        metrics.precision_recall(_randn(5, 2, 0), _randn(3, 2, 1), k=3)
    with pytest.raises(ValueError):
        metrics.precision_recall(_randn(5, 2, 0), _randn(5, 2, 1), k=0)


# ---- real data beats noise ----

def test_real_data_beats_noise_on_every_feature_metric():
    real, real2 = _mixture(600, 1), _mixture(600, 2)
    # Uniform noise over mean +- std of each real dimension. Noise much wider than the
    # data gets a high k-NN recall (its sparse points have huge balls), so the spread
    # matters: this one overlaps the data without mimicking its modes.
    mu, sd = real.mean(0).numpy(), real.std(0).numpy()
    noise = torch.from_numpy(np.random.default_rng(3).uniform(mu - sd, mu + sd, (600, 8)))
    assert metrics.frechet_distance_features(real, real2) < metrics.frechet_distance_features(
        real, noise)
    assert metrics.kid(real, real2, 300, 20)[0] < metrics.kid(real, noise, 300, 20)[0]
    good, bad = metrics.precision_recall(real, real2), metrics.precision_recall(real, noise)
    assert good["precision"] > bad["precision"] and good["recall"] > bad["recall"]


def test_confident_balanced_classifier_beats_near_uniform_on_is():
    gen = torch.Generator().manual_seed(21)
    labels = torch.randint(0, 10, (500,), generator=gen)
    confident = torch.softmax(8.0 * torch.nn.functional.one_hot(labels, 10).double(), dim=1)
    vague = torch.softmax(0.1 * torch.randn(500, 10, generator=gen, dtype=torch.float64), 1)
    assert metrics.inception_score(confident)[0] > 5 * metrics.inception_score(vague)[0]


# ---- class coverage ----

def test_class_histogram_counts_argmax():
    probs = torch.tensor([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1], [0.2, 0.7, 0.1]])
    assert metrics.class_histogram(probs, 4) == [1, 2, 0, 0]
    with pytest.raises(ValueError):
        metrics.class_histogram(probs, 2)


def test_classes_covered_constant_balanced_and_strays():
    constant = metrics.class_histogram(torch.eye(10)[torch.full((300,), 4)], 10)
    assert metrics.classes_covered(constant) == 1
    assert metrics.classes_covered(metrics.class_histogram(torch.eye(10).repeat(30, 1), 10)) == 10
    assert metrics.classes_covered([1000, 5, 5, 5] + [0] * 6) == 1  # 5 < 0.1 * 1015 / 10


def test_classes_covered_threshold_is_inclusive():
    assert metrics.classes_covered([95, 5]) == 2  # 5 is exactly 10% of the uniform share 50
    assert metrics.classes_covered([96, 4]) == 1
    assert metrics.classes_covered([0, 0, 0]) == 0
    assert metrics.classes_covered([50, 30, 20], min_share=0.65) == 2  # needs 65% of 33.3


def test_metrics_return_python_floats():
    x = _randn(40, 3, 22).float()
    assert isinstance(metrics.frechet_distance_features(x, x + 1), float)
    assert all(isinstance(v, float) for v in metrics.kid(x, x + 1, subsets=2))
    assert all(isinstance(v, float) for v in metrics.precision_recall(x, x + 1).values())
    assert all(isinstance(v, float) for v in metrics.inception_score(torch.softmax(x, 1), 2))
    assert not math.isnan(metrics.inception_score(torch.eye(3), 1)[0])
