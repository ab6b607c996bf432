"""Atomic writes: an output either appears whole or not at all, never half-written.

Temp files sit beside their target as ``.<name>.<random>.tmp`` (folders being replaced
also as ``.<name>.<random>.old``): a writer killed mid-way leaves only those, which
:func:`remove_leftovers` cleans. A full disk is one :class:`DiskFull` line, not a traceback.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

from dcgan.errors import UserError

_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


class DiskFull(UserError):
    """No space (or quota) left for an output: names the folder and the space needed."""


def _size(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def disk_full(path: Path, needed: int | None = None) -> DiskFull:
    """The one-line error for ``path`` that did not fit on its disk."""
    folder = path.parent
    free = shutil.disk_usage(folder).free if folder.exists() else 0
    need = f"needs {_size(needed)}, " if needed is not None else ""
    return DiskFull(f"no space left on the device of {folder} for {path.name} ({need}"
                    f"{_size(free)} free): free some space there and rerun")


def _no_space(err: BaseException) -> bool:
    return isinstance(err, OSError) and err.errno in _NO_SPACE


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _replace_from_temp(path: Path, write: Callable[[Path], None], size: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual mode
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if _no_space(err):  # measured after the partial file is gone
            raise disk_full(path, size) from None
        raise


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same folder, then rename)."""
    _replace_from_temp(Path(path), lambda tmp: tmp.write_bytes(data), len(data))


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as indented, key-sorted JSON atomically."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def save_with(path: str | os.PathLike[str], save: Callable[[Path], None]) -> None:
    """Atomically write a file produced by ``save(tmp_path)`` (e.g. ``torch.save``, PIL)."""
    _replace_from_temp(Path(path), save)


@contextlib.contextmanager
def output_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Build a directory output in a sibling temp folder; it replaces ``path`` only on success.

    On any error the temp folder is removed and an existing ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        try:
            yield tmp
        except DiskFull as err:  # a file written inside: name the output, not the temp copy
            raise DiskFull(str(err).replace(str(tmp), str(path))) from None
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700
        if path.exists():
            old = tmp.with_suffix(".old")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except OSError as err:
        if _no_space(err):
            shutil.rmtree(tmp, ignore_errors=True)
            raise disk_full(path) from None
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def remove_leftovers(path: str | os.PathLike[str]) -> list[Path]:
    """Remove the temp files and folders that killed writers of ``path`` left beside it.

    Only call it while no other process may be writing ``path`` (e.g. under a lock).
    Returns what was removed.
    """
    path = Path(path)
    if not path.parent.is_dir():
        return []
    removed = []
    for pattern in (f".{path.name}.*.tmp", f".{path.name}.*.old"):
        for leftover in path.parent.glob(pattern):
            if leftover.is_dir() and not leftover.is_symlink():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)
            removed.append(leftover)
    return removed
