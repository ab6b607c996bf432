"""The G/D pair of one run: plain modules, their optimisers, and the views the steps call.

The plain modules are what checkpoints hold and samplers use. The steps call views of them:
DDP-wrapped when several processes train, ``torch.compile``d when asked. Each view is named
for the one job it does, since the jobs need different wrappers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from dcgan import distributed
from dcgan.config import Params
from dcgan.distributed import World
from dcgan.losses import Loss
from dcgan.models import Discriminator, Generator


@dataclass
class Networks:
    """G and D with their Adam optimisers and call views.

    Attributes:
        G, D: The plain modules (checkpoints, grids, evaluation).
        opt_g, opt_d: Their optimisers.
        g_train: G as training calls it (DDP, compiled when asked).
        d_train: D as D's own step calls it (DDP, compiled when asked).
        d_for_g: D inside G's step: never DDP, which would wait for D gradients that G's
            step does not produce.
        d_penalty: D inside the gradient penalty: DDP but never compiled, because compiled
            graphs have no double backward.
        g_kwargs, d_kwargs: The constructor arguments that rebuild G and D from a file.
    """

    G: nn.Module
    D: nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    g_train: nn.Module
    d_train: nn.Module
    d_for_g: nn.Module
    d_penalty: nn.Module
    g_kwargs: dict[str, Any]
    d_kwargs: dict[str, Any]


def build(params: Params, loss: Loss, shape: list[int], device: torch.device, world: World,
          layout: torch.memory_format) -> Networks:
    """G and D for images of ``shape`` (C, H, W), initialised from ``params.seed``; D's
    normalisation as ``loss`` needs it when ``model.d_norm`` is auto."""
    model_params, train_params = params.model, params.train
    torch.manual_seed(params.seed)  # weight init draws from the global RNG
    g_kwargs = dict(nz=model_params.nz, ngf=model_params.ngf, nc=shape[0], image_size=shape[1],
                    activation=model_params.g_activation, extra_layers=model_params.extra_layers,
                    upsample=model_params.g_upsample)
    d_kwargs = dict(nc=shape[0], ndf=model_params.ndf, image_size=shape[1],
                    activation=model_params.d_activation, norm=loss.norm_for(model_params.d_norm),
                    extra_layers=model_params.extra_layers)
    G = Generator(**g_kwargs).to(device, memory_format=layout)
    D = Discriminator(**d_kwargs).to(device, memory_format=layout)
    if train_params.sync_bn and world.size > 1:
        G, D = (distributed.sync_batch_norm(n, device) for n in (G, D))
    g_train, d_train = (distributed.wrap(n, world, device) for n in (G, D))
    d_penalty, d_for_g = d_train, D
    if train_params.compile is not None:
        mode = None if train_params.compile == "default" else train_params.compile
        g_train, d_train, d_for_g = (torch.compile(n, mode=mode) for n in (g_train, d_train, D))
    fused = device.type == "cuda"  # one kernel per step instead of one per tensor
    betas = (train_params.beta1, train_params.beta2)
    opt_g = torch.optim.Adam(G.parameters(), train_params.lr_g, betas, fused=fused)
    opt_d = torch.optim.Adam(D.parameters(), train_params.lr_d, betas, fused=fused)
    return Networks(G, D, opt_g, opt_d, g_train, d_train, d_for_g, d_penalty, g_kwargs, d_kwargs)
