"""A run's identity: the checkpoint folder name, over everything its weights depend on.

That is the params (except ``train.epochs``, so a finished run can be extended,
``train.nproc``, since the batches are the same for any process count, and
``train.sample_bn``, which only decides how finished weights are sampled), the data's
metadata, and the code of the modules listed in :data:`COVERED`: the maths of a run.
The code is hashed as its syntax tree without docstrings, so editing a comment, a docstring
or the layout keeps checkpoints resumable while any change to the code discards them.
Moving code into a module that is not listed would silently keep old checkpoints
resumable; ``tests/test_training_core.py`` fails when a covered module imports a dcgan
module that is neither covered nor declared free of maths in :data:`NOT_MATHS`.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import importlib.util
import json
from typing import Any

COVERED = (  # the modules whose code decides the weights a run produces
    "dcgan.models",
    "dcgan.losses",
    "dcgan.augment",
    "dcgan.training.batches",
    "dcgan.training.networks",
    "dcgan.training.steps",
    "dcgan.training.loop",
    "dcgan.training.ema",
)
NOT_MATHS = (  # dcgan modules the covered ones import that cannot change a run's weights
    "dcgan.atomic", "dcgan.checkpoint", "dcgan.config", "dcgan.data.prepared",
    "dcgan.device", "dcgan.distributed", "dcgan.errors", "dcgan.images",
    "dcgan.training.divergence", "dcgan.training.history", "dcgan.training.hooks",
    "dcgan.training.identity", "dcgan.training.standing", "dcgan.training.workdir",
)


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return tree


def code_text(source: str) -> str:
    """What of ``source`` counts: its syntax tree without docstrings (comments are not in it)."""
    return ast.dump(_strip_docstrings(ast.parse(source)))


def code_digest(modules: tuple[str, ...] = COVERED) -> str:
    """SHA-256 over the modules' names and :func:`code_text`."""
    digest = hashlib.sha256()
    for name in modules:
        with open(importlib.util.find_spec(name).origin, encoding="utf-8") as f:
            source = f.read()
        digest.update(name.encode())
        digest.update(code_text(source).encode())
    return digest.hexdigest()


def run_id(params: Any, meta: dict) -> str:
    """16 hex digits naming the run's checkpoint folder."""
    train = dataclasses.asdict(params.train)
    train.pop("epochs")
    train.pop("nproc")
    train.pop("sample_bn")  # only how finished weights are sampled: never what they are
    key = {"loss": params.loss, "seed": params.seed, "model": dataclasses.asdict(params.model),
           "train": train, "data": meta, "code": code_digest()}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
