"""dcgan.device: the one place that turns ``train.device`` into a device, alone or per process."""

from __future__ import annotations

import pytest
import torch

from dcgan.device import resolve_device
from dcgan.distributed import World
from dcgan.errors import UserError


@pytest.fixture
def two_gpus(monkeypatch):
    """Pretend two GPUs are visible (only the choice of device is tested, nothing runs on them)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)


def test_cpu_and_auto_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto", World(1, 2, 1)) == torch.device("cpu")  # gloo processes
    with pytest.raises(UserError, match=r"^train.device: cuda:1 requested but no CUDA device"):
        resolve_device("cuda:1")


def test_one_gpu_per_process(two_gpus):
    assert resolve_device("auto") == torch.device("cuda")
    assert resolve_device("cuda:1", World()) == torch.device("cuda:1")  # alone: as asked
    assert resolve_device("cuda", World(1, 2, 1)) == torch.device("cuda", 1)
    assert resolve_device("auto", World(0, 2, 0)) == torch.device("cuda", 0)


def test_pinned_gpu_or_too_few_gpus_is_one_line(two_gpus):
    with pytest.raises(UserError, match=r"cuda:1 pins one GPU, but 2 processes need one each"):
        resolve_device("cuda:1", World(0, 2, 0))
    with pytest.raises(UserError, match=r"^process 2 wants GPU 2 but only 2 are visible; lower train.nproc$"):
        resolve_device("cuda", World(2, 3, 2))
