"""The report stage: loss curves, D outputs, real next to fake, a progress GIF, a summary.

Every picture of generated images comes from ``generator.pt``: what the run samples from
(the EMA of G's weights when ``train.ema`` is on), as the grids and the headline scores.
"""

from __future__ import annotations

import csv
import io
import json
import pickle
import shutil
import sys
from pathlib import Path
from typing import Any, Callable, TypeVar

import torch
from PIL import Image, ImageDraw
from torchvision.utils import make_grid

from dcgan import atomic, checkpoint
from dcgan.config import Params
from dcgan.data.prepared import load_meta, load_split
from dcgan.errors import UserError, one_line, quoted
from dcgan.figures import plt, save_figure  # figures selects the Agg backend
from dcgan.models import Generator
from dcgan.scoring import samples_of, take

# The summary's rows, in order, with what each one is
ROW_LABELS = {"noise": "noise", "generator": "generator (what the run samples from)",
              "no_ema": "G's own weights, without the EMA", "best": "best checkpoint",
              "floor": "real-data floor"}


def _read_csv(path: Path) -> dict[str, list[float]]:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return {k: [float(r[k]) for r in rows] for k in (rows[0] if rows else {})}


def curves(plots: Path, out: Path, title: str) -> None:
    """``losses.png`` (G and D per iteration, epoch means on top) and ``d_outputs.png``."""
    it, ep = _read_csv(plots / "loss_iterations.csv"), _read_csv(plots / "loss_epochs.csv")
    per_epoch = len(it["iteration"]) / max(1, len(ep["epoch"]))
    epoch_x = [e * per_epoch for e in ep["epoch"]]  # epoch means at each epoch's last iteration
    for name, keys, ylabel in (("losses", ("d_loss", "g_loss"), "loss"),
                               ("d_outputs", ("d_real", "d_fake"), "D output")):
        fig, ax = plt.subplots(figsize=(7, 3.5))
        for key, colour in zip(keys, ("tab:blue", "tab:orange")):
            ax.plot(it["iteration"], it[key], color=colour, alpha=0.35, lw=0.8)
            ax.plot(epoch_x, ep[key], "o-", color=colour, label=f"{key} (epoch mean)")
        ax.set(xlabel="iteration", ylabel=ylabel, title=f"{title}: {ylabel} per iteration")
        ax.legend()
        save_figure(fig, out / f"{name}.png")


def _label(image: Image.Image, text: str) -> Image.Image:
    """``image`` with a white strip on top holding ``text``."""
    # at least 90 px wide so "epoch 100" fits above a grid of a few small images
    canvas = Image.new("RGB", (max(image.width, 90), image.height + 16), "white")
    canvas.paste(image.convert("RGB"), (0, 16))
    ImageDraw.Draw(canvas).text((4, 2), text, fill="black")
    return canvas


def progress_gif(grids: list[Path], path: Path, seconds_per_frame: float = 0.5) -> int:
    """An animated GIF of the per-epoch fixed-noise grids, the epoch drawn on each frame."""
    frames = []
    for grid in grids:
        epoch = int(grid.stem.split("_")[-1])
        with Image.open(grid) as img:
            frames.append(_label(img, f"epoch {epoch}"))
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:],
                   duration=int(seconds_per_frame * 1000), loop=0)
    atomic.write_bytes(path, buf.getvalue())
    return len(frames)


def side_by_side(panels: list[tuple[str, Image.Image]], path: Path) -> None:
    """Labelled images in one row, 8 px apart, written as one PNG."""
    labelled = [_label(image, text) for text, image in panels]
    canvas = Image.new("RGB", (sum(p.width + 8 for p in labelled) - 8,
                               max(p.height for p in labelled)), "white")
    x = 0
    for panel in labelled:
        canvas.paste(panel, (x, 0))
        x += panel.width + 8
    buf = io.BytesIO()
    canvas.save(buf, format="PNG")
    atomic.write_bytes(path, buf.getvalue())


def real_vs_fake(real: torch.Tensor, fake: torch.Tensor, path: Path) -> None:
    """Real images (left) next to generated ones (right), same count, both in [-1, 1]."""
    nrow = max(1, int(len(real) ** 0.5))
    panels = []
    for images, text in ((real, "real"), (fake, "generated")):
        grid = make_grid(images.float(), nrow=nrow, normalize=True, value_range=(-1, 1))
        panels.append((text, Image.fromarray(grid.mul(255).round().byte().permute(1, 2, 0).numpy())))
    side_by_side(panels, path)


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _row_line(label: str, row: dict[str, Any]) -> str:
    c, copies = row["classifier"], row.get("copies", {}).get("pixels")
    iscore = c.get("inception_score")  # absent without labels (see the notes)
    is_cell = f"{iscore['mean']:.3g} ± {iscore['std']:.2g}" if iscore else "–"
    return (f"| {label} | {is_cell} | {c['frechet_distance']:.4g} | {c['kid']['mean']:.3g} | "
            f"{c['precision']:.3f} | {c['recall']:.3f} | {c.get('classes_covered', '–')} | "
            + (f"{copies['share']:.2%}" if copies else "–") + " |")


