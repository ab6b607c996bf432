"""The standard InceptionV3 numbers (Inception Score, FID, KID), computed by torch-fidelity.

torch-fidelity's ``inception-v3-compat`` extractor carries the TF-ported FID Inception weights, so these
numbers are comparable with the literature. This module only adapts our tensors to its input (uint8 RGB)
and turns "the weights are not there" into one line the user can act on.

A weights file is someone else's file (a cache copy, a download, a colleague's path): it is checked
against the published SHA-256 (the prefix in its name, torch.hub's convention) before anything reads it
as a pickle, and torch-fidelity, which calls ``torch.load(weights_only=False)``, runs with
``TORCH_FORCE_WEIGHTS_ONLY_LOAD`` set, so no file's pickled code can run even if it changed since. ``torch_fidelity`` is imported
inside the functions so that ``import dcgan.inception`` stays cheap for stages that never use it.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import pickle
import re
import warnings
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import Dataset

from dcgan.errors import UserError, one_line

FEATURE_EXTRACTOR = "inception-v3-compat"
_DISABLE = "or set evaluate.inception: false"

# Everything that loading (or first downloading) the weights raises, and nothing else is in that scope:
# OSError covers a missing file, a directory, permissions and every offline download failure (URLError
# with a DNS error, HTTPError, socket timeouts, SSL errors); HTTPException a dropped transfer; EOFError and
# UnpicklingError empty or non-torch files; RuntimeError a truncated zip archive or a state dict whose
# keys or shapes do not fit; TypeError a file holding something other than a state dict.
_LOAD_ERRORS = (OSError, http.client.HTTPException, EOFError, pickle.UnpicklingError, RuntimeError, TypeError)


class InceptionUnavailable(UserError):
    """The InceptionV3 weights cannot be found, downloaded or loaded.

    A UserError, so stages print its one-line message (which names the fix) instead of a traceback.
    """


def weights_url() -> str:
    """The URL torch-fidelity downloads the ``inception-v3-compat`` weights from."""
    from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3

    return URL_INCEPTION_V3


# torch.hub names the cached download after the URL's last path component. Written out, not
# read from torch-fidelity: importing it costs ~3 s (torchvision's models), which `evaluate.
# inception: auto` would pay in every evaluate stage just to find the weights absent;
# tests/test_inception.py checks it against torch-fidelity's URL.
WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"


def weights_file_name() -> str:
    """The file name torch-fidelity expects for the ``inception-v3-compat`` weights."""
    return WEIGHTS_FILE


def published_sha256() -> str:
    """The hex prefix of the weights' SHA-256 that their file name carries
    (``...-6726825d.pth``, torch.hub's ``hash_prefix`` convention)."""
    return re.search(r"-([0-9a-f]{8,})\.pth$", weights_file_name()).group(1)


_CHECKED: dict[tuple[str, int, int], str] = {}  # (path, size, mtime) -> its SHA-256: hashed once


def _sha256(path: Path) -> str:
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _CHECKED:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        _CHECKED[key] = digest.hexdigest()
    return _CHECKED[key]


@contextlib.contextmanager
def _tensors_only():
    """Every ``torch.load`` inside loads tensors only, whatever its caller asked for: torch-fidelity
    loads the weights with ``weights_only=False``, which would run a pickle's code."""
    before = os.environ.get("TORCH_FORCE_WEIGHTS_ONLY_LOAD")
    os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("TORCH_FORCE_WEIGHTS_ONLY_LOAD", None)
        else:
            os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = before


def default_weights_path() -> Path:
    """Where torch-fidelity looks for (and downloads) the weights: ``<torch hub dir>/checkpoints``.

    The hub dir is ``$TORCH_HOME/hub`` (``~/.cache/torch/hub`` by default), read at call time.
    """
    return Path(torch.hub.get_dir()) / "checkpoints" / weights_file_name()


def to_uint8_rgb(images: Tensor) -> Tensor:
    """Convert images in [-1, 1] (N, 1|3, H, W) to the uint8 RGB (N, 3, H, W) torch-fidelity expects.

    Args:
        images: Float images in [-1, 1]; values outside are clamped. Grayscale is tiled to 3 channels.

    Returns:
        A contiguous uint8 CPU tensor, -1 -> 0 and 1 -> 255 (rounded to the nearest level).

    Raises:
        ValueError: If ``images`` is not 4-D with 1 or 3 channels.
    """
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"expected images shaped (N, 1 or 3, H, W), got {tuple(images.shape)}")
    pixels = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    # Grayscale goes through InceptionV3 as R = G = B, the usual way MNIST-like data is scored.
    return pixels.expand(-1, 3, -1, -1).contiguous() if pixels.shape[1] == 1 else pixels.contiguous()


