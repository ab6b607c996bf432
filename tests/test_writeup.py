"""Write-ups run on the committed params, whatever an earlier `dvc exp run` left in params.yaml."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from dcgan.config import ConfigError
from dcgan.writeups import check, flat, hydra_value, load_writeups, param_set, set_args
from helpers import PARAMS, REPO, TINY, make_idx_dir, write_params
from test_pipeline import _run, copy_repo, dvc

WRITEUPS = load_writeups(REPO / "configs/seeds.yaml")
DCGAN = str(Path(sys.executable).parent / "dcgan")  # the installed console script


def test_every_param_is_set_and_dvc_parses_it_back(tmp_path):
    """DVC's own -S parser, applied to a params.yaml another experiment changed."""
    from dvc.utils.hydra import apply_overrides

    defaults = yaml.safe_load((PARAMS).read_text())
    params = param_set(defaults, WRITEUPS["S002"]["set"], {"dataset": "folder:/a b/c,d",
                                                          "train.compile": "null"})
    assert list(params) == list(flat(defaults)) and params["train.d_batches"] == "separate"
    dirty = write_params(tmp_path, {"train.batch_size": 8, "loss": "mse", "train.epochs": 1})
    apply_overrides(str(dirty), [a for a in set_args(params) if a != "-S"])
    assert flat(yaml.safe_load(dirty.read_text())) == params


def test_values_keep_their_type_through_the_command_line():
    assert [hydra_value(v) for v in (None, True, 3, 0.0002, "bce", "null", "a,b", ["bce", "mse"])] \
        == ["null", "true", "3", "0.0002", "bce", "'null'", "'a,b'", "bce,mse"]


def test_a_grid_counts_its_experiments_and_bad_keys_fail_first():
    defaults = yaml.safe_load((PARAMS).read_text())
    assert check(PARAMS, param_set(defaults, WRITEUPS["S004"]["set"], {})) == 3
    with pytest.raises(ConfigError, match="train.epoch: unknown key"):
        param_set(defaults, WRITEUPS["S002"]["set"], {"train.epoch": 3})


@pytest.mark.slow
def test_writeup_runs_its_own_params_after_another_experiment(tmp_path, mlflow_store):
    repo = copy_repo(tmp_path / "repo")
    idx = make_idx_dir(tmp_path / "idx", n=48, test=32)
    write_params(repo, {**TINY, "train.epochs": 1, "dataset": f"idx:{idx}"})
    _run(["git", "commit", "-qam", "tiny defaults"], repo)
    # what `dvc exp run -S train.batch_size=8` leaves in the workspace (not committed)
    write_params(repo, {**TINY, "train.epochs": 1, "dataset": f"idx:{idx}", "train.batch_size": 8})

    out = _run([DCGAN, "writeup", "S002", "-S", f"dataset=idx:{idx}"], repo)
    assert "  train.batch_size=16\n" in out and "  train.d_batches=separate  (write-up)\n" in out
    assert f"  dataset=idx:{idx}  (yours)\n" in out and "Running stage 'train'" in out
    ran = yaml.safe_load((repo / "params.yaml").read_text())
    assert ran["train"]["batch_size"] == 16 and ran["train"]["d_batches"] == "separate"
    import mlflow

    client = mlflow.MlflowClient(mlflow_store)
    runs = client.search_runs([client.get_experiment_by_name("dcgan").experiment_id],
                              order_by=["attributes.start_time DESC"])
    assert [r.data.params["train.batch_size"] for r in runs] == ["16"]
    assert runs[0].data.params["train.d_batches"] == "separate"

    out = _run([DCGAN, "writeup", "S004", "-S", f"dataset=idx:{idx}"], repo)
    assert "queueing 3 experiment(s): dvc exp run --queue" in out
    assert dvc(repo, "queue", "status").count("Queued") == 3
