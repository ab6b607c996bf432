"""MLflow tracking from the train stage: a real store, an unreachable one, a broken one,
and one MLflow run per training however its epochs change."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

from dcgan import checkpoint
from helpers import (PARAMS, TINY, kill_after_first_checkpoint, make_prepared, stage_cmd,
                     write_params)

mlflow = pytest.importorskip("mlflow")
pytestmark = pytest.mark.slow  # every test starts a stage or a server


def _run_stage(tmp_path, env_extra):
    prepared = make_prepared(tmp_path / "data", n=32)
    params = write_params(tmp_path, TINY)
    env = dict(os.environ, **env_extra)
    return subprocess.run(stage_cmd(tmp_path, params, prepared), env=env, capture_output=True, text=True, cwd=tmp_path)


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
    # the data set as an MLflow dataset input: the run list's Dataset column
    (trained_on,) = run.inputs.dataset_inputs
    assert trained_on.dataset.name == "idx (32 train, 1x28x28)" and len(trained_on.dataset.digest) == 8
    assert [tag.value for tag in trained_on.tags if tag.key == "mlflow.data.context"] == ["training"]
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


def _messages(stderr: str) -> list[str]:
    """stderr without the progress bars: what a user reads."""
    return [line for line in stderr.splitlines()
            if line.strip() and "%|" not in line and "it/s" not in line]


def test_unreachable_store_still_writes_outputs(tmp_path):
    uri = f"http://127.0.0.1:{_closed_port()}"
    proc = _run_stage(tmp_path, {"MLFLOW_TRACKING_URI": uri})  # our retry bounds, not MLflow's
    assert proc.returncode == 0, proc.stderr
    (line,) = _messages(proc.stderr)
    assert line.startswith(f"warning: MLflow at {uri} failed (Connection refused); not logged: "
                           "the whole run (params, metrics, grids, model)")
    assert line.endswith("start the tracking server or set MLFLOW_TRACKING_URI to one that answers "
                         "(unset, runs go to the local sqlite store)")
    assert (tmp_path / "out/generator.pt").is_file() and (tmp_path / "train.json").is_file()


def test_unreachable_server_gives_up_within_seconds(tmp_path, monkeypatch):
    """MLflow's own defaults (7 retries, exponential backoff) waited ~4 minutes per run."""
    from dcgan.config import load_params
    from dcgan.tracking import MlflowLogger
    from dcgan.tracking.store import HTTP_BOUNDS
    from helpers import REPO

    for name in HTTP_BOUNDS:
        monkeypatch.delenv(name, raising=False)
    uri = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    logger = MlflowLogger(load_params(PARAMS, TINY), {"dataset": "x"})
    began = time.monotonic()
    logger.start(tmp_path / "mlflow_run.json")
    logger.log_epoch(1, {"g_loss": 1.0}, None)
    elapsed = time.monotonic() - began
    assert elapsed < 10, f"gave up after {elapsed:.1f} s"
    assert f"MLflow at {uri} failed (Connection refused)" in logger.problem()
    for name, value in HTTP_BOUNDS.items():
        assert os.environ[name] == value


def test_two_runs_starting_together_on_a_new_store_are_both_logged(tmp_path):
    """What `dvc queue start -j 2` does: two stages open the same fresh sqlite store at once."""
    prepared = make_prepared(tmp_path / "data", n=32)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    procs = []
    for seed in (0, 1):
        folder = tmp_path / f"run{seed}"
        params = write_params(folder, {**TINY, "seed": seed, "train.epochs": 1})
        env = dict(os.environ, MLFLOW_TRACKING_URI=uri, OMP_NUM_THREADS="1")
        procs.append(subprocess.Popen(stage_cmd(folder, params, prepared), env=env, stderr=subprocess.PIPE, text=True))
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0 and "warning" not in err, err
    client = mlflow.MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("dcgan").experiment_id])
    assert sorted(r.info.run_name for r in runs) == ["bce-seed0", "bce-seed1"]


def _runs(uri: str) -> list:
    client = mlflow.MlflowClient(uri)
    exp = client.get_experiment_by_name("dcgan")
    runs = client.search_runs([exp.experiment_id], order_by=["attributes.start_time ASC"])
    return [(r, [m.step for m in client.get_metric_history(r.info.run_id, "g_loss")]) for r in runs]


