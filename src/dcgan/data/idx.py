"""IDX files (the MNIST format), plain or gzipped.

Written by hand because torchvision's reader is private API
(``torchvision.datasets.mnist.read_sn3_pascalvincent_tensor``), needs the files unzipped
and validates with ``assert``; we want the file's name in every error.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from dcgan.errors import UserError

# IDX type codes -> big-endian numpy dtypes.
_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
# Split name -> file stem prefix in the MNIST layout.
SPLIT_PREFIXES = {"train": "train", "test": "t10k"}


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (EOFError, gzip.BadGzipFile, zlib.error) as err:
        raise UserError(f"{path}: corrupt or truncated gzip ({err}); re-download it") from None


def read_idx(path: str | Path, ndim: int) -> np.ndarray:
    """Read an IDX file with ``ndim`` dimensions into a numpy array (native byte order).

    Raises:
        UserError: naming the file, if the magic number, dimensions or length are wrong.
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4 or data[0:2] != b"\x00\x00" or data[2] not in _DTYPES or data[3] != ndim:
        raise UserError(f"{path}: not an IDX file with {ndim} dimensions (wrong magic number "
                        f"{data[:4].hex() or 'empty'}); check the file")
    dtype = np.dtype(_DTYPES[data[2]])
    header = 4 + 4 * ndim
    shape = tuple(int(d) for d in np.frombuffer(data[4:header], dtype=">u4"))
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(data) != expected:
        raise UserError(f"{path}: truncated IDX file ({len(data)} bytes, header says "
                        f"{expected}); re-download it")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def find_file(folder: Path, stem: str) -> Path | None:
    """``folder/stem`` or ``folder/stem.gz``, whichever exists."""
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def idx_files(folder: str | Path) -> dict[str, tuple[Path, Path | None]]:
    """The IDX splits in ``folder``: ``{split: (images, labels or None)}``.

    Raises:
        UserError: if there is no ``train-images-idx3-ubyte[.gz]``.
    """
    folder = Path(folder)
    found = {}
    for split, prefix in SPLIT_PREFIXES.items():
        images = find_file(folder, f"{prefix}-images-idx3-ubyte")
        if images is not None:
            found[split] = (images, find_file(folder, f"{prefix}-labels-idx1-ubyte"))
    if "train" not in found:
        raise UserError(f"{folder}: no train-images-idx3-ubyte[.gz]; an idx: source needs the "
                        "MNIST file layout")
    return found


def read_split(images: Path, labels: Path | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Read one split: uint8 images (N, H, W) and int64 labels (N,) or None."""
    x = read_idx(images, 3)
    if x.dtype != np.uint8:
        raise UserError(f"{images}: expected unsigned byte pixels, got {x.dtype}")
    if labels is None:
        return x, None
    y = read_idx(labels, 1).astype(np.int64)
    if len(y) != len(x):
        raise UserError(f"{labels}: {len(y)} labels for {len(x)} images in {images.name}")
    return x, y
