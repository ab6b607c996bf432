"""What each documented command is for, checked on what it printed and left behind.

``docs/walkthrough.py`` runs every command of the docs and then :func:`check`s it: a command
that exits 0 but prints the wrong thing (a score column that is not there, a comparison that
leaves a loss out, a sample command that wrote no file) fails the walk. Each :class:`Expect`
matches commands by a regular expression on the command line; ``tests/test_docs.py`` asserts
that every command the walkthrough runs matches exactly one, and feeds each check a wrong
output to see it fail.
"""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import yaml

from dcgan.writeups import flat

WIDTH = 120  # the terminal the walkthrough gives commands (COLUMNS): what a reader has


@dataclass(frozen=True)
class Expect:
    """Commands matching ``pattern`` must satisfy ``check(command, output, repo)``, which
    returns what is wrong (None when right); ``what`` says what the command is for."""

    pattern: str
    what: str
    check: Callable[[str, str, Path], str | None]


def _sets(command: str) -> dict[str, str]:
    """The ``-S key=value`` overrides of a command."""
    return dict(m.groups() for m in re.finditer(r"-S\s+([\w.]+)=(\S+)", command))


def _experiment_ran(command: str, output: str, repo: Path) -> str | None:
    if "Ran experiment" not in output:
        return "no 'Ran experiment(s)' line"
    params = flat(yaml.safe_load((repo / "params.yaml").read_text()))
    for key, value in _sets(command).items():
        if str(params.get(key)) != str(yaml.safe_load(value)):
            return f"params.yaml's {key} is {params.get(key)!r}, not the experiment's {value}"
    scores = repo / "metrics/eval/generator.json"
    if not scores.is_file() or not {"IS", "FD"} <= set(json.loads(scores.read_text())):
        return f"{scores} holds no IS and FD"
    return None


def _metrics_show(command: str, output: str, repo: Path) -> str | None:
    for needed in ("metrics/eval/generator.json", "metrics/train.json", "FD", "IS", "copies"):
        if needed not in output:
            return f"no {needed!r} in the table"
    return None


def _sample_wrote(command: str, output: str, repo: Path) -> str | None:
    from PIL import Image

    grid = repo / "reports/samples/grid.png"
    if f"-> {Path('reports/samples/grid.png')}" not in output or not grid.is_file():
        return f"{grid} not written"
    count = int(re.search(r"-n\s+(\d+)", command).group(1)) if "-n" in command else 64
    side = int(count ** 0.5)
    with Image.open(grid) as image:  # torchvision's grid: 2-pixel borders around each image
        if image.width < side * 28:
            return f"{grid} is {image.width} px wide, not a grid of {count} images"
    return None


def _exp_show_scores(command: str, output: str, repo: Path) -> str | None:
    header = next((line for line in output.splitlines() if "Experiment" in line), "")
    asked = ["loss"] if "^loss$" in command else []
    asked += ["train.json:exp"] if "train.json:exp" in command else []
    for column in ("generator.json:IS", "generator.json:FD", *asked):
        if column not in header:
            return f"no {column!r} column in the header {header.strip()!r}"
    return None


def _dvc_diff(command: str, output: str, repo: Path) -> str | None:
    if "Path" not in output or ("metrics" in command and "generator.json" not in output):
        return "no table of changes"
    return None


def _evaluated_losses(repo: Path, dataset: str) -> set[str]:
    """The losses of the finished, evaluated training runs of ``dataset`` (a short name) in
    the repo's MLflow store, read with sqlite: not with the code under test."""
    with sqlite3.connect(repo / "mlflow.db") as db:
        rows = db.execute(
            "SELECT loss.value, data.value FROM runs "
            "JOIN tags loss ON loss.run_uuid = runs.run_uuid AND loss.key = 'loss' "
            "JOIN tags data ON data.run_uuid = runs.run_uuid AND data.key = 'dataset' "
            "JOIN latest_metrics m ON m.run_uuid = runs.run_uuid AND m.key = 'scores/FD' "
            "WHERE runs.status = 'FINISHED' AND runs.lifecycle_stage = 'active'").fetchall()
    return {loss for loss, spec in rows if Path(spec.partition(":")[2] or spec).name == dataset}


def _compare(command: str, output: str, repo: Path) -> str | None:
    if problem := _fits(command, output, repo):
        return problem
    found = re.search(r"compare: (\d+) runs of (\S+?);", output)
    if not found:
        return "no 'compare: N runs of <data set>' line"
    dataset = Path(found.group(2).partition(":")[2] or found.group(2)).name
    rows = {line.split()[0] for line in output.splitlines()[2:] if line.strip()}
    missing = _evaluated_losses(repo, dataset) - rows
    if missing:
        return f"evaluated runs of {', '.join(sorted(missing))} on {dataset} are not in the table"
    if not (repo / f"reports/compare/{dataset}/compare.md").is_file():
        return f"reports/compare/{dataset}/compare.md not written"
    return None


def _runs(command: str, output: str, repo: Path) -> str | None:
    lines = output.splitlines()
    if not lines or not lines[0].startswith("run id"):
        return "no 'run id' column first"
    ids = [line.split()[0] for line in lines[2:] if re.match(r"[0-9a-f]{32} ", line)]
    with sqlite3.connect(repo / "mlflow.db") as db:
        known = {row[0] for row in db.execute("SELECT run_uuid FROM runs")}
    if not ids or not set(ids) <= known:
        return "the rows do not start with the runs' MLflow ids"
    return _fits(command, output, repo)


