"""Tests for dcgan.losses: closed forms, the gradient penalty, and a toy GAN per loss."""

from __future__ import annotations

import math
from typing import Callable

import pytest
import torch
from torch import nn

from dcgan.losses import (
    LOSSES,
    check_loss,
    d_loss,
    d_loss_fake,
    d_loss_real,
    d_output_score,
    g_loss,
    get,
    gradient_penalty,
    r1_penalty,
)
from dcgan.models import Discriminator

REAL = torch.tensor([2.0, -1.0])
FAKE = torch.tensor([0.5, -3.0])


def _softplus(x: float) -> float:
    return math.log1p(math.exp(x))


# Expected (D real term, D fake term, G) worked out by hand for REAL = [2, -1], FAKE = [0.5, -3].
_CLOSED_FORMS = {
    "bce": ((_softplus(-2) + _softplus(1)) / 2, (_softplus(0.5) + _softplus(-3)) / 2,
            (_softplus(-0.5) + _softplus(3)) / 2),
    # ((2-1)^2 + (-1-1)^2) / 2;  (0.25 + 9) / 2;  ((0.5-1)^2 + (-3-1)^2) / 2
    "mse": (2.5, 4.625, 8.125),
    # (relu(-1) + relu(2)) / 2;  (relu(1.5) + relu(-2)) / 2;  -(0.5 - 3) / 2
    "hinge": (1.0, 0.75, 1.25),
    # -mean(r);  mean(f);  -mean(f)
    "wgan-gp": (-0.5, -1.25, 1.25),
}


def test_registry_names():
    assert LOSSES == ("bce", "mse", "hinge", "wgan-gp")


@pytest.mark.parametrize("name", LOSSES)
def test_closed_forms(name):
    real_term, fake_term, expected_g = _CLOSED_FORMS[name]
    d_value, g_value = d_loss(name, REAL, FAKE), g_loss(name, FAKE)
    assert d_value.shape == () and g_value.shape == ()
    assert d_value.item() == pytest.approx(real_term + fake_term, rel=1e-6)
    assert g_value.item() == pytest.approx(expected_g, rel=1e-6)


@pytest.mark.parametrize("name", LOSSES)
def test_d_loss_splits_into_real_and_fake_terms(name):
    # The separate-batch D update (fake batch, then real batch) relies on this split.
    real_term, fake_term, _ = _CLOSED_FORMS[name]
    assert d_loss_real(name, REAL).item() == pytest.approx(real_term, rel=1e-6)
    assert d_loss_fake(name, FAKE).item() == pytest.approx(fake_term, rel=1e-6)
    assert d_loss_fake(name, FAKE.to(torch.bfloat16)).dtype == torch.float32


def test_bce_stays_finite_for_extreme_logits():
    real = torch.tensor([100.0, -100.0], requires_grad=True)
    fake = torch.tensor([100.0, -100.0], requires_grad=True)
    d_value = d_loss("bce", real, fake)
    g_value = g_loss("bce", fake)
    # softplus(100) = 100 (to fp32 precision), softplus(-100) ~ 0.
    assert d_value.item() == pytest.approx(100.0)
    assert g_value.item() == pytest.approx(50.0)
    (d_value + g_value).backward()
    assert torch.isfinite(real.grad).all() and torch.isfinite(fake.grad).all()
    assert real.grad[1].item() == pytest.approx(-0.5)  # the wrong real logit still learns


@pytest.mark.parametrize("name", LOSSES)
def test_gradient_directions(name):
    # D wants real logits up and fake logits down; G wants fake logits up.
    real = torch.full((4,), 0.5, requires_grad=True)
    fake = torch.full((4,), 0.5, requires_grad=True)
    d_loss(name, real, fake).backward()
    assert (real.grad < 0).all() and (fake.grad > 0).all()
    fake.grad = None
    g_loss(name, fake).backward()
    assert (fake.grad < 0).all()


@pytest.mark.parametrize("name", LOSSES)
def test_low_precision_logits_are_upcast(name):
    for dtype in (torch.float16, torch.bfloat16):
        d_value = d_loss(name, REAL.to(dtype), FAKE.to(dtype))
        g_value = g_loss(name, FAKE.to(dtype))
        assert d_value.dtype == g_value.dtype == torch.float32
        # These logits are exact in both dtypes, so the closed forms still hold.
        assert d_value.item() == pytest.approx(sum(_CLOSED_FORMS[name][:2]), rel=1e-6)


