"""A real `mlflow server` on 127.0.0.1: a tiny training logs to it, and we read it back over HTTP."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from helpers import TINY, make_prepared, stage_cmd, write_params

pytest.importorskip("mlflow")
pytestmark = pytest.mark.slow  # every test starts a stage or a server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture
def server(tmp_path):
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1",
                             "--port", str(port), "--workers", "1", "--backend-store-uri",
                             f"sqlite:///{tmp_path / 'server.db'}"], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(f"{url}/health", timeout=2)
            break
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, "mlflow server did not start"
            time.sleep(0.5)
    yield url
    proc.terminate()
    proc.wait(timeout=30)


def test_training_logs_to_a_tracking_server(tmp_path, server):
    prepared = make_prepared(tmp_path / "data", n=32)
    params = write_params(tmp_path / "run", TINY)
    proc = subprocess.run(stage_cmd(tmp_path, params, prepared), env=dict(os.environ, MLFLOW_TRACKING_URI=server),
                          capture_output=True, text=True, cwd=tmp_path / "run")
    assert proc.returncode == 0 and "warning" not in proc.stderr, proc.stderr

    api = f"{server}/api/2.0/mlflow"
    exp = _get(f"{api}/experiments/get-by-name?experiment_name=dcgan")["experiment"]
    assert exp["artifact_location"].startswith("mlflow-artifacts:")  # the server's store
    request = urllib.request.Request(f"{api}/runs/search", method="POST",
                                     data=json.dumps({"experiment_ids": [exp["experiment_id"]]}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        (run,) = json.loads(response.read())["runs"]
    metrics = {m["key"]: m["value"] for m in run["data"]["metrics"]}
    assert run["info"]["status"] == "FINISHED" and "g_loss" in metrics and "final.iterations" in metrics
    files = _get(f"{api}/artifacts/list?run_id={run['info']['run_id']}&path=plots")["files"]
    assert {f["path"] for f in files} == {"plots/loss_epochs.csv", "plots/loss_iterations.csv"}
