"""The preprocess stage's work: raw files -> one ``<split>.pt`` per split, scaled to [-1, 1].

Each split file holds ``images`` (float32 NCHW in [-1, 1]; pixel 0 -> -1, 255 -> +1 exactly)
and ``labels`` (int64, -1 when unlabelled); ``meta.json`` beside them holds counts, shapes,
classes and the source checksum.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from dcgan import atomic
from dcgan.data import folder, idx
from dcgan.data.prepared import permutation
from dcgan.data.sources import TORCHVISION, torchvision_dataset
from dcgan.errors import UserError

DEFAULTS = {"idx": (28, 1), "folder": (64, 3)}  # format -> (image_size, channels)


def scale(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float32 [-1, 1]; exact at both ends (x / 127.5 - 1)."""
    return images.to(torch.float32).div_(127.5).sub_(1.0)


def _fit(images: torch.Tensor, size: int, channels: int) -> torch.Tensor:
    """Match a uint8 NCHW batch to ``channels`` and ``size`` (antialiased resize, center crop)."""
    if images.shape[1] == channels and images.shape[-2:] == (size, size):
        return images  # MNIST-sized IDX data: skip torchvision's import, ~2-4 s of the stage
    from torchvision.transforms.v2 import functional as TF

    if images.shape[1] != channels:
        images = images.repeat(1, 3, 1, 1) if channels == 3 else TF.rgb_to_grayscale(images)
    if images.shape[-1] != size or images.shape[-2] != size:
        images = TF.center_crop(TF.resize(images, [size], antialias=True), [size, size])
    return images


def _read_idx(root: Path, dataset: str, size: int, channels: int) -> tuple[dict, list[str]]:
    splits = {}
    for split, (images_file, labels_file) in idx.idx_files(root).items():
        x, y = idx.read_split(images_file, labels_file)
        images = _fit(torch.from_numpy(x.copy()).unsqueeze(1), size, channels)
        labels = torch.from_numpy(y) if y is not None else torch.full((len(x),), -1)
        splits[split] = (images, labels)
    train_labels = splits["train"][1]
    if dataset in TORCHVISION:
        classes = list(torchvision_dataset(dataset).classes)
    elif (train_labels >= 0).any():
        classes = [str(c) for c in range(int(train_labels.max()) + 1)]
    else:
        classes = []
    return splits, classes


def _read_folder(root: Path, size: int, channels: int) -> tuple[dict, list[str]]:
    splits, classes = {}, None
    for split, split_dir in folder.find_splits(root).items():  # train first
        items, found = folder.list_images(split_dir, classes)
        classes = found if classes is None else classes
        splits[split] = folder.load_images(items, size, channels, desc=f"preprocess {split}")
    return splits, classes or []


def _subset(images: torch.Tensor, labels: torch.Tensor, k: int | None, seed: int):
    """A seeded subset of ``k`` items, kept in source order (all items when k is None)."""
    if k is None or k >= len(images):
        return images, labels
    keep = permutation(len(images), seed)[:k].sort().values
    return images[keep], labels[keep]


def preprocess(raw: str | Path, out: str | Path, seed: int, *, image_size: int | None = None,
               channels: int | None = None, max_images: int | None = None) -> dict:
    """Turn the download stage's folder ``raw`` into split files in ``out``; return the metadata.

    Args:
        raw: The download stage's folder (with ``manifest.json``).
        out: The folder to write (atomically).
        seed: Picks the ``max_images`` subset.
        image_size: Side length; None keeps the format's default (28 for IDX, 64 for folders).
        channels: 1 or 3; None keeps the format's default (1 for IDX, 3 for folders).
        max_images: A seeded subset of train of this size; None keeps every image.
    """
    raw = Path(raw)
    try:
        manifest = json.loads((raw / "manifest.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        raise UserError(f"{raw}/manifest.json missing or broken; run `dvc repro download`") from None
    default_size, default_channels = DEFAULTS[manifest["format"]]
    size, channels = image_size or default_size, channels or default_channels
    root = raw / manifest["root"]
    if manifest["format"] == "idx":
        splits, classes = _read_idx(root, manifest["dataset"], size, channels)
    else:
        splits, classes = _read_folder(root, size, channels)
    splits["train"] = _subset(*splits["train"], max_images, seed)
    meta = {"dataset": manifest["dataset"], "source_sha256": manifest["sha256"],
            "classes": classes, "image_shape": [channels, size, size], "splits": {}}
    with atomic.output_dir(out) as tmp:
        for split, (images, labels) in splits.items():
            torch.save({"images": scale(images), "labels": labels}, tmp / f"{split}.pt")
            meta["splits"][split] = {"count": len(images), "shape": list(images.shape)}
        atomic.write_json(tmp / "meta.json", meta)
    return meta