def test_d_output_score():
    logits = torch.tensor([2.0, -1.0], requires_grad=True)
    expected_bce = (1 / (1 + math.exp(-2)) + 1 / (1 + math.exp(1))) / 2
    assert d_output_score("bce", logits).item() == pytest.approx(expected_bce)
    for name in ("mse", "hinge", "wgan-gp"):
        assert d_output_score(name, logits).item() == pytest.approx(0.5)
    assert not d_output_score("bce", logits).requires_grad  # for logging only
    assert d_output_score("wgan-gp", torch.tensor([7.0], dtype=torch.bfloat16)).dtype \
        == torch.float32


def test_unknown_loss_names_allowed_values():
    message = "unknown loss 'lsgan'; allowed: bce, mse, hinge, wgan-gp"
    for call in (lambda: check_loss("lsgan"), lambda: d_loss("lsgan", REAL, FAKE),
                 lambda: g_loss("lsgan", FAKE), lambda: d_output_score("lsgan", REAL),
                 lambda: d_loss_real("lsgan", REAL), lambda: d_loss_fake("lsgan", FAKE)):
        with pytest.raises(ValueError) as info:
            call()
        assert str(info.value) == message
    for name in LOSSES:
        check_loss(name)


# --- gradient penalty -----------------------------------------------------------------------

