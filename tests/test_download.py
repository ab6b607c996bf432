"""The download stage offline: mirrors, checksums, no network, Kaggle credentials, local sources."""

from __future__ import annotations

import hashlib
import json
import urllib.error
import zipfile

import pytest

from dcgan.data import download as dl
from dcgan.data.sources import parse_dataset
from dcgan.errors import UserError
from helpers import make_idx_dir, make_image_folder


@pytest.fixture
def fake_fashion(tmp_path, monkeypatch):
    """A mirror folder whose files torchvision's checksum list (patched) accepts."""
    mirror = make_idx_dir(tmp_path / "mirror", n=8, test=4)
    resources = [(f.name, hashlib.md5(f.read_bytes()).hexdigest()) for f in sorted(mirror.iterdir())]
    from torchvision.datasets import FashionMNIST

    monkeypatch.setattr(FashionMNIST, "resources", resources)
    return mirror


def test_mirror_folder_param_and_env(tmp_path, fake_fashion, monkeypatch):
    manifest = dl.download(parse_dataset("fashion-mnist"), tmp_path / "raw", str(fake_fashion))
    assert manifest["format"] == "idx" and (tmp_path / "raw/train-images-idx3-ubyte.gz").is_file()
    assert json.loads((tmp_path / "raw/manifest.json").read_text()) == manifest
    monkeypatch.setenv(dl.MIRROR_ENV, str(fake_fashion))
    assert dl.download(parse_dataset("fashion-mnist"), tmp_path / "raw2")["sha256"] == manifest["sha256"]


def test_checksum_mismatch_fails_and_keeps_old_output(tmp_path, fake_fashion):
    dl.download(parse_dataset("fashion-mnist"), tmp_path / "raw", str(fake_fashion))
    before = (tmp_path / "raw/manifest.json").read_text()
    (fake_fashion / "train-labels-idx1-ubyte.gz").write_bytes(b"tampered")
    with pytest.raises(UserError, match="checksum mismatch"):
        dl.download(parse_dataset("fashion-mnist"), tmp_path / "raw", str(fake_fashion))
    assert (tmp_path / "raw/manifest.json").read_text() == before


def test_no_network_names_the_mirror_option(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("Name or service not known")
    monkeypatch.setattr("torchvision.datasets.utils.download_url", offline)
    monkeypatch.delenv(dl.MIRROR_ENV, raising=False)
    with pytest.raises(UserError) as err:
        dl.download(parse_dataset("mnist"), tmp_path / "raw")
    message = str(err.value)
    assert "download.mirror" in message and "\n" not in message
    # not only a mirror: the built-in samples first, then local files
    assert "offline? train on a built-in sample: dataset: mnist-5k" in message
    assert message.index("fashion-900") < message.index("idx:<dir>") < message.index("folder:<dir>")
    assert "quick run" in message
    assert not (tmp_path / "raw").exists()


def test_built_in_sample_needs_no_network(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise AssertionError("a built-in sample must not touch the network")
    monkeypatch.setattr("torchvision.datasets.utils.download_url", offline)
    manifest = dl.download(parse_dataset("fashion-900"), tmp_path / "raw")
    assert manifest["dataset"] == "fashion-900" and manifest["format"] == "idx"
    assert sorted(p.name for p in (tmp_path / "raw").iterdir()) == [
        "manifest.json", "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]


def test_a_sample_missing_from_the_install_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(dl, "sample_dir", lambda name: tmp_path / "gone" / name)
    with pytest.raises(UserError, match=r"dataset: mnist-5k: the built-in sample is missing .*"
                                        r"reinstall"):
        dl.download(parse_dataset("mnist-5k"), tmp_path / "raw")
    assert not (tmp_path / "raw").exists()


def test_a_mirror_of_other_files_says_to_use_them_as_a_local_source(tmp_path, fake_fashion):
    (fake_fashion / "train-labels-idx1-ubyte.gz").write_bytes(b"a sample, not upstream")
    with pytest.raises(UserError, match=r"checksum mismatch .*use other files .* as dataset: "
                                        r"idx:<dir>"):
        dl.download(parse_dataset("fashion-mnist"), tmp_path / "raw", str(fake_fashion))


def test_a_bad_entry_in_a_mirrored_zip_names_the_users_file(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    with zipfile.ZipFile(mirror / dl.KAGGLE_ZIP, "w") as zf:
        zf.writestr("../evil.png", b"x")
    with pytest.raises(UserError) as err:
        dl.download(parse_dataset("animal-faces"), tmp_path / "raw", str(mirror))
    assert str(err.value).startswith(f"{mirror / dl.KAGGLE_ZIP}: refusing entry '../evil.png'")
    assert ".tmp" not in str(err.value) and not (tmp_path / "raw").exists()


def test_a_full_disk_names_the_output_folder_not_its_temp_copy(tmp_path, monkeypatch):
    import errno
    import pathlib

    from dcgan.atomic import DiskFull

    real = pathlib.Path.write_bytes

    def full(self, data):
        if self.name.startswith(".manifest.json"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, data)

    monkeypatch.setattr(pathlib.Path, "write_bytes", full)
    src = make_idx_dir(tmp_path / "src", n=4)
    with pytest.raises(DiskFull) as err:
        dl.download(parse_dataset(f"idx:{src}"), tmp_path / "raw")
    assert str(err.value).startswith(f"no space left on the device of {tmp_path / 'raw'} for "
                                     "manifest.json")
    assert ".tmp" not in str(err.value) and not (tmp_path / "raw").exists()


def test_kaggle_without_credentials(tmp_path, monkeypatch):
    for var in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN", dl.MIRROR_ENV):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "nowhere"))
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(UserError, match="no Kaggle credentials: put kaggle.json"):
        dl.download(parse_dataset("animal-faces"), tmp_path / "raw")
    assert not (tmp_path / "raw").exists()


def test_animal_faces_from_mirrored_zip(tmp_path):
    images = make_image_folder(tmp_path / "afhq", classes=("cat", "dog", "wild"), per_class=1)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    with zipfile.ZipFile(mirror / dl.KAGGLE_ZIP, "w") as zf:
        for f in images.rglob("*.png"):
            zf.write(f, f"afhq/{f.relative_to(images).as_posix()}")
    manifest = dl.download(parse_dataset("animal-faces"), tmp_path / "raw", str(mirror))
    assert manifest["root"] == "afhq" and manifest["format"] == "folder"
    assert len(list((tmp_path / "raw/afhq/val").rglob("*.png"))) == 3
    assert not list((tmp_path / "raw").glob("*.zip"))


def test_local_sources_resolve_against_repo_root(tmp_path, monkeypatch):
    make_idx_dir(tmp_path / "repo" / "mydata", n=4)
    monkeypatch.setenv("DVC_ROOT", str(tmp_path / "repo"))
    dl.download(parse_dataset("idx:mydata"), tmp_path / "raw")
    assert (tmp_path / "raw/train-labels-idx1-ubyte.gz").is_file()
    with pytest.raises(UserError, match="folder .*missing-dir not found"):
        dl.download(parse_dataset("folder:missing-dir"), tmp_path / "raw2")


def test_queued_experiment_dir_resolves_to_real_root(tmp_path, monkeypatch):
    from dcgan import paths
    monkeypatch.setenv("DVC_ROOT", str(tmp_path / "repo/.dvc/tmp/exps/run/abc123"))
    assert paths.repo_root() == (tmp_path / "repo").resolve()
