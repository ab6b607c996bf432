"""The download stage's work: raw files for a ``dataset`` into one folder, with a manifest.

The built-in samples (``mnist-5k``, ``fashion-900``) are copied from the package, Fashion-MNIST
and MNIST come through torchvision (its URLs and MD5 checksums), Animal Faces through the
Kaggle API, local ``idx:``/``folder:`` sources are copied so that data/raw is a snapshot DVC
can cache. A mirror (``download.mirror`` or ``$DCGAN_MIRROR``: a directory or
URL base holding the upstream file names) serves air-gapped machines.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import urllib.error
from pathlib import Path

from dcgan import atomic, paths
from dcgan.data import archive, folder, idx
from dcgan.data.sources import SAMPLES, TORCHVISION, Source, sample_dir, torchvision_dataset
from dcgan.errors import UserError, quoted

MIRROR_ENV = "DCGAN_MIRROR"
MIRROR_HINT = f"set download.mirror in params.yaml (or ${MIRROR_ENV}) to a folder or URL holding"
# Offline, the way forward is the built-in samples or local files, not a mirror of the exact
# upstream ones
LOCAL_HINT = ("offline? train on a built-in sample: dataset: mnist-5k (5,000 MNIST digits, the "
              "README's quick run) or fashion-900 (900 Fashion-MNIST images); or on local files: "
              "idx:<dir> (MNIST's file layout) or folder:<dir> (an image folder; docs/data.md)")
KAGGLE_DATASET = "andrewmvd/animal-faces"
KAGGLE_ZIP = "animal-faces.zip"
KAGGLE_ROOT = "afhq"  # the zip's top folder: afhq/{train,val}/{cat,dog,wild}


def _fetch(name: str, md5: str | None, dest: Path, bases: list[str]) -> None:
    """Put ``name`` into ``dest`` from the first base (folder or URL) that has it intact."""
    # torchvision is imported where it is used (here and below): it costs ~2 s of a stage
    # that only snapshots a local folder.
    from torchvision.datasets.utils import check_integrity, download_url

    errors = []
    for base in bases:
        if "://" not in base:  # a local mirror folder
            src = paths.resolve(base) / name
            if src.is_file():
                shutil.copyfile(src, dest / name)
                if check_integrity(str(dest / name), md5):
                    return
                raise UserError(f"{src}: checksum mismatch (expected MD5 {md5}): a mirror holds "
                                "the upstream files unchanged; replace it, or use other files "
                                "(a sample, your own) as dataset: idx:<dir>")
            errors.append(f"{src} missing")
            continue
        try:
            download_url(base.rstrip("/") + "/" + name, str(dest), filename=name, md5=md5)
            return
        except (urllib.error.URLError, OSError, RuntimeError) as err:
            errors.append(f"{base}: {err}")
    raise UserError(f"cannot fetch {name} ({'; '.join(errors)}); {LOCAL_HINT}; or "
                    f"{MIRROR_HINT} {name}")


def _torchvision(name: str, dest: Path, mirror: str | None) -> None:
    cls = torchvision_dataset(name)
    bases = [mirror] if mirror else list(cls.mirrors)
    for filename, md5 in cls.resources:
        _fetch(filename, md5, dest, bases)


def _kaggle_credentials_present() -> bool:
    home = Path(os.environ.get("KAGGLE_CONFIG_DIR") or Path.home() / ".kaggle")
    env = os.environ
    return bool(
        (env.get("KAGGLE_USERNAME") and env.get("KAGGLE_KEY")) or env.get("KAGGLE_API_TOKEN")
        or any((home / f).is_file() for f in ("kaggle.json", "access_token", "access_token.txt",
                                               "credentials.json"))
    )


def _kaggle(dest: Path) -> None:
    """Download the Animal Faces zip through the Kaggle API (credentials never logged)."""
    if not _kaggle_credentials_present():
        raise UserError("no Kaggle credentials: put kaggle.json (from kaggle.com/settings/api) in "
                        "~/.kaggle/ or set KAGGLE_USERNAME and KAGGLE_KEY; or set download.mirror "
                        f"to a folder holding {KAGGLE_ZIP}")
    # Imported lazily and quietly: `import kaggle` authenticates and prints help at import time.
    with contextlib.redirect_stdout(io.StringIO()):
        from kaggle.api.kaggle_api_extended import KaggleApi
    api = KaggleApi()
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            api.authenticate()
        api.dataset_download_files(KAGGLE_DATASET, path=str(dest), quiet=False, unzip=False)
    except SystemExit:
        raise UserError("Kaggle rejected the credentials; regenerate kaggle.json at "
                        "kaggle.com/settings/api") from None
    except Exception as err:  # the kaggle client raises many types (HTTP, OS, its own)
        raise UserError(f"Kaggle download of {KAGGLE_DATASET} failed ({type(err).__name__}); "
                        f"check the network or {MIRROR_HINT} {KAGGLE_ZIP}") from None


def _animal_faces(dest: Path, mirror: str | None) -> str:
    if mirror:
        _fetch(KAGGLE_ZIP, None, dest, [mirror])
    else:
        _kaggle(dest)
    zips = sorted(dest.glob("*.zip"))
    if not zips:
        raise UserError(f"the Kaggle download of {KAGGLE_DATASET} left no zip; try again")
    for z in zips:  # errors name the user's mirror file, or the download, not our temp copy
        shown = (str(paths.resolve(mirror) / z.name) if mirror and "://" not in mirror
                 else f"{mirror.rstrip('/')}/{z.name}" if mirror
                 else f"the Kaggle download of {KAGGLE_DATASET} ({z.name})")
        archive.extract(z, dest, shown)
        z.unlink()
    if not (dest / KAGGLE_ROOT).is_dir():
        raise UserError(f"{zips[0].name}: no '{KAGGLE_ROOT}/' folder inside; is it the Animal Faces zip?")
    return KAGGLE_ROOT


def _sample(name: str, dest: Path) -> None:
    """Copy a built-in sample's IDX files (shipped in the package) into ``dest``."""
    src = sample_dir(name)
    files = sorted(src.glob("*-ubyte.gz"))
    if not files:  # an install that left the package data out
        raise UserError(f"dataset: {name}: the built-in sample is missing from {src}; reinstall "
                        "the package (pip install -e .)")
    for f in files:
        shutil.copyfile(f, dest / f.name)


