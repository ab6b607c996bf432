"""`dcgan compare` and `dcgan runs`: loss variants from MLflow runs, mean ± std over seeds, one
row per budget, the floor row, figures."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import PARAMS, REPO, write_params

DCGAN = str(Path(sys.executable).parent / "dcgan")  # the installed console script

mlflow = pytest.importorskip("mlflow")
pytestmark = pytest.mark.slow  # every test starts a stage or a server


def _run(client, exp_id, loss, seed, fd, dataset="idx:/data", epochs=30, **params):
    from dcgan.config import flatten, load_params

    run = client.create_run(exp_id, tags={"loss": loss, "dataset": dataset})
    for key, value in {**flatten(load_params(PARAMS)), "seed": seed,
                       "train.epochs": epochs, "train.batch_size": 64, **params}.items():
        client.log_param(run.info.run_id, key, str(value))
    for key, value in {"final.iterations": 39 * epochs,
                       "scores/FD": fd, "scores/IS": 5.0, "scores/FD floor": 0.5,
                       "scores/IS floor": 9.5}.items():
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
    proc = subprocess.run([DCGAN, "compare", "--params",
                           str(PARAMS), "--dataset", "idx:/data", "--out", str(out)],
                          env=dict(os.environ, MLFLOW_TRACKING_URI=uri), capture_output=True,
                          text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    text = (out / "compare.md").read_text()
    # FD mean ± sample std over the two seeds, with the budget the runs shared
    assert "| bce | 0,1 | 30 | 1170 | 64 | default | 5 | 12 ± 2.8 |" in text
    assert "| bce | 0,1 | 30 | 1170 | 64 | default | 5 | 12 ± 2.8 |" in proc.stdout  # terminal too
    assert "| mse | 0 | 30 | 1170 | 64 | default | 5 | 20 |" in text and "hinge" not in text
    assert "| **real-data floor** | 0,1 |  |  |  |  | 9.5 | 0.5 |" in text
    assert "Mixed budgets" not in text
    assert (out / "losses.png").is_file()
    (compare_run,) = client.search_runs([exp_id], "tags.kind = 'compare'")
    assert compare_run.info.run_name == "compare idx:/data"


def test_compare_without_runs_is_one_clear_line(tmp_path):
    proc = subprocess.run([DCGAN, "compare", "--params",
                           str(PARAMS), "--out", str(tmp_path / "r")],
                          env=dict(os.environ, MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'x.db'}"),
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("error: no finished, evaluated runs")
    assert proc.stderr.strip().endswith("run `dvc repro` or `dvc exp run` first")
    assert not (tmp_path / "r").exists()


def test_no_runs_of_this_data_set_names_those_that_have_some(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(uri)
    exp_id = client.create_experiment("dcgan", artifact_location=(tmp_path / "art").as_uri())
    _run(client, exp_id, "bce", 0, 10.0, dataset="idx:../shared/data/mnist-5k")
    proc = subprocess.run([DCGAN, "compare", "--dataset", "mnist"],
                          env=dict(os.environ, MLFLOW_TRACKING_URI=uri), capture_output=True,
                          text=True, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().endswith("there are: --dataset idx:../shared/data/mnist-5k (1 runs)")


def test_default_data_set_from_params_however_its_path_is_spelled(tmp_path):
    """params.yaml says idx:<absolute path>; the runs were tagged with the relative spelling."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(uri)
    exp_id = client.create_experiment("dcgan", artifact_location=(tmp_path / "art").as_uri())
    _run(client, exp_id, "bce", 0, 10.0, dataset="idx:data/mnist-5k")  # relative to the root
    params = write_params(tmp_path / "p", {"dataset": f"idx:{tmp_path / 'data/mnist-5k'}"})
    proc = subprocess.run([DCGAN, "compare", "--params", str(params)],
                          env=dict(os.environ, MLFLOW_TRACKING_URI=uri), capture_output=True,
                          text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "| bce | 0 | 30 | 1170 | 64 | default | 5 | 10 |" in (
        tmp_path / "reports/compare/mnist-5k/compare.md").read_text()


def test_runs_of_other_budgets_and_recipes_get_rows_of_their_own_and_a_flag(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(uri)
    exp_id = client.create_experiment("dcgan", artifact_location=(tmp_path / "art").as_uri())
    _run(client, exp_id, "bce", 0, 10.0)
    _run(client, exp_id, "bce", 0, 90.0, epochs=3)  # a short run: not averaged with the long one
    _run(client, exp_id, "bce", 0, 50.0, epochs=5, **{"train.lr_g": 0.0002, "train.ema": "none"})
    env = dict(os.environ, MLFLOW_TRACKING_URI=uri)
    proc = subprocess.run([DCGAN, "compare", "--dataset", "idx:/data", "--out", str(tmp_path / "r"),
                           "--params", str(PARAMS)],
                          env=env, capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "r/compare.md").read_text()
    assert "| bce | 0 | 30 | 1170 | 64 | default | 5 | 10 |" in text
    assert "| bce | 0 | 3 | 117 | 64 | default | 5 | 90 |" in text
    assert "| bce | 0 | 5 | 195 | 64 | lr_g=0.0002 ema=none | 5 | 50 |" in text
    assert "**Mixed budgets** (117, 195, 1170 G steps)" in text
    listed = subprocess.run([DCGAN, "runs", "--params", str(PARAMS)], env=env,
                            capture_output=True, text=True, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    rows = [line for line in listed.stdout.splitlines() if line.startswith("| ") and "bce" in line]
    assert len(rows) == 3 and "| finished | data | bce | 0 | 5 | 195 | 64 | lr_g=0.0002 ema=none | 5 | 50 |" in rows[0]


def test_losses_are_drawn_with_markers(tmp_path, monkeypatch):
    """A one-epoch run is one point per curve: only a marker shows it."""
    from dcgan import compare

    drawn = []
    monkeypatch.setattr(compare, "save_figure", lambda fig, path: drawn.append(fig))
    csv = tmp_path / "loss_epochs.csv"
    csv.write_text("epoch,d_loss,g_loss\n1,1.3,0.7\n")

    class Client:
        def download_artifacts(self, run_id, path, dest):
            if path.endswith(".csv"):
                return str(csv)
            raise OSError("no grid")

    class Run:
        info = type("Info", (), {"run_id": "r"})
        data = type("Data", (), {"tags": {"loss": "bce"}, "params": {"seed": "0"}})

    compare.figures(Client(), [Run()], tmp_path, tmp_path / "scratch")
    (ax,) = drawn[0].axes
    assert [(len(l.get_xdata()), l.get_marker()) for l in ax.lines] == [(1, "o"), (1, "s")]
