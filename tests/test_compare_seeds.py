"""`dcgan compare` over seeds: each row's recipe source (default, or tuned by `dcgan tune`),
the mean with its 95% t-interval, and one verdict line per pair of losses."""

from __future__ import annotations

import os
import subprocess

import pytest
import yaml

from helpers import PARAMS
from test_compare import DCGAN, _run

mlflow = pytest.importorskip("mlflow")


def test_interval_and_verdict_wording():
    from dcgan.spread import cell, interval, verdict

    mean, half = interval([1.0, 2.0, 3.0])  # s = 1, t(0.975, 2) = 4.303
    assert mean == 2.0 and half == pytest.approx(4.303 / 3 ** 0.5, rel=1e-3)
    assert cell([1.0, 2.0, 3.0]) == "2 ± 2.5" and cell([0.5, 0.5]) == "0.5" and cell([]) == "–"
    apart = verdict("bce", [0.30, 0.31, 0.32], "mse", [0.60, 0.62, 0.61], "FD")
    assert apart.startswith("bce vs mse: distinguishable at this budget, bce better (FD 0.31 vs")
    close = verdict("bce", [0.30, 0.40, 0.35], "hinge", [0.33, 0.38, 0.31], "FD")
    assert close.startswith("bce vs hinge: not distinguishable at this budget (FD 0.35 vs 0.34")
    assert "needs 2 or more seeds" in verdict("bce", [0.3], "mse", [0.4, 0.5], "FD")


@pytest.mark.slow
def test_compare_names_tuned_recipes_and_says_which_losses_differ(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(uri)
    exp_id = client.create_experiment("dcgan", artifact_location=(tmp_path / "art").as_uri())
    tuned = {"train.lr_g": 0.0004130399570052625, "train.ema": "none", "model.ndf": 16}
    (tmp_path / "configs" / "tuned").mkdir(parents=True)
    (tmp_path / "configs" / "tuned" / "data.yaml").write_text(yaml.safe_dump({
        "dataset": "idx:/data", "losses": {"bce": {
            "params": tuned, "trials": {"budget": 16, "complete": 11, "pruned": 5},
            "budget": {"g_steps": 2000, "batch": 64}}}}))
    for seed, fd in enumerate((0.30, 0.31, 0.32)):  # bce tuned: clearly lower FD
        _run(client, exp_id, "bce", seed, fd, **tuned)
    for seed, fd in enumerate((0.60, 0.62, 0.61)):  # mse and hinge at their defaults
        _run(client, exp_id, "mse", seed, fd)
    for seed, fd in enumerate((0.58, 0.66, 0.60)):
        _run(client, exp_id, "hinge", seed, fd)
    proc = subprocess.run([DCGAN, "compare", "--params", str(PARAMS), "--dataset", "idx:/data",
                           "--out", str(tmp_path / "report")],
                          env=dict(os.environ, MLFLOW_TRACKING_URI=uri), capture_output=True,
                          text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "report" / "compare.md").read_text()
    assert "95% Student-t interval over seeds" in text and "Welch's t-test" in text
    assert "| bce | 0,1,2 | 30 | 1170 | 64 | tuned: 16 trials at 2000 G steps | 5 | 0.31 ± 0.025 |" in text
    assert "| mse | 0,1,2 | 30 | 1170 | 64 | default | 5 | 0.61 ± 0.025 |" in text
    verdicts = [line for line in text.splitlines() if line.startswith("- at 1170 G steps, ")]
    # one per pair, on the terminal too (wrapped at 120 columns)
    flat = " ".join(proc.stdout.split())
    assert len(verdicts) == 3 and all(" ".join(line.split()) in flat for line in verdicts)
    assert max(map(len, proc.stdout.splitlines())) <= 120
    assert ("bce (tuned: 16 trials at 2000 G steps) vs mse (default): distinguishable at this "
            "budget, bce better (FD 0.31 vs 0.61") in text
    assert "mse (default) vs hinge (default): not distinguishable at this budget" in text
