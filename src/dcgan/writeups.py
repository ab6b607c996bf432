"""The write-ups as experiments: ``configs/seeds.yaml`` on top of the committed params.

`dvc exp run -S key=value` edits the *workspace* params.yaml, and a finished experiment leaves
its params there; so a write-up's own overrides alone would inherit whatever the last
experiment set. Here every param gets a value: the committed default, then the write-up's,
then the caller's, written as one ``-S`` per key (``stages/writeup.py`` runs them).
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any

import yaml

from dcgan.config import PAPER, ConfigError, load_params

# A string `-S` can carry bare: DVC parses the value with Hydra's grammar, where a comma makes
# a sweep and words like null or true change type; anything else is quoted.
_BARE = re.compile(r"[\w./:~+@-]+")


def load_writeups(path: str | Path) -> dict[str, dict[str, Any]]:
    """``configs/seeds.yaml``: ``{name: {"source", "what", "set": {dotted: value or [values]}}}``,
    each ``set`` on top of the paper's recipe (:data:`dcgan.config.PAPER`)."""
    writeups = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    return {name: {**w, "set": {**PAPER, **w["set"]}} for name, w in writeups.items()}


def flat(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"train": {"epochs": 5}}`` -> ``{"train.epochs": 5}``."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def param_set(defaults: dict[str, Any], overrides: dict[str, Any],
              extra: dict[str, Any]) -> dict[str, Any]:
    """Every param: ``defaults`` (the params.yaml tree), then ``overrides``, then ``extra``.

    A list value is a grid: one experiment per value (queued). Unknown keys fail here, with
    the same line a stage would print.
    """
    params = flat(defaults)
    for key in (*overrides, *extra):
        if key not in params:
            raise ConfigError(f"{key}: unknown key; see params.yaml for the allowed keys")
    return {**params, **overrides, **extra}


def check(defaults_file: str | Path, params: dict[str, Any]) -> int:
    """Validate every experiment of the grid as a stage would; return how many there are."""
    grid = {k: v if isinstance(v, list) else [v] for k, v in params.items()}
    combos = list(itertools.product(*grid.values()))
    for values in combos:
        load_params(defaults_file, dict(zip(grid, values)))
    return len(combos)


def hydra_value(value: Any) -> str:
    """``value`` as DVC's ``-S`` parses it back (lists become sweeps: ``bce,mse``)."""
    if isinstance(value, list):
        return ",".join(hydra_value(v) for v in value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    text = str(value)
    if _BARE.fullmatch(text) and yaml.safe_load(text) == text:
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def set_args(params: dict[str, Any]) -> list[str]:
    """``["-S", "key=value", ...]`` for every param, in params.yaml's order."""
    return [arg for key, value in params.items() for arg in ("-S", f"{key}={hydra_value(value)}")]
