"""IDX reading against files the tests write, and the corrupt-input errors."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from dcgan.data import idx
from dcgan.errors import UserError
from helpers import make_idx_dir, write_idx


@pytest.mark.parametrize("name", ["x-idx3-ubyte", "x-idx3-ubyte.gz"])
def test_roundtrip_plain_and_gzip(tmp_path, name):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    out = idx.read_idx(write_idx(tmp_path / name, array), ndim=3)
    assert out.dtype == np.uint8 and np.array_equal(out, array)


def test_splits_found_with_and_without_test(tmp_path):
    make_idx_dir(tmp_path / "a", n=5)
    assert set(idx.idx_files(tmp_path / "a")) == {"train"}
    make_idx_dir(tmp_path / "b", n=5, test=3)
    files = idx.idx_files(tmp_path / "b")
    x, y = idx.read_split(*files["test"])
    assert x.shape == (3, 28, 28) and list(y) == [0, 1, 2]


def test_wrong_magic_names_the_file(tmp_path):
    labels = write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(4, np.uint8))
    with pytest.raises(UserError, match="train-labels-idx1-ubyte: not an IDX file with 3 dim"):
        idx.read_idx(labels, ndim=3)
    (tmp_path / "junk").write_bytes(b"PK\x03\x04rest")
    with pytest.raises(UserError, match="junk: not an IDX file"):
        idx.read_idx(tmp_path / "junk", ndim=3)


def test_truncated_gzip_and_truncated_data(tmp_path):
    good = write_idx(tmp_path / "a.gz", np.zeros((10, 28, 28), np.uint8))
    cut = tmp_path / "cut.gz"
    cut.write_bytes(good.read_bytes()[:-40])
    with pytest.raises(UserError, match="cut.gz: corrupt or truncated gzip"):
        idx.read_idx(cut, ndim=3)
    short = tmp_path / "short.gz"
    short.write_bytes(gzip.compress(gzip.decompress(good.read_bytes())[:-5]))
    with pytest.raises(UserError, match="short.gz: truncated IDX file"):
        idx.read_idx(short, ndim=3)


def test_label_count_mismatch_and_missing_train(tmp_path):
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((3, 28, 28), np.uint8))
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(2, np.uint8))
    with pytest.raises(UserError, match="2 labels for 3 images"):
        idx.read_split(*idx.idx_files(tmp_path)["train"])
    with pytest.raises(UserError, match="no train-images-idx3-ubyte"):
        idx.idx_files(tmp_path / "nothing-here")
