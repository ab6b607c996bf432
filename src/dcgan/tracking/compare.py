"""Compare loss variants on one data set from their MLflow runs: mean ± std over seeds.

Imports mlflow lazily: it is part of the tracking layer, used by ``stages/compare.py``.
"""

from __future__ import annotations

import csv
import statistics
from pathlib import Path
from typing import Any

from PIL import Image

from dcgan.losses import LOSSES
from dcgan.report import plt, save_figure, side_by_side  # report selects the Agg backend

# (column, metric key under eval.<row>.) in the table, lower-is-better marked in the header.
COLUMNS = [
    ("IS (clf) ↑", "classifier.inception_score.mean"),
    ("FD (clf) ↓", "classifier.frechet_distance"),
    ("KID (clf) ↓", "classifier.kid.mean"),
    ("precision ↑", "classifier.precision"),
    ("recall ↑", "classifier.recall"),
    ("classes ↑", "classifier.classes_covered"),
    ("IS (Inception) ↑", "inception.inception_score_mean"),
    ("FID ↓", "inception.fid"),
    ("KID (Inception) ↓", "inception.kid_mean"),
]


def find_runs(client: Any, experiment: str, dataset: str) -> list[Any]:
    """Finished runs of ``dataset`` with evaluation metrics; the newest per (loss, seed)."""
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return []
    runs = client.search_runs([exp.experiment_id], f"tags.dataset = '{dataset}' and "
                              "attributes.status = 'FINISHED'", order_by=["attributes.start_time DESC"])
    newest: dict[tuple[str, str], Any] = {}
    for run in runs:
        key = (run.data.tags.get("loss"), run.data.params.get("seed"))
        if "eval.generator.classifier.frechet_distance" in run.data.metrics and key not in newest:
            newest[key] = run
    return sorted(newest.values(), key=lambda r: (LOSSES.index(r.data.tags["loss"]),
                                                  int(r.data.params["seed"])))


def _cell(values: list[float]) -> str:
    if not values:
        return "–"
    if len(set(values)) == 1:  # one run, or the same floor repeated in every run
        return f"{values[0]:.4g}"
    return f"{statistics.mean(values):.4g} ± {statistics.stdev(values):.2g}"


def table(runs: list[Any]) -> str:
    """Markdown: one row per loss (mean ± std over its seeds), then the real-data floor."""
    groups: dict[str, list[Any]] = {}
    for run in runs:
        groups.setdefault(run.data.tags["loss"], []).append(run)
    cols = [c for c, key in COLUMNS if any(f"eval.generator.{key}" in r.data.metrics for r in runs)]
    keys = [key for c, key in COLUMNS if c in cols]
    lines = ["| loss | seeds | " + " | ".join(cols) + " |", "|---|---|" + "---|" * len(cols)]
    rows = [(loss, group, "generator") for loss, group in groups.items()]
    rows.append(("**real-data floor**", runs, "floor"))
    for name, group, row in rows:
        seeds = ",".join(sorted({r.data.params["seed"] for r in group}, key=int))
        cells = [_cell([r.data.metrics[f"eval.{row}.{k}"] for r in group
                        if f"eval.{row}.{k}" in r.data.metrics]) for k in keys]
        lines.append(f"| {name} | {seeds} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _artifact(client: Any, run: Any, path: str, dest: Path) -> Path | None:
    try:
        return Path(client.download_artifacts(run.info.run_id, path, str(dest)))
    except Exception:  # a run logged without this artifact (e.g. the store was down then)
        return None


def figures(client: Any, runs: list[Any], out: Path, scratch: Path) -> None:
    """``grids.png``: final grids side by side; ``losses.png``: epoch-mean losses overlaid."""
    grids, fig = [], plt.figure(figsize=(8, 4))
    ax = fig.add_subplot()
    for i, run in enumerate(runs):
        label = f"{run.data.tags['loss']} s{run.data.params['seed']}"
        grid = _artifact(client, run, "report/final_grid.png", scratch / str(i))
        if grid:
            grids.append((label, Image.open(grid).convert("RGB")))
        losses = _artifact(client, run, "plots/loss_epochs.csv", scratch / str(i))
        if losses:
            rows = list(csv.DictReader(losses.open()))
            epochs = [int(r["epoch"]) for r in rows]
            line, = ax.plot(epochs, [float(r["g_loss"]) for r in rows], label=f"G {label}")
            ax.plot(epochs, [float(r["d_loss"]) for r in rows], "--", color=line.get_color())
    ax.set(xlabel="epoch", ylabel="loss (solid G, dashed D)", title="epoch-mean losses")
    ax.legend(fontsize=7)
    save_figure(fig, out / "losses.png")
    if grids:
        side_by_side(grids, out / "grids.png")
