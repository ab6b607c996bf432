"""The write-ups as experiments: ``configs/seeds.yaml`` on top of the committed params.

`dvc exp run -S key=value` edits the *workspace* params.yaml, and a finished experiment leaves
its params there; so a write-up's own overrides alone would inherit whatever the last
experiment set. Here every param gets a value: the committed default, then the write-up's,
then the caller's, written as one ``-S`` per key; ``dcgan writeup`` (:func:`run`) runs them,
printing the full set first.
"""

from __future__ import annotations

import argparse
import itertools
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from dcgan.config import PAPER, ConfigError, load_params, parse_overrides
from dcgan.errors import UserError
from dcgan.paths import repo_root

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


def committed_params(root: Path) -> str:
    """params.yaml as committed at HEAD."""
    proc = subprocess.run(["git", "show", "HEAD:params.yaml"], cwd=root, capture_output=True,
                          text=True)
    if proc.returncode != 0:
        raise UserError(f"cannot read the committed params.yaml in {root} "
                        f"({(proc.stderr.strip().splitlines() or ['git failed'])[0]}); "
                        "commit params.yaml first")
    return proc.stdout


def show(name: str, writeup: dict, params: dict, extra: dict, runs: int, queue: bool) -> None:
    """Print the write-up, every param it runs with (marking whose value it is) and the plan."""
    mark = {**{k: "  (write-up)" for k in writeup["set"]}, **{k: "  (yours)" for k in extra}}
    print(f"writeup {name}: {writeup['what']}")
    print(f"params: the committed params.yaml, then {name}'s overrides, then yours")
    for key, value in params.items():
        print(f"  {key}={hydra_value(value)}{mark.get(key, '')}")
    print(f"{'queueing' if queue else 'running'} {runs} experiment(s): dvc exp run"
          f"{' --queue' if queue else ''} with these {len(params)} -S overrides", flush=True)


def run(args: argparse.Namespace) -> None:
    """``dcgan writeup``: validate every experiment of the write-up, print it, run or queue it."""
    root = repo_root()
    writeups = load_writeups(root / args.seeds)
    if args.name not in writeups:
        raise UserError(f"{args.name}: not in {args.seeds}; one of {', '.join(writeups)}")
    committed, extra = committed_params(root), parse_overrides(args.extra)
    params = param_set(yaml.safe_load(committed), writeups[args.name]["set"], extra)
    with tempfile.TemporaryDirectory() as tmp:  # validate as the stages will, before DVC runs
        (Path(tmp) / "params.yaml").write_text(committed)
        runs = check(Path(tmp) / "params.yaml", params)
    queue = args.queue or runs > 1
    show(args.name, writeups[args.name], params, extra, runs, queue)
    cmd = [sys.executable, "-m", "dvc", "exp", "run", *(["--queue"] if queue else []),
           *set_args(params)]
    code = subprocess.run(cmd, cwd=root).returncode
    if code:
        raise UserError(f"dvc exp run failed (exit {code}); its output is above")
