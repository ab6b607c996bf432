"""The tracking store under the runs: bounded waits, quiet logs, a broken sqlite file set aside.

MLflow's defaults suit a long-lived service, not a training stage: 7 HTTP retries with
exponential backoff stall an unreachable server's every run for ~4 minutes, and a store
error logs pages of traceback. Here an unreachable server gives up within seconds (unless
the user set MLflow's own variables), MLflow's logging stays off the terminal, and a
failure is reported as its real cause in one line. A sqlite store that a kill left
half-created is moved aside, never deleted, and created afresh.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

from filelock import FileLock

T = TypeVar("T")
# MLflow's own variables (mlflow/environment_variables.py), set only where the user did not:
# three tries, 0 s and ~2 s apart: a refused connection gives up after ~2.5 s, a host that
# never answers after ~3 x 3 s + 2.5 s.
HTTP_BOUNDS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
               "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5", "MLFLOW_HTTP_REQUEST_TIMEOUT": "3"}
_QUIET = {"mlflow": logging.CRITICAL, "alembic": logging.ERROR, "sqlalchemy": logging.ERROR,
          "urllib3": logging.ERROR}  # our one line says what failed; their logs only repeat it
# What a schema migration cut short leaves behind, as sqlite reports it on the next open.
_HALF_CREATED = ("already exists", "duplicate column", "file is not a database",
                 "_alembic_tmp_")


def bound_and_quiet() -> None:
    """Bound MLflow's HTTP retries and timeouts, and silence its (and its libraries') logs."""
    for name, value in HTTP_BOUNDS.items():
        os.environ.setdefault(name, value)
    for name, level in _QUIET.items():
        logging.getLogger(name).setLevel(level)


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (``file:`` form and query removed), else None."""
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri.removeprefix("sqlite:///").split("?")[0].removeprefix("file:"))


@contextlib.contextmanager
def creation_lock(uri: str) -> Iterator[None]:
    """Serialise opening a sqlite store: processes started together (queued experiments)
    would otherwise race to create its schema or the experiment."""
    db = sqlite_path(uri)
    with FileLock(f"{db}.lock", timeout=300) if db else contextlib.nullcontext():
        yield


def root_cause(err: BaseException) -> BaseException:
    """The innermost exception of ``err``'s chain (the sqlite or socket error under MLflow's)."""
    seen = {id(err)}
    while (inner := err.__cause__ or err.__context__) is not None and id(inner) not in seen:
        seen.add(id(inner))
        err = inner
    return err


def _deleted(uri: str | None) -> Path | None:
    """The sqlite file of ``uri`` when it no longer exists (deleted or moved while open)."""
    db = sqlite_path(uri) if uri else None
    return db if db is not None and not db.exists() else None


def cause(err: BaseException, uri: str | None = None) -> str:
    """One line naming what really failed, e.g. ``OperationalError: attempt to write a
    readonly database`` or ``Connection refused``, not the start of a wrapped message.

    A sqlite file deleted while MLflow had it open reports itself as read-only; given the
    ``uri``, that case is named for what it is.
    """
    if (db := _deleted(uri)) is not None:
        return f"{db} was deleted or moved while the run was logging to it"
    inner = root_cause(err)
    text = str(inner)
    errno_text = re.search(r"\[Errno -?\d+\] ([^'\"\)]+)", text)  # inside a requests message
    if errno_text:
        return errno_text.group(1).strip()
    text = " ".join(text.split("\n[SQL")[0].split())  # drop the statement sqlalchemy appends
    line = f"{type(inner).__name__}: {text}" if text else type(inner).__name__
    return line if len(line) <= 120 else line[:119] + "…"


def fix(uri: str, err: BaseException) -> str:
    """What the user can do about a failed store."""
    db, text = sqlite_path(uri), str(root_cause(err)).lower()
    if _deleted(uri) is not None:
        return (f"rerun to log to a new {db.name} (this training's MLflow run went with the "
                "old file)")
    if db is not None and ("readonly" in text or "read-only" in text or "permission" in text):
        return f"make {db} and its folder writable, or set MLFLOW_TRACKING_URI to another store"
    if uri.startswith(("http://", "https://")):
        return ("start the tracking server or set MLFLOW_TRACKING_URI to one that answers "
                "(unset, runs go to the local sqlite store)")
    return "check the store, or set MLFLOW_TRACKING_URI to another one"


def half_created(err: BaseException) -> bool:
    """Whether opening a store failed on a schema that a killed process left half-made."""
    chain, inner = [], err
    while inner is not None and len(chain) < 10:
        chain.append(str(inner))
        inner = inner.__cause__ or inner.__context__
    return any(sign in text for text in chain for sign in _HALF_CREATED)


def move_aside(db: Path) -> Path:
    """Rename ``db`` (and its journal files) to ``<db>.broken-<time>``; return the new path."""
    moved = db.with_name(f"{db.name}.broken-{time.strftime('%Y%m%d-%H%M%S')}")
    os.replace(db, moved)
    for suffix in ("-journal", "-wal", "-shm"):  # a hot journal must stay with its database
        side = db.with_name(db.name + suffix)
        if side.exists():
            os.replace(side, moved.with_name(moved.name + suffix))
    return moved


def _forget_engine(db: Path) -> None:
    """Drop MLflow's cached engine for ``db``: its pooled connections hold the moved file."""
    with contextlib.suppress(Exception):  # private API: without it, only a stale pool remains
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

        for key in [k for k in SqlAlchemyStore._engine_map if str(db) in k]:
            SqlAlchemyStore._engine_map.pop(key).dispose()


def open_repaired(uri: str, open_store: Callable[[], T]) -> tuple[T, str | None]:
    """``open_store()``; if a sqlite store turns out half-created, move it aside and retry.

    Returns the result and a note saying where the broken store went (None if it was fine).
    Call under :func:`creation_lock`.
    """
    try:
        return open_store(), None
    except Exception as err:  # MLflow wraps sqlite errors in its own types
        db = sqlite_path(uri)
        if db is None or not db.exists() or not half_created(err):
            raise
        reason = cause(err)
    _forget_engine(db)
    moved = move_aside(db)
    note = (f"the MLflow store {db} is half-created or broken ({reason}; a process killed "
            f"while creating it leaves it so); moved it to {moved} and created a new one")
    return open_store(), note


def error_code(err: Any) -> str | None:
    """MLflow's error code of ``err`` (e.g. ``RESOURCE_DOES_NOT_EXIST``), if it has one."""
    return getattr(err, "error_code", None)
