"""Loss history: per-iteration rows and per-epoch means, kept in checkpoints, written as CSV."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import torch

from dcgan import atomic

# d_real/d_fake: D(x) and D(G(z)); g_spread: how different G's samples in a batch are (the
# per-pixel standard deviation over the batch, averaged): 0 when G draws one image
COLUMNS = ("d_loss", "g_loss", "d_real", "d_fake", "g_spread")


class History:
    """What the loss CSVs and metrics/train.json are made from."""

    def __init__(self) -> None:
        self.rows = torch.empty(0, len(COLUMNS))  # one row per G iteration
        self.epochs: list[dict[str, float]] = []

    def add_epoch(self, epoch: int, rows: torch.Tensor, images_per_second: float) -> dict[str, float]:
        """Append an epoch's per-iteration rows; return its row of :attr:`epochs` (``epoch``,
        the means, throughput), to which callers may add the epoch's other numbers."""
        self.rows = torch.cat([self.rows, rows.float().cpu()])
        means = {k: float(v) for k, v in zip(COLUMNS, rows.mean(dim=0).tolist())}
        self.epochs.append({"epoch": epoch, **means, "images_per_second": float(images_per_second)})
        return self.epochs[-1]

    def images_per_second(self) -> float:
        """Mean throughput over epochs (the first epoch's warm-up included)."""
        return sum(e["images_per_second"] for e in self.epochs) / max(1, len(self.epochs))

    def state_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "epochs": [dict(e) for e in self.epochs]}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "History":
        history = cls()
        history.rows, history.epochs = state["rows"].cpu(), [dict(e) for e in state["epochs"]]
        return history

    def write_csvs(self, folder: str | Path) -> None:
        """``loss_iterations.csv`` (iteration, epoch, losses) and ``loss_epochs.csv`` (means)."""
        folder = Path(folder)
        per_epoch = len(self.rows) // max(1, len(self.epochs))
        lines = [[i + 1, i // per_epoch + 1, *(f"{v:.6g}" for v in row)]
                 for i, row in enumerate(self.rows.tolist())]
        _write_csv(folder / "loss_iterations.csv", ["iteration", "epoch", *COLUMNS], lines)
        keys = ["epoch", *COLUMNS, "images_per_second"]
        _write_csv(folder / "loss_epochs.csv", keys,
                   [[e[k] if k == "epoch" else f"{e[k]:.6g}" for k in keys] for e in self.epochs])


def _write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    atomic.write_text(path, buf.getvalue())
