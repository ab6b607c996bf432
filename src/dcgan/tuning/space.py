"""The search space: ``configs/search_space.yaml`` read, checked, and sampled by Optuna.

Checked before any training: every key must be a params.yaml key that a study may change,
every range non-empty, every value one that params.yaml accepts. A bad file fails in one
line naming the key and the fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dcgan.config import ConfigError, flatten, load_params
from dcgan.errors import UserError

# What the study itself fixes: its data, its loss, its seed and its budget.
FIXED = ("dataset", "loss", "seed", "train.epochs", "train.batch_size", "train.eval_every",
         "train.device", "train.nproc")
FIELDS = {"low", "high", "log", "choices"}


class SpaceError(UserError):
    """A search-space file that does not validate."""


@dataclass(frozen=True)
class Dimension:
    """One searched params key: a range (``low``..``high``, ``log``) or ``choices``."""

    key: str
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    choices: tuple = ()

    def suggest(self, trial: Any) -> Any:
        """This key's value for an Optuna trial."""
        if self.choices:
            return trial.suggest_categorical(self.key, list(self.choices))
        if isinstance(self.low, int) and isinstance(self.high, int):
            return trial.suggest_int(self.key, self.low, self.high, log=self.log)
        return trial.suggest_float(self.key, float(self.low), float(self.high), log=self.log)

    def corners(self) -> list[Any]:
        """The values params.yaml must accept: both ends, or every choice."""
        return list(self.choices) if self.choices else [self.low, self.high]


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _dimension(key: str, spec: Any) -> Dimension:
    if not isinstance(spec, dict) or not spec or set(spec) - FIELDS:
        extra = sorted(set(spec) - FIELDS) if isinstance(spec, dict) else []
        raise SpaceError(f"{key}: " + (f"unknown field {extra[0]!r}; " if extra else "")
                         + "write {low: L, high: H} (log: true optional) or {choices: [...]}")
    if "choices" in spec:
        choices = spec["choices"]
        if set(spec) != {"choices"}:
            raise SpaceError(f"{key}: choices go alone, without low/high/log")
        if not isinstance(choices, list) or not choices:
            raise SpaceError(f"{key}: choices is empty; list at least one value")
        return Dimension(key, choices=tuple(choices))
    low, high, log = spec.get("low"), spec.get("high"), spec.get("log", False)
    if not (_number(low) and _number(high)) or not isinstance(log, bool):
        raise SpaceError(f"{key}: low and high must both be numbers (log: true or false), "
                         f"got low={low!r} high={high!r}")
    if low >= high:
        raise SpaceError(f"{key}: empty range (low {low!r} >= high {high!r}); make low < high "
                         "or use choices: [value]")
    if log and low <= 0:
        raise SpaceError(f"{key}: a log range needs low > 0, got {low!r}")
    return Dimension(key, low, high, log)


def check_values(dims: list[Dimension], params_file: Path, base: dict[str, Any]) -> None:
    """Every corner of every dimension through params.yaml's own validation."""
    for dim in dims:
        for value in dim.corners():
            try:
                load_params(params_file, {**base, dim.key: value})
            except ConfigError as err:
                raise SpaceError(f"{dim.key}: value {value!r} is refused: {err}") from None


def load_space(path: str | Path, params_file: str | Path,
               base: dict[str, Any] | None = None) -> list[Dimension]:
    """The dimensions of the search-space file at ``path``, checked against ``params_file``
    (with ``base`` overrides, e.g. the loss) before any training."""
    path, params_file = Path(path), Path(params_file)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpaceError(f"{path}: search-space file not found; pass --space or copy "
                         "configs/search_space.yaml") from None
    except yaml.YAMLError as err:
        line = getattr(getattr(err, "problem_mark", None), "line", None)
        raise SpaceError(f"{path}: not valid YAML" + (f" (line {line + 1})" if line is not None
                         else "") + "; fix the syntax") from None
    if not isinstance(data, dict) or not data:
        raise SpaceError(f"{path}: expected a mapping of params keys to ranges or choices")
    known = flatten(load_params(params_file))
    dims = []
    for key, spec in data.items():
        if key in FIXED:
            raise SpaceError(f"{path.name}: {key}: fixed by the study (its data, loss, seed or "
                             f"budget), not searchable; remove it")
        if key not in known:
            raise SpaceError(f"{path.name}: {key}: unknown key; use a params.yaml key, "
                             "e.g. train.lr_g or model.ndf")
        try:
            dims.append(_dimension(key, spec))
        except SpaceError as err:
            raise SpaceError(f"{path.name}: {err}") from None
    try:
        check_values(dims, params_file, base or {})
    except SpaceError as err:
        raise SpaceError(f"{path.name}: {err}") from None
    return dims
