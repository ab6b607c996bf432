"""Tests for dcgan.models: shapes, the pytorch/examples equivalence, norms, init, config."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dcgan.models import (
    ACTIVATIONS,
    D_NORMS,
    G_UPSAMPLES,
    Discriminator,
    Generator,
    check_image_size,
    init_weights,
    supported_sizes,
)

_CONVS = (nn.Conv2d, nn.ConvTranspose2d)
_NORMS = (nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm, nn.InstanceNorm2d)


@pytest.fixture(autouse=True)
def _seed():
    # Constructors draw weights from the global RNG; seed it so no test depends on luck.
    torch.manual_seed(0)


def _convs(net: nn.Module) -> list[nn.Module]:
    return [m for m in net.main if isinstance(m, _CONVS)]


def _seeded_input(*shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(0))


# --- shapes -------------------------------------------------------------------------------

@pytest.mark.parametrize("image_size,nc,width", [(28, 1, 16), (32, 1, 8), (64, 3, 8),
                                                 (16, 3, 4), (256, 1, 2)])
def test_shapes_for_flat_and_4d_latents(image_size, nc, width):
    g = Generator(nz=10, ngf=width, nc=nc, image_size=image_size)
    d = Discriminator(nc=nc, ndf=width, image_size=image_size)
    z = _seeded_input(3, 10)
    images = g(z)
    assert images.shape == (3, nc, image_size, image_size)
    assert images.abs().max() <= 1.0
    # Both latent layouts are the same latents, so they must give identical images.
    torch.testing.assert_close(g(z.view(3, 10, 1, 1)), images)
    assert d(images).shape == (3,)


def test_generator_output_is_tanh_bounded():
    g = Generator(nz=10, ngf=8, nc=1, image_size=28)
    assert isinstance(g.main[-1], nn.Tanh)
    with torch.no_grad():
        g.main[-2].weight.mul_(1000)  # push pre-activations far outside [-1, 1]
        images = g(_seeded_input(4, 10))
    assert images.abs().max() <= 1.0
    assert images.abs().max() > 0.99  # saturated, so the bound above was really tested


def test_discriminator_returns_unsquashed_logits():
    d = Discriminator(nc=1, ndf=8, image_size=28)
    assert not any(isinstance(m, nn.Sigmoid) for m in d.modules())
    with torch.no_grad():
        d.main[-1].weight.mul_(1000)
        logits = d(_seeded_input(16, 1, 28, 28))
    assert logits.shape == (16,)
    assert (logits < 0).any() and (logits > 1).any()  # impossible after a sigmoid


def test_wrong_input_shapes_raise():
    with pytest.raises(ValueError, match="z must have shape"):
        Generator(nz=10, ngf=4)(torch.zeros(2, 11))
    with pytest.raises(ValueError, match="x must have shape"):
        Discriminator(nc=1, ndf=4, image_size=28)(torch.zeros(2, 1, 32, 32))


# --- the pytorch/examples DCGAN at 64x64 ----------------------------------------------------

# (type, weight shape, stride, padding) per module of pytorch/examples dcgan/main.py, in order;
# activations have no weight. All convs there are bias-free.
_EXAMPLES_G = [
    ("ConvTranspose2d", (100, 512, 4, 4), 1, 0), ("BatchNorm2d", (512,)), ("ReLU",),
    ("ConvTranspose2d", (512, 256, 4, 4), 2, 1), ("BatchNorm2d", (256,)), ("ReLU",),
    ("ConvTranspose2d", (256, 128, 4, 4), 2, 1), ("BatchNorm2d", (128,)), ("ReLU",),
    ("ConvTranspose2d", (128, 64, 4, 4), 2, 1), ("BatchNorm2d", (64,)), ("ReLU",),
    ("ConvTranspose2d", (64, 3, 4, 4), 2, 1), ("Tanh",),
]
# The examples' final Sigmoid is dropped on purpose (logits); it has no parameters.
_EXAMPLES_D = [
    ("Conv2d", (64, 3, 4, 4), 2, 1), ("LeakyReLU",),
    ("Conv2d", (128, 64, 4, 4), 2, 1), ("BatchNorm2d", (128,)), ("LeakyReLU",),
    ("Conv2d", (256, 128, 4, 4), 2, 1), ("BatchNorm2d", (256,)), ("LeakyReLU",),
    ("Conv2d", (512, 256, 4, 4), 2, 1), ("BatchNorm2d", (512,)), ("LeakyReLU",),
    ("Conv2d", (1, 512, 4, 4), 1, 0),
]


def _describe(net: nn.Module) -> list[tuple]:
    rows = []
    for m in net.main:
        row: tuple = (type(m).__name__,)
        if isinstance(m, _CONVS):
            assert m.bias is None
            row += (tuple(m.weight.shape), m.stride[0], m.padding[0])
        elif isinstance(m, nn.BatchNorm2d):
            row += (tuple(m.weight.shape),)
        rows.append(row)
    return rows


def test_matches_pytorch_examples_dcgan_at_64():
    g = Generator(nz=100, ngf=64, nc=3, image_size=64)
    d = Discriminator(nc=3, ndf=64, image_size=64)
    assert sum(p.numel() for p in g.parameters()) == 3_576_704
    assert sum(p.numel() for p in d.parameters()) == 2_765_568
    assert _describe(g) == _EXAMPLES_G
    assert _describe(d) == _EXAMPLES_D
    # Same state_dict keys as the examples' `self.main = nn.Sequential(...)`.
    assert "main.0.weight" in g.state_dict() and "main.1.running_mean" in g.state_dict()
    assert all(m.negative_slope == 0.2 for m in d.main if isinstance(m, nn.LeakyReLU))


def test_mnist_schedule_uses_7x7_base():
    g = Generator(nz=100, ngf=64, nc=1, image_size=28)
    d = Discriminator(nc=1, ndf=64, image_size=28)
    assert [(c.in_channels, c.out_channels, c.kernel_size[0], c.stride[0]) for c in _convs(g)] \
        == [(100, 128, 7, 1), (128, 64, 4, 2), (64, 1, 4, 2)]
    assert [(c.in_channels, c.out_channels, c.kernel_size[0], c.stride[0]) for c in _convs(d)] \
        == [(1, 64, 4, 2), (64, 128, 4, 2), (128, 1, 7, 1)]


# --- norm placement -------------------------------------------------------------------------

def test_generator_norms_after_hidden_layers_only():
    g = Generator(nz=10, ngf=8, nc=3, image_size=32, extra_layers=1)
    modules = list(g.main)
    conv_at = [i for i, m in enumerate(modules) if isinstance(m, _CONVS)]
    for i in conv_at[:-1]:
        assert isinstance(modules[i + 1], nn.BatchNorm2d)
        assert modules[i + 1].num_features == modules[i].out_channels
    assert conv_at[-1] == len(modules) - 2 and isinstance(modules[-1], nn.Tanh)


@pytest.mark.parametrize("norm,norm_type", [("batch", nn.BatchNorm2d), ("layer", nn.GroupNorm)])
def test_discriminator_norm_placement(norm, norm_type):
    d = Discriminator(nc=3, ndf=8, image_size=32, norm=norm, extra_layers=1)
    modules = list(d.main)
    conv_at = [i for i, m in enumerate(modules) if isinstance(m, _CONVS)]
    assert conv_at[0] == 0 and not isinstance(modules[1], _NORMS)  # no norm on D's input
    assert conv_at[-1] == len(modules) - 1  # the logit conv: no norm, no activation
    for i in conv_at[1:-1]:
        assert type(modules[i + 1]) is norm_type
    norms = [m for m in modules if isinstance(m, _NORMS)]
    assert len(norms) == len(conv_at) - 2
    if norm == "layer":
        for i in conv_at[1:-1]:
            assert modules[i + 1].num_groups == 1
            assert modules[i + 1].num_channels == modules[i].out_channels


def test_discriminator_without_norm_has_no_norm_modules():
    d = Discriminator(nc=3, ndf=8, image_size=64, norm="none", extra_layers=2)
    assert not any(isinstance(m, _NORMS) for m in d.modules())
    assert len(_convs(d)) == 5 + 2


@pytest.mark.parametrize("norm,independent", [("batch", False), ("layer", True),
                                              ("none", True)])
def test_per_sample_independence(norm, independent):
    # The gradient penalty assumes D(x_i) depends on x_i alone; batch norm breaks that.
    d = Discriminator(nc=1, ndf=8, image_size=16, norm=norm)
    x = _seeded_input(4, 1, 16, 16)
    changed = x.clone()
    changed[1:] = changed[1:] * 5 + 1
    same = torch.allclose(d(x)[0], d(changed)[0], atol=1e-6)
    assert same is independent


# --- initialisation -------------------------------------------------------------------------

@pytest.mark.parametrize("build", [
    lambda: Generator(nz=100, ngf=64, nc=3, image_size=64),
    lambda: Discriminator(nc=3, ndf=64, image_size=64),
    lambda: Discriminator(nc=3, ndf=64, image_size=64, norm="layer"),
], ids=["G", "D-batch", "D-layer"])
def test_init_statistics(build):
    net = build()
    for conv in _convs(net):
        w = conv.weight.detach()
        assert abs(w.mean().item()) < 2e-3
        assert w.std().item() == pytest.approx(0.02, rel=0.1)
    norms = [m for m in net.modules() if isinstance(m, (nn.BatchNorm2d, nn.GroupNorm))]
    assert norms
    gammas = torch.cat([m.weight.detach() for m in norms])
    assert gammas.mean().item() == pytest.approx(1.0, abs=0.01)
    assert 0.01 < gammas.std().item() < 0.03  # drawn, not PyTorch's constant 1
    assert all(torch.count_nonzero(m.bias) == 0 for m in norms)


def test_init_weights_leaves_other_modules_alone():
    linear = nn.Linear(500, 500)
    before = linear.weight.detach().clone()
    init_weights(linear)
    assert torch.equal(linear.weight, before)
    conv = nn.Conv2d(64, 64, 3, bias=True)
    nn.init.constant_(conv.bias, 5.0)
    init_weights(conv)
    assert conv.weight.std().item() == pytest.approx(0.02, rel=0.1)
    assert torch.count_nonzero(conv.bias) == 0


# --- depth and activation ---------------------------------------------------------------------

@pytest.mark.parametrize("image_size", [28, 64])
def test_extra_layers_add_same_resolution_convs(image_size):
    nc, width = 3, 8
    base_g = Generator(nz=10, ngf=width, nc=nc, image_size=image_size)
    deep_g = Generator(nz=10, ngf=width, nc=nc, image_size=image_size, extra_layers=3)
    base_d = Discriminator(nc=nc, ndf=width, image_size=image_size)
    deep_d = Discriminator(nc=nc, ndf=width, image_size=image_size, extra_layers=3)
    assert len(_convs(deep_g)) == len(_convs(base_g)) + 3
    assert len(_convs(deep_d)) == len(_convs(base_d)) + 3
    # G: just before the output conv; D: just after the input conv (the WGAN reference).
    for extra in _convs(deep_g)[-4:-1] + _convs(deep_d)[1:4]:
        assert isinstance(extra, nn.Conv2d)
        assert (extra.in_channels, extra.out_channels) == (width, width)
        assert (extra.kernel_size, extra.stride, extra.padding) == ((3, 3), (1, 1), (1, 1))
    images = deep_g(_seeded_input(2, 10))
    assert images.shape == (2, nc, image_size, image_size)
    assert deep_d(images).shape == (2,)


@pytest.mark.parametrize("image_size", [28, 64])
def test_resize_upsampling_replaces_every_strided_transpose(image_size):
    transpose = Generator(nz=10, ngf=8, nc=3, image_size=image_size, extra_layers=1)
    resize = Generator(nz=10, ngf=8, nc=3, image_size=image_size, extra_layers=1,
                       upsample="resize")
    # Same channel schedule: only the first layer (z -> base x base) stays a ConvT.
    assert [(c.in_channels, c.out_channels) for c in _convs(resize)] == \
        [(c.in_channels, c.out_channels) for c in _convs(transpose)]
    assert [type(c) for c in _convs(resize)][:2] == [nn.ConvTranspose2d, nn.Conv2d]
    assert sum(isinstance(m, nn.ConvTranspose2d) for m in resize.modules()) == 1
    ups = [i for i, m in enumerate(resize.main) if isinstance(m, nn.Upsample)]
    assert len(ups) == sum(isinstance(c, nn.ConvTranspose2d) for c in _convs(transpose)) - 1
    for i in ups:  # each doubling: nearest 2x, then a 3x3 conv that keeps the new size
        up, conv = resize.main[i], resize.main[i + 1]
        assert (up.scale_factor, up.mode) == (2.0, "nearest")
        assert (conv.kernel_size, conv.stride, conv.padding) == ((3, 3), (1, 1), (1, 1))
    images = resize(_seeded_input(2, 10))
    assert images.shape == (2, 3, image_size, image_size) and images.abs().max() <= 1.0


def _activation_types(net: nn.Module) -> set[type]:
    return {type(m) for m in net.modules() if isinstance(m, (nn.ReLU, nn.LeakyReLU))}


def test_activation_choice_is_honoured():
    assert _activation_types(Generator(ngf=4)) == {nn.ReLU}
    leaky_g = Generator(ngf=4, activation="leaky_relu", extra_layers=1)
    assert _activation_types(leaky_g) == {nn.LeakyReLU}
    assert all(m.negative_slope == 0.2 for m in leaky_g.modules()
               if isinstance(m, nn.LeakyReLU))
    # One activation per hidden conv: 3 in G (2 pyramid + 1 extra), 2 in D at 28x28.
    assert sum(isinstance(m, nn.LeakyReLU) for m in leaky_g.main) == 3
    assert _activation_types(Discriminator(ndf=4)) == {nn.LeakyReLU}
    relu_d = Discriminator(ndf=4, activation="relu")
    assert _activation_types(relu_d) == {nn.ReLU}
    assert sum(isinstance(m, nn.ReLU) for m in relu_d.main) == 2


# --- validation -------------------------------------------------------------------------------

@pytest.mark.parametrize("size", [16, 28, 32, 64, 128, 256])
def test_supported_sizes_pass(size):
    check_image_size(size)


@pytest.mark.parametrize("size", [30, 512, 8, 0, -64, 27, 48, 28.0, True])
def test_unsupported_image_size_raises_one_line(size):
    for build in (lambda: check_image_size(size), lambda: Generator(image_size=size),
                  lambda: Discriminator(image_size=size)):
        with pytest.raises(ValueError) as info:
            build()
        message = str(info.value)
        assert "\n" not in message
        assert repr(size) in message and supported_sizes() in message


def test_supported_sizes_text():
    assert supported_sizes() == "28 or a power of two from 16 to 256"


@pytest.mark.parametrize("build,allowed", [
    (lambda: Generator(activation="elu"), ACTIVATIONS),
    (lambda: Discriminator(activation="tanh"), ACTIVATIONS),
    (lambda: Discriminator(norm="instance"), D_NORMS),
    (lambda: Generator(upsample="bilinear"), G_UPSAMPLES),
])
def test_unknown_choices_name_allowed_values(build, allowed):
    with pytest.raises(ValueError, match="allowed: " + ", ".join(allowed)):
        build()


@pytest.mark.parametrize("kwargs", [{"nz": 0}, {"ngf": -1}, {"nc": 2.5}, {"extra_layers": -1}])
def test_bad_widths_raise(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        Generator(**kwargs)
