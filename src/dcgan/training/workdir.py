"""A run's checkpoint folder on disk: two checkpoints, leftovers of killed writers, one trainer.

``last.pt`` is the newest full state and ``prev.pt`` the one before it, so a ``last.pt``
that cannot be read (a truncated copy, a bad sector) costs one epoch, not the run. The
folder of run folders (``--workdir``) is locked while a trainer uses it: a second one (an
orphan of a killed ``dvc``, plus a rerun) stops with one line instead of writing the same
files.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import shutil
import socket
import zipfile
from pathlib import Path
from typing import Any, Iterator

from filelock import FileLock, Timeout

from dcgan import atomic, checkpoint
from dcgan.errors import UserError, one_line

LAST, PREV = "last.pt", "prev.pt"
LOCK_ENV = "DCGAN_TRAIN_LOCK"  # set while held: the processes a launcher starts share its lock
# What reading a damaged checkpoint raises: a truncated zip (RuntimeError, BadZipFile),
# an empty or foreign file (EOFError, UnpicklingError), a missing key (KeyError).
_UNREADABLE = (RuntimeError, EOFError, OSError, pickle.UnpicklingError, zipfile.BadZipFile,
               KeyError, ValueError, TypeError)


def save(folder: Path, state: dict[str, Any]) -> None:
    """Write ``state`` as ``last.pt``, the previous ``last.pt`` becoming ``prev.pt``.

    The new file is complete on disk before either name moves, so a kill at any point
    leaves at least one whole checkpoint; the old ``prev.pt`` goes first, so the disk holds
    at most two checkpoints at a time, as with one checkpoint and its temp copy.
    """
    last, new = folder / LAST, folder / f"{LAST}.new"
    if last.is_file():
        (folder / PREV).unlink(missing_ok=True)
    checkpoint.save(new, state)
    if last.is_file():
        os.replace(last, folder / PREV)
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


def remove_leftovers(folder: Path) -> None:
    """Temp files that killed writers left in the run folder and its ``grids/``."""
    (folder / f"{LAST}.new").unlink(missing_ok=True)  # written whole, but never moved in
    for sub in (folder, folder / "grids"):
        if sub.is_dir():
            for leftover in sub.glob(".*.tmp"):
                shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink(missing_ok=True)


def _owner(path: Path) -> str:
    with contextlib.suppress(OSError, ValueError):
        who = json.loads(path.read_text())
        return f" (pid {who['pid']} on {who['host']})"
    return ""


@contextlib.contextmanager
def locked(root: str | Path, main: bool = True) -> Iterator[bool]:
    """Hold ``.<root name>.lock`` (beside ``root``) while training; yields True in the
    process that took it.

    Processes started under it (``LOCK_ENV`` names the root) and ranks other than 0 share
    the holder's lock. The lock is the kernel's (flock): a killed holder releases it.

    Raises:
        UserError: another trainer holds it.
    """
    root = Path(root).resolve()
    if not main or os.environ.get(LOCK_ENV) == str(root):
        yield False
        return
    root.mkdir(parents=True, exist_ok=True)
    # Beside the folder, not in it: the folder holds run folders only.
    lock = FileLock(root.with_name(f".{root.name}.lock"), timeout=0)
    owner = root.with_name(f".{root.name}.lock.owner")
    try:
        lock.acquire()
    except Timeout:
        raise UserError(f"another training process{_owner(owner)} is using {root}: wait for it "
                        "to finish or stop it, then rerun") from None
    atomic.write_json(owner, {"pid": os.getpid(), "host": socket.gethostname()})
    os.environ[LOCK_ENV] = str(root)
    try:
        yield True
    finally:
        os.environ.pop(LOCK_ENV, None)
        owner.unlink(missing_ok=True)
        lock.release()