def _train(tmp_path, prepared, uri, extra_args=(), **overrides):
    params = write_params(tmp_path / "params", {**TINY, **overrides})
    env = dict(os.environ, MLFLOW_TRACKING_URI=uri, OMP_NUM_THREADS="1")
    proc = subprocess.run([*stage_cmd(tmp_path, params, prepared), *extra_args], env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not _messages(proc.stderr), proc.stderr[-3000:]
    return proc.stdout


def test_epochs_raised_then_lowered_each_mlflow_run_holds_its_params_and_steps_once(tmp_path):
    """2 epochs, raised to 3, lowered to 1: three runs, each with the params it ran with.

    Raising used to reopen the 2-epoch run (its train.epochs param still said 2); lowering
    used to overwrite the longer run's checkpoint and leave its later grids in the outputs.
    """
    prepared = make_prepared(tmp_path / "data", n=32)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    _train(tmp_path, prepared, uri, **{"train.epochs": 2})
    assert "resuming" in _train(tmp_path, prepared, uri, **{"train.epochs": 3})
    _train(tmp_path, prepared, uri, **{"train.epochs": 1})
    (two, s2), (three, s3), (one, s1) = _runs(uri)
    assert [r.data.params["train.epochs"] for r in (two, three, one)] == ["2", "3", "1"]
    assert (s2, s3, s1) == ([1, 2], [1, 2, 3], [1])
    assert three.data.tags["dcgan.extends"] == two.info.run_id and "dcgan.extends" not in one.data.tags
    assert all(r.info.status == "FINISHED" for r in (two, three, one))
    client = mlflow.MlflowClient(uri)
    copied = {m.step: m.value for m in client.get_metric_history(three.info.run_id, "d_loss")}
    first = {m.step: m.value for m in client.get_metric_history(two.info.run_id, "d_loss")}
    assert copied[1] == first[1] and copied[2] == first[2]  # the history it continues, as logged
    images = {a.path for a in client.list_artifacts(three.info.run_id, "images")}
    assert len(images) >= 3  # the per-epoch grids of epochs 1-2 came along
    (folder,) = (tmp_path / "work").iterdir()
    assert checkpoint.load(folder / "last.pt")["epoch"] == 3  # the longer run, untouched
    assert sorted(p.name for p in (tmp_path / "out/grids").iterdir()) == ["epoch_001.png"]
    # The 3-epoch training again (outputs lost, say): its run is reopened, nothing repeats.
    _train(tmp_path, prepared, uri, **{"train.epochs": 3})
    assert [steps for _, steps in _runs(uri)] == [[1, 2], [1, 2, 3], [1]]


def test_killed_run_resumes_in_the_same_mlflow_run(tmp_path):
    prepared = make_prepared(tmp_path / "data", n=512)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    overrides = {**TINY, "model.ngf": 16, "model.ndf": 16, "train.epochs": 3}
    params = write_params(tmp_path / "params", overrides)
    env = dict(os.environ, MLFLOW_TRACKING_URI=uri, OMP_NUM_THREADS="1")
    kill_after_first_checkpoint(stage_cmd(tmp_path, params, prepared), env, tmp_path / "work")
    assert "resuming" in _train(tmp_path, prepared, uri, **{k: v for k, v in overrides.items()})
    ((run, steps),) = _runs(uri)
    assert steps == [1, 2, 3] and run.info.status == "FINISHED"
    assert run.data.params["train.epochs"] == "3" and "dcgan.extends" not in run.data.tags


def test_replaced_store_starts_a_new_run_with_the_whole_history(tmp_path):
    prepared = make_prepared(tmp_path / "data", n=32)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    _train(tmp_path, prepared, uri, **{"train.epochs": 1})
    (tmp_path / "mlflow.db").rename(tmp_path / "elsewhere.db")  # replaced by a fresh store
    out = _train(tmp_path, prepared, uri, **{"train.epochs": 2})
    assert "whose store was replaced; starting a new run" in out
    ((run, steps),) = _runs(uri)
    assert steps == [1, 2] and run.data.params["train.epochs"] == "2"


def test_a_new_run_for_an_old_checkpoint_holds_every_per_epoch_metric(tmp_path):
    """The periodic FD (periodic_fd_vs_train) of epochs trained before the store was replaced used to be
    missing: the checkpoint's history held only the losses."""
    from dcgan.classifier import DomainClassifier

    prepared = make_prepared(tmp_path / "data", n=32)
    kwargs = dict(nc=1, num_classes=10, width=4)
    checkpoint.save_model(tmp_path / "clf.pt", DomainClassifier(**kwargs), kwargs)
    uri, args = f"sqlite:///{tmp_path / 'mlflow.db'}", ["--classifier", str(tmp_path / "clf.pt")]
    every = {"train.eval_every": 1, "train.eval_samples": 16}
    _train(tmp_path, prepared, uri, args, **every, **{"train.epochs": 2})
    (tmp_path / "mlflow.db").rename(tmp_path / "elsewhere.db")  # replaced by a fresh store
    _train(tmp_path, prepared, uri, args, **every, **{"train.epochs": 3})
    ((run, steps),) = _runs(uri)
    client = mlflow.MlflowClient(uri)
    logged = {key: [m.step for m in client.get_metric_history(run.info.run_id, key)]
              for key in ("periodic_fd_vs_train", "d_loss", "g_spread", "images_per_second")}
    assert steps == [1, 2, 3] and all(v == [1, 2, 3] for v in logged.values()), logged


_CREATE = ("import sys, mlflow; mlflow.set_tracking_uri(f'sqlite:///{sys.argv[1]}'); "
           "mlflow.get_experiment_by_name('dcgan')")


def test_store_left_half_created_by_a_kill_is_moved_aside_and_recreated(tmp_path):
    """A SIGKILL while the first run created mlflow.db broke every later run ("table ...
    already exists") and they logged nothing, silently."""
    db, probe = tmp_path / "mlflow.db", tmp_path / "probe.db"
    for delay in (1.0, 1.5, 2.0, 0.7, 2.5, 3.0, 0.4):  # kill somewhere inside the migrations
        db.unlink(missing_ok=True)
        proc = subprocess.Popen([sys.executable, "-c", _CREATE, str(db)])
        while not db.exists() and proc.poll() is None:
            time.sleep(0.005)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if not db.exists():
            continue
        # Does MLflow itself still open it? The copy takes sqlite's journal along: without
        # it, a kill mid-transaction looks broken in the copy while sqlite would roll the
        # original back on open (the store is then fine, and nothing is to be repaired).
        for suffix in ("", "-journal", "-wal", "-shm"):
            side, copy = db.with_name(db.name + suffix), probe.with_name(probe.name + suffix)
            copy.unlink(missing_ok=True)
            if side.exists():
                shutil.copyfile(side, copy)
        opened = subprocess.run([sys.executable, "-c", _CREATE, str(probe)], capture_output=True,
                                text=True)
        if opened.returncode and "already exists" in opened.stderr:
            break
    else:
        pytest.skip("no kill left the store half-created")
    # The store as the kill left it, and as sqlite leaves it after rolling back the killed
    # transaction's hot journal on open (the probe's open did that to the copy; the stage's
    # open does the same to the store before it finds it broken).
    before, recovered = db.read_bytes(), probe.read_bytes()
    prepared = make_prepared(tmp_path / "data", n=32)
    out = _train(tmp_path, prepared, f"sqlite:///{db}")
    notes = [line for line in out.splitlines() if "half-created or broken" in line]
    # Usually the store is set aside; rarely sqlite's own journal recovery on open already
    # mends what the probe saw broken (seen once in a few dozen runs). Either way the run
    # must log in full: the old failure was a store that silently logged nothing.
    if notes:
        moved = tmp_path / notes[0].split("moved it to ")[1].split(" and created")[0]
        assert moved.read_bytes() in (before, recovered)  # set aside, not deleted or rebuilt
    ((run, steps),) = _runs(f"sqlite:///{db}")
    assert steps == [1, 2] and run.info.status == "FINISHED"


def test_read_only_store_is_one_line_naming_the_cause(tmp_path):
    subprocess.run([sys.executable, "-c", _CREATE, str(tmp_path / "ro.db")], check=True,
                   capture_output=True)
    uri = f"sqlite:///file:{tmp_path / 'ro.db'}?mode=ro&uri=true"  # read-only even for root
    proc = _run_stage(tmp_path, {"MLFLOW_TRACKING_URI": uri})
    assert proc.returncode == 0, proc.stderr
    lines = _messages(proc.stderr)
    assert len(lines) == 1, proc.stderr  # used to be ~100 lines of traceback
    line = lines[0]
    assert "(OperationalError: attempt to write a readonly database)" in line
    assert line.endswith(f"make {tmp_path / 'ro.db'} and its folder writable, or set "
                         "MLFLOW_TRACKING_URI to another store")


def test_a_store_deleted_mid_run_is_named_as_deleted_not_read_only(tmp_path, monkeypatch):
    """sqlite reports a database file unlinked under it as "readonly": the line used to tell
    the user to chmod a file that no longer exists."""
    from dcgan.config import load_params
    from dcgan.tracking import MlflowLogger

    db = tmp_path / "mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{db}")
    logger = MlflowLogger(load_params(PARAMS, TINY), {"dataset": "x"})
    logger.start(tmp_path / "mlflow_run.json")
    logger.log_epoch(1, {"g_loss": 1.0}, None)
    db.unlink()  # `rm mlflow.db` while training
    logger.log_epoch(2, {"g_loss": 0.9}, None)
    logger.end()
    problem = logger.problem()
    assert f"({db} was deleted or moved while the run was logging to it)" in problem
    assert problem.endswith("rerun to log to a new mlflow.db (this training's MLflow run went "
                            "with the old file)") and "writable" not in problem


def test_existing_experiment_gets_the_training_kind_unless_it_has_one(tmp_path, monkeypatch):
    """An experiment created before the tag (or by hand) is tagged; a user's own kind is kept."""
    from dcgan.config import load_params
    from dcgan.tracking import MlflowLogger

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(uri)
    plain = client.create_experiment("dcgan")
    mine = client.create_experiment("mine", tags={"mlflow.experimentKind": "genai_development"})
    params = load_params(PARAMS, TINY)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    for name in ("dcgan", "mine"):
        monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", name)
        logger = MlflowLogger(params, {"dataset": "idx:x"})
        logger.start(tmp_path / name / "mlflow_run.json")
        logger.end()
        assert logger.problem() is None
    assert client.get_experiment(plain).tags["mlflow.experimentKind"] == "custom_model_development"
    assert client.get_experiment(mine).tags["mlflow.experimentKind"] == "genai_development"
