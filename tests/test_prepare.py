"""Preprocessing: exact scaling, IDX and image-folder sources, subsets, corrupt input."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from dcgan.data.download import download
from dcgan.data.preprocess import preprocess, scale
from dcgan.data.prepared import load_meta, load_split
from dcgan.data.sources import parse_dataset
from dcgan.errors import UserError
from helpers import make_idx_dir, make_image_folder, write_idx


def _prepare(tmp_path, spec, seed=0, **options):
    download(parse_dataset(spec), tmp_path / "raw")
    preprocess(tmp_path / "raw", tmp_path / "prepared", seed, **options)
    return tmp_path / "prepared"


def test_scaling_is_exact_at_both_ends():
    x = scale(torch.tensor([0, 1, 127, 128, 254, 255], dtype=torch.uint8))
    assert x.dtype == torch.float32
    assert x[0].item() == -1.0 and x[-1].item() == 1.0
    assert torch.all(x[1:] > x[:-1])


def test_idx_source_end_to_end(tmp_path):
    src = make_idx_dir(tmp_path / "src", n=30, test=10)
    pixels = np.zeros((30, 28, 28), np.uint8)
    pixels[0, 0, 0], pixels[0, 0, 1] = 0, 255
    write_idx(src / "train-images-idx3-ubyte.gz", pixels)
    prepared = _prepare(tmp_path, f"idx:{src}")
    x, y = load_split(prepared, "train")
    assert x.shape == (30, 1, 28, 28) and x.dtype == torch.float32
    assert x[0, 0, 0, 0].item() == -1.0 and x[0, 0, 0, 1].item() == 1.0
    assert load_split(prepared, "test")[0].shape == (10, 1, 28, 28)
    meta = load_meta(prepared)
    assert meta["splits"]["train"]["count"] == 30 and meta["classes"] == [str(i) for i in range(10)]
    assert len(meta["source_sha256"]) == 64


def test_image_folder_with_splits_and_resize(tmp_path):
    src = make_image_folder(tmp_path / "src", classes=("cat", "dog", "wild"), per_class=2)
    prepared = _prepare(tmp_path, f"folder:{src}", image_size=32)
    x, y = load_split(prepared, "train")
    assert x.shape == (6, 3, 32, 32) and x.min() >= -1 and x.max() <= 1
    assert y.tolist() == [0, 0, 1, 1, 2, 2]
    assert load_split(prepared, "val")[0].shape == (6, 3, 32, 32)
    assert load_meta(prepared)["classes"] == ["cat", "dog", "wild"]


def test_flat_folder_is_unlabelled_and_grayscale_option(tmp_path):
    src = make_image_folder(tmp_path / "src", classes=("",), per_class=4, splits=())
    prepared = _prepare(tmp_path, f"folder:{src}", image_size=16, channels=1)
    x, y = load_split(prepared, "train")
    assert x.shape == (4, 1, 16, 16) and y.tolist() == [-1] * 4
    assert load_meta(prepared)["classes"] == []


def test_max_images_subset_is_deterministic_by_seed(tmp_path):
    src = make_idx_dir(tmp_path / "src", n=50)
    runs = [_prepare(tmp_path / f"r{i}", f"idx:{src}", seed, max_images=20)
            for i, seed in enumerate((1, 1, 2))]
    a, b, c = (load_split(p)[0] for p in runs)
    assert a.shape[0] == 20 and torch.equal(a, b) and not torch.equal(a, c)


def test_unreadable_image_in_a_local_source_is_named_there_before_any_copy(tmp_path):
    """The download stage checks a local folder as preprocess will read it: the error names
    the user's own file, nothing is written, and the fixed folder goes through."""
    src = make_image_folder(tmp_path / "src", per_class=2, splits=("train",))
    broken = src / "train" / "cat" / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff not really a jpeg")
    with pytest.raises(UserError, match=re.escape(str(broken)) + r": unreadable image.*dvc repro"):
        download(parse_dataset(f"folder:{src}"), tmp_path / "raw")
    assert not (tmp_path / "raw").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp left
    broken.unlink()
    assert _prepare(tmp_path, f"folder:{src}").is_dir()


def test_unreadable_image_in_the_snapshot_named_and_no_output(tmp_path):
    src = make_image_folder(tmp_path / "src", per_class=2, splits=("train",))
    download(parse_dataset(f"folder:{src}"), tmp_path / "raw")
    (tmp_path / "raw/images/train/cat/cat_0.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(UserError, match=r"cat_0\.png: unreadable image"):
        preprocess(tmp_path / "raw", tmp_path / "prepared", 0)
    assert not (tmp_path / "prepared").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp left


def test_truncated_idx_source_is_named_at_download(tmp_path):
    src = make_idx_dir(tmp_path / "idx", n=8)
    images = src / "train-images-idx3-ubyte.gz"
    images.write_bytes(images.read_bytes()[:40])
    with pytest.raises(UserError, match=re.escape(str(images)) + r": corrupt or truncated gzip"):
        download(parse_dataset(f"idx:{src}"), tmp_path / "raw")
    assert not (tmp_path / "raw").exists()


@pytest.mark.parametrize("name, count", [("fashion-900", 900), ("mnist-5k", 5000)])
def test_built_in_sample(tmp_path, name, count):
    """The package's samples, by name: copied by download (no network), 10 balanced classes."""
    prepared = _prepare(tmp_path, name)
    x, y = load_split(prepared)
    assert x.shape == (count, 1, 28, 28) and x.min() == -1 and x.max() == 1
    assert len(load_meta(prepared)["classes"]) == 10
    assert y.bincount().tolist() == [count // 10] * 10
    assert load_meta(prepared)["dataset"] == name


def test_afhq_sample(tmp_path, afhq_sample):
    prepared = _prepare(tmp_path, f"folder:{afhq_sample}")
    x, y = load_split(prepared)
    assert x.shape == (41, 3, 64, 64) and x.min() >= -1 and x.max() <= 1
    assert load_meta(prepared)["classes"] == ["cat", "dog", "wild"]


def test_outputs_get_the_usual_file_mode(tmp_path):
    import os
    import stat

    prepared = _prepare(tmp_path, f"idx:{make_idx_dir(tmp_path / 'src', n=4)}")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(prepared.stat().st_mode) == 0o777 & ~umask
    assert stat.S_IMODE((prepared / "meta.json").stat().st_mode) == 0o666 & ~umask


def test_every_sample_file_is_package_data():
    """pyproject.toml's package-data globs take every file of the samples folder, so a
    non-editable install (a wheel) ships them (checked by hand: `pip wheel .` lists all six)."""
    import fnmatch
    import tomllib

    from helpers import REPO

    globs = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"]["dcgan"]
    package = REPO / "src" / "dcgan"
    files = [p.relative_to(package).as_posix()
             for p in (package / "data" / "samples").rglob("*") if p.is_file()]
    assert len(files) == 6
    assert [f for f in files if not any(fnmatch.fnmatch(f, g) for g in globs)] == []