def _linear_critic(norm: float) -> tuple[nn.Parameter, Callable]:
    """D(x) = sum over pixels of w * x, so grad_x D = w for every x and ||grad|| = ||w||."""
    w = torch.randn(1, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    w = nn.Parameter(w * (norm / w.norm()))
    return w, lambda x: (w * x).flatten(1).sum(dim=1)


def _batches(n: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    rng = torch.Generator().manual_seed(1)
    return torch.randn(n, 3, 4, 4, generator=rng), torch.randn(n, 3, 4, 4, generator=rng)


def test_gradient_penalty_closed_forms():
    real, fake = _batches()
    _, unit = _linear_critic(1.0)
    assert gradient_penalty(unit, real, fake).item() == pytest.approx(0.0, abs=1e-6)
    w, triple = _linear_critic(3.0)
    penalty = gradient_penalty(triple, real, fake)
    assert penalty.item() == pytest.approx(4.0, rel=1e-5)  # (3 - 1)**2
    # It is a training signal: d/dw (||w|| - 1)**2 = 2 (||w|| - 1) w / ||w|| = (4/3) w.
    assert penalty.requires_grad
    penalty.backward()
    torch.testing.assert_close(w.grad, w.detach() * 4 / 3)


def test_r1_penalty_closed_form():
    """R1 = E ||grad_x D(x)||**2: ||w||**2 = 9 for a linear critic of norm 3, and a training
    signal for D: d/dw ||w||**2 = 2 w."""
    real, _ = _batches()
    w, critic = _linear_critic(3.0)
    penalty = r1_penalty(critic, real)
    assert penalty.item() == pytest.approx(9.0, rel=1e-5)
    penalty.backward()
    torch.testing.assert_close(w.grad, 2 * w.detach())
    assert real.grad is None  # the images are not trained


def test_d_steps_defaults_per_loss():
    assert [get(n).steps_per_g(None) for n in LOSSES] == [2, 2, 2, 5]
    assert get("wgan-gp").steps_per_g(1) == 1 and get("bce").steps_per_g(3) == 3


def test_r1_defaults_per_loss():
    assert [get(n).r1_for(None) for n in LOSSES] == [1.0, 3.0, 1.0, 0.0]
    assert get("wgan-gp").r1_for(0.5) == 0.5 and get("bce").r1_for(0.0) == 0.0


def test_gradient_penalty_reaches_every_critic_parameter():
    critic = Discriminator(nc=3, ndf=4, image_size=16, norm="layer")
    rng = torch.Generator().manual_seed(2)
    real, fake = torch.randn(4, 3, 16, 16, generator=rng), torch.randn(4, 3, 16, 16, generator=rng)
    gradient_penalty(critic, real, fake).backward()
    for name, param in critic.named_parameters():
        assert param.grad is not None, name
        # Norm shifts only move LeakyReLU's kinks, and grad_x D is piecewise constant in
        # them, so only the weights are bound to get a non-zero gradient.
        if name.endswith("weight"):
            assert param.grad.abs().sum() > 0, name


def test_gradient_penalty_uses_one_eps_per_sample_in_unit_interval():
    # With real = 1 and fake = 0, x_hat = eps * real + (1 - eps) * fake is eps itself.
    real, fake = torch.ones(6, 3, 4, 4), torch.zeros(6, 3, 4, 4)
    seen = []

    def recording_critic(x):
        seen.append(x.detach())
        return (x ** 2).flatten(1).sum(dim=1)

    gradient_penalty(recording_critic, real, fake)
    eps = seen[0].flatten(1)
    assert torch.equal(eps, eps[:, :1].expand_as(eps))  # constant within each sample
    assert ((eps >= 0) & (eps <= 1)).all()
    assert eps[:, 0].unique().numel() == real.shape[0]  # drawn per sample


def test_gradient_penalty_is_reproducible_with_a_seeded_generator():
    real, fake = _batches()

    def critic(x):  # non-linear, so the penalty depends on where eps puts x_hat
        return (x ** 2).flatten(1).sum(dim=1)

    def penalty(eps_seed: int, global_seed: int) -> torch.Tensor:
        torch.manual_seed(global_seed)  # must not matter when a generator is given
        rng = torch.Generator().manual_seed(eps_seed)
        return gradient_penalty(critic, real, fake, generator=rng)

    assert torch.equal(penalty(0, global_seed=10), penalty(0, global_seed=11))
    assert not torch.equal(penalty(0, global_seed=10), penalty(1, global_seed=10))


def test_gradient_penalty_does_not_reach_the_generator():
    real, _ = _batches()
    shift = nn.Parameter(torch.zeros(()))
    fake = torch.zeros_like(real) + shift  # not detached by the caller, on purpose

    def critic(x):  # grad_x = 2 x_hat depends on fake, so a leak would reach `shift`
        return (x ** 2).flatten(1).sum(dim=1)

    gradient_penalty(critic, real, fake).backward()
    assert shift.grad is None


def test_gradient_penalty_rejects_mismatched_shapes():
    real, fake = _batches()
    with pytest.raises(ValueError, match="shapes differ"):
        gradient_penalty(lambda x: x.sum(), real, fake[:2])


# --- each loss trains a toy GAN ---------------------------------------------------------------

def _train_toy(name: str, steps: int = 300, batch: int = 64) -> torch.Tensor:
    """Train x = 0.5 z + b (b starts at 0) against 2-D data ~ N(3, 0.5^2); return b.

    2-D on purpose: in 1-D a gradient-penalised critic can get stuck at slope -1 (the
    unit-gradient set {-1, +1} is disconnected there), which would test the toy, not the loss.
    """
    torch.manual_seed(0)
    b = nn.Parameter(torch.zeros(2))
    critic = nn.Sequential(nn.Linear(2, 32), nn.LeakyReLU(0.2), nn.Linear(32, 1))
    opt_d = torch.optim.Adam(critic.parameters(), lr=1e-2, betas=(0.5, 0.9))
    opt_g = torch.optim.Adam([b], lr=2e-2, betas=(0.5, 0.9))
    n_critic = 5 if name == "wgan-gp" else 1  # the WGAN-GP paper's critic steps per G step

    def sample_fake() -> torch.Tensor:
        return 0.5 * torch.randn(batch, 2) + b

    for _ in range(steps):
        for _ in range(n_critic):
            real, fake = 3 + 0.5 * torch.randn(batch, 2), sample_fake().detach()
            loss = d_loss(name, critic(real).squeeze(1), critic(fake).squeeze(1))
            if name == "wgan-gp":
                loss = loss + 10 * gradient_penalty(lambda x: critic(x).squeeze(1), real, fake)
            opt_d.zero_grad()
            loss.backward()
            opt_d.step()
        opt_g.zero_grad()
        g_loss(name, critic(sample_fake()).squeeze(1)).backward()
        opt_g.step()
    return b.detach()


@pytest.fixture
def one_thread():
    # Tiny ops run faster on one thread, and it avoids oversubscribing a busy CPU.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("name", LOSSES)
def test_each_loss_moves_a_toy_generator_to_the_data(name, one_thread):
    mean = _train_toy(name)  # the generator's mean is exactly b, since E[z] = 0
    assert (mean - 3).abs().max().item() < 1.0, mean
