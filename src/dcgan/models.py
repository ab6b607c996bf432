"""DCGAN generator and discriminator (Radford et al., 2015), parametrised by config.

Architecture rules from the paper: strided convs in D and fractionally-strided convs in G
(no pooling), no fully-connected hidden layers, batch norm everywhere except G's output and
D's input, ReLU in G with a tanh output, LeakyReLU(0.2) in D, weights drawn from N(0, 0.02).

The layer table is built by a loop so several write-ups (MNIST at 28x28, the pytorch/examples
64x64 model, the WGAN reference code's ``n_extra_layers``) are configs of the same class.
At ``image_size=64, nz=100, ngf=ndf=64, nc=3`` both networks are exactly the pytorch/examples
DCGAN: same layers, same parameter shapes and the same ``state_dict`` keys (``main.<i>.*``).

Generator schedule (the first layer has ``ngf * 2**(n_up - 1)`` channels, n_up being the
number of stride-2 upsamplings)::

    image_size 28 (n_up=2)            image_size 64 (n_up=4; other powers of two alike)
    z        (nz, 1, 1)               z        (nz, 1, 1)
    ConvT7   (2*ngf, 7, 7)   BN act   ConvT4   (8*ngf, 4, 4)    BN act
    ConvT4s2 (ngf, 14, 14)   BN act   ConvT4s2 (4*ngf, 8, 8)    BN act
    extra    (ngf, 14, 14)   BN act   ConvT4s2 (2*ngf, 16, 16)  BN act
    ConvT4s2 (nc, 28, 28)    tanh     ConvT4s2 (ngf, 32, 32)    BN act
                                      extra    (ngf, 32, 32)    BN act
                                      ConvT4s2 (nc, 64, 64)     tanh

(``extra``: ``extra_layers`` times a 3x3 stride-1 conv; none by default. ``upsample="resize"``
makes every ConvT4s2 a nearest-neighbour 2x upsampling followed by a 3x3 conv, same shapes.)

D mirrors G with ndf: the first conv (no norm) outputs ndf channels, each further stride-2
conv doubles them, and a final valid conv (kernel 7 or 4) yields one logit per image.
"""

from __future__ import annotations

import torch
from torch import nn

ACTIVATIONS = ("relu", "leaky_relu")
G_UPSAMPLES = ("transpose", "resize")
D_NORMS = ("batch", "layer", "none", "spectral")

_LEAKY_SLOPE = 0.2  # the paper's slope for D, also used when G is configured leaky
_MIN_POW2, _MAX_POW2 = 16, 256
_MNIST_SIZE = 28


def supported_sizes() -> str:
    """Describe the supported image sizes for error messages and help text.

    Returns:
        Human-readable text, e.g. ``"28 or a power of two from 16 to 256"``.
    """
    return f"{_MNIST_SIZE} or a power of two from {_MIN_POW2} to {_MAX_POW2}"


def check_image_size(image_size: int) -> None:
    """Validate an image size against the resolution schedule.

    Args:
        image_size: Height (= width) of the images.

    Raises:
        ValueError: One line naming the value and the supported sizes.
    """
    # bool is an int subclass; True would otherwise slip through as 1.
    ok = isinstance(image_size, int) and not isinstance(image_size, bool) and (
        image_size == _MNIST_SIZE
        or (_MIN_POW2 <= image_size <= _MAX_POW2 and image_size & (image_size - 1) == 0)
    )
    if not ok:
        raise ValueError(f"unsupported image_size {image_size!r}; supported: {supported_sizes()}")


