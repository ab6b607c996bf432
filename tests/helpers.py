"""Test helpers, imported by the test files (``from helpers import ...``): generated IDX files
and image folders, the committed params and the tiny ones every training test uses, the train
stage's command line, a kill between two epochs. Fixtures are in conftest.py."""

from __future__ import annotations

import atexit
import gzip
import shutil
import signal
import subprocess
import struct
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
AFHQ_SAMPLE = REPO.parent / "shared" / "data" / "afhq-sample"


def _committed_params() -> Path:
    """params.yaml as committed at HEAD, which the tests assume: every `dvc exp run` leaves
    its values in the workspace's copy. The workspace's file outside a git checkout."""
    from dcgan.errors import UserError
    from dcgan.writeups import committed_params

    try:
        text = committed_params(REPO)
    except UserError:
        return REPO / "params.yaml"
    path = Path(tempfile.mkdtemp(prefix="dcgan-tests-")) / "params.yaml"
    path.write_text(text)
    atexit.register(shutil.rmtree, path.parent, ignore_errors=True)
    return path


PARAMS = _committed_params()

def write_idx(path: Path, array: np.ndarray, gz: bool | None = None) -> Path:
    """Write ``array`` (uint8) as an IDX file; gzipped when the name ends in .gz."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    gz = path.suffix == ".gz" if gz is None else gz
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data, mtime=0) if gz else data)
    return path


def make_idx_dir(folder: Path, n: int = 64, test: int = 0, classes: int = 10, seed: int = 0) -> Path:
    """A folder in the MNIST layout with ``n`` train (and ``test``) random 28x28 images."""
    rng = np.random.default_rng(seed)
    for prefix, count in (("train", n), ("t10k", test)):
        if count:
            write_idx(folder / f"{prefix}-images-idx3-ubyte.gz",
                      rng.integers(0, 256, (count, 28, 28), dtype=np.uint8))
            write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz",
                      (np.arange(count) % classes).astype(np.uint8))
    return folder


def make_image_folder(root: Path, classes=("cat", "dog"), per_class: int = 3,
                      size=(40, 30), splits=("train", "val")) -> Path:
    """An image folder ``root/<split>/<class>/*.png`` (or ``root/<class>`` when splits is empty)."""
    rng = np.random.default_rng(0)
    for split in splits or ("",):
        for c in classes:
            d = root / split / c
            d.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                px = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
                Image.fromarray(px).save(d / f"{c}_{i}.png")
    return root


TINY = {"model.ngf": 8, "model.ndf": 8, "model.nz": 16, "train.batch_size": 16,
        "train.epochs": 2, "train.grid_images": 16, "train.device": "cpu",
        "train.eval_every": 0, "train.eval_samples": 32, "classifier.width": 4,
        "classifier.epochs": 1, "classifier.min_steps": 0,
        "evaluate.num_samples": 64, "evaluate.inception": False,
        "evaluate.kid_subset_size": 16, "evaluate.is_splits": 2}


def write_params(folder: Path, overrides: dict) -> Path:
    """The repo's params.yaml with dotted ``overrides``, written to ``folder/params.yaml``."""
    import yaml

    data = yaml.safe_load(PARAMS.read_text())
    for dotted, value in overrides.items():
        *parents, leaf = dotted.split(".")
        node = data
        for part in parents:
            node = node[part]
        node[leaf] = value
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "params.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return folder / "params.yaml"


def stage_cmd(folder: Path, params: Path, prepared: Path) -> list[str]:
    """The train stage's command line on ``prepared`` with the params file ``params``, writing
    checkpoints, outputs and metrics under ``folder`` (``work/``, ``out/``, ``train.json``)."""
    return [sys.executable, str(REPO / "stages/train.py"), "--params", str(params),
            "--data", str(prepared), "--workdir", str(folder / "work"),
            "--out", str(folder / "out"), "--metrics", str(folder / "train.json")]


def kill_after_first_checkpoint(cmd: list[str], env: dict, workdir: Path) -> None:
    """Start the training ``cmd`` and SIGKILL it as soon as a ``last.pt`` exists under
    ``workdir``: a crash between two epochs, the case resume has to get exactly right."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not list(workdir.glob("*/last.pt")) and time.monotonic() < deadline:
        assert proc.poll() is None, "training ended before it could be killed"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def make_prepared(folder: Path, n: int = 64, seed: int = 0) -> Path:
    """A prepared data set (the preprocess stage's output) of ``n`` random 28x28 digits."""
    from dcgan.data.download import download
    from dcgan.data.preprocess import preprocess
    from dcgan.data.sources import parse_dataset

    src = make_idx_dir(folder / "idx", n=n, seed=seed)
    download(parse_dataset(f"idx:{src}"), folder / "raw")
    preprocess(folder / "raw", folder / "prepared", seed)
    return folder / "prepared"


def tiny_params(**overrides: object):
    """The committed params with :data:`TINY` and ``overrides`` (dotted keys, as ``-S``)."""
    from dcgan.config import load_params

    return load_params(PARAMS, {**TINY, **overrides})
