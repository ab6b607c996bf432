"""torch's CPU thread count: asked for, left to OMP_NUM_THREADS, split over a DVC queue's workers."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from dcgan import threads
from dcgan.threads import BadThreads
from helpers import REPO


@pytest.fixture
def no_thread_env(monkeypatch):
    monkeypatch.delenv(threads.ENV, raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)


@pytest.mark.parametrize("cores, workers, expected", [
    (2, 0, None), (2, 1, None), (2, 2, 1), (2, 4, 1), (8, 3, 2), (16, 4, 4)])
def test_a_queue_splits_the_cores_over_its_workers(no_thread_env, cores, workers, expected):
    assert threads.choose(cores, workers)[0] == expected


def test_asked_for_wins_over_the_queue(no_thread_env, monkeypatch):
    monkeypatch.setenv(threads.ENV, "3")
    assert threads.choose(2, 2) == (3, f"${threads.ENV}")


def test_omp_num_threads_is_left_to_torch(no_thread_env, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert threads.choose(2, 2)[0] is None


@pytest.mark.parametrize("value", ["0", "two", "-1", "1.5"])
def test_a_bad_value_is_one_line(no_thread_env, monkeypatch, value):
    monkeypatch.setenv(threads.ENV, value)
    with pytest.raises(BadThreads, match=rf"\$DCGAN_THREADS='{value}': expected a positive "
                                        r"number of threads.*docs/training.md"):
        threads.choose(2, 0)


def test_configure_sets_torch_and_children(no_thread_env, monkeypatch):
    import torch

    before = torch.get_num_threads()
    monkeypatch.setenv(threads.ENV, "1")
    try:
        assert threads.configure() == 1 and torch.get_num_threads() == 1
        import os
        assert os.environ["OMP_NUM_THREADS"] == "1"
    finally:
        torch.set_num_threads(before)


def test_not_under_a_queue():
    assert threads.queue_workers() == 0


@pytest.mark.slow
def test_a_stage_under_a_queue_worker_counts_its_siblings(tmp_path):
    """Processes named like DVC's queue workers (`dvc exp queue-worker dvc-exp-<hash>-<n>@...`):
    a descendant of one counts the workers of its repo (hash), not another repo's."""
    probe = (f"import sys; sys.path.insert(0, {str(REPO / 'src')!r}); "
             "from dcgan.threads import queue_workers; print(queue_workers())")
    worker = textwrap.dedent(f"""
        import subprocess, sys
        print(subprocess.run([sys.executable, "-c", {probe!r}], capture_output=True,
                             text=True).stdout.strip())
    """)
    sleeper = "import time; time.sleep(60)"
    others = [subprocess.Popen([sys.executable, "-c", sleeper, "exp", "queue-worker", name])
              for name in ("dvc-exp-abc123-2@localhost", "dvc-exp-ffff00-1@localhost")]
    try:
        out = subprocess.run([sys.executable, "-c", worker, "exp", "queue-worker",
                              "dvc-exp-abc123-1@localhost", "--clean"],
                             capture_output=True, text=True, check=True).stdout
    finally:
        for proc in others:
            proc.kill()
            proc.wait()
    assert out.strip() == "2"
