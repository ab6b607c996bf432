"""An exponential moving average of G's weights: what a run samples from when it is on.

Averaging G's weights over the last few thousand steps smooths out the oscillation of
adversarial training; the average usually samples better than the last weights (Yazici et
al. 2019; Karras et al. 2018). The trainer updates it after every G step, keeps it in its
state (so a resumed run equals an uninterrupted one) and samples from it: the grids, the
best-generator score and ``generator.pt``. The averaging itself is PyTorch's
``AveragedModel`` with its EMA function.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn


class EmaGenerator:
    """``ema = d * ema + (1 - d) * G`` after each G step; a copy of G up to ``start``.

    Early weights are not worth remembering, so until G step ``start`` the average restarts
    from G at every step. After it, ``d`` warms up: at ``t`` steps of averaging it is
    ``min(decay, t / (t + 3))``, the decay whose average reaches back (mean age ``d / (1 - d)``)
    a third of those steps. Without it, a short run's average would be mostly its first,
    untrained weights: at 0.995, 91% of it after 20 steps (noise in a 10-epoch grid on 41
    images). At 0.995 the warm-up ends after 597 steps; by step 2,000 those steps weigh <0.1%.
    Buffers (batch-norm statistics) are averaged too; sampling with ``train.sample_bn:
    standing`` recomputes them anyway.
    """

    def __init__(self, generator: nn.Module, decay: float, start: int):
        self.decay, self.start = decay, start
        self.ema = AveragedModel(generator, multi_avg_fn=self._average, use_buffers=True)
        self.steps = 0  # G steps seen, on the host: reading n_averaged would sync the GPU

    @property
    def module(self) -> nn.Module:
        """The averaged generator (a module shaped like G)."""
        return self.ema.module

    def decay_now(self) -> float:
        """The decay of the update after G step ``steps`` (the warm-up above)."""
        t = self.steps - max(self.start, 1)  # steps averaged before this one
        return min(self.decay, t / (t + 3))

    def _average(self, ema: list[torch.Tensor], current: list[torch.Tensor], n: Any) -> None:
        # AveragedModel's own EMA update, at this step's decay (its factory fixes one decay)
        get_ema_multi_avg_fn(self.decay_now())(ema, current, n)

    @torch.no_grad()
    def update(self, generator: nn.Module) -> None:
        """Average in ``generator``'s weights after a G step."""
        self.steps += 1
        if self.steps <= self.start:
            self.ema.n_averaged.zero_()  # AveragedModel copies G on its first update
        self.ema.update_parameters(generator)

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.ema.state_dict(), "steps": self.steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.ema.load_state_dict(state["model"])
        self.steps = state["steps"]
