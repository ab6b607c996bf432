"""What a finished run leaves for the later stages: weights, the hooks' files, loss CSVs, metrics."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from dcgan import atomic, checkpoint
from dcgan.history import COLUMNS

if TYPE_CHECKING:
    from dcgan.training.loop import Trainer


def write(trainer: Trainer, out: Path) -> dict[str, Any]:
    """Write G, D, each hook's files and the loss CSVs into ``out`` as one atomic folder."""
    with atomic.output_dir(out) as tmp:
        # Saved ready to sample in eval mode (train.sample_bn), like every generator file.
        checkpoint.save_model(tmp / "generator.pt", trainer.sampler(trainer.G),
                              trainer.nets.g_kwargs)
        checkpoint.save_model(tmp / "discriminator.pt", trainer.D, trainer.nets.d_kwargs)
        for hook in trainer.hooks:
            hook.write_outputs(trainer, tmp)
        trainer.history.write_csvs(tmp / "plots")
    return metrics(trainer)


def metrics(trainer: Trainer) -> dict[str, Any]:
    """Final-epoch means, wall time and throughput, then each hook's numbers."""
    last = trainer.history.epochs[-1]
    result = {**{k: last[k] for k in COLUMNS}, "epochs": trainer.epoch,
              "iterations": len(trainer.history.rows),
              "wall_time_s": round(trainer.wall_time, 3),
              "images_per_second": round(trainer.history.images_per_second(), 1),
              "device": str(trainer.device), "dtype": "bf16" if trainer.amp else "fp32",
              "processes": trainer.world.size}
    for hook in trainer.hooks:
        result.update(hook.metrics())
    return result