def _schedule(image_size: int) -> tuple[int, int]:
    """Return ``(base, n_up)``: the first/last spatial size and the stride-2 step count."""
    check_image_size(image_size)
    base = 7 if image_size == _MNIST_SIZE else 4
    # image_size / base is a power of two in both cases (28/7 = 4, 2**k / 4).
    return base, (image_size // base).bit_length() - 1


def _check_choice(kind: str, value: str, allowed: tuple[str, ...]) -> None:
    """Raise a one-line ValueError unless ``value`` is in ``allowed``."""
    if value not in allowed:
        raise ValueError(f"unknown {kind} {value!r}; allowed: {', '.join(allowed)}")


def _check_counts(**counts: int) -> None:
    """Raise a one-line ValueError for widths that are not positive or a negative depth."""
    for name, value in counts.items():
        low = 0 if name == "extra_layers" else 1
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


def _activation(name: str) -> nn.Module:
    """Build the named activation (not in-place, so double backward for WGAN-GP is safe)."""
    if name == "relu":
        return nn.ReLU()
    return nn.LeakyReLU(_LEAKY_SLOPE)


def _d_norm(norm: str, channels: int) -> list[nn.Module]:
    """Return the norm layer for a D block (empty for ``"none"`` and ``"spectral"``, whose
    normalisation is a reparametrisation of every conv, see :class:`Discriminator`)."""
    if norm == "batch":
        return [nn.BatchNorm2d(channels)]
    if norm == "layer":
        # One group = normalise over (C, H, W) per sample: a layer norm that, unlike
        # batch norm, keeps samples independent as the per-sample gradient penalty assumes.
        return [nn.GroupNorm(1, channels)]
    return []


def _upsample(kind: str, c_in: int, c_out: int) -> list[nn.Module]:
    """(c_in, s, s) -> (c_out, 2s, 2s), as :class:`Generator`'s ``upsample`` says."""
    if kind == "transpose":
        return [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False)]
    return [nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False)]


