"""Every command in README.md and docs/ is checked: the walkthrough runs the ones that can run
here (docs/walkthrough.py, in CI), and this test checks every one of them statically, the
ones it cannot run included: each `dvc` command parses with DVC's own parser and its `-S`
params validate, each `dcgan` command parses, each script exists, each Python block compiles,
and a block that is not run says why. Each command that runs has one expectation of its output
(docs/expect.py), and those expectations fail on a wrong output."""

from __future__ import annotations

import re
import shlex
import sys

import pytest
import yaml

from helpers import PARAMS, REPO

sys.path.insert(0, str(REPO / "docs"))
from commands import PAGES, all_blocks  # noqa: E402

BLOCKS = [b for b in all_blocks() if b.language in ("bash", "python")]
COMMANDS = [(b, c) for b in BLOCKS if b.language == "bash" for c in b.commands()]
EXTERNAL = {"python3", "pip", "git", "mlflow", "torchrun", "for", "cat", "pytest", "export",
            "psql"}


def _id(item) -> str:
    block, command = item
    return f"{block.page}:{block.line}:{command[:40]}"


def _argv(command: str) -> list[str]:
    """The first command of a line (before ``&&``, ``|`` or a ``#`` comment), as argv,
    without the ``NAME=value`` environment settings before it."""
    words = shlex.split(command, comments=True)
    while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=\S*", words[0]):
        words = words[1:]
    for i, word in enumerate(words):
        if word in ("&&", "||", "|", ";"):
            return words[:i]
    return words


def _params_overrides(sets: list[str]) -> list[dict]:
    """Every experiment the ``-S`` values describe (a comma is a sweep: one per value)."""
    grid = [{}]
    for item in sets:
        key, _, value = item.partition("=")
        values = value.split(",") if "," in value and not value.startswith("'") else [value]
        grid = [{**g, key: yaml.safe_load(v)} for g in grid for v in values]
    return grid


def _parses(parse, argv: list[str]):
    """``parse(argv)``; ``--help`` exits 0, which counts as parsing."""
    try:
        return parse(argv)
    except SystemExit as done:
        assert done.code == 0 and "--help" in argv, f"{argv}: exit {done.code}"
        return None


@pytest.mark.parametrize("item", COMMANDS, ids=[_id(i) for i in COMMANDS])
def test_every_command_is_known_and_parses(item):
    block, command = item
    argv = _argv(command)
    assert argv, command
    assert "<" not in command or block.skip, f"{command}: a placeholder in a command that runs"
    if argv[0] == "dvc":
        from dvc.cli.parser import get_main_parser

        from dcgan.config import load_params

        args = _parses(get_main_parser().parse_args, argv[1:])
        for overrides in _params_overrides(getattr(args, "set_param", None) or []):
            load_params(PARAMS, overrides)  # raises ConfigError on a bad key/value
    elif argv[0] == "dcgan":
        from dcgan.cli import parser

        _parses(parser().parse_args, argv[1:])
    elif argv[0] == "python":
        assert (REPO / argv[1]).is_file(), f"{command}: no {argv[1]}"
    else:
        assert argv[0] in EXTERNAL, f"{command}: not a command the docs check knows"


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.language == "python"],
                         ids=lambda b: f"{b.page}:{b.line}")
def test_every_python_block_compiles(block):
    compile(block.text, f"{block.page}:{block.line}", "exec")


def test_every_page_is_linked_from_the_readme_and_has_no_placeholder():
    readme = (REPO / "README.md").read_text()
    for page in PAGES[1:]:
        assert f"]({page})" in readme, f"README does not link {page}"
    for page in PAGES:
        text = (REPO / page).read_text()
        assert "QUICK_RUN" not in text and "QUICK_EPOCHS" not in text, page
    assert len(readme.splitlines()) <= 150


def test_a_block_not_run_says_why_and_most_blocks_run():
    skipped = [b for b in BLOCKS if b.skip]
    assert all(len(b.skip) > 10 for b in skipped)
    assert len(skipped) < len(BLOCKS) / 2


def test_every_command_that_runs_has_one_expectation_of_its_output():
    """docs/expect.py says what each command is for; the walkthrough checks it."""
    from expect import expect_for

    for block in BLOCKS:
        if block.skip:
            continue
        for command in block.commands() if block.language == "bash" else [block.text]:
            assert len(expect_for(command)) == 1, f"{block.page}:{block.line}: {command[:60]}"


def _mlflow_db(repo, runs):
    """The three tables of MLflow's sqlite store that the compare check reads."""
    import sqlite3

    with sqlite3.connect(repo / "mlflow.db") as db:
        db.execute("CREATE TABLE runs (run_uuid, status, lifecycle_stage)")
        db.execute("CREATE TABLE tags (key, value, run_uuid)")
        db.execute("CREATE TABLE latest_metrics (key, value, run_uuid)")
        for run_id, loss in runs:
            db.execute("INSERT INTO runs VALUES (?, 'FINISHED', 'active')", (run_id,))
            db.executemany("INSERT INTO tags VALUES (?, ?, ?)",
                           [("loss", loss, run_id),
                            ("dataset", "idx:../shared/data/mnist-5k", run_id)])
            db.execute("INSERT INTO latest_metrics VALUES ('scores/FD', 0.4, ?)", (run_id,))


def test_the_walkthrough_fails_when_a_command_prints_the_wrong_thing(tmp_path):
    from expect import check

    exp_show = "dvc exp show --drop '.*' --keep 'Experiment|^loss$|^exp$|generator.json:(IS|FD)'"
    old = "  Experiment         exp   loss\n ─────\n  workspace    workspace   hinge\n"
    assert "no 'generator.json:IS' column" in check(exp_show, old, tmp_path)
    new = ("  Experiment   exp   metrics/eval/generator.json:IS   metrics/eval/generator.json:FD"
           "   loss\n")
    assert check(exp_show, new, tmp_path) is None

    _mlflow_db(tmp_path, [("a" * 32, "bce"), ("b" * 32, "mse")])
    (tmp_path / "reports/compare/mnist-5k").mkdir(parents=True)
    (tmp_path / "reports/compare/mnist-5k/compare.md").write_text("# table\n")
    end = "compare: 2 runs of idx:../shared/data/mnist-5k; mean ± std -> reports/compare.md\n"
    table = "loss  seeds  FD\n────  ─────  ──\nbce   0      0.4\n"
    assert "mse on mnist-5k are not in the table" in check("dcgan compare", table + end, tmp_path)
    assert check("dcgan compare", table + "mse   0      0.4\n" + end, tmp_path) is None
    markdown = "| loss | FD |\n|---|---|\n| bce | 0.4 |\n| mse | 0.4 |\n"
    wrong = check("dcgan compare  # a comment", "loss\n--\n" + markdown + end, tmp_path)
    assert "Markdown" in wrong

    runs = "run id  name\n──────  ────\n" + "a" * 32 + "  bce-seed0\n"
    assert check("dcgan runs", runs, tmp_path) is None
    assert "MLflow ids" in check("dcgan runs", runs.replace("a" * 32, "c" * 32), tmp_path)
    assert "wider than 120" in check("dcgan runs", runs + "a" * 32 + " " + "x" * 100 + "\n",
                                     tmp_path)

    sample = "sample: 100 image(s) from generator.pt (seed 7) -> reports/samples/grid.png"
    assert "not written" in check("dcgan sample -n 100 --seed 7", sample, tmp_path)
    assert "a path of this machine" in check(
        "dcgan --help", "usage: dcgan\n sample compare runs writeup of ../shared/seeds", tmp_path)
