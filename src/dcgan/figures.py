"""Figures drawn with matplotlib (files only: the Agg backend), each readable at its stored size.

``save_figure`` writes any figure atomically; :func:`nearest_pairs` is the memorisation check's
picture (each sample above its nearest training image, with the distance); :func:`loss_panels`
is ``dcgan compare``'s losses, one panel per loss (their scales differ by orders of magnitude).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from dcgan import atomic  # noqa: E402

DPI = 120


def save_figure(fig: plt.Figure, path: Path) -> None:
    """Write a matplotlib figure as PNG atomically, and close it."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    atomic.write_bytes(path, buf.getvalue())


def _show(ax: plt.Axes, image: torch.Tensor) -> None:
    """One image in [-1, 1] (C, H, W), grey or RGB, without ticks."""
    pixels = image.detach().float().cpu().clamp(-1, 1).add(1).div(2)
    if pixels.shape[0] == 1:
        ax.imshow(pixels[0].numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    else:
        ax.imshow(pixels.permute(1, 2, 0).numpy(), interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def nearest_pairs(samples: torch.Tensor, nearest: torch.Tensor, distances: Sequence[float],
                  threshold: float | None, path: Path, title: str) -> None:
    """Each sample (top row) above its nearest training image (bottom row), the pixel
    distance between them under the pair, and the near-copy threshold in the title: a pair
    under the threshold is flagged ``copy``. Each image is drawn 1.3 inches wide (≈150 px)."""
    k = len(samples)
    fig, axes = plt.subplots(2, k, figsize=(1.3 * k + 1.2, 3.4), squeeze=False)
    for col in range(k):
        _show(axes[0, col], samples[col])
        _show(axes[1, col], nearest[col])
        flag = threshold is not None and distances[col] < threshold
        axes[1, col].set_xlabel(f"{distances[col]:.2f}" + (" copy" if flag else ""),
                                fontsize=10, color="tab:red" if flag else "black")
    axes[0, 0].set_ylabel("sample", fontsize=10)
    axes[1, 0].set_ylabel("nearest\ntraining image", fontsize=10)
    rule = f"; a copy is closer than {threshold:.2f}" if threshold is not None else ""
    fig.suptitle(f"{title}: pixel distance under each pair{rule}", fontsize=11)
    save_figure(fig, path)


def loss_panels(curves: dict[str, list[tuple[str, list[int], list[float], list[float]]]],
                path: Path) -> None:
    """Epoch-mean losses, one panel per loss: ``curves[loss]`` is a list of (run label,
    epochs, G losses, D losses); each run is one colour, G solid with circles, D dashed
    with squares (a one-epoch run is one point, which only a marker shows), every line in
    the panel's legend, whole-epoch ticks."""
    fig, axes = plt.subplots(1, len(curves), figsize=(4.2 * len(curves), 3.6), squeeze=False)
    for ax, (loss, runs) in zip(axes[0], curves.items()):
        for label, epochs, g_loss, d_loss in runs:
            line, = ax.plot(epochs, g_loss, "o-", ms=4, label=f"G {label}")
            ax.plot(epochs, d_loss, "s--", ms=4, color=line.get_color(), label=f"D {label}")
        ax.set(xlabel="epoch", ylabel="epoch-mean loss", title=loss)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=7)
    fig.suptitle("epoch-mean losses, one panel per loss (scales differ)", fontsize=11)
    fig.tight_layout()
    save_figure(fig, path)
