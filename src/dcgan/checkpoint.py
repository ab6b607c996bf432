"""Full-state checkpoints: everything needed for a resumed run to equal an uninterrupted one.

A checkpoint holds only tensors, numbers, strings and containers of them, so it loads with
``torch.load(weights_only=True)`` (no pickled code runs on load).
"""

from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dcgan import atomic


def rng_state() -> dict[str, Any]:
    """The global RNG states of python, numpy, torch and every CUDA device."""
    np_state = np.random.get_state(legacy=False)
    np_state["state"]["key"] = torch.from_numpy(np_state["state"]["key"].astype(np.int64))
    return {
        "python": random.getstate(),
        "numpy": np_state,
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np_state = dict(state["numpy"])
    np_state["state"] = dict(np_state["state"])
    np_state["state"]["key"] = np_state["state"]["key"].numpy().astype(np.uint32)
    np.random.set_state(np_state)
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save(path: str | Path, state: dict[str, Any]) -> None:
    """Write ``state`` atomically: a crash mid-write leaves the previous checkpoint intact.

    Serialised in memory first, so a full disk is an OSError that names the size needed
    (``torch.save`` to a file says only "unexpected pos ...").
    """
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic.write_bytes(path, buffer.getbuffer())


def load(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint safely (``weights_only=True``)."""
    return torch.load(path, map_location=map_location, weights_only=True)


def save_model(path: str | Path, model: torch.nn.Module, kwargs: dict[str, Any]) -> None:
    """Save weights with the constructor arguments that rebuild the module."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    save(path, {"kwargs": kwargs, "state_dict": state})


def load_model(path: str | Path, cls: type[torch.nn.Module],
               map_location: str | torch.device = "cpu") -> torch.nn.Module:
    """Rebuild ``cls(**kwargs)`` from :func:`save_model`'s file and load its weights."""
    saved = load(path, map_location)
    model = cls(**saved["kwargs"])
    model.load_state_dict(saved["state_dict"])
    return model
