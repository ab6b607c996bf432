"""Every write-up in ../shared/seeds is a valid, documented config of ours."""

from __future__ import annotations

import itertools

import pytest
import yaml

from dcgan.config import PAPER, load_params
from dcgan.writeups import load_writeups
from helpers import PARAMS, REPO

SEEDS = yaml.safe_load((REPO / "configs/seeds.yaml").read_text())  # each write-up's own keys


def _sets(overrides: dict) -> str:
    def text(v):
        return "null" if v is None else str(v)
    return " ".join(f"{k}={','.join(map(text, v)) if isinstance(v, list) else text(v)}"
                    for k, v in overrides.items())


WRITEUPS_DOC = REPO / "docs" / "writeups.md"


def readme_row(name: str, overrides: dict) -> str:
    """The docs' write-up table row: the command, then (after the `what`) the overrides."""
    return f"| `dcgan writeup {name}` | {SEEDS[name]['what']} | {_sets(overrides)} |"


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_seed_config_validates_and_is_in_the_readme(name):
    overrides = load_writeups(REPO / "configs/seeds.yaml")[name]["set"]  # the paper's, then its own
    assert overrides == {**PAPER, **SEEDS[name]["set"]}
    lists = {k: v if isinstance(v, list) else [v] for k, v in overrides.items()}
    for values in itertools.product(*lists.values()):  # every experiment of the grid
        load_params(PARAMS, dict(zip(lists, values)))
    assert readme_row(name, SEEDS[name]["set"]) in WRITEUPS_DOC.read_text()


def test_the_papers_recipe_under_every_write_up_is_in_the_docs():
    assert f"`{_sets(PAPER)}`" in WRITEUPS_DOC.read_text()


def test_every_shared_write_up_has_a_config():
    shared = REPO.parent / "shared" / "seeds"
    if not shared.is_dir():
        pytest.skip(f"{shared} absent (the write-ups sit beside the repo)")
    assert sorted(p.name for p in shared.glob("*.md")) == sorted(s["source"] for s in SEEDS.values())
