"""`dcgan compare` and `dcgan runs`: loss variants from MLflow runs, mean ± 95% t-interval over
seeds, one row per budget, the floor row, figures (tuned recipes and verdicts:
tests/test_compare_seeds.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import PARAMS, write_params

DCGAN = str(Path(sys.executable).parent / "dcgan")  # the installed console script

mlflow = pytest.importorskip("mlflow")
pytestmark = pytest.mark.slow  # every test starts a stage or a server


def _run(client, exp_id, loss, seed, fd, dataset="idx:/data", epochs=30, **params):
    from dcgan.config import flatten, load_params

    run = client.create_run(exp_id, tags={"loss": loss, "dataset": dataset})
    for key, value in {**flatten(load_params(PARAMS)), "seed": seed,
                       "train.epochs": epochs, "train.batch_size": 64, **params}.items():
        client.log_param(run.info.run_id, key, str(value))
    for key, value in {"final.iterations": 39 * epochs, "scores/FD": fd, "scores/IS": 5.0}.items():
        client.log_metric(run.info.run_id, key, value)
    client.log_table(run.info.run_id, {"row": ["generator", "floor"], "IS": [5.0, 9.5],
                                       "FD": [fd, 0.5], "copies %": [1.25, 0.5]},
                     "eval/scores.json")
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
    # FD mean ± the 95% t half-width over the two seeds (12.71 * 2.83 / √2), with the budget the
    # runs shared; shares in percent
    assert "| bce | 0,1 | 30 | 1170 | 64 | default | 5 | 12 ± 25 | 1.25% |" in text
    assert "| mse | 0 | 30 | 1170 | 64 | default | 5 | 20 | 1.25% |" in text and "hinge" not in text
    assert "| real-data floor | 0,1 |  |  |  |  | 9.5 | 0.5 | 0.50% |" in text
    # the terminal: an aligned table, not Markdown, at most 120 columns
    lines = proc.stdout.splitlines()
    assert not any(line.startswith("|") for line in lines) and max(map(len, lines)) <= 120
    assert lines[0].split() == ["loss", "seeds", "epochs", "G", "steps", "batch", "recipe", "IS",
                                "(clf)", "↑", "FD", "(clf)", "↓", "near-copies", "↓"]
    assert lines[2].split() == ["bce", "0,1", "30", "1170", "64", "default", "5", "12", "±",
                                "25", "1.25%"]
    assert "Mixed budgets" not in text
    assert not (out / "losses.png").exists() and "losses.png" not in text  # no loss CSVs logged
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
    _run(client, exp_id, "bce", 0, 10.0, dataset="mnist-5k")
    proc = subprocess.run([DCGAN, "compare", "--dataset", "mnist"],
                          env=dict(os.environ, MLFLOW_TRACKING_URI=uri), capture_output=True,
                          text=True, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().endswith("there are: --dataset mnist-5k (1 runs)")


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
    assert "| bce | 0 | 30 | 1170 | 64 | default | 5 | 10 | 1.25% |" in (
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
    assert "| bce | 0 | 30 | 1170 | 64 | default | 5 | 10 | 1.25% |" in text
    assert "| bce | 0 | 3 | 117 | 64 | default | 5 | 90 | 1.25% |" in text
    assert "| bce | 0 | 5 | 195 | 64 | lr_g=0.0002 ema=none | 5 | 50 | 1.25% |" in text
    assert "**Mixed budgets** (117, 195, 1170 G steps)" in text
    listed = subprocess.run([DCGAN, "runs", "--params", str(PARAMS)], env=env,
                            capture_output=True, text=True, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert max(map(len, lines)) <= 120 and lines[0].startswith("run id")
    rows = [line.split() for line in lines if " bce " in line]
    newest = [r for r in client.search_runs([exp_id], order_by=["attributes.start_time DESC"])
              if r.data.tags.get("kind") != "compare"][0]
    assert len(rows) == 3 and rows[0][0] == newest.info.run_id  # what runs:/<id>/ needs
    assert rows[0][2:8] == ["finished", "data", "bce", "0", "5", "195"] and rows[0][-2:] == ["5", "50"]


def test_losses_one_panel_per_loss_every_line_in_a_legend(tmp_path, monkeypatch):
    """A one-epoch run is one point per curve: only a marker shows it. Each loss has its own
    panel (their scales differ), every line (G and D) its legend entry, epochs whole ticks."""
    from dcgan import compare, figures

    drawn = []
    monkeypatch.setattr(figures, "save_figure", lambda fig, path: drawn.append(fig))
    csv = tmp_path / "loss_epochs.csv"
    csv.write_text("epoch,d_loss,g_loss\n1,1.3,0.7\n2,1.2,0.8\n")
    one = tmp_path / "one_epoch.csv"
    one.write_text("epoch,d_loss,g_loss\n1,-3.0,40.0\n")

    class Client:
        def download_artifacts(self, run_id, path, dest):
            if path.endswith(".csv"):
                return str(one if run_id == "w" else csv)
            raise OSError("no grid")

    def run(run_id, loss, seed):
        info = type("Info", (), {"run_id": run_id})
        data = type("Data", (), {"tags": {"loss": loss}, "params": {"seed": seed}})
        return type("Run", (), {"info": info, "data": data})

    runs = [run("a", "bce", "0"), run("b", "bce", "1"), run("w", "wgan-gp", "0")]
    compare.figures(Client(), runs, tmp_path, tmp_path / "scratch")
    bce, wgan = drawn[0].axes
    assert (bce.get_title(), wgan.get_title()) == ("bce", "wgan-gp")
    assert [t.get_text() for t in bce.get_legend().get_texts()] == [
        "G s0 e?", "D s0 e?", "G s1 e?", "D s1 e?"]
    assert [(len(line.get_xdata()), line.get_marker()) for line in wgan.lines] == [(1, "o"), (1, "s")]
    drawn[0].canvas.draw()
    ticks = [t for t in bce.get_xticks() if bce.get_xlim()[0] <= t <= bce.get_xlim()[1]]
    assert ticks and all(float(t).is_integer() for t in ticks)
