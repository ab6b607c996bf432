"""One trainer per checkpoint folder: a lock taken before anything slow happens.

The folder of run folders (``--workdir``) is locked while a trainer uses it: a second one (an
orphan of a killed ``dvc``, plus a rerun) stops with one line instead of writing the same
files. This module imports neither torch nor the training code, so the train stage takes the
lock in its first second, not after the heavy imports.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from pathlib import Path
from typing import Iterator

from filelock import FileLock, Timeout

from dcgan import atomic
from dcgan.errors import UserError

LOCK_ENV = "DCGAN_TRAIN_LOCK"  # set while held: the processes a launcher starts share its lock


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
