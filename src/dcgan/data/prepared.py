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
    a seeded 10% held out (at least one image: below 10 images, 10% would be none)."""
    if len(images) < 2:
        raise UserError(f"{len(images)} labelled image(s): the domain classifier needs at least "
                        "2 (one to train on, one to test on); add images")
    count = max(1, len(images) // 10)
    perm = permutation(len(images), seed)
    held, rest = perm[:count], perm[count:]
    return (images[rest], labels[rest]), (images[held], labels[held])


def scored_set_size(meta: dict, num_samples: int) -> int:
    """How many real images each of evaluation's two real sets (reference and floor) holds:
    the held-out split against train, else two halves of train (``evaluate.real_sets``)."""
    train = meta["splits"]["train"]["count"]
    held = [meta["splits"][s]["count"] for s in ("test", "val") if s in meta["splits"]]
    return min(num_samples, held[0], train) if held else min(num_samples, train // 2)


def check_scorable(meta: dict, num_samples: int, pr_k: int) -> None:
    """Fail before any work when evaluation's real sets would be too small to score.

    The Fréchet distance needs 2 images per set, precision/recall ``pr_k + 1``.
    """
    need, have = max(2, pr_k + 1), scored_set_size(meta, num_samples)
    if have >= need:
        return
    splits = meta["splits"]
    held = next((s for s in ("test", "val") if s in splits), None)
    if num_samples < need:
        fix = f"set evaluate.num_samples to at least {need}"
    elif held:
        fix = f"give the {held} split at least {need} images (it has {splits[held]['count']})"
    else:
        fix = (f"give the data at least {2 * need} images (it has {splits['train']['count']} "
               "and no held-out split, so evaluation compares two halves of it)")
    lower = ", or lower evaluate.pr_k" if pr_k > 1 and have >= 2 else ""
    raise UserError(f"evaluation would compare real sets of {have} image(s), but needs "
                    f"{need} per set (2 for the Fréchet distance, evaluate.pr_k {pr_k} + 1 for "
                    f"precision/recall): {fix}{lower}")


def heldout_split(prepared: str | Path, meta: dict) -> tuple[tuple[torch.Tensor, torch.Tensor] | None, str]:
    """The held-out split (``test``, else ``val``) and its name, or ``(None, "")`` if none."""
    for split in ("test", "val"):
        if split in meta["splits"]:
            return load_split(prepared, split), f"the {split} split"
    return None, ""
