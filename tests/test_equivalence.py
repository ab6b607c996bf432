"""The library's training loop against a plain one written here: the same weights, to the bit.

The reference below is the DCGAN training loop as a tutorial writes it: the GAN losses by
hand from D's logits, D steps then a G step, Adam, an exponential moving average of G. It
shares only the network classes and the seeding contract with the library (one generator
seeded with ``seed`` draws, in order, the fixed noise, then per epoch a permutation, and per
D step the noise and the penalty's interpolation weights; the weights are initialised from
the global RNG seeded with ``seed``). Run in the same process on the CPU, both must end with
bit-identical G, D and EMA weights for every loss: the check that cannot skip, whatever
torch version or CPU runs it.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from dcgan.data.prepared import load_split
from dcgan.losses import get
from dcgan.models import Discriminator, Generator
from dcgan.training import Trainer
from helpers import tiny_params

CASES = {  # name -> params overrides (TINY size, 2 epochs of 64 images)
    "bce": {},  # two D steps per G step, lazy R1 every 8th D step, EMA: the default recipe
    "bce-r1-every-2-separate": {"train.r1_every": 2, "train.d_batches": "separate"},
    "mse": {"loss": "mse", "train.d_steps": 1},
    "hinge-layer-norm": {"loss": "hinge", "model.d_norm": "layer"},
    "wgan-gp": {"loss": "wgan-gp", "train.d_steps": 2},
    "paper": {"model.extra_layers": 0, "model.g_upsample": "transpose", "train.ema": "none",
              "train.r1": 0.0, "train.d_steps": 1, "train.beta1": 0.5, "train.beta2": 0.999},
}

D_REAL = {"bce": lambda r: F.softplus(-r).mean(), "mse": lambda r: ((r - 1) ** 2).mean(),
          "hinge": lambda r: F.relu(1 - r).mean(), "wgan-gp": lambda r: -r.mean()}
D_FAKE = {"bce": lambda f: F.softplus(f).mean(), "mse": lambda f: (f ** 2).mean(),
          "hinge": lambda f: F.relu(1 + f).mean(), "wgan-gp": lambda f: f.mean()}
G_LOSS = {"bce": lambda f: F.softplus(-f).mean(), "mse": lambda f: ((f - 1) ** 2).mean(),
          "hinge": lambda f: -f.mean(), "wgan-gp": lambda f: -f.mean()}


def _grad_norm_sq(D, x):
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(D(x).float().sum(), x, create_graph=True)
    return grad.float().flatten(1).pow(2).sum(1)


def reference(params, images: torch.Tensor) -> dict[str, dict[str, torch.Tensor]]:
    """A plain training loop of ``params``; returns the final G, D and EMA state dicts."""
    m, t, name = params.model, params.train, params.loss
    own = get(name)  # only the loss's *defaults* (D steps, D norm, R1 gamma) come from here
    d_steps, gamma = own.steps_per_g(t.d_steps), own.r1_for(t.r1)
    layout = torch.channels_last if t.channels_last else torch.contiguous_format
    rng = torch.Generator().manual_seed(params.seed)
    torch.manual_seed(params.seed)
    C, S = images.shape[1], images.shape[2]
    G = Generator(nz=m.nz, ngf=m.ngf, nc=C, image_size=S, activation=m.g_activation,
                  extra_layers=m.extra_layers, upsample=m.g_upsample).to(memory_format=layout)
    D = Discriminator(nc=C, ndf=m.ndf, image_size=S, activation=m.d_activation,
                      norm=own.norm_for(m.d_norm), extra_layers=m.extra_layers).to(memory_format=layout)
    opt_g = torch.optim.Adam(G.parameters(), t.lr_g, (t.beta1, t.beta2))
    opt_d = torch.optim.Adam(D.parameters(), t.lr_d, (t.beta1, t.beta2))
    torch.randn(t.grid_images, m.nz, generator=rng)  # the fixed noise of the grids
    ema, ema_steps = None, 0
    b = min(t.batch_size, len(images) // d_steps)
    iters = len(images) // b // d_steps

    def update_d(loss):
        opt_d.zero_grad(set_to_none=True)
        loss.backward()
        opt_d.step()

    step = 0
    for _ in range(t.epochs):
        perm = torch.randperm(len(images), generator=rng)
        shard = images[perm[:iters * d_steps * b]].to(memory_format=layout)
        for it in range(iters):
            for k in range(d_steps):
                z = torch.randn(b, m.nz, generator=rng)
                with torch.set_grad_enabled(k == d_steps - 1):
                    fake = G(z)
                real = shard[(it * d_steps + k) * b:(it * d_steps + k + 1) * b]
                lazy = gamma and step % t.r1_every == 0  # R1 on every r1_every-th D step
                if t.d_batches == "separate":  # (D's forward passes in the library's order:
                    update_d(D_FAKE[name](D(fake.detach()).float()))  # batch norm counts them)
                    r = D(real)
                    r1 = gamma * t.r1_every / 2 * _grad_norm_sq(D, real).mean() if lazy else 0.0
                    update_d(D_REAL[name](r.float()) + r1)
                else:
                    r, f = D(real), D(fake.detach())
                    r1 = gamma * t.r1_every / 2 * _grad_norm_sq(D, real).mean() if lazy else 0.0
                    loss = D_REAL[name](r.float()) + D_FAKE[name](f.float()) + r1
                    if own.gradient_penalty:
                        eps = torch.rand(b, generator=rng).view(b, 1, 1, 1)
                        x_hat = eps * real + (1 - eps) * fake.detach()
                        norms = torch.sqrt(_grad_norm_sq(D, x_hat) + 1e-12)
                        loss = loss + t.gp_weight * (norms - 1).pow(2).mean()
                    update_d(loss)
                step += 1
            D.requires_grad_(False)
            g_loss = G_LOSS[name](D(fake).float())
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()
            D.requires_grad_(True)
            if t.ema is not None:  # a copy of G at the first step, then the warmed-up decay
                ema_steps += 1
                if ema is None:
                    ema = copy.deepcopy(G)
                    continue
                n = ema_steps - max(t.ema_start, 1)
                decay = min(t.ema, n / (n + 3))
                with torch.no_grad():
                    for e, g in zip([*ema.parameters(), *ema.buffers()], [*G.parameters(), *G.buffers()]):
                        if e.is_floating_point():
                            e.lerp_(g, 1 - decay)
                        else:  # batch norm's step counter, averaged and truncated as torch does
                            e.copy_(e * decay + g * (1 - decay))
    return {"G": G.state_dict(), "D": D.state_dict(), "ema": ema.state_dict() if ema else {}}


@pytest.mark.parametrize("case", sorted(CASES))
def test_library_loop_equals_a_plain_loop_bit_for_bit(prepared, case):
    params = tiny_params(**{"train.ema_start": 0, **CASES[case]})
    images, _ = load_split(prepared, "train")
    trainer = Trainer(params, images)
    trainer.run()
    got = {"G": trainer.G.state_dict(), "D": trainer.D.state_dict(),
           "ema": trainer.ema.module.state_dict() if trainer.ema else {}}
    want = reference(params, images)
    for net in ("G", "D", "ema"):
        assert got[net].keys() == want[net].keys(), net
        for key, value in want[net].items():
            assert torch.equal(got[net][key], value), f"{case}: {net}.{key} differs"
