"""MLflow tracking from the train stage: a real store, and an unreachable one."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from conftest import REPO, TINY, make_prepared, write_params

mlflow = pytest.importorskip("mlflow")


def _run_stage(tmp_path, env_extra):
    prepared = make_prepared(tmp_path / "data", n=32)
    params = write_params(tmp_path, TINY)
    env = dict(os.environ, **env_extra)
    cmd = [sys.executable, str(REPO / "stages/train.py"), "--params", str(params), "--data",
           str(prepared), "--workdir", str(tmp_path / "work"), "--out", str(tmp_path / "out"),
           "--metrics", str(tmp_path / "train.json")]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=tmp_path)


def test_run_logged_with_params_metrics_images_model_and_tags(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = _run_stage(tmp_path, {"MLFLOW_TRACKING_URI": uri, "DVC_EXP_NAME": "lucky-lark",
                                 "DVC_EXP_BASELINE_REV": "abc123", "DVC_STAGE": "train"})
    assert proc.returncode == 0, proc.stderr
    assert "warning" not in proc.stderr
    client = mlflow.MlflowClient(uri)
    exp = client.get_experiment_by_name("dcgan")
    assert exp.artifact_location == (tmp_path / "mlartifacts").as_uri()  # beside mlflow.db
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"  # training view
    (run,) = client.search_runs([exp.experiment_id])
    assert run.info.status == "FINISHED" and run.info.run_name == "lucky-lark"
    assert run.data.params["loss"] == "bce" and run.data.params["train.epochs"] == "2"
    assert run.data.tags["loss"] == "bce" and run.data.tags["dataset"].startswith("idx:")
    assert run.data.tags["dvc.exp_name"] == "lucky-lark" and run.data.tags["dvc.stage"] == "train"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "g_loss")] == [1, 2]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"plots", "images"} <= artifacts
    (model,) = client.search_logged_models(experiment_ids=[exp.experiment_id])
    assert model.name == "generator" and model.source_run_id == run.info.run_id
    # The logged model is an exported graph (MLflow's "pt2"): it loads in a fresh interpreter
    # as a torch.fx module, not as dcgan code, and samples any batch size.
    check = ("import mlflow, torch; "
             f"mlflow.set_tracking_uri({uri!r}); "
             f"g = mlflow.pytorch.load_model('models:/{model.model_id}'); "
             "print(tuple(g(torch.randn(5, 16)).shape), type(g).__module__)")
    loaded = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True,
                            cwd=tmp_path)
    assert loaded.stdout.split() == ["(5,", "1,", "28,", "28)", "torch.fx.graph_module"], \
        loaded.stderr[-1500:]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_store_still_writes_outputs(tmp_path):
    uri = f"http://127.0.0.1:{_closed_port()}"
    proc = _run_stage(tmp_path, {"MLFLOW_TRACKING_URI": uri, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"})
    assert proc.returncode == 0, proc.stderr
    (line,) = [l for l in proc.stderr.splitlines() if l.startswith("warning:")]
    assert f"MLflow at {uri} failed" in line and "not logged: the whole run (params, metrics, grids, model)" in line
    assert (tmp_path / "out/generator.pt").is_file() and (tmp_path / "train.json").is_file()


def test_two_runs_starting_together_on_a_new_store_are_both_logged(tmp_path):
    """What `dvc queue start -j 2` does: two stages open the same fresh sqlite store at once."""
    prepared = make_prepared(tmp_path / "data", n=32)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    procs = []
    for seed in (0, 1):
        folder = tmp_path / f"run{seed}"
        params = write_params(folder, {**TINY, "seed": seed, "train.epochs": 1})
        cmd = [sys.executable, str(REPO / "stages/train.py"), "--params", str(params), "--data",
               str(prepared), "--workdir", str(folder / "work"), "--out", str(folder / "out"),
               "--metrics", str(folder / "train.json")]
        env = dict(os.environ, MLFLOW_TRACKING_URI=uri, OMP_NUM_THREADS="1")
        procs.append(subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True))
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0 and "warning" not in err, err
    client = mlflow.MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("dcgan").experiment_id])
    assert sorted(r.info.run_name for r in runs) == ["bce-seed0", "bce-seed1"]


def test_existing_experiment_gets_the_training_kind_unless_it_has_one(tmp_path, monkeypatch):
    """An experiment created before the tag (or by hand) is tagged; a user's own kind is kept."""
    from dcgan.config import load_params
    from dcgan.tracking import MlflowLogger

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(uri)
    plain = client.create_experiment("dcgan")
    mine = client.create_experiment("mine", tags={"mlflow.experimentKind": "genai_development"})
    params = load_params(REPO / "params.yaml", TINY)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    for name in ("dcgan", "mine"):
        monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", name)
        logger = MlflowLogger(tmp_path / name, params, {"dataset": "idx:x"})
        logger.start()
        logger.end()
        assert logger.problem() is None
    assert client.get_experiment(plain).tags["mlflow.experimentKind"] == "custom_model_development"
    assert client.get_experiment(mine).tags["mlflow.experimentKind"] == "genai_development"
