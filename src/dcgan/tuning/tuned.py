"""The tuned-params file (``configs/tuned/<data set>.yaml``, written by ``dcgan tune``) read
back: which recipe a run trained, for ``dcgan compare``'s recipe column.

Light on purpose (yaml only): compare reads it without importing Optuna.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml

from dcgan.paths import resolve


def tuned_file(short: str) -> Path:
    """``<repo root>/configs/tuned/<short>.yaml``."""
    return resolve(Path("configs/tuned") / f"{short}.yaml")


def read_tuned(path: Path) -> dict[str, Any]:
    """The tuned file's records per loss ({} without one)."""
    data = yaml.safe_load(path.read_text()) if path.is_file() else None
    return (data or {}).get("losses", {})


def _same(logged: str | None, value: Any) -> bool:
    """A logged param string equal to a tuned value (floats to 9 digits: 1e-3 is 0.001)."""
    if logged is None:
        return False
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return math.isclose(float(logged), float(value), rel_tol=1e-9)
        except ValueError:
            return False
    return logged == str(value)


def source(params: dict[str, str], loss: str, records: dict[str, Any]) -> str | None:
    """``tuned: 16 trials at 2000 G steps`` when the run's params hold every tuned param of
    its loss, else None."""
    record = records.get(loss)
    if not record or not all(_same(params.get(k), v) for k, v in record["params"].items()):
        return None
    t = record["trials"]
    return f"tuned: {t['complete'] + t['pruned']} trials at {record['budget']['g_steps']} G steps"
