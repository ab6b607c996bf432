"""DiffAugment: what the transforms do, that gradients pass, that runs stay exact."""

from __future__ import annotations

import pytest
import torch

from dcgan.augment import augment, parse
from dcgan.config import load_params
from dcgan.training import Session
from helpers import PARAMS, TINY, make_prepared


def _fixed(values):
    rows = torch.tensor(values, dtype=torch.float32)
    return lambda k: rows[:, :k]


def test_translation_shifts_by_whole_pixels_and_pads_with_zeros():
    x = torch.zeros(2, 1, 8, 8)
    x[:, :, 3, 3] = 1.0
    # U = 0 -> shift -1 (8 * 0.125 = 1 pixel at most); U ~ 1 -> shift +1
    out = augment(x, ("translation",), _fixed([[0.0, 0.0], [0.99, 0.99]]))
    assert out[0, 0, 2, 2] == 1 and out[1, 0, 4, 4] == 1 and out.sum() == 2
    edge = augment(torch.ones(1, 1, 8, 8), ("translation",), _fixed([[0.0, 0.5]]))
    assert edge[0, 0, -1].sum() == 0 and edge[0, 0, :-1].min() == 1  # moved up: the last row is padding


def test_cutout_zeroes_one_half_size_square():
    out = augment(torch.ones(3, 1, 8, 8), ("cutout",), _fixed([[0.5, 0.5], [0.0, 0.0], [0.99, 0.2]]))
    zeros = (out == 0).sum(dim=(1, 2, 3))
    assert zeros[0] == 16 and 4 <= zeros[1] <= 16 and 4 <= zeros[2] <= 16


def test_gradients_reach_the_generated_images():
    fake = torch.randn(4, 1, 28, 28, requires_grad=True)
    rng = torch.Generator().manual_seed(0)
    out = augment(fake, parse("translation,cutout"), lambda k: torch.rand(4, k, generator=rng))
    out.sum().backward()
    assert fake.grad is not None and (fake.grad != 0).any() and (fake.grad == 0).any()


def test_unknown_policy_is_one_line():
    with pytest.raises(ValueError, match="unknown augmentation 'flip'; allowed: translation, cutout"):
        parse("translation,flip")
    assert parse(None) == ()


def test_augmented_training_is_seeded_and_resumes_exactly(tmp_path):
    prepared = make_prepared(tmp_path / "data", n=64)
    extra = {**TINY, "train.augment": "translation,cutout"}
    runs = {}
    for name, epochs in (("a", 2), ("b", 1), ("b", 2)):
        session = Session(load_params(PARAMS, {**extra, "train.epochs": epochs}),
                          prepared, tmp_path / name)
        session.run()
        runs[name] = session.trainer.G.state_dict()
    assert all(torch.equal(runs["a"][k], runs["b"][k]) for k in runs["a"])
    plain = Session(load_params(PARAMS, TINY), prepared, tmp_path / "plain")
    plain.run()
    assert not torch.equal(plain.trainer.G.state_dict()["main.0.weight"], runs["a"]["main.0.weight"])
