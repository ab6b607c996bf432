"""Sample-quality machinery: standing batch-norm statistics, the EMA generator, spectral norm."""

from __future__ import annotations

import pytest
import torch

from dcgan import checkpoint
from dcgan.config import ConfigError
from dcgan.models import Discriminator, Generator
from dcgan.training import Session
from dcgan.training.ema import EmaGenerator
from dcgan.training.standing import prepare, standing
from helpers import tiny_params


def _shifted_generator() -> Generator:
    """A G whose activations are far from the initial running statistics, as early in training."""
    torch.manual_seed(0)
    g = Generator(nz=16, ngf=8)
    with torch.no_grad():
        g.main[0].weight.mul_(40.0).add_(0.05)  # pre-BN scale and mean far from (0, 1)
    return g


def test_standing_statistics_match_training_mode_and_leave_g_alone():
    g, z = _shifted_generator(), torch.randn(256, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        running_std = g.eval()(z).std().item()
        train_std = g.train()(z).std().item()  # (this updates g's running statistics)
        before = {k: v.clone() for k, v in g.state_dict().items()}
        standing_std = standing(g, nz=16, batch_size=64, seed=0)(z).std().item()
    assert abs(standing_std - train_std) < 0.1 * train_std
    assert abs(running_std - train_std) > 0.3 * train_std  # what flat or saturated grids come from
    assert all(torch.equal(before[k], v) for k, v in g.state_dict().items())
    running = prepare(g, "running", 16, 64, 0)
    assert not running.training and torch.equal(running.main[1].running_var, g.main[1].running_var)
    with pytest.raises(ValueError, match="unknown sample_bn mode 'x'"):
        prepare(g, "x", 16, 64, 0)


def _ema_run(tmp_path, prepared, epochs, decay=0.9, start=2):
    session = Session(tiny_params(**{"train.epochs": epochs, "train.ema": decay,
                                 "train.ema_start": start}), prepared, tmp_path)
    session.run()
    return session, session.trainer.ema


def test_ema_resumes_exactly_and_is_what_the_run_samples(tmp_path, prepared):
    straight, ema = _ema_run(tmp_path / "a", prepared, 2)
    _ema_run(tmp_path / "b", prepared, 1)
    resumed, ema_b = _ema_run(tmp_path / "b", prepared, 2)
    a, b = ema.module.state_dict(), ema_b.module.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a) and ema_b.steps == 2 * straight.trainer.iters
    assert straight.trainer.sample_from is ema.module
    g = straight.trainer.G.state_dict()
    assert not torch.equal(a["main.0.weight"], g["main.0.weight"])  # averaged, not a copy
    straight.write_outputs(tmp_path / "out")
    saved = checkpoint.load_model(tmp_path / "out/generator.pt", Generator)
    assert torch.equal(saved.main[0].weight, ema.module.main[0].weight)
    raw = checkpoint.load_model(tmp_path / "out/generator_no_ema.pt", Generator)
    assert torch.equal(raw.main[0].weight, straight.trainer.G.main[0].weight)


@pytest.mark.parametrize("start", [0, 3])
def test_ema_warms_up_then_decays_at_its_rate(start):
    """By hand: a copy of G at step max(start, 1), then d = min(decay, t / (t + 3)) at the
    t-th averaged step, so a short run's average follows G instead of its first weights."""
    G, weights = torch.nn.Linear(3, 2), [torch.randn(2, 3) for _ in range(40)]
    ema = EmaGenerator(G, 0.9, start)
    expected = None
    for step, w in enumerate(weights, 1):
        G.weight.data.copy_(w)
        ema.update(G)
        t = step - max(start, 1)
        d = min(0.9, t / (t + 3))
        expected = w if t <= 0 else d * expected + (1 - d) * w
    torch.testing.assert_close(ema.module.weight, expected)
    assert _decays(0.995, [2, 300, 598, 2000]) == [0.25, 299 / 302, 0.995, 0.995]


def _decays(decay, steps):
    hook = EmaGenerator(torch.nn.Linear(1, 1), decay, 0)
    out = []
    for n in steps:
        hook.steps = n
        out.append(hook.decay_now())
    return out


def test_ema_copies_g_until_its_start_step(tmp_path, prepared):
    session, ema = _ema_run(tmp_path, prepared, 1, start=100)
    a, g = ema.module.state_dict(), session.trainer.G.state_dict()
    assert all(torch.equal(a[k], g[k]) for k in g if k.endswith("weight"))


def test_spectral_norm_discriminator_is_one_lipschitz_per_layer_and_trains(tmp_path, prepared):
    torch.manual_seed(0)
    d = Discriminator(ndf=8, norm="spectral")
    for _ in range(30):  # each call runs one power iteration
        d(torch.randn(4, 1, 28, 28))
    d.eval()
    convs = [m for m in d.main if isinstance(m, torch.nn.Conv2d)]
    assert convs and not any(isinstance(m, torch.nn.BatchNorm2d) for m in d.main)
    for conv in convs:
        sigma = torch.linalg.matrix_norm(conv.weight.flatten(1), ord=2)
        assert abs(sigma.item() - 1) < 0.05
    session = Session(tiny_params(**{"model.d_norm": "spectral", "train.epochs": 1}), prepared, tmp_path)
    session.run()
    assert torch.isfinite(torch.tensor(session.metrics()["d_loss"]))


def test_ema_decay_outside_zero_one_is_one_line():
    with pytest.raises(ConfigError, match=r"train.ema: must be between 0 and 1 \(exclusive\), e.g. 0.999; got 1.5$"):
        tiny_params(**{"train.ema": 1.5})
