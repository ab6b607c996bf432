"""Run a write-up exactly as configs/seeds.yaml says, on the committed params, from any workspace.

    python stages/writeup.py S002                        # dvc exp run with every param set
    python stages/writeup.py S004                        # a grid: queued, one experiment per loss
    python stages/writeup.py S000 --queue -S train.epochs=5 -S dataset=idx:../shared/data/mnist-5k

The defaults are `git show HEAD:params.yaml`, not the workspace's params.yaml (which the last
`dvc exp run` rewrote); then the write-up's overrides, then yours. Every param is passed as
its own -S, and the full set is printed before DVC starts.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from dcgan.config import parse_overrides
from dcgan.errors import UserError, run_stage
from dcgan.paths import repo_root
from dcgan.writeups import check, hydra_value, load_writeups, param_set, set_args


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", help="a write-up in configs/seeds.yaml, e.g. S002")
    parser.add_argument("--queue", action="store_true", help="queue instead of running now "
                        "(always for a grid); start with `dvc queue start`")
    parser.add_argument("-S", "--set", dest="extra", action="append", default=[],
                        metavar="KEY=VALUE", help="your own override, after the write-up's")
    parser.add_argument("--seeds", default="configs/seeds.yaml")
    args = parser.parse_args()
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


if __name__ == "__main__":
    run_stage(main)
