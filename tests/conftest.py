"""Fixtures shared by every test file (helpers to import are in helpers.py): each test's own
MLflow store, one prepared data set of 64 tiny random digits per session, the AFHQ sample."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from helpers import AFHQ_SAMPLE, make_prepared

if os.environ.get("PYTEST_XDIST_WORKER"):
    # One thread per worker (and per stage it starts): with a worker per core, torch's default
    # of a thread per core oversubscribes them, and OpenMP's spinning threads then run 5-10x
    # slower than one thread each.
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def mlflow_store(tmp_path, monkeypatch) -> str:
    """Every test's MLflow store (and its artifacts, beside the sqlite file) in its tmp_path.

    Without it, a stage run by a test logs to the repo's own mlflow.db and mlartifacts/.
    Set in os.environ, so the stages tests start as subprocesses (and dvc's) inherit it.
    """
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


@pytest.fixture
def afhq_sample() -> Path:
    """../shared/data/afhq-sample, or skip: its licence (CC BY-NC) keeps it out of the package,
    so it exists only beside this project's own checkouts."""
    if not AFHQ_SAMPLE.is_dir():
        pytest.skip(f"{AFHQ_SAMPLE} absent: the AFHQ sample (CC BY-NC) is not shipped with the "
                    "package; it sits beside this project's own checkouts")
    return AFHQ_SAMPLE


@pytest.fixture(scope="session")
def prepared(tmp_path_factory) -> Path:
    """The preprocess stage's output for 64 random 28x28 digits, made once per session: the
    data of the tests that train for a step or two (tests that need more make their own)."""
    return make_prepared(tmp_path_factory.mktemp("data"), n=64)