def _local(source: Source, dest: Path) -> str:
    """Check the user's files as preprocess will read them (so errors name them), then copy."""
    src = paths.resolve(source.name)
    if not src.is_dir():
        raise UserError(f"dataset: {quoted(source.spec)}: folder {quoted(src)} not found; fix the path "
                        "(relative paths start at the repo root)")
    try:
        if source.format == "idx":
            found = idx.idx_files(src).values()
            for images, labels in found:
                idx.read_split(images, labels)
        else:
            folder.check_source(src)
    except UserError as err:
        raise UserError(f"{err} (in dataset {quoted(source.spec)}; `dvc repro` reads the fixed source "
                        "again)") from None
    if source.format == "idx":
        for f in (f for pair in found for f in pair if f is not None):
            shutil.copyfile(f, dest / f.name)
        return "."
    shutil.copytree(src, dest / "images", ignore=shutil.ignore_patterns(".*"))
    return "images"


def tree_sha256(root: Path) -> str:
    """SHA-256 over every file's relative path and bytes, in sorted order."""
    digest = hashlib.sha256()
    for f in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(f.relative_to(root).as_posix().encode() + b"\0")
        with open(f, "rb") as fh:
            digest.update(hashlib.file_digest(fh, "sha256").digest())
    return digest.hexdigest()


def download(source: Source, out: str | Path, mirror: str | None = None) -> dict:
    """Fetch ``source`` into the folder ``out`` (replaced atomically) and return its manifest.

    The manifest (``out/manifest.json``) tells preprocess the format and the root folder.
    """
    mirror = mirror or os.environ.get(MIRROR_ENV) or None
    with atomic.output_dir(out) as tmp:
        if source.kind == "local":
            root = _local(source, tmp)
        elif source.name in SAMPLES:
            _sample(source.name, tmp)
            root = "."
        elif source.name in TORCHVISION:
            _torchvision(source.name, tmp, mirror)
            root = "."
        else:
            root = _animal_faces(tmp, mirror)
        manifest = {"dataset": source.spec, "format": source.format, "root": root,
                    "sha256": tree_sha256(tmp)}
        atomic.write_json(tmp / "manifest.json", manifest)
    return manifest
