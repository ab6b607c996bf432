"""How long each DVC stage of a run takes, and how much of it is training: the quick run's table.

Copies this checkout (tracked and untracked-but-not-ignored files, as `git clone` plus your
edits would have them) into a temp folder, writes params.yaml there with the overrides, and
runs every stage's `cmd` from dvc.yaml in order as its own process (what `dvc repro` runs,
without DVC's own seconds), timing each. The train stage's row is split into its training
loop (metrics/train.json's ``wall_time_s``) and the rest (start-up, periodic evaluation,
grids, checkpoints, MLflow). Prints a markdown table; the README's quick run by default:

    python benchmarks/stage_times.py
    python benchmarks/stage_times.py --set train.epochs=3     # a shorter run's table

Pass ``OMP_NUM_THREADS`` in the environment to pin the stages' threads (they inherit it).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
# The README's quick run (tests/test_benchmark.py checks that they agree)
QUICK = ["dataset=mnist-5k", "loss=hinge", "train.batch_size=64", "train.epochs=30",
         "model.ngf=32", "model.ndf=16"]
ORDER = ["validate", "download", "preprocess", "classifier", "train", "evaluate", "report"]


def copy_checkout(dest: Path) -> Path:
    """The files git would give a clone of this checkout with its uncommitted edits."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           cwd=REPO, capture_output=True, text=True, check=True).stdout
    for rel in filter(None, files.split("\0")):
        if (REPO / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, dest / rel)
    return dest


def write_params(repo: Path, items: list[str]) -> None:
    """params.yaml with dotted ``key=value`` overrides (YAML values), like `dvc exp run -S`."""
    data = yaml.safe_load((repo / "params.yaml").read_text())
    for item in items:
        key, _, value = item.partition("=")
        *parents, leaf = key.split(".")
        node = data
        for part in parents:
            node = node[part]
        node[leaf] = yaml.safe_load(value)
    (repo / "params.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


def run_stages(repo: Path) -> dict[str, float]:
    """Each stage's seconds, running its dvc.yaml `cmd` in ``repo``; stops at a failure."""
    stages = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]
    env = dict(os.environ, MLFLOW_TRACKING_URI=f"sqlite:///{repo / 'mlflow.db'}",
               PYTHONPATH=str(repo / "src"))
    seconds = {}
    for name in ORDER:
        start = time.monotonic()
        proc = subprocess.run(shlex.split(stages[name]["cmd"]), cwd=repo, env=env,
                              capture_output=True, text=True)
        seconds[name] = time.monotonic() - start
        if proc.returncode:
            sys.exit(f"stage {name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        print(f"{name:10s} {seconds[name]:7.1f} s  {proc.stdout.strip().splitlines()[-1:]}",
              flush=True)
    return seconds


def table(seconds: dict[str, float], training: float) -> str:
    total = sum(seconds.values())
    rows = ["| stage | seconds | share |", "|---|---:|---:|"]
    for name, s in seconds.items():
        if name == "train":
            rows.append(f"| train: training loop | {training:.1f} | {training / total:.0%} |")
            rows.append(f"| train: the rest | {s - training:.1f} | {(s - training) / total:.0%} |")
        else:
            rows.append(f"| {name} | {s:.1f} | {s / total:.0%} |")
    rows.append(f"| **total** | **{total:.1f}** | training {training / total:.0%} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a params override on top of the quick run's (YAML value)")
    parser.add_argument("--keep", type=Path, help="run in this (empty) folder and keep it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="stage-times-") as tmp:
        repo = copy_checkout(args.keep or Path(tmp))
        write_params(repo, QUICK + args.set)
        print(f"params: {' '.join(QUICK + args.set)}; OMP_NUM_THREADS="
              f"{os.environ.get('OMP_NUM_THREADS', 'unset')}", flush=True)
        seconds = run_stages(repo)
        training = json.loads((repo / "data/train/details.json").read_text())["wall_time_s"]
        print(table(seconds, training))


if __name__ == "__main__":
    main()
