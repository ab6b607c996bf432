"""Run every command of README.md and docs/ as printed, in a fresh clone, offline.

    python docs/walkthrough.py                 # the committed HEAD, in a temp folder
    python docs/walkthrough.py --keep /tmp/w   # and keep the clone to look at

The clone sits alone in a temp folder (the docs train on the package's built-in samples, so
nothing beside the repo is needed), with its own MLflow store; the commands run in reading
order (README first, then the docs pages in the README's order), so each page's commands see
what the earlier ones left, as a reader following them would. Each command's output is then
checked for what the command is for (``docs/expect.py``: the exp-show line shows the IS and
FD columns, compare names every evaluated loss, sample wrote its grid...), in a terminal of
120 columns (``COLUMNS``). Blocks marked ``<!-- not run: <reason> -->`` are listed with
their reason and skipped (``tests/test_docs.py`` still checks them). The only setup is a
repo-local git identity when none is configured (``dvc exp run`` commits). A command that
fails, or prints the wrong thing, stops the walk with its output; the exit code is non-zero.
CI runs this after the tests (``.ci/run``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from commands import REPO, all_blocks
from expect import WIDTH, check

TIMEOUT_S = 1800  # one command; the longest, a quick run, took 10 minutes on 2 CPU cores


def _clone(into: Path) -> Path:
    """A fresh clone of HEAD at ``into/repo``, nothing beside it."""
    subprocess.run(["git", "clone", "-q", str(REPO), str(into / "repo")], check=True)
    repo = into / "repo"
    if subprocess.run(["git", "config", "user.email"], cwd=repo, capture_output=True).returncode:
        for key, value in (("user.email", "walkthrough@example.com"), ("user.name", "walkthrough")):
            subprocess.run(["git", "config", key, value], cwd=repo, check=True)
    return repo


def _run(command: str, repo: Path, env: dict[str, str], language: str) -> tuple[int, str, float]:
    argv = ["bash", "-c", command] if language == "bash" else [sys.executable, "-c", command]
    start = time.monotonic()
    try:
        proc = subprocess.run(argv, cwd=repo, env=env, capture_output=True, text=True,
                              timeout=TIMEOUT_S)
        return proc.returncode, proc.stdout + proc.stderr, time.monotonic() - start
    except subprocess.TimeoutExpired as err:
        return 124, f"timed out after {TIMEOUT_S} s\n{err.stdout or ''}", time.monotonic() - start


def walk(repo: Path) -> int:
    """Run the blocks; print one line per command; return the number of failures (0 or 1)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DVC_"))}
    env["COLUMNS"] = str(WIDTH)  # a reader's terminal: DVC's and our tables fit it
    for block in all_blocks():
        if block.language not in ("bash", "python"):
            continue
        where = f"{block.page}:{block.line}"
        if block.skip:
            print(f"skip  {where}: {block.skip}", flush=True)
            continue
        commands = block.commands() if block.language == "bash" else [block.text]
        for command in commands:
            code, output, seconds = _run(command, repo, env, block.language)
            wrong = f"exit code {code}" if code else check(command, output, repo)
            shown = command.splitlines()[0] + (" …" if "\n" in command else "")
            print(f"{'ok' if not wrong else 'FAIL':4}  {where}  {seconds:6.1f} s  {shown}",
                  flush=True)
            if wrong:
                print(f"{output[-6000:]}\n-> {wrong}", flush=True)
                return 1
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", type=Path, help="clone into this (empty) folder and keep it")
    args = parser.parse_args()
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        sys.exit(walk(_clone(args.keep)))
    with tempfile.TemporaryDirectory(prefix="walkthrough-") as tmp:
        sys.exit(walk(_clone(Path(tmp))))


if __name__ == "__main__":
    main()
