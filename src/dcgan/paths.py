"""Where the repository root is, for stages run by ``dvc repro``, ``dvc exp run`` or by hand."""

from __future__ import annotations

import os
from pathlib import Path

# In a run folder and the train stage's outputs: which MLflow run the training logs to (the
# tracker writes it, the evaluate and report stages read it, the run folder names it).
MLFLOW_RECORD = "mlflow_run.json"


def repo_root() -> Path:
    """The repository root that relative paths in params resolve against.

    DVC sets ``DVC_ROOT`` for every stage it runs. Queued experiments run in a copy of the
    repo under ``<root>/.dvc/tmp/exps/``; paths are anchored at the real ``<root>`` there so
    that ``dataset: idx:../data`` means the same thing queued or not.
    """
    env = os.environ.get("DVC_ROOT")
    start = Path(env) if env else Path.cwd()
    start = start.resolve()
    parts = start.parts
    for i in range(len(parts) - 2):
        if parts[i : i + 3] == (".dvc", "tmp", "exps"):
            return Path(*parts[:i])
    if env:
        return start
    for candidate in (start, *start.parents):
        if (candidate / "dvc.yaml").is_file():
            return candidate
    return start


def resolve(path: str | os.PathLike[str]) -> Path:
    """Resolve ``path`` against the repo root unless it is absolute (``~`` expanded)."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else (repo_root() / p).resolve()
