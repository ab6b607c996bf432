"""metrics/ holds headline numbers only (a table that fits a terminal); the details hold the rest."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dcgan import results
from helpers import REPO

# What Trainer.metrics() returns (keys as in src/dcgan/train.py), with wide values.
TRAIN = {"d_loss": 1.2345678901, "g_loss": -12.345678901, "d_real": 0.51234, "d_fake": 0.4321,
         "epochs": 100, "iterations": 46900, "wall_time_s": 12345.678, "images_per_second": 4863.2,
         "device": "cuda:0", "dtype": "bf16", "processes": 8, "best_epoch": 87,
         "best_periodic_fd_vs_train": 3.14159, "exp": "sworn-ghee"}


def _row(fd: float, kid: float) -> dict:
    return {"classifier": {"inception_score": {"mean": 9.87654321, "std": 0.1234},
                           "frechet_distance": fd, "kid": {"mean": kid, "std": 0.001},
                           "precision": 0.6123456, "recall": 0.0012345, "classes_covered": 10,
                           "class_histogram": {str(i): 1000 for i in range(10)}},
            "copies": {"pixels": {"share": 0.0123456, "threshold": 7.5}},
            "inception": {"inception_score_mean": 1.05, "fid": 123.4, "kid_mean": 0.1}}


# Wide values on purpose: a three-digit FD, a negative KID (the unbiased estimate can be).
EVAL = {"samples": 10000, "reference": "held-out split vs train",
        "generator": _row(123.456789, -0.000123456), "floor": _row(0.0123456, 0.0000123),
        "noise": _row(1234.56789, 0.987654),
        "best": {"epoch": 87, "score": 3.1, "rule": "lowest FD", **_row(3.14159, 0.00123)}}


def test_headlines_are_a_few_numbers_and_whose_they_are():
    assert results.headline("train", TRAIN) == {"epoch": 100, "d_loss": 1.235, "g_loss": -12.35,
                                                "exp": "sworn-ghee"}
    rows = results.headline("eval", EVAL)
    assert list(rows) == ["generator", "best", "floor", "noise"]
    assert rows["generator"] == {"IS": 9.877, "FD": 123.5, "precision": 0.6123,
                                 "recall": 0.001234, "copies": 0.01235, "exp": "workspace"}
    assert rows["best"]["epoch"] == 87 and "epoch" not in rows["floor"]
    for numbers in rows.values():
        assert all(type(v) in (int, float) for k, v in numbers.items() if k != "exp")
    with pytest.raises(ValueError, match="unknown kind"):
        results.headline("classifier", {})


def test_every_metrics_file_says_which_experiment_made_it(tmp_path):
    """A killed experiment's row can hold its baseline's files (DVC cleared only the stages
    that ran): each file's ``exp`` names who made it, so borrowed scores show as such."""
    results.write("train", TRAIN, tmp_path / "metrics/train.json", tmp_path / "details.json")
    results.write("eval", {**EVAL, "exp": "baseline-exp"}, tmp_path / "metrics/eval",
                  tmp_path / "eval.json")
    assert json.loads((tmp_path / "metrics/train.json").read_text())["exp"] == "sworn-ghee"
    for row in (tmp_path / "metrics/eval").iterdir():
        assert json.loads(row.read_text())["exp"] == "baseline-exp", row.name


def test_eval_without_best_checkpoint_has_three_rows(tmp_path):
    no_best = {k: v for k, v in EVAL.items() if k != "best"}
    results.write("eval", no_best, tmp_path / "metrics/eval", tmp_path / "data/eval/details.json")
    assert sorted(p.name for p in (tmp_path / "metrics/eval").iterdir()) == [
        "floor.json", "generator.json", "noise.json"]
    assert json.loads((tmp_path / "data/eval/details.json").read_text()) == no_best


def _git_dvc_repo(path: Path) -> Path:
    """A git + dvc repo holding this repo's dvc.yaml and params.yaml (no stage is run)."""
    path.mkdir()
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(REPO / name, path / name)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    for cmd in (["git", "init", "-q"], [sys.executable, "-m", "dvc", "init", "-q"]):
        subprocess.run(cmd, cwd=path, env=env, check=True)
    return path


@pytest.mark.slow
def test_dvc_metrics_show_fits_120_columns(tmp_path):
    """Every metrics file of dvc.yaml, written with wide values, in `dvc metrics show`."""
    repo = _git_dvc_repo(tmp_path / "repo")
    results.write("train", TRAIN, repo / "metrics/train.json", repo / "data/train/details.json")
    results.write("eval", EVAL, repo / "metrics/eval", repo / "data/eval/details.json")
    shown = subprocess.run([sys.executable, "-m", "dvc", "metrics", "show"], cwd=repo,
                           capture_output=True, text=True, check=True).stdout
    lines = shown.strip().splitlines()
    assert len(lines) == 1 + 5, shown  # header, train, four eval rows
    assert max(map(len, lines)) <= 120, shown
    header = lines[0].split()
    assert {"IS", "FD", "precision", "recall", "copies", "epoch", "d_loss",
            "g_loss", "exp"} == set(header[1:]), shown


def test_mlflow_charts_the_headline_and_tables_every_row_with_copies_in_percent():
    from dcgan.tracking.attach import score_metrics, scores_table

    result = {"generator": {"classifier": {"frechet_distance": 0.123456789,
                                           "inception_score": {"mean": 7.5}},
                            "copies": {"pixels": {"share": 0.0096}}},
              "floor": {"classifier": {"frechet_distance": 0.05, "inception_score": {"mean": 9.5}},
                        "copies": {"pixels": {"share": 0.01}}},
              "noise": {"classifier": {"frechet_distance": 9.0}}}
    assert score_metrics(result) == {"scores/IS": 7.5, "scores/FD": 0.123456789}
    assert scores_table(result) == {"row": ["generator", "floor", "noise"], "IS": [7.5, 9.5, None],
                                    "FD": [0.1235, 0.05, 9.0], "copies %": [0.96, 1.0, None]}


def test_a_run_evaluated_before_the_scores_table_reads_its_scores_from_its_metrics():
    from dcgan.tracking.attach import read_scores

    class Client:
        def download_artifacts(self, run_id, path, dest):
            raise OSError("no such artifact")

    metrics = {"scores/FD": 0.4, "scores/FD floor": 0.05, "scores/KID Inception no_ema": 0.01,
               "scores/copies": 0.0096, "g_loss": 1.0}
    run = type("Run", (), {"info": type("Info", (), {"run_id": "r"}),
                           "data": type("Data", (), {"metrics": metrics})})
    assert read_scores(Client(), run, None) == {"generator": {"FD": 0.4, "copies": 0.0096},
                                                "floor": {"FD": 0.05},
                                                "no_ema": {"KID Inception": 0.01}}