def init_weights(module: nn.Module) -> None:
    """DCGAN initialisation, applied to every submodule by the constructors.

    Conv weights are drawn from N(0, 0.02) and conv biases (if any) set to 0; norm layers get
    weight N(1, 0.02) and bias 0. Use as ``net.apply(init_weights)``.

    Args:
        module: One module; anything that is not a conv or norm layer is left alone.
    """
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm2d, nn.GroupNorm)) and module.weight is not None:
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class Generator(nn.Module):
    """DCGAN generator: latent vector -> image in [-1, 1].

    Args:
        nz: Latent dimension.
        ngf: Width of G's last hidden layer; the first has ``ngf * 2**(n_up - 1)`` channels.
        nc: Image channels.
        image_size: Output height/width; see :func:`supported_sizes`.
        activation: Hidden activation, one of :data:`ACTIVATIONS` (paper: ``"relu"``).
        extra_layers: Extra 3x3 stride-1 conv + BN + activation blocks at the last hidden
            resolution (the WGAN reference code's ``n_extra_layers``).
        upsample: How each stride-2 block doubles the resolution, one of :data:`G_UPSAMPLES`:
            ``"transpose"`` (the paper's 4x4 fractionally-strided conv) or ``"resize"``
            (nearest-neighbour upsampling, then a 3x3 conv: no checkerboard artefacts from
            the uneven overlap of strided kernels, Odena et al. 2016).

    Raises:
        ValueError: For an unsupported size, activation, upsampling or a non-positive width.
    """

    def __init__(self, *, nz: int = 100, ngf: int = 64, nc: int = 1, image_size: int = 28,
                 activation: str = "relu", extra_layers: int = 0,
                 upsample: str = "transpose") -> None:
        super().__init__()
        _check_counts(nz=nz, ngf=ngf, nc=nc, extra_layers=extra_layers)
        _check_choice("activation", activation, ACTIVATIONS)
        _check_choice("upsample", upsample, G_UPSAMPLES)
        base, n_up = _schedule(image_size)
        self.nz, self.image_size = nz, image_size
        # bias=False everywhere: BN's shift makes a conv bias redundant, and the output conv
        # has none in pytorch/examples either (this keeps its parameter count exact).
        width = ngf * 2 ** (n_up - 1)
        # (nz, 1, 1) -> (width, base, base)
        layers: list[nn.Module] = [nn.ConvTranspose2d(nz, width, base, 1, 0, bias=False),
                                   nn.BatchNorm2d(width), _activation(activation)]
        for _ in range(n_up - 1):
            # (w, s, s) -> (w/2, 2s, 2s)
            layers += [*_upsample(upsample, width, width // 2),
                       nn.BatchNorm2d(width // 2), _activation(activation)]
            width //= 2
        for _ in range(extra_layers):
            # (ngf, s/2, s/2) -> same shape: depth without changing resolution
            layers += [nn.Conv2d(width, width, 3, 1, 1, bias=False),
                       nn.BatchNorm2d(width), _activation(activation)]
        # (ngf, s/2, s/2) -> (nc, s, s); no BN on the output (paper), tanh to [-1, 1]
        layers += [*_upsample(upsample, width, nc), nn.Tanh()]
        self.main = nn.Sequential(*layers)
        self.apply(init_weights)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Generate images.

        Args:
            z: Latents of shape ``(N, nz)`` or ``(N, nz, 1, 1)``.

        Returns:
            Images of shape ``(N, nc, image_size, image_size)`` in [-1, 1].
        """
        if z.dim() == 2:
            z = z.view(z.shape[0], z.shape[1], 1, 1)
        if z.dim() != 4 or z.shape[1:] != (self.nz, 1, 1):
            raise ValueError(f"z must have shape (N, {self.nz}) or (N, {self.nz}, 1, 1), "
                             f"got {tuple(z.shape)}")
        return self.main(z)


class Discriminator(nn.Module):
    """DCGAN discriminator / critic: image -> one raw logit per image.

    No sigmoid: the losses work on logits, which is numerically stable and autocast-safe
    (``binary_cross_entropy`` on probabilities is refused under autocast).

    Args:
        nc: Image channels.
        ndf: Width of D's first conv; each stride-2 conv after it doubles the channels.
        image_size: Input height/width; see :func:`supported_sizes`.
        activation: Activation after each hidden conv, one of :data:`ACTIVATIONS`.
        norm: One of :data:`D_NORMS`; ``"layer"`` for WGAN-GP critics, where batch norm
            couples samples and breaks the per-sample gradient penalty; ``"spectral"``:
            spectral normalisation of every conv and no other norm (SN-GAN).
        extra_layers: Extra 3x3 stride-1 conv + norm + activation blocks at the first
            hidden resolution (mirroring G; the WGAN reference code's ``n_extra_layers``).

    Raises:
        ValueError: For an unsupported size, activation, norm or a non-positive width.
    """

    def __init__(self, *, nc: int = 1, ndf: int = 64, image_size: int = 28,
                 activation: str = "leaky_relu", norm: str = "batch",
                 extra_layers: int = 0) -> None:
        super().__init__()
        _check_counts(nc=nc, ndf=ndf, extra_layers=extra_layers)
        _check_choice("activation", activation, ACTIVATIONS)
        _check_choice("norm", norm, D_NORMS)
        base, n_up = _schedule(image_size)
        self.nc, self.image_size = nc, image_size
        # bias=False everywhere, as pytorch/examples and the WGAN reference code (whose
        # no-BN critic is bias-free too); norms carry the only shifts.
        width = ndf
        # (nc, s, s) -> (ndf, s/2, s/2); no norm on D's input layer (paper)
        layers: list[nn.Module] = [nn.Conv2d(nc, width, 4, 2, 1, bias=False),
                                   _activation(activation)]
        for _ in range(extra_layers):
            # (ndf, s/2, s/2) -> same shape
            layers += [nn.Conv2d(width, width, 3, 1, 1, bias=False),
                       *_d_norm(norm, width), _activation(activation)]
        for _ in range(n_up - 1):
            # (w, s, s) -> (2w, s/2, s/2)
            layers += [nn.Conv2d(width, width * 2, 4, 2, 1, bias=False),
                       *_d_norm(norm, width * 2), _activation(activation)]
            width *= 2
        # (width, base, base) -> (1, 1, 1): the logit, no norm and no activation
        layers.append(nn.Conv2d(width, 1, base, 1, 0, bias=False))
        self.main = nn.Sequential(*layers)
        self.apply(init_weights)
        if norm == "spectral":
            # SN-GAN (Miyato et al., 2018): every conv's weight divided by its largest singular
            # value (one power iteration per call), so D is 1-Lipschitz layer by layer.
            for layer in self.main:
                if isinstance(layer, nn.Conv2d):
                    nn.utils.parametrizations.spectral_norm(layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Score images.

        Args:
            x: Images of shape ``(N, nc, image_size, image_size)``.

        Returns:
            Raw logits of shape ``(N,)`` (never squashed by a sigmoid).
        """
        expected = (self.nc, self.image_size, self.image_size)
        if x.dim() != 4 or x.shape[1:] != expected:
            raise ValueError(f"x must have shape (N, {', '.join(map(str, expected))}), "
                             f"got {tuple(x.shape)}")
        return self.main(x).reshape(x.shape[0])