class _UInt8Images(Dataset):
    """A Dataset over an in-memory uint8 (N, 3, H, W) tensor: torch-fidelity's input type for tensors."""

    def __init__(self, images: Tensor) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> Tensor:
        return self.images[index]


def _unavailable(weights_path: str | None, err: BaseException) -> InceptionUnavailable:
    """The one-line error for weights that could not be loaded, naming the path or cache and the fix."""
    name, reason = weights_file_name(), one_line(err)
    if weights_path is not None:
        return InceptionUnavailable(
            f"InceptionV3 weights {weights_path} could not be loaded ({reason}): set "
            f"evaluate.inception_weights to torch-fidelity's {name} (from {weights_url()}), {_DISABLE}")
    cached = default_weights_path()
    if cached.exists():
        return InceptionUnavailable(
            f"cached InceptionV3 weights {cached} could not be loaded ({reason}): delete it so "
            f"torch-fidelity downloads it again, set evaluate.inception_weights to a good copy, {_DISABLE}")
    return InceptionUnavailable(
        f"InceptionV3 weights not found and cannot be downloaded ({reason}): put {name} (from "
        f"{weights_url()}) in {cached.parent} or set evaluate.inception_weights to its path, {_DISABLE}")


def _verify(weights_path: str | None) -> None:
    """The file's SHA-256 against the published one, before anything unpickles it; with no path,
    the cached copy, downloaded first when absent (``hash_prefix``: a wrong download is deleted)."""
    path = Path(weights_path) if weights_path is not None else default_weights_path()
    if weights_path is None and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(weights_url(), str(path), hash_prefix=published_sha256(),
                                       progress=False)
    if not path.is_file():
        raise FileNotFoundError(f"no file {path}")
    digest, want = _sha256(path), published_sha256()
    if not digest.startswith(want):
        fix = (f"replace it with the one from {weights_url()}" if weights_path is not None else
               "delete it so torch-fidelity downloads it again, set evaluate.inception_weights to a "
               "good copy")
        raise InceptionUnavailable(
            f"InceptionV3 weights {str(path)!r} are not torch-fidelity's published {weights_file_name()} "
            f"(SHA-256 {digest[:8]}…, published {want}…), so they were not read: {fix}, {_DISABLE}")


def check_weights(weights_path: str | None) -> None:
    """Check the weights' SHA-256, then load them the way torch-fidelity does (tensors only), before
    any image is processed.

    The network is built on the meta device, so this costs one ``torch.load`` (plus the download when
    ``weights_path`` is None and nothing is cached) but no parameter memory or compute. Doing it here
    keeps the except clause narrow: a RuntimeError later, during feature extraction, is a real bug
    and must not be reported as missing weights.

    Raises:
        InceptionUnavailable: If the weights cannot be found, downloaded or loaded.
    """
    from torch_fidelity import FeatureExtractorInceptionV3

    try:
        _verify(weights_path)
        with warnings.catch_warnings(), torch.device("meta"), _tensors_only():
            # Copying real tensors into meta parameters is a deliberate no-op (torch warns about each
            # one); load_state_dict still checks every key and shape.
            warnings.simplefilter("ignore", UserWarning)
            FeatureExtractorInceptionV3(FEATURE_EXTRACTOR, ["2048"],
                                        feature_extractor_weights_path=weights_path, verbose=False)
    except _LOAD_ERRORS as err:
        raise _unavailable(weights_path, err) from err


