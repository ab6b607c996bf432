"""One D update and one G update, under bf16 autocast on CUDA; the loss decides the maths."""

from __future__ import annotations

import contextlib
from typing import Callable

import torch
from torch import Tensor

from dcgan.losses import Loss, gradient_penalty, r1_penalty
from dcgan.training.networks import Networks


class GanSteps:
    """The two updates of a GAN iteration for one :class:`Networks` pair and one loss.

    Args:
        nets: The G/D pair and its optimisers.
        loss: The resolved loss (``losses.get``).
        amp: Run the forward passes under bf16 autocast (CUDA only).
        separate: One D update on a fake batch, then one on a real batch (the Keras write-up)
            instead of one update on both.
        gp_weight: The gradient penalty's lambda, used when the loss has one.
        penalty_weights: Draws this process's interpolation weights of the penalty.
        augment: What D sees of every real and generated batch (DiffAugment), or None.
        r1: R1's gamma (0: off); applied on every ``r1_every``-th D step of the run,
            weighted by ``r1_every`` so the average push is the same (lazy regularisation).
        r1_every: How many D steps apart R1 is applied.
    """

    def __init__(self, nets: Networks, loss: Loss, *, amp: bool, separate: bool,
                 gp_weight: float, penalty_weights: Callable[[], Tensor],
                 augment: Callable[[Tensor], Tensor] | None = None, r1: float = 0.0,
                 r1_every: int = 1):
        self.nets, self.loss, self.amp = nets, loss, amp
        self.r1_weight, self.r1_every = r1 * r1_every / 2, r1_every
        self.separate, self.gp_weight, self.penalty_weights = separate, gp_weight, penalty_weights
        self.aug = augment or (lambda x: x)
        self.device_type = next(nets.G.parameters()).device.type

    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast when ``amp``, else a no-op context."""
        return torch.autocast(self.device_type, dtype=torch.bfloat16, enabled=self.amp)

    def _update_d(self, loss: Tensor) -> None:
        self.nets.opt_d.zero_grad(set_to_none=True)
        loss.backward()
        self.nets.opt_d.step()

    def d_step(self, real: Tensor, fake: Tensor, step: int) -> tuple[Tensor, Tensor, Tensor]:
        """One D update (two when ``separate``); returns the loss, D(x) and D(G(z)).

        ``step``: this D step's index in the whole run (0-based, counted across epochs, so a
        resumed run penalises the same steps); it decides whether R1 falls on this step.
        """
        r1 = step % self.r1_every == 0
        fake, d, loss_fn, aug = fake.detach(), self.nets.d_train, self.loss, self.aug
        if self.separate:
            with self.autocast():
                f = d(aug(fake))
            self._update_d(loss_f := loss_fn.d_loss_fake(f))
            with self.autocast():
                r = d(seen := aug(real))
            self._update_d(loss_r := loss_fn.d_loss_real(r) + self._r1(seen, r1))
            loss = loss_f + loss_r
        else:
            with self.autocast():
                r, f = d(seen := aug(real)), d(aug(fake))
            loss = loss_fn.d_loss(r, f) + self._r1(seen, r1)
            if loss_fn.gradient_penalty:  # fp32: the penalty differentiates through D twice
                loss = loss + self.gp_weight * gradient_penalty(
                    self.nets.d_penalty, real, fake, eps=self.penalty_weights())
            self._update_d(loss)
        return loss.detach(), loss_fn.d_output_score(r), loss_fn.d_output_score(f)

    def _r1(self, real: Tensor, now: bool) -> Tensor | float:
        """R1's term of D's loss on this step: fp32 and eager, like the gradient penalty."""
        if not (now and self.r1_weight):
            return 0.0
        return self.r1_weight * r1_penalty(self.nets.d_penalty, real)

    def g_step(self, fake: Tensor) -> Tensor:
        """One G update through D (whose weights get no gradients); returns G's loss."""
        D = self.nets.D
        D.requires_grad_(False)
        with self.autocast():
            loss = self.loss.g_loss(self.nets.d_for_g(self.aug(fake)))
        self.nets.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        self.nets.opt_g.step()
        D.requires_grad_(True)
        return loss.detach()
