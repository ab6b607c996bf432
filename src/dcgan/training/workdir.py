"""A run's folder on disk: where everything lives, two checkpoints, leftovers of killed writers.

:class:`RunFolder` names every path of a run once. ``last.pt`` is the newest full state and
``prev.pt`` the one before it, so a ``last.pt`` that cannot be read (a truncated copy, a bad
sector) costs one epoch, not the run.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dcgan import checkpoint
from dcgan.errors import one_line
from dcgan.paths import MLFLOW_RECORD

LAST, PREV = "last.pt", "prev.pt"
# What reading a damaged checkpoint raises: a truncated zip (RuntimeError, BadZipFile),
# an empty or foreign file (EOFError, UnpicklingError), a missing key (KeyError).
_UNREADABLE = (RuntimeError, EOFError, OSError, pickle.UnpicklingError, zipfile.BadZipFile,
               KeyError, ValueError, TypeError)


@dataclass(frozen=True)
class RunFolder:
    """One run's folder: ``<root>/<run id>``, or ``<root>/<run id>/epochs-<N>`` when the run
    asks for fewer epochs than the run already there went (that one stays whole).

    Attributes:
        path: The folder.
        last, prev: The newest checkpoint and the one before it.
        best: The best generator so far (``BestGenerator``).
        mlflow_record: Which MLflow run this training logs to (written by the tracker).
    """

    path: Path

    @property
    def last(self) -> Path:
        return self.path / LAST

    @property
    def prev(self) -> Path:
        return self.path / PREV

    @property
    def best(self) -> Path:
        return self.path / "best.pt"

    @property
    def mlflow_record(self) -> Path:
        return self.path / MLFLOW_RECORD

    @property
    def beside_longer(self) -> bool:
        """Whether this is the folder of a run shorter than the one around it."""
        return self.path.name.startswith("epochs-")

    def grid(self, epoch: int) -> Path:
        """The fixed-noise grid of ``epoch``."""
        return self.path / "grids" / f"epoch_{epoch:03d}.png"

    @classmethod
    def place(cls, base: Path, saved_epoch: int | None, epochs: int) -> "RunFolder":
        """Where a run of ``epochs`` trains, given the epoch of ``base``'s checkpoint: in
        ``base`` itself, or in ``base/epochs-<N>`` when that checkpoint went further."""
        if saved_epoch is not None and saved_epoch > epochs:
            return cls(base / f"epochs-{epochs}")
        return cls(base)


def save(folder: RunFolder, state: dict[str, Any]) -> None:
    """Write ``state`` as ``last.pt``, the previous ``last.pt`` becoming ``prev.pt``.

    The new file is complete on disk before either name moves, so a kill at any point
    leaves at least one whole checkpoint; the old ``prev.pt`` goes first, so the disk holds
    at most two checkpoints at a time, as with one checkpoint and its temp copy.
    """
    last, new = folder.last, folder.path / f"{LAST}.new"
    if last.is_file():
        folder.prev.unlink(missing_ok=True)
    checkpoint.save(new, state)
    if last.is_file():
        os.replace(last, folder.prev)
    os.replace(new, last)


def _read(path: Path) -> dict[str, Any]:
    try:
        state = checkpoint.load(path)
    except _UNREADABLE:
        raise
    except Exception as err:  # torch's unpickler on garbage bytes raises almost any type
        raise ValueError(f"{type(err).__name__}: {err}") from err  # (IndexError, struct.error)
    if not isinstance(state, dict) or not isinstance(state.get("epoch"), int):
        raise ValueError("not a training checkpoint")
    return state


def load(folder: Path) -> dict[str, Any] | None:
    """The newest readable checkpoint in ``folder`` (None: start afresh); one line on a fallback.

    An unreadable ``last.pt`` is moved aside to ``last.pt.unreadable`` (kept for a look,
    and so that the next save cannot rotate it over the good ``prev.pt``).
    """
    remove_leftovers(folder)
    last, prev = folder / LAST, folder / PREV
    if not last.is_file() and not prev.is_file():
        return None
    try:
        return _read(last)
    except _UNREADABLE as err:
        reason = "missing" if not last.exists() else f"unreadable ({one_line(err, 100)})"
    if last.exists():
        os.replace(last, folder / f"{LAST}.unreadable")
        reason += f", moved to {LAST}.unreadable"
    try:
        state = _read(prev)
    except _UNREADABLE as err:
        if prev.exists():
            os.replace(prev, folder / f"{PREV}.unreadable")
        print(f"train: {last} is {reason} and {PREV} cannot be read either "
              f"({one_line(err, 100)}); training from scratch")
        return None
    print(f"train: {last} is {reason}; resuming from {PREV} (epoch {state['epoch']})")
    return state


def newest(folder: Path) -> tuple[Path, int] | None:
    """The checkpoint :func:`load` would resume from and its epoch, without touching the
    folder (``last.pt``, else ``prev.pt``); None when neither can be read."""
    for path in (folder / LAST, folder / PREV):
        with contextlib.suppress(*_UNREADABLE):
            return path, _read(path)["epoch"]
    return None


def kept(folder: Path) -> str:
    """Where a run in ``folder`` can go on from, in words (for error and warning lines)."""
    found = newest(folder)
    if found is None:
        return "no epoch had finished, so there is no checkpoint yet"
    path, epoch = found
    return f"the last good checkpoint, {path} (epoch {epoch}), is kept"


def remove_leftovers(folder: Path) -> None:
    """Temp files that killed writers left in the run folder and its ``grids/``."""
    (folder / f"{LAST}.new").unlink(missing_ok=True)  # written whole, but never moved in
    for sub in (folder, folder / "grids"):
        if sub.is_dir():
            for leftover in sub.glob(".*.tmp"):
                shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink(missing_ok=True)
