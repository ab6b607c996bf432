"""The ``dataset`` param: a known name or a local source, parsed into a ``Source``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# Known names -> the format of what the download stage leaves in data/raw.
KNOWN = {
    "fashion-mnist": "idx",
    "mnist": "idx",
    "animal-faces": "folder",
    "mnist-5k": "idx",
    "fashion-900": "idx",
}
TORCHVISION = ("fashion-mnist", "mnist")  # the known names torchvision downloads and labels
# Built-in samples (src/dcgan/data/samples/, sources and licences in its README.md): small real
# subsets of MNIST and Fashion-MNIST shipped in the package, so a clone runs offline.
SAMPLES = ("mnist-5k", "fashion-900")
LOCAL_PREFIXES = ("idx", "folder")
ALLOWED_TEXT = ", ".join([*KNOWN, "idx:<dir>", "folder:<dir>"])


@dataclass(frozen=True)
class Source:
    """A parsed ``dataset`` value.

    Attributes:
        spec: the value as written in params.yaml.
        kind: ``"known"`` for a named data set, ``"local"`` for ``idx:``/``folder:``.
        format: ``"idx"`` or ``"folder"``: how preprocess reads the raw files.
        name: the known name (``fashion-mnist``...) or the local path as written.
    """

    spec: str
    kind: str
    format: str
    name: str


def torchvision_dataset(name: str) -> type:
    """torchvision's class for one of ``TORCHVISION`` (its URLs, MD5s and class names).

    Imported on demand: torchvision costs ~2 s that stages reading local files skip.
    """
    from torchvision.datasets import MNIST, FashionMNIST

    return {"fashion-mnist": FashionMNIST, "mnist": MNIST}[name]


def sample_dir(name: str) -> Path:
    """The folder of the built-in sample ``name`` (one of ``SAMPLES``), inside the package."""
    return Path(__file__).resolve().parent / "samples" / name


def parse_dataset(spec: object) -> Source:
    """Parse a ``dataset`` value; raise ``ValueError`` with the allowed values if it is bad."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"expected a string, one of: {ALLOWED_TEXT}; got {spec!r}")
    if spec in KNOWN:
        return Source(spec=spec, kind="known", format=KNOWN[spec], name=spec)
    prefix, sep, path = spec.partition(":")
    if sep and prefix in LOCAL_PREFIXES:
        if not path.strip():
            raise ValueError(f"'{prefix}:' needs a directory, e.g. {prefix}:/path/to/dir")
        return Source(spec=spec, kind="local", format=prefix, name=path)
    raise ValueError(f"unknown value {spec!r}; allowed: {ALLOWED_TEXT}")