def _validate(fake: Tensor, real: Tensor, kid_subset_size: int, batch_size: int) -> None:
    """Reject inputs the metrics are undefined for, before the expensive part."""
    for label, images in (("fake", fake), ("real", real)):
        if len(images) < 2:
            # One sample has no covariance (FID) and no unbiased MMD (KID): NaN, not a number to report.
            raise ValueError(f"{label}: need at least 2 images for FID/KID, got {len(images)}")
    if kid_subset_size < 2 or batch_size < 1:
        raise ValueError(f"need kid_subset_size >= 2 and batch_size >= 1, "
                         f"got {kid_subset_size} and {batch_size}")


def _calculate(fake_u8: Tensor, real_u8: Tensor, weights_path: str | None, kid_subset_size: int,
               batch_size: int, device: torch.device, seed: int) -> dict[str, float]:
    """One torch_fidelity.calculate_metrics call on uint8 RGB images; returns its raw result."""
    import torch_fidelity
    from torch_fidelity.defaults import DEFAULTS

    cuda = device.type == "cuda"
    # torch-fidelity moves the extractor with .cuda(), i.e. to the current device: select ours first.
    with torch.cuda.device(device) if cuda else contextlib.nullcontext(), _tensors_only():
        return torch_fidelity.calculate_metrics(
            input1=_UInt8Images(fake_u8), input2=_UInt8Images(real_u8), isc=True, fid=True, kid=True,
            feature_extractor=FEATURE_EXTRACTOR, feature_extractor_weights_path=weights_path,
            # torch-fidelity's default split count, but an empty split would make IS NaN.
            isc_splits=min(DEFAULTS["isc_splits"], len(fake_u8)),
            kid_subset_size=min(kid_subset_size, len(fake_u8), len(real_u8)),
            cuda=cuda, batch_size=batch_size, rng_seed=seed, verbose=False,
            cache=False,  # never write feature caches into the user's torch home
            save_cpu_ram=True)  # no DataLoader worker processes: the images are already in memory


def inception_metrics(fake: Tensor, real: Tensor, *, weights_path: str | os.PathLike | None,
                      kid_subset_size: int = 1000, batch_size: int = 100,
                      device: str | torch.device = "cpu", seed: int = 0) -> dict[str, float]:
    """Inception Score of ``fake``, and FID and KID of ``fake`` against ``real``, by torch-fidelity.

    Args:
        fake: Generated images, float (N, 1|3, H, W) in [-1, 1]. torch-fidelity resizes them to 299.
        real: Reference images, same format (sizes and channel counts may differ from ``fake``).
        weights_path: torch-fidelity's ``inception-v3-compat`` weights file, or None for its default
            (the torch hub cache, downloaded on first use).
        kid_subset_size: KID subset size, clamped to the smaller set's size.
        batch_size: Images per InceptionV3 forward pass.
        device: Where InceptionV3 runs ("cpu", "cuda", "cuda:1", ...).
        seed: torch-fidelity's rng_seed (IS split shuffle, KID subsets), for reproducible numbers.

    Returns:
        ``inception_score_mean``, ``inception_score_std``, ``fid``, ``kid_mean`` and ``kid_std``.

    Raises:
        InceptionUnavailable: If the weights cannot be found, downloaded or loaded.
        ValueError: For malformed images or fewer than 2 images in a set.
    """
    import torch_fidelity

    fake_u8, real_u8 = to_uint8_rgb(fake), to_uint8_rgb(real)
    _validate(fake_u8, real_u8, kid_subset_size, batch_size)
    weights_path = None if weights_path is None else os.fspath(weights_path)
    check_weights(weights_path)
    raw = _calculate(fake_u8, real_u8, weights_path, kid_subset_size, batch_size, torch.device(device), seed)
    keys = {torch_fidelity.KEY_METRIC_ISC_MEAN: "inception_score_mean",
            torch_fidelity.KEY_METRIC_ISC_STD: "inception_score_std",
            torch_fidelity.KEY_METRIC_FID: "fid",
            torch_fidelity.KEY_METRIC_KID_MEAN: "kid_mean",
            torch_fidelity.KEY_METRIC_KID_STD: "kid_std"}
    return {ours: float(raw[theirs]) for theirs, ours in keys.items()}
