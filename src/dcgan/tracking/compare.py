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
from dcgan.paths import resolve
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


def same_data(spec: str) -> str:
    """``spec`` with a local source's folder made absolute: ``idx:../data/x`` and
    ``idx:/abs/data/x`` are one data set (relative paths resolve against the repo root)."""
    prefix, sep, path = spec.partition(":")
    return f"{prefix}:{resolve(path)}" if sep and prefix in ("idx", "folder") else spec


def short_name(spec: str) -> str:
    """A folder name for a data set: ``mnist``, or a local source's folder name (``mnist-5k``)."""
    prefix, sep, path = spec.partition(":")
    return resolve(path).name if sep and prefix in ("idx", "folder") else spec


def evaluated_runs(client: Any, experiment: str) -> list[Any]:
    """Finished runs with evaluation metrics, newest first."""
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return []
    runs = client.search_runs([exp.experiment_id], "attributes.status = 'FINISHED'",
                              order_by=["attributes.start_time DESC"], max_results=50000)
    return [r for r in runs if "eval.generator.classifier.frechet_distance" in r.data.metrics]


def find_runs(client: Any, experiment: str, dataset: str) -> list[Any]:
    """Finished, evaluated runs of ``dataset`` (however its path was spelled); the newest per
    (loss, seed)."""
    newest: dict[tuple[str, str], Any] = {}
    for run in evaluated_runs(client, experiment):
        key = (run.data.tags.get("loss"), run.data.params.get("seed"))
        if same_data(run.data.tags.get("dataset", "")) == same_data(dataset) and key not in newest:
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
            # markers: a run of one epoch is one point, which a bare line does not draw
            line, = ax.plot(epochs, [float(r["g_loss"]) for r in rows], "o-", ms=4,
                            label=f"G {label}")
            ax.plot(epochs, [float(r["d_loss"]) for r in rows], "s--", ms=4,
                    color=line.get_color())
    ax.set(xlabel="epoch", ylabel="loss (solid, circles: G; dashed, squares: D)",
           title="epoch-mean losses")
    ax.legend(fontsize=7)
    save_figure(fig, out / "losses.png")
    if grids:
        side_by_side(grids, out / "grids.png")
