"""`compare`: loss variants from MLflow runs, mean ± std over seeds, the floor row, figures."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import REPO

mlflow = pytest.importorskip("mlflow")
pytestmark = pytest.mark.slow  # every test starts a stage or a server


def _run(client, exp_id, loss, seed, fd, dataset="idx:/data"):
    run = client.create_run(exp_id, tags={"loss": loss, "dataset": dataset})
    client.log_param(run.info.run_id, "seed", str(seed))
    for key, value in {"eval.generator.classifier.frechet_distance": fd,
                       "eval.generator.classifier.inception_score.mean": 5.0,
                       "eval.floor.classifier.frechet_distance": 0.5,
                       "eval.floor.classifier.inception_score.mean": 9.5}.items():
        client.log_metric(run.info.run_id, key, value)
    client.set_terminated(run.info.run_id)


def test_compare_table_groups_seeds_and_adds_the_floor(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(uri)
    exp_id = client.create_experiment("dcgan", artifact_location=(tmp_path / "art").as_uri())
    _run(client, exp_id, "bce", 0, 10.0)
    _run(client, exp_id, "bce", 1, 14.0)
    _run(client, exp_id, "mse", 0, 20.0)
    _run(client, exp_id, "hinge", 0, 1.0, dataset="mnist")  # another data set: left out
    out = tmp_path / "report"
    proc = subprocess.run([sys.executable, str(REPO / "stages/compare.py"), "--params",
                           str(REPO / "params.yaml"), "--dataset", "idx:/data", "--out", str(out)],
                          env=dict(os.environ, MLFLOW_TRACKING_URI=uri), capture_output=True,
                          text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    text = (out / "compare.md").read_text()
    assert "| bce | 0,1 | 5 | 12 ± 2.8 |" in text  # FD mean ± sample std over the two seeds
    assert "| mse | 0 | 5 | 20 |" in text and "hinge" not in text
    assert "| **real-data floor** | 0,1 | 9.5 | 0.5 |" in text
    assert (out / "losses.png").is_file()
    (compare_run,) = client.search_runs([exp_id], "tags.kind = 'compare'")
    assert compare_run.info.run_name == "compare idx:/data"


def test_compare_without_runs_is_one_clear_line(tmp_path):
    proc = subprocess.run([sys.executable, str(REPO / "stages/compare.py"), "--params",
                           str(REPO / "params.yaml"), "--out", str(tmp_path / "r")],
                          env=dict(os.environ, MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'x.db'}"),
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("error: no finished, evaluated runs")
    assert not (tmp_path / "r").exists()