def _fits(command: str, output: str, repo: Path) -> str | None:
    wide = [line for line in output.splitlines() if len(line) > WIDTH]
    if wide:
        return f"{len(wide)} line(s) wider than {WIDTH} columns: {wide[0][:60]!r}…"
    if any(line.startswith("|") for line in output.splitlines()):
        return "Markdown source on the terminal"
    return None


def _help(command: str, output: str, repo: Path) -> str | None:
    if "usage:" not in output:
        return "no usage line"
    if command.startswith("dcgan --help"):
        missing = [c for c in ("sample", "compare", "runs", "writeup") if c not in output]
        if missing or "../shared" in output:
            return f"commands missing ({missing}) or a path of this machine in the help"
    return None


def _contains(*needles: str) -> Callable[[str, str, Path], str | None]:
    def check(command: str, output: str, repo: Path) -> str | None:
        missing = [n for n in needles if n not in output]
        return f"no {missing[0]!r} in the output" if missing else None
    return check


def _record(command: str, output: str, repo: Path) -> str | None:
    try:
        record = json.loads(output)
    except ValueError:
        return "not JSON"
    return None if {"run_id", "uri", "epochs"} <= set(record) else f"keys {sorted(record)}"


def _plots(command: str, output: str, repo: Path) -> str | None:
    return None if (repo / "dvc_plots/index.html").is_file() else "dvc_plots/index.html not written"


def _recipes(command: str, output: str, repo: Path) -> str | None:
    out = Path(re.search(r"--out\s+(\S+)", command).group(1))
    return None if "default" in output and list(out.glob("*")) else f"no 'default' row or {out}"


def _tuned(command: str, output: str, repo: Path) -> str | None:
    """Every loss asked for finished its trials, with a best trial and a tuned file entry."""
    asked = re.search(r"--losses\s+(\S+)", command)
    trials = re.search(r"--trials\s+(\d+)", command)
    dataset = re.search(r"--dataset\s+(\S+)", command).group(1)
    tuned_file = repo / f"configs/tuned/{Path(dataset.partition(':')[2] or dataset).name}.yaml"
    tuned = yaml.safe_load(tuned_file.read_text()) if tuned_file.is_file() else {}
    for loss in asked.group(1).split(",") if asked else ("bce", "mse", "hinge", "wgan-gp"):
        n = trials.group(1) if trials else "16"
        if not re.search(rf"tune {re.escape(loss)}: {n} of {n} trials .*; best trial", output):
            return f"no 'tune {loss}: {n} of {n} trials ...; best trial' line"
        if loss not in tuned.get("losses", {}):
            return f"{tuned_file} has no entry for {loss}"
    return None


EXPECTS = [
    Expect(r"^dvc exp run (?!.*--queue)", "runs an experiment with those params; it is scored",
           _experiment_ran),
    Expect(r"^dcgan writeup \S+ (?!.*--queue)", "runs the write-up as an experiment, scored",
           _contains("Ran experiment", "params: the committed params.yaml")),
    Expect(r"^dvc metrics show", "the headline scores of every row and the training numbers",
           _metrics_show),
    Expect(r"^dvc exp show", "the experiments with their IS and FD (and the columns asked for)",
           _exp_show_scores),
    Expect(r"^dvc (metrics|exp) diff", "what changed, metric by metric", _dvc_diff),
    Expect(r"^dvc plots show", "the plots page", _plots),
    Expect(r"^dvc queue status", "the queue's tasks and workers", _contains("Worker status")),
    Expect(r"^dcgan sample", "a grid of the asked number of images", _sample_wrote),
    Expect(r"^dcgan compare", "every evaluated loss side by side, as a table", _compare),
    Expect(r"^dcgan runs", "every training run with its MLflow run id, as a table", _runs),
    Expect(r"--help$", "the command's usage", _help),
    Expect(r"^cat data/train/mlflow_run.json", "which MLflow run the training logged to", _record),
    Expect(r"^pytest", "the tests pass", _contains(" passed")),
    Expect(r"^python benchmarks/recipes.py --tiny", "a recipe round's table", _recipes),
    Expect(r"^dcgan tune (?!.*--help)", "each loss's trials, its best trial and the tuned file",
           _tuned),
    Expect(r"^cat configs/tuned/", "the tuned params, with their trial budget",
           _contains("trials", "params", "budget")),
    Expect(r"^from dcgan.config import load_params\n(.|\n)*Session", "a run trained in code",
           _contains(" G steps")),
]


def _bare(command: str) -> str:
    """A shell line without its trailing comment (a Python block as it is)."""
    return command if "\n" in command else re.sub(r"\s+#.*$", "", command).strip()


def expect_for(command: str) -> list[Expect]:
    """The expectations a command matches (exactly one for every command that runs)."""
    return [e for e in EXPECTS if re.search(e.pattern, _bare(command))]


def check(command: str, output: str, repo: Path) -> str | None:
    """What is wrong with a command's output, or None; a command with no expectation is
    reported too (a new command needs one)."""
    matched = expect_for(command)
    if len(matched) != 1:
        return f"{len(matched)} expectations match this command in docs/expect.py"
    problem = matched[0].check(_bare(command), output, repo)
    return f"{matched[0].what}: {problem}" if problem else None