def summary(title: str, train: dict[str, Any], scores: dict[str, Any],
            best_samples: int | None = None) -> str:
    """A short Markdown summary: training numbers and the classifier-space table.

    ``best_samples`` is how many images the periodic evaluation that picked the best
    checkpoint really scored (``train.eval_samples`` capped at the train split's size).
    """
    lines = [f"# {title}", "", "| training | value |", "|---|---|"]
    lines += [f"| {k} | {_fmt(v)} |" for k, v in train.items()]
    lines += ["", f"Scored on {scores['samples']} generated and {scores['samples']} real samples; "
              f"reference: {scores['reference']}.", "",
              "| row | IS | FD | KID | precision | recall | classes | near-copies |",
              "|---|---|---|---|---|---|---|---|"]
    lines += [_row_line(label, scores[row]) for row, label in ROW_LABELS.items() if row in scores]
    if "copies_reference" in scores:
        lines += ["", "Near-copies: samples closer (in pixels) to a training image than 1 in 100 "
                  f"real unseen images are ({scores['copies_reference']}); the floor row is the "
                  "real data's own rate. The closest pairs: nearest_copies.png."]
    if scores.get("notes"):
        lines += ["", *(f"Note: {note}." for note in scores["notes"])]
    if "best" in scores:
        on = f" on {best_samples} samples" if best_samples else ""
        lines += ["", f"Best checkpoint: epoch {scores['best']['epoch']}, the lowest "
                  f"classifier-space Fréchet distance{on} of what the run samples from, among "
                  "the periodic evaluations."]
    return "\n".join(lines) + "\n"


# What reading an earlier stage's output raises when it is missing or cut short (a killed
# stage, a copy interrupted): torch's truncated zip is a RuntimeError, a cut JSON or CSV a
# ValueError, a CSV or JSON without its columns a KeyError
_UNREADABLE = (OSError, EOFError, ValueError, KeyError, IndexError, RuntimeError, pickle.UnpicklingError)
T = TypeVar("T")


def _read(path: Path, read: Callable[[Path], T], stage: str) -> T:
    """``read(path)``, or one line naming ``path`` and the stage that writes it."""
    try:
        return read(path)
    except _UNREADABLE as err:
        raise UserError(f"{quoted(path)}: missing or unreadable ({one_line(err, 100)}); rerun "
                        f"`dvc repro {stage}`") from None


def run(params: Params, data: str, train: str, train_metrics: str, evaluation: str,
        out: str) -> None:
    """The stage: every picture and the summary into ``out`` (atomically), then to MLflow."""
    train_dir = Path(train)
    title = f"{load_meta(data)['dataset']} · {params.loss} · seed {params.seed}"
    grids = sorted((train_dir / "grids").glob("epoch_*.png"))
    if not grids:
        raise UserError(f"{quoted(train_dir / 'grids')}: no epoch grids; rerun `dvc repro train`")
    generator = _read(train_dir / "generator.pt", lambda p: checkpoint.load_model(p, Generator), "train")
    train_images = load_split(data, "train")[0]
    real = take(train_images, 64, params.seed)
    fake = samples_of(generator, len(real), generator.nz, torch.device("cpu"), params.seed)
    details = train_dir / "details.json"  # every training number; metrics/ the headline
    details = details if details.is_file() else Path(train_metrics)
    numbers = _read(details, lambda p: json.loads(p.read_text()), "train")
    scores = _read(Path(evaluation) / "details.json", lambda p: json.loads(p.read_text()), "evaluate")
    with atomic.output_dir(out) as tmp:
        _read(train_dir / "plots", lambda p: curves(p, tmp, title), "train")
        frames = _read(train_dir / "grids", lambda p: progress_gif(grids, tmp / "progress.gif"), "train")
        shutil.copyfile(grids[-1], tmp / "final_grid.png")
        real_vs_fake(real, fake, tmp / "real_vs_fake.png")
        best_samples = min(params.train.eval_samples, len(train_images))  # what was scored
        text = _read(details, lambda p: summary(title, numbers, scores, best_samples), "train")
        atomic.write_text(tmp / "summary.md", text)
        if (Path(evaluation) / "nearest.png").is_file():
            shutil.copyfile(Path(evaluation) / "nearest.png", tmp / "nearest_copies.png")
    from dcgan.tracking import log_folder_to_training_run  # mlflow's helpers: only here

    if problem := log_folder_to_training_run(train_dir, Path(out), "report"):
        print(f"warning: {problem}", file=sys.stderr)
    print(f"report: {frames}-frame GIF, curves, real vs generated, summary -> {out}")
