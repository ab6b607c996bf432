"""The GPU check (benchmarks/gpu_check.sh) at its tiny size on CPU, so it cannot rot between
GPU runs: every section runs and none fails, on a Python that lacks mlflow, dvc and
torch-fidelity as the bare GPU machine does. Its numbers are never asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import REPO, make_idx_dir

sys.path.insert(0, str(REPO / "benchmarks"))
import gpu_check  # noqa: E402  (torch-free: the orchestration only)

SECTIONS = ["env", "cuda-tests", "train-eager", "train-default", "train-reduce-overhead",
            "quality", "metrics"]
BARE = ("mlflow", "dvc", "torch_fidelity", "kaggle")  # absent on the GPU machine


def _check(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, dict, str]:
    """Run the check in a Python where the BARE modules cannot be imported (a sitecustomize
    puts None in sys.modules, in every process it starts); returns the JSON and markdown."""
    block = tmp_path / "block"
    block.mkdir()
    (block / "sitecustomize.py").write_text(
        f"import sys\nfor name in {BARE!r}:\n    sys.modules[name] = None\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(block), str(REPO / "src")]),
           "OUT": str(tmp_path / "out"), "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(["bash", str(REPO / "benchmarks/gpu_check.sh"), "--tiny",
                           "--results", str(tmp_path / "results"), *args],
                          env=env, capture_output=True, text=True, timeout=900)
    (path,) = (tmp_path / "out").glob("gpu-check-*-tiny.json")
    markdown = path.with_suffix(".md").read_text()
    assert markdown == (tmp_path / "results" / path.with_suffix(".md").name).read_text()
    return proc, json.loads(path.read_text()), markdown


@pytest.mark.slow
def test_tiny_run_has_every_section_and_none_failed(tmp_path):
    idx = make_idx_dir(tmp_path / "mnist", n=400)
    proc, result, markdown = _check(tmp_path, "--data", str(idx))
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert result["order"] == SECTIONS
    assert {n: s["status"] for n, s in result["sections"].items()} == {n: "ok" for n in SECTIONS}
    assert "FAILED" not in markdown
    # the table comes last, so the tail of a GPU call's output holds it
    assert proc.stdout.rstrip().splitlines()[-1].startswith("| metrics | ok |")
    for section in SECTIONS:
        assert f"| {section} | ok |" in markdown

    env = {r["key"]: r["value"] for r in result["sections"]["env"]["rows"]}
    assert env["mlflow"] == env["dvc"] == env["torch-fidelity"] == "absent"  # really bare
    tests = result["sections"]["cuda-tests"]["summary"]
    assert tests["skipped"] >= 10 and not tests.get("failed") and not tests.get("error")

    rows = [r for s in SECTIONS[2:5] for r in result["sections"][s]["rows"]]
    assert {(r["set"], r["loss"], r["mode"]) for r in rows} >= {
        (s, loss, "eager") for s in ("28x28", "64x64") for loss in ("bce", "mse", "hinge", "wgan-gp")
    } | {("28x28", "bce", "default"), ("28x28", "bce", "reduce-overhead"),
         ("28x28", "bce", "reference loop"), ("64x64", "bce", "reference loop")}
    ours = [r for r in rows if r["mode"] != "reference loop"]
    assert all(r["images_per_s"] > 0 and r["ratio"] > 0 and r["full_epoch_s"] > 0 for r in ours)

    quality = result["sections"]["quality"]
    assert sorted((r["path"], r["seed"]) for r in quality["rows"]) == [
        (p, s) for p in ("fast", "reference") for s in range(3)]
    assert result["sections"]["metrics"]["rows"][0]["seconds"] > 0
    assert [t["target"] for t in result["targets"]][:4] == [
        t[0] for t in gpu_check.gpu_report.SPEED_TARGETS] + [
        "classifier metrics for 10k samples <= 10 s"]


@pytest.mark.slow
def test_a_failing_section_is_recorded_and_the_next_one_runs(tmp_path):
    (tmp_path / "empty").mkdir()
    proc, result, markdown = _check(tmp_path, "--only", "quality,metrics",
                                    "--data", str(tmp_path / "empty"))
    assert proc.returncode == 1
    quality = result["sections"]["quality"]
    assert quality["status"] == "FAILED"
    assert quality["error"].startswith("FileNotFoundError: ") and "--data" in quality["error"]
    assert result["sections"]["metrics"]["status"] == "ok"
    assert "| quality | FAILED | " in markdown and "| metrics | ok |" in markdown


def test_a_command_past_its_budget_is_killed(tmp_path, monkeypatch):
    monkeypatch.setattr(gpu_check, "GRACE_S", 0)
    start = time.monotonic()
    rc, _, tail = gpu_check._run([sys.executable, "-c", "print('started', flush=True); "
                                  "import time; time.sleep(60)"], 1.0, tmp_path / "log")
    assert rc is None and tail == "started" and time.monotonic() - start < 30


def test_budgets_scale_to_the_requested_total():
    b = gpu_check.BUDGETS  # env, then the rest, each may overrun by GRACE_S before its kill
    assert sum(b.values()) + 2 * gpu_check.GRACE_S < 8 * 60
    scaled = gpu_check.budgets(["metrics", "quality"], 50, tiny=False)
    assert scaled.keys() == {"metrics", "quality"} and sum(scaled.values()) == pytest.approx(50)
    assert scaled["quality"] / scaled["metrics"] == pytest.approx(b["quality"] / b["metrics"])
    assert gpu_check.budgets(["metrics"], None, tiny=True) == {"metrics": 4 * b["metrics"]}
