"""Reading the preprocess stage's output: ``<split>.pt`` files and ``meta.json``.

Kept apart from ``prepare`` so that stages which only read prepared data do not depend on
the readers of raw formats.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from dcgan.errors import UserError


def load_split(prepared: str | Path, split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """Load a prepared split: float32 images (N, C, H, W) in [-1, 1] and int64 labels."""
    path = Path(prepared) / f"{split}.pt"
    if not path.is_file():
        raise UserError(f"{path} not found; run `dvc repro preprocess`")
    data = torch.load(path, weights_only=True)
    return data["images"], data["labels"]


def load_meta(prepared: str | Path) -> dict:
    """The ``meta.json`` written beside the split files."""
    return json.loads((Path(prepared) / "meta.json").read_text())


def permutation(n: int, seed: int) -> torch.Tensor:
    """A random permutation of ``range(n)`` that depends only on ``n`` and ``seed``.

    Every seeded selection of data (the preprocess subset, the hold-out, the evaluation
    sets) draws from here: a fresh CPU generator, so the draw is the same on any device and
    no other random call in between can shift it.
    """
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))


def hold_out(images: torch.Tensor, labels: torch.Tensor, seed: int):
    """For a set with no held-out split: ``(rest, held_out)``, each ``(images, labels)``, with
    a seeded 10% held out."""
    perm = permutation(len(images), seed)
    held, rest = perm[:len(images) // 10], perm[len(images) // 10:]
    return (images[rest], labels[rest]), (images[held], labels[held])


def heldout_split(prepared: str | Path, meta: dict) -> tuple[tuple[torch.Tensor, torch.Tensor] | None, str]:
    """The held-out split (``test``, else ``val``) and its name, or ``(None, "")`` if none."""
    for split in ("test", "val"):
        if split in meta["splits"]:
            return load_split(prepared, split), f"the {split} split"
    return None, ""
