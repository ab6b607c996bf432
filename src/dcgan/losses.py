"""GAN losses as pure functions of the discriminator's raw logits.

``r`` are D's logits on real images, ``f`` on generated ones. Every function upcasts
half/bfloat16 logits with ``.float()`` first, so under autocast the reductions (and the
exp/log inside softplus) run in fp32 whatever dtype D produced; fp64 stays fp64.

===========  ==========================================  =======================
name         D loss (minimised by D)                     G loss (minimised by G)
===========  ==========================================  =======================
bce          softplus(-r).mean() + softplus(f).mean()    softplus(-f).mean()
mse          ((r - 1)**2).mean() + (f**2).mean()         ((f - 1)**2).mean()
hinge        relu(1 - r).mean() + relu(1 + f).mean()     -f.mean()
wgan-gp      f.mean() - r.mean()  (+ lambda * GP)        -f.mean()
===========  ==========================================  =======================

``get(name)`` resolves a name once into a :class:`Loss` that also carries the loss's own
training defaults (critic steps, D normalisation, gradient penalty): nothing else in the
package compares loss names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor


def _upcast(x: Tensor) -> Tensor:
    """Return ``x`` in at least fp32: half/bfloat16 logits go to fp32, fp64 stays fp64."""
    return x if x.dtype == torch.float64 else x.float()


# Each D loss is a real-only term plus a fake-only term (the module table): D can then be
# updated on both batches at once or on a fake batch and then a real one
# (``train.d_batches: separate``), from one formula per loss.

def _bce_real(real: Tensor) -> Tensor:
    """Non-saturating GAN (Goodfellow et al., 2014), D on reals: ``softplus(-r).mean()``.

    Binary cross-entropy of sigmoid(r) against 1, from logits so that extreme logits
    (e.g. +-100) give finite values and gradients instead of log(0).
    """
    return F.softplus(-real).mean()


def _bce_fake(fake: Tensor) -> Tensor:
    """Non-saturating GAN, D on fakes: ``softplus(f).mean()`` (BCE of sigmoid(f) against 0)."""
    return F.softplus(fake).mean()


def _bce_g(fake: Tensor) -> Tensor:
    """Non-saturating GAN, G side: ``softplus(-f).mean()`` = -log(sigmoid(f)).

    G maximises log D(G(z)) rather than minimising log(1 - D(G(z))), which saturates
    early in training when D confidently rejects samples.
    """
    return F.softplus(-fake).mean()


def _mse_real(real: Tensor) -> Tensor:
    """Least squares GAN (Mao et al., 2017; a=0, b=c=1), D on reals: ``((r - 1)**2).mean()``.

    On raw logits, without the paper's 1/2 factor, matching the write-ups' Keras
    ``MeanSquaredError``.
    """
    return (real - 1).pow(2).mean()


def _mse_fake(fake: Tensor) -> Tensor:
    """Least squares GAN, D on fakes: ``(f**2).mean()``."""
    return fake.pow(2).mean()


def _mse_g(fake: Tensor) -> Tensor:
    """Least squares GAN, G side: ``((f - 1)**2).mean()`` (c=1, no 1/2 factor)."""
    return (fake - 1).pow(2).mean()


def _hinge_real(real: Tensor) -> Tensor:
    """Hinge loss (Lim & Ye, 2017; Miyato et al., 2018), D on reals: ``relu(1 - r).mean()``.

    D stops being pushed once a real logit exceeds 1 (a fake one is below -1).
    """
    return F.relu(1 - real).mean()


def _hinge_fake(fake: Tensor) -> Tensor:
    """Hinge loss, D on fakes: ``relu(1 + f).mean()``."""
    return F.relu(1 + fake).mean()


def _wgan_real(real: Tensor) -> Tensor:
    """WGAN-GP critic (Gulrajani et al., 2017) on reals: ``-r.mean()``.

    With :func:`_wgan_fake` this is the negated Wasserstein-1 estimate, WITHOUT the gradient
    penalty: the trainer adds ``lambda * gradient_penalty(...)`` (lambda = 10 in the paper)
    so the loss stays a pure function of the logits.
    """
    return -real.mean()


def _wgan_fake(fake: Tensor) -> Tensor:
    """WGAN-GP critic on fakes: ``f.mean()``."""
    return fake.mean()


def _critic_g(fake: Tensor) -> Tensor:
    """Hinge and WGAN-GP generator loss: ``-f.mean()`` (raise the critic's score)."""
    return -fake.mean()


def _probability_score(logits: Tensor) -> Tensor:
    """Mean sigmoid(logit): the probability D assigns to "real"."""
    return torch.sigmoid(logits).mean()


def _mean_score(logits: Tensor) -> Tensor:
    """Mean raw logit: for losses whose D output is a score, not a probability."""
    return logits.mean()


@dataclass(frozen=True)
class Loss:
    """One GAN loss, resolved once from its name: its formulas and its training defaults.

    Attributes:
        name: The params.yaml name.
        d_real: D's term on real logits (the part of the D loss a real batch alone gives).
        d_fake: D's term on fake logits.
        g_term: G's loss on D's logits for generated images.
        score: What to report as "D(x)" / "D(G(z))": a probability for bce, else the mean logit.
        critic_steps: D steps per G step when ``train.d_steps`` is null (WGAN-GP's paper uses
            5; 2 for the others: IS 7.9-8.1 vs 7.8-7.85 with 1 at 2,000 G steps, in 1.4x the time).
        d_norm: D's normalisation when ``model.d_norm`` is auto.
        gradient_penalty: Whether D's loss adds ``gp_weight * gradient_penalty`` (which needs
            real and fake in one update, and a D that treats samples independently).
        r1: The R1 penalty's gamma when ``train.r1`` is null (0: none; WGAN-GP's own penalty
            already bounds the critic's gradients). mse's is 3: its D chases fixed targets
            instead of saturating, and at gamma 1 its samples lag (mnist-5k IS 7.13 / 7.18 vs
            7.57 / 7.49 at gamma 3, seeds 0 / 1; benchmarks/NOTES.md round 7).
    """

    name: str
    d_real: Callable[[Tensor], Tensor]
    d_fake: Callable[[Tensor], Tensor]
    g_term: Callable[[Tensor], Tensor]
    score: Callable[[Tensor], Tensor]
    critic_steps: int = 2
    d_norm: str = "batch"
    gradient_penalty: bool = False
    r1: float = 1.0

    def steps_per_g(self, configured: int | None) -> int:
        """D steps per G step: ``train.d_steps``, or this loss's own when it is null."""
        return self.critic_steps if configured is None else configured

    def r1_for(self, configured: float | None) -> float:
        """R1's gamma: ``train.r1``, or this loss's own when it is null."""
        return self.r1 if configured is None else configured

    def norm_for(self, configured: str) -> str:
        """D's normalisation: ``model.d_norm``, or this loss's own when it is auto."""
        return self.d_norm if configured == "auto" else configured

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        """D's loss on both batches (without the gradient penalty); at least fp32."""
        return self.d_real(_upcast(real_logits)) + self.d_fake(_upcast(fake_logits))

    def d_loss_real(self, real_logits: Tensor) -> Tensor:
        """The real-only term of :meth:`d_loss`, for a D update on a real batch alone."""
        return self.d_real(_upcast(real_logits))

    def d_loss_fake(self, fake_logits: Tensor) -> Tensor:
        """The fake-only term of :meth:`d_loss`, for a D update on a fake batch alone."""
        return self.d_fake(_upcast(fake_logits))

    def g_loss(self, fake_logits: Tensor) -> Tensor:
        """G's loss (``fake_logits`` not detached: G needs the gradients); at least fp32."""
        return self.g_term(_upcast(fake_logits))

    def d_output_score(self, logits: Tensor) -> Tensor:
        """The reported "D(x)" of a batch of logits: detached (it is for logging), fp32."""
        return self.score(_upcast(logits.detach()))


_REGISTRY: dict[str, Loss] = {loss.name: loss for loss in (
    Loss("bce", _bce_real, _bce_fake, _bce_g, _probability_score),
    Loss("mse", _mse_real, _mse_fake, _mse_g, _mean_score, r1=3.0),
    Loss("hinge", _hinge_real, _hinge_fake, _critic_g, _mean_score),
    # Batch norm would couple the samples that the per-sample penalty needs independent.
    Loss("wgan-gp", _wgan_real, _wgan_fake, _critic_g, _mean_score,
         critic_steps=5, d_norm="layer", gradient_penalty=True, r1=0.0),
)}

LOSSES = tuple(_REGISTRY)


def get(name: str) -> Loss:
    """The loss called ``name``.

    Raises:
        ValueError: ``unknown loss 'x'; allowed: bce, mse, hinge, wgan-gp``.
    """
    if name not in _REGISTRY:
        raise ValueError(f"unknown loss {name!r}; allowed: {', '.join(LOSSES)}")
    return _REGISTRY[name]


def check_loss(name: str) -> None:
    """Validate a loss name (raises :func:`get`'s ValueError)."""
    get(name)


# Name-based shorthands of the Loss methods (the formulas' tests and notebooks use them).

def d_loss(name: str, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """:meth:`Loss.d_loss` of the loss called ``name`` (no gradient penalty)."""
    return get(name).d_loss(real_logits, fake_logits)


def d_loss_real(name: str, real_logits: Tensor) -> Tensor:
    """:meth:`Loss.d_loss_real` of the loss called ``name``."""
    return get(name).d_loss_real(real_logits)


def d_loss_fake(name: str, fake_logits: Tensor) -> Tensor:
    """:meth:`Loss.d_loss_fake` of the loss called ``name``."""
    return get(name).d_loss_fake(fake_logits)


def g_loss(name: str, fake_logits: Tensor) -> Tensor:
    """:meth:`Loss.g_loss` of the loss called ``name``."""
    return get(name).g_loss(fake_logits)


def d_output_score(name: str, logits: Tensor) -> Tensor:
    """:meth:`Loss.d_output_score` of the loss called ``name``."""
    return get(name).d_output_score(logits)


def gradient_penalty(critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor,
                     generator: torch.Generator | None = None,
                     eps: Tensor | None = None) -> Tensor:
    """WGAN-GP gradient penalty (Gulrajani et al., 2017).

    ``((||grad_x critic(x_hat)||_2 - 1)**2).mean()`` with
    ``x_hat = eps * real + (1 - eps) * fake`` and one ``eps ~ U(0, 1)`` per sample.

    Args:
        critic: Maps a batch ``(N, ...)`` to per-sample scores ``(N,)``. It must treat
            samples independently (a ``norm="layer"`` or ``"none"`` Discriminator, not batch
            norm): the gradient of the summed scores is then each sample's own gradient.
        real: Real batch ``(N, ...)``.
        fake: Generated batch of the same shape. It is detached here as well, because the
            penalty is a critic-only term; callers should still pass ``fake.detach()``.
        generator: Optional RNG for ``eps`` so a seeded run is reproducible; it must live
            on ``real.device``.
        eps: Optional interpolation weights ``(N,)`` instead of drawing them (a training
            process of several takes its slice of the whole batch's draw).

    Returns:
        A scalar (at least fp32) tensor built with ``create_graph=True``, so ``backward()``
        reaches the critic's parameters.
    """
    if real.shape != fake.shape:
        raise ValueError(f"real and fake shapes differ: {tuple(real.shape)} vs "
                         f"{tuple(fake.shape)}")
    # One eps per sample, broadcast over the remaining dims.
    eps_shape = (real.shape[0],) + (1,) * (real.dim() - 1)
    if eps is None:
        eps = torch.rand(eps_shape, generator=generator, device=real.device, dtype=real.dtype)
    eps = eps.reshape(eps_shape)
    # Interpolate between detached tensors: x_hat is then a leaf we can differentiate
    # against, and no gradient leaks into G through fake.
    x_hat = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    scores = _upcast(critic(x_hat))
    (grads,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
    # The tiny epsilon keeps sqrt differentiable where the gradient is exactly zero
    # (sqrt'(0) is infinite, which would turn 0 * inf into NaN in the backward pass).
    norms = torch.sqrt(_upcast(grads).flatten(1).pow(2).sum(dim=1) + 1e-12)
    return (norms - 1).pow(2).mean()


def r1_penalty(critic: Callable[[Tensor], Tensor], real: Tensor) -> Tensor:
    """R1 penalty (Mescheder et al., 2018): ``E ||grad_x D(x)||**2`` over real images.

    Penalising D's gradient on the data keeps D from growing steep around the real images,
    the failure that makes a small D memorise a small data set; the trainer adds
    ``gamma / 2`` times this to D's loss. Unlike :func:`gradient_penalty` it needs no
    per-sample independence: the gradient of the summed scores is what is penalised.

    Args:
        critic: Maps a batch ``(N, ...)`` to scores ``(N,)``; it must not be compiled (the
            penalty differentiates through it twice).
        real: Real batch ``(N, ...)``, as D sees it (after any augmentation).

    Returns:
        A scalar (at least fp32) built with ``create_graph=True``.
    """
    x = real.detach().requires_grad_(True)
    (grads,) = torch.autograd.grad(_upcast(critic(x)).sum(), x, create_graph=True)
    return _upcast(grads).flatten(1).pow(2).sum(dim=1).mean()
