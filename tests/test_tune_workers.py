"""`dcgan tune` with several workers: two processes on one study run no trial twice and stop
at the budget; a killed worker, then the same command again, finishes the study; the same on
a real PostgreSQL server (its own cluster in a temp folder, started and stopped here), and
an `mlflow server` on that PostgreSQL receiving a training run and a study."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from helpers import REPO, TINY, make_prepared, stage_cmd, write_params
from test_tune import tune_args

optuna = pytest.importorskip("optuna")
pytestmark = pytest.mark.slow  # every test starts workers or servers

TUNE = [sys.executable, "-c", "import sys; from dcgan.cli import main; main(sys.argv[1:])"]
ENV = dict(os.environ, PYTHONPATH=str(REPO / "src"), OMP_NUM_THREADS="1")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


@pytest.fixture(scope="module")
def postgres():
    """A PostgreSQL cluster of our own in a temp folder, on a free port, as an unprivileged
    user (postgres refuses to run as root: under root, as `nobody`). Yields host:port."""
    bin_ = _pg_bin()
    if bin_ is None:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql; .ci/run does)")
    pytest.importorskip("psycopg2")
    root = Path(tempfile.mkdtemp(prefix="dcgan-pg-"))  # not under pytest's root-only tmp
    as_user = []
    if os.geteuid() == 0:
        shutil.chown(root, "nobody")
        as_user = ["runuser", "-u", "nobody", "--"]
    port = _free_port()
    run = lambda *cmd: subprocess.run([*as_user, *cmd], check=True, capture_output=True, cwd=root)  # noqa: E731
    run(str(bin_ / "initdb"), "-D", str(root / "data"), "-U", "postgres", "-A", "trust")
    run(str(bin_ / "pg_ctl"), "-D", str(root / "data"), "-l", str(root / "log"), "-w", "-o",
        f"-p {port} -k {root} -c listen_addresses=127.0.0.1", "start")
    try:
        yield f"127.0.0.1:{port}"
    finally:
        run(str(bin_ / "pg_ctl"), "-D", str(root / "data"), "-m", "fast", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


def new_database(server: str, name: str) -> str:
    """A fresh database ``name`` on the server at ``server`` (host:port); its SQLAlchemy URL
    (the driver named: SQLAlchemy 2.1's plain postgresql:// means psycopg 3)."""
    import psycopg2

    conn = psycopg2.connect(f"postgresql://postgres@{server}/postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    return f"postgresql+psycopg2://postgres@{server}/{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
def storage(request, tmp_path):
    """A study storage URL: a sqlite file, or a database on the PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'tune.db'}"
    return new_database(request.getfixturevalue("postgres"), f"t{abs(hash(tmp_path)) % 10**8}")


def _study(storage: str) -> optuna.Study:
    (name,) = optuna.study.get_all_study_names(storage)
    return optuna.load_study(study_name=name, storage=storage)


def test_two_workers_share_one_study_and_run_no_trial_twice(tmp_path, storage, mlflow_store):
    args = tune_args(tmp_path, "--losses", "bce", "--trials", "4", "--steps", "12",
                     storage=storage)
    env = dict(ENV, MLFLOW_TRACKING_URI=mlflow_store)
    procs = [subprocess.Popen(TUNE + args, env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outs]
    trials = _study(storage).get_trials()
    done = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(done) == 4  # the budget exactly, whoever ran them
    assert all(t.user_attrs.get("surplus") for t in trials if t not in done)  # refused, untrained
    assert len({t.user_attrs["worker"] for t in done}) == 2  # both workers ran trials
    for t in done:  # each trial in exactly one worker's output
        assert sum(f"trial {t.number} {t.state.name.lower()}" in out for out, _ in outs) == 1
    assert all("tune bce: 4 of 4 trials (" in out for out, _ in outs)
    assert not any("warning:" in err for _, err in outs), [err[-500:] for _, err in outs]
    import mlflow

    client = mlflow.MlflowClient(mlflow_store)
    runs = client.search_runs([client.get_experiment_by_name("dcgan-tune").experiment_id])
    (parent,) = [r for r in runs if r.data.tags["kind"] == "study"]  # one, shared by both
    assert sorted(int(r.data.tags["optuna.trial"]) for r in runs
                  if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id) == sorted(
        t.number for t in done)


def test_a_killed_worker_loses_only_its_trial_and_a_rerun_finishes(tmp_path, storage):
    args = tune_args(tmp_path, "--losses", "bce", "--trials", "3", "--steps", "60",
                     "--no-mlflow", storage=storage)
    proc = subprocess.Popen(TUNE + args, env=ENV, cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while True:  # kill it mid-trial: once a trial has reported an interval FD
        assert proc.poll() is None and time.monotonic() < deadline, "the worker ended first"
        names = optuna.study.get_all_study_names(storage)
        running = names and [t for t in _study(storage).get_trials(states=(
            optuna.trial.TrialState.RUNNING,)) if t.intermediate_values]
        if running:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    (killed,) = running
    rerun = subprocess.run(TUNE + args, env=ENV, cwd=tmp_path, capture_output=True, text=True,
                           timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    trials = _study(storage).get_trials()
    done = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(done) == 3 and "tune bce: 3 of 3 trials (" in rerun.stdout
    assert [t.number for t in trials if t.state.name == "FAIL"] == [killed.number]
    (retry,) = [t for t in done if optuna.storages.RetryHeartbeatStaleTrialCallback
                .retried_trial_number(t) == killed.number]
    assert retry.params == killed.params  # its params were queued again, not lost


def _mlflow_server(backend: str, artifacts: Path):
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1",
                             "--port", str(port), "--workers", "1", "--backend-store-uri",
                             backend, "--artifacts-destination", str(artifacts)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(f"{url}/health", timeout=2)
            return proc, url
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, "mlflow server did not start"
            time.sleep(0.5)


def test_an_mlflow_server_on_postgresql_receives_a_training_run_and_a_study(tmp_path, postgres):
    import mlflow

    backend = new_database(postgres, "mlflow")  # the team setup: both on one server
    study_db = new_database(postgres, "optuna")
    proc, url = _mlflow_server(backend, tmp_path / "artifacts")
    try:
        env = dict(ENV, MLFLOW_TRACKING_URI=url)
        prepared = make_prepared(tmp_path / "data", n=32)
        params = write_params(tmp_path / "run", TINY)
        train = subprocess.run(stage_cmd(tmp_path, params, prepared), env=env, cwd=tmp_path / "run",
                               capture_output=True, text=True)
        assert train.returncode == 0 and "warning" not in train.stderr, train.stderr
        tune = subprocess.run(TUNE + tune_args(tmp_path, "--losses", "bce", "--trials", "2",
                                               storage=study_db),
                              env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
        assert tune.returncode == 0 and "warning" not in tune.stderr, tune.stderr
        client = mlflow.MlflowClient(url)
        (run,) = client.search_runs([client.get_experiment_by_name("dcgan").experiment_id])
        assert run.info.status == "FINISHED" and "final.iterations" in run.data.metrics
        runs = client.search_runs([client.get_experiment_by_name("dcgan-tune").experiment_id])
        (parent,) = [r for r in runs if r.data.tags["kind"] == "study"]
        nested = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
        assert len(nested) == 2 and parent.info.status == "FINISHED"
        assert {a.path for a in client.list_artifacts(parent.info.run_id, "study")} >= {
            "study/tuning_curve.png", "study/tuned.yaml"}
        assert len(_study(study_db).get_trials()) == 2
    finally:
        proc.terminate()
        proc.wait(timeout=30)
