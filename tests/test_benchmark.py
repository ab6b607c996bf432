"""The benchmark script's smoke run (the numbers themselves are read from its table, never asserted)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys

import pytest

from helpers import PARAMS, REPO
from dcgan.config import load_params


def test_every_recipe_has_one_name_and_valid_params():
    """A repeated name in RECIPES silently replaces an earlier round's recipe (round 5's
    lr5e-4 did round 1's), so the rows NOTES quotes could no longer be rerun by name."""
    tree = ast.parse((REPO / "benchmarks/recipes.py").read_text())
    (literal,) = [node.value for node in tree.body if isinstance(node, ast.Assign)
                  and any(getattr(t, "id", None) == "RECIPES" for t in node.targets)]
    names = [key.value for key in literal.keys]
    assert len(names) == len(set(names)), sorted({n for n in names if names.count(n) > 1})
    sys.path.insert(0, str(REPO / "benchmarks"))
    from recipes import RECIPES  # noqa: E402
    for name, overrides in RECIPES.items():
        load_params(PARAMS, overrides)  # raises on a key or value params.yaml no longer takes


def test_a_mistyped_set_is_one_usage_error():
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks/step_cost.py"),
                           "--set", "model.ngf32"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].endswith(
        "override 'model.ngf32': expected KEY=VALUE, e.g. train.epochs=3")


@pytest.mark.slow
def test_benchmark_smoke_run_writes_its_table_and_json(tmp_path):
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks/bench.py"), "--scale", "0.004",
                           "--epochs", "1", "--batch", "64", "--device", "cpu", "--out", str(tmp_path),
                           "--set", "train.channels_last=false"],
                          capture_output=True, text=True, check=True)
    assert "ours/ref" in proc.stdout
    (result,) = [json.loads(p.read_text()) for p in tmp_path.glob("cpu-*.json")]
    assert [r["set"] for r in result["training"]] == ["28x28", "64x64"]
    for row in result["training"]:
        assert row["ours_images_per_s"] > 0 and row["reference_images_per_s"] > 0
    assert result["evaluation"]["seconds"] > 0 and result["peak_gpu_memory_gib"] is None
    assert result["overrides"] == {"train.channels_last": False}
    # both loops train the write-ups' DCGAN, whatever params.yaml's default depth and R1
    assert result["networks"]["model.extra_layers"] == 0 and result["networks"]["train.r1"] == 0


@pytest.mark.slow
def test_recipe_benchmark_smoke_run(tmp_path):
    """benchmarks/recipes.py at a tiny size on the real mnist-5k sample: one row per recipe
    and loss, plus the real-data floor, in the table and the JSON."""
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks/recipes.py"), "--tiny",
                           "--steps", "10", "--recipes", "baseline,ema", "--losses", "bce,hinge",
                           "--out", str(tmp_path)], capture_output=True, text=True, check=True)
    assert "recipe | loss" in proc.stdout
    (result,) = [json.loads(p.read_text()) for p in tmp_path.glob("recipes-cpu-*.json")]
    rows = result["rows"]
    assert [(r["recipe"], r["loss"]) for r in rows[1:]] == [
        ("baseline", "bce"), ("baseline", "hinge"), ("ema", "bce"), ("ema", "hinge")]
    assert rows[0]["recipe"].startswith("floor") and all(r["G_steps"] >= 10 for r in rows[1:])
    for row in rows:
        assert 1.0 <= row["IS"] <= 10.0 and row["FD"] >= 0 and sum(row["counts"]) == 2500


def test_stage_times_runs_the_readmes_quick_run():
    """benchmarks/stage_times.py's default is the README's quick run, flag for flag."""
    import re
    import shlex

    tree = ast.parse((REPO / "benchmarks/stage_times.py").read_text())
    quick = next(ast.literal_eval(node.value) for node in tree.body
                 if isinstance(node, ast.Assign) and node.targets[0].id == "QUICK")
    readme = (REPO / "README.md").read_text()
    (command,) = re.findall(r"^dvc exp run -S dataset=mnist-5k .*$", readme, re.M)
    words = shlex.split(command)
    assert [words[i + 1] for i, w in enumerate(words) if w == "-S"] == quick
