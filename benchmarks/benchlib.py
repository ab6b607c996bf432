"""What the benchmark scripts share: this repo's src/ on the path, the one import of the
training module, synthetic prepared sets, epoch timing and device names.

Needs torch only (no dvc, no mlflow), so the scripts run on a bare GPU machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from dcgan import atomic  # noqa: E402
from dcgan.config import ConfigError, load_params, parse_overrides  # noqa: E402
from dcgan.data.prepared import load_split  # noqa: E402
from dcgan.losses import get  # noqa: E402  (step_cost.py: a loss's D steps per G step)
from dcgan.training import Session, Trainer  # noqa: E402  the one place benchmarks/ names it
from gpu_report import slug  # noqa: E402  (torch-free, so gpu_check.py names files without torch)

__all__ = ["REPO", "Session", "Trainer", "device_name", "epoch_times", "images_per_epoch",
           "parse_set", "slug", "sync", "synthetic_set", "trainer"]


def parse_set(parser: argparse.ArgumentParser, items: list[str]) -> dict:
    """``--set KEY=VALUE`` items as load_params overrides, checked against params.yaml up
    front: a typo ends the script with one usage error, not a traceback minutes in."""
    try:
        parsed = parse_overrides(items)
        load_params(REPO / "params.yaml", parsed)
    except ConfigError as err:
        parser.error(str(err))
    return parsed


def sync(device: torch.device) -> None:
    """Wait for ``device``'s queue (timings of asynchronous CUDA work)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def device_name(device: torch.device) -> str:
    """The GPU's name (e.g. ``NVIDIA H100 80GB HBM3``), else ``cpu``."""
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def synthetic_set(folder: Path, n: int, nc: int, size: int) -> Path:
    """A synthetic prepared data set (uniform noise) in the preprocess stage's format."""
    folder.mkdir(parents=True, exist_ok=True)
    images = torch.rand(n, nc, size, size, generator=torch.Generator().manual_seed(0)) * 2 - 1
    torch.save({"images": images, "labels": torch.zeros(n, dtype=torch.int64)}, folder / "train.pt")
    atomic.write_json(folder / "meta.json", {"dataset": "synthetic", "source_sha256": "-",
                                             "classes": [], "image_shape": [nc, size, size],
                                             "splits": {"train": {"count": n}}})
    return folder


def trainer(folder: Path, device: torch.device, overrides: dict) -> Trainer:
    """A trainer of params.yaml with ``overrides`` on the prepared set in ``folder`` (the
    training loop alone: no run folder, no checkpoints)."""
    params = load_params(REPO / "params.yaml", {"train.device": str(device), **overrides})
    return Trainer(params, load_split(folder, "train")[0])


def epoch_times(trainer: Trainer, epochs: int) -> tuple[list[float], torch.Tensor]:
    """Train ``epochs`` epochs through ``train_epoch()``: the seconds of each (synchronised at
    its end only) and the last epoch's per-iteration statistics, on the host."""
    times, stats = [], torch.zeros(0)
    for _ in range(epochs):
        sync(trainer.device)
        start = time.perf_counter()
        stats = trainer.train_epoch()
        sync(trainer.device)
        times.append(time.perf_counter() - start)
    return times, stats.cpu()


def images_per_epoch(trainer: Trainer) -> int:
    """Real images one epoch of ``trainer`` consumes (D steps included)."""
    return trainer.iters * trainer.d_steps * trainer.batch_size
