"""dcgan.inception: torch-fidelity's IS/FID/KID on our tensors, with random weights and no network.

InceptionV3 at 299x299 costs ~0.3 s per image on one CPU thread, so the metric runs use few images and
the module-scoped fixtures compute each result once.
"""

from __future__ import annotations

import hashlib
import math
import os
import socket
import subprocess
import sys
import urllib.error
from pathlib import Path

import pytest
import torch

from dcgan import inception
from dcgan.inception import (InceptionUnavailable, default_weights_path, inception_metrics,
                             published_sha256, to_uint8_rgb, weights_file_name)

KEYS = {"inception_score_mean", "inception_score_std", "fid", "kid_mean", "kid_std"}


def random_inception_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict with exactly the keys and shapes torch-fidelity's InceptionV3 loads, random values.

    The extractor's __init__ always loads weights (downloading them when no path is given), so it is
    built here with torch-fidelity's download returning nothing and load_state_dict a no-op; on the meta
    device, so building it allocates no parameters. Only the key names and shapes are taken from it.
    """
    import torch_fidelity.feature_extractor_inceptionv3 as fe

    with pytest.MonkeyPatch.context() as mp, torch.device("meta"):
        mp.setattr(fe, "load_state_dict_from_url", lambda *args, **kwargs: {})
        mp.setattr(fe.FeatureExtractorInceptionV3, "load_state_dict", lambda self, *args, **kwargs: None)
        shapes = {k: v.shape for k, v in fe.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"],
                                                                        verbose=False).state_dict().items()}
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for key, shape in shapes.items():
        if key.endswith("num_batches_tracked"):
            out[key] = torch.zeros(shape, dtype=torch.long)
        elif key.endswith(("running_var", "bn.weight")):
            out[key] = torch.ones(shape)  # identity batch norm: random variances could blow activations up
        elif key.endswith(("running_mean", "bn.bias", "fc.bias")):
            out[key] = torch.zeros(shape)
        else:
            # He-scaled: plain tiny values would shrink features to ~0 over ~100 layers, making FID > 0 moot.
            out[key] = torch.randn(shape, generator=gen) * math.sqrt(2.0 / shape[1:].numel())
    return out


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    """Random weights under the real name, with the published SHA-256 prefix replaced by theirs
    (only the tests' random weights are let through this way; any other file is still refused)."""
    pytest.importorskip("torch_fidelity")  # absent on a bare GPU machine: skip, not error
    path = tmp_path_factory.mktemp("inception") / weights_file_name()
    torch.save(random_inception_state_dict(), path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:8]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(inception, "published_sha256", lambda: digest)
        yield path


def noise(n: int, channels: int, size: int, seed: int) -> torch.Tensor:
    return torch.rand(n, channels, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def blobs(n: int, channels: int, size: int, seed: int) -> torch.Tensor:
    """Smooth bright discs on black, MNIST-like and far from uniform noise in feature space."""
    gen = torch.Generator().manual_seed(seed)
    centre = torch.rand(n, 2, 1, 1, generator=gen) * size
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    dist = ((yy - centre[:, 0]) ** 2 + (xx - centre[:, 1]) ** 2).sqrt()
    return (1 - 2 * (dist / (size / 3)).clamp(0, 1)).unsqueeze(1).repeat(1, channels, 1, 1)


@pytest.fixture(scope="module")
def gray(weights) -> dict[str, float]:
    # 20 per side with the default kid_subset_size (1000): must be clamped to 20 instead of failing.
    return inception_metrics(noise(20, 1, 28, seed=1), blobs(20, 1, 28, seed=2), weights_path=str(weights))


def test_weights_file_name_is_torch_fidelitys():
    pytest.importorskip("torch_fidelity")
    from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3

    assert weights_file_name() == "weights-inception-2015-12-05-6726825d.pth"
    assert URL_INCEPTION_V3.endswith("/" + weights_file_name())


@pytest.mark.slow
def test_import_does_not_load_torch_fidelity():
    code = "import sys, dcgan.inception; print('torch_fidelity' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_grayscale_is_tiled_and_ends_map_exactly():
    images = torch.tensor([-1.0, 0.0, 1.0, -3.0, 2.0]).view(1, 1, 1, 5)
    out = to_uint8_rgb(images)
    assert out.dtype == torch.uint8 and out.shape == (1, 3, 1, 5)
    assert out[0, 0, 0].tolist() == [0, 128, 255, 0, 255]  # 127.5 rounds to even; out-of-range clamps
    assert torch.equal(out[:, 0], out[:, 1]) and torch.equal(out[:, 0], out[:, 2])


def test_rgb_keeps_channels_and_rejects_other_shapes():
    images = torch.stack([torch.full((2, 2), v) for v in (-1.0, 0.0, 1.0)]).unsqueeze(0)
    assert to_uint8_rgb(images)[0, :, 0, 0].tolist() == [0, 128, 255]
    with pytest.raises(ValueError, match="N, 1 or 3, H, W"):
        to_uint8_rgb(torch.zeros(1, 2, 4, 4))
    with pytest.raises(ValueError):
        to_uint8_rgb(torch.zeros(3, 4, 4))


@pytest.mark.slow  # 3-10 s each: InceptionV3 (random weights) on CPU
def test_gray_metrics_are_finite_and_sane(gray):
    assert set(gray) == KEYS
    assert all(math.isfinite(v) for v in gray.values()), gray
    assert gray["inception_score_mean"] >= 1 - 1e-9
    assert gray["fid"] > 1e-3  # noise against discs


@pytest.mark.slow  # 3-10 s each: InceptionV3 (random weights) on CPU
def test_fid_of_a_set_against_itself_is_zero(weights):
    images = blobs(10, 3, 32, seed=3) * 0.5 + noise(10, 3, 32, seed=4) * 0.5
    result = inception_metrics(images, images.clone(), weights_path=weights, kid_subset_size=5, seed=7)
    assert set(result) == KEYS and all(math.isfinite(v) for v in result.values()), result
    assert result["inception_score_mean"] >= 1 - 1e-9
    assert abs(result["fid"]) < 1e-2


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_runs_on_cuda(weights):
    result = inception_metrics(noise(4, 1, 28, 0), blobs(4, 1, 28, 1), weights_path=weights, device="cuda:0")
    assert set(result) == KEYS and all(math.isfinite(v) for v in result.values()), result


def test_too_few_images_is_a_value_error(weights):
    with pytest.raises(ValueError, match="at least 2"):
        inception_metrics(noise(1, 1, 8, 0), noise(4, 1, 8, 1), weights_path=weights)


def test_missing_weights_path_names_path_and_opt_out(tmp_path):
    missing = tmp_path / "nowhere" / "inception.pth"
    with pytest.raises(InceptionUnavailable) as info:
        inception_metrics(noise(2, 1, 8, 0), noise(2, 1, 8, 1), weights_path=missing)
    message = str(info.value)
    assert str(missing) in message and "evaluate.inception: false" in message and "\n" not in message


@pytest.mark.parametrize("content", [b"", b"not a torch file", "truncated", "wrong keys"])
def test_unloadable_weights_file_is_unavailable(tmp_path, weights, content):
    path = tmp_path / "bad.pth"
    if content == "truncated":
        path.write_bytes(weights.read_bytes()[:100_000])
    elif content == "wrong keys":
        torch.save({"fc.weight": torch.zeros(1000, 2048)}, path)  # e.g. a torchvision classifier's
    else:
        path.write_bytes(content)
    with pytest.raises(InceptionUnavailable, match="evaluate.inception: false") as info:
        inception_metrics(noise(2, 1, 8, 0), noise(2, 1, 8, 1), weights_path=path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


@pytest.fixture
def empty_torch_home(tmp_path, monkeypatch) -> Path:
    """TORCH_HOME in tmp, so no cached weights are found and nothing is written to the real cache."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    assert default_weights_path() == tmp_path / "torch" / "hub" / "checkpoints" / weights_file_name()
    return tmp_path / "torch"


def test_no_weights_and_no_network_is_unavailable(empty_torch_home, monkeypatch):
    # This machine is offline and torch's download then fails at once with exactly this error; it is
    # raised here directly so that a machine with network does not fetch 95 MB in a unit test.
    def offline(url, dst, *args, **kwargs):
        raise urllib.error.URLError(socket.gaierror(-2, "Name or service not known"))

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(InceptionUnavailable) as info:
        inception_metrics(noise(2, 1, 8, 0), noise(2, 1, 8, 1), weights_path=None)
    message = str(info.value)
    assert weights_file_name() in message and str(empty_torch_home / "hub" / "checkpoints") in message
    assert "evaluate.inception_weights" in message and "evaluate.inception: false" in message
    assert "URLError" in message and "\n" not in message


def test_corrupt_cached_weights_say_delete(empty_torch_home):
    cached = default_weights_path()
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"half a download")
    with pytest.raises(InceptionUnavailable, match="delete it") as info:
        inception_metrics(noise(2, 1, 8, 0), noise(2, 1, 8, 1), weights_path=None)
    assert str(cached) in str(info.value)


@pytest.mark.slow  # 3-10 s each: InceptionV3 (random weights) on CPU
def test_default_weights_come_from_torch_hub_cache(empty_torch_home, weights):
    cached = default_weights_path()
    cached.parent.mkdir(parents=True)
    os.symlink(weights, cached)  # stands in for the downloaded file; a copy would cost 95 MB
    result = inception_metrics(noise(2, 1, 16, 0), blobs(2, 1, 16, 1), weights_path=None)
    assert set(result) == KEYS and all(math.isfinite(v) for v in result.values()), result


@pytest.mark.slow  # 3-10 s each: InceptionV3 (random weights) on CPU
def test_every_generated_set_gets_an_inception_row(weights):
    """The EMA the grids show is scored by InceptionV3 like G's own weights, against the same
    reference; the reference is never scored against itself."""
    from dcgan.config import load_params
    from dcgan.evaluation import inception_rows
    from helpers import PARAMS

    params = load_params(PARAMS, {"evaluate.inception_weights": str(weights),
                                  "evaluate.kid_subset_size": 5})
    reference = blobs(6, 1, 28, seed=5)
    sets = {"generator": noise(6, 1, 28, seed=6), "floor": blobs(6, 1, 28, seed=7),
            "no_ema": reference.clone(), "reference": reference}
    rows = inception_rows(sets, params, torch.device("cpu"))
    assert set(rows) == {"generator", "floor", "no_ema"}
    assert all(set(r) == KEYS for r in rows.values())
    assert abs(rows["no_ema"]["fid"]) < 1e-2 < rows["generator"]["fid"]  # each row its own set


class Payload:
    """What a hostile weights file holds: unpickling it creates ``marker`` (any code could run)."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def payload_file(path: Path, marker: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"Conv2d_1a_3x3.conv.weight": Payload(marker)}, path)
    return path


def test_a_weights_file_with_pickled_code_is_refused_unread(tmp_path):
    pytest.importorskip("torch_fidelity")
    marker = tmp_path / "ran"
    path = payload_file(tmp_path / weights_file_name(), marker)
    with pytest.raises(InceptionUnavailable, match="not torch-fidelity's published") as info:
        inception.check_weights(str(path))
    assert not marker.exists()
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_a_cached_weights_file_with_pickled_code_is_refused_unread(empty_torch_home):
    pytest.importorskip("torch_fidelity")
    marker = empty_torch_home / "ran"
    cached = payload_file(default_weights_path(), marker)
    with pytest.raises(InceptionUnavailable, match="delete it") as info:
        inception.check_weights(None)
    assert not marker.exists()
    assert str(cached) in str(info.value) and "\n" not in str(info.value)


def test_pickled_code_never_runs_even_with_a_matching_checksum(tmp_path, monkeypatch):
    """A second line of defence (a file swapped after the check): torch-fidelity's own
    ``torch.load(weights_only=False)`` loads tensors only."""
    pytest.importorskip("torch_fidelity")
    marker = tmp_path / "ran"
    path = payload_file(tmp_path / weights_file_name(), marker)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:8]
    monkeypatch.setattr(inception, "published_sha256", lambda: digest)
    with pytest.raises(InceptionUnavailable) as info:
        inception.check_weights(str(path))
    assert not marker.exists()
    assert "\n" not in str(info.value)
    assert os.environ.get("TORCH_FORCE_WEIGHTS_ONLY_LOAD") is None  # restored


def test_the_published_checksum_is_the_names_hash_prefix():
    pytest.importorskip("torch_fidelity")
    assert published_sha256() == "6726825d"  # imported before the `weights` fixture patches it
