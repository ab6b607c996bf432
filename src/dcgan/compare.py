"""Trained runs read back from MLflow: ``dcgan compare`` (loss variants, mean ± std over seeds)
and ``dcgan runs`` (every training run with its budget and scores).

A comparison is only fair at the same budget and recipe, so each row is one (loss, epochs,
G steps, batch, recipe) and the report says so when the runs mix budgets. Imports mlflow
lazily: it is part of the tracking layer.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from PIL import Image

from dcgan import atomic
from dcgan.config import PAPER, load_params
from dcgan.errors import UserError
from dcgan.losses import LOSSES
from dcgan.paths import resolve
from dcgan.report import plt, save_figure, side_by_side  # report selects the Agg backend
from dcgan.tracking.attach import score_metric

# (column, score) in the table (dcgan.results.ALL_SCORES), lower-is-better marked in the header.
COLUMNS = [("IS (clf) ↑", "IS"), ("FD (clf) ↓", "FD"), ("KID (clf) ↓", "KID"),
           ("precision ↑", "precision"), ("recall ↑", "recall"), ("classes ↑", "classes"),
           ("near-copies ↓", "copies"), ("IS (Inception) ↑", "IS Inception"), ("FID ↓", "FID"),
           ("KID (Inception) ↓", "KID Inception")]
HEADLINE = score_metric("FD")  # a run with it was evaluated


def same_data(spec: str) -> str:
    """``spec`` with a local source's folder made absolute: ``idx:../data/x`` and
    ``idx:/abs/data/x`` are one data set (relative paths resolve against the repo root)."""
    prefix, sep, path = spec.partition(":")
    return f"{prefix}:{resolve(path)}" if sep and prefix in ("idx", "folder") else spec


def short_name(spec: str) -> str:
    """A folder name for a data set: ``mnist``, or a local source's folder name (``mnist-5k``)."""
    prefix, sep, path = spec.partition(":")
    return resolve(path).name if sep and prefix in ("idx", "folder") else spec


def training_runs(client: Any, experiment: str) -> list[Any]:
    """Every training run of the experiment (not the compare reports), newest first."""
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return []
    runs = client.search_runs([exp.experiment_id], order_by=["attributes.start_time DESC"],
                              max_results=50000)
    return [r for r in runs if r.data.tags.get("kind") != "compare"]


def evaluated_runs(client: Any, experiment: str) -> list[Any]:
    """Finished runs with evaluation metrics, newest first."""
    return [r for r in training_runs(client, experiment)
            if r.info.status == "FINISHED" and HEADLINE in r.data.metrics]


def recipe(run: Any, defaults: dict[str, Any]) -> str:
    """``default``, ``paper`` (:data:`PAPER`) or the recipe keys where the run differs from
    the defaults, e.g. ``lr_g=0.0002 ema=none`` (``?`` without a params.yaml to compare with)."""
    params = run.data.params

    def differs(values: dict[str, Any]) -> list[str]:
        return [k for k, v in values.items() if params.get(k) != str(v)]

    own = {k: defaults[k] for k in PAPER if k in defaults}
    if own and not differs(own):
        return "default"
    if not differs(PAPER):
        return "paper"
    if not own:
        return "?"
    return " ".join(f"{k.split('.')[-1]}={params.get(k, '?')}" for k in differs(own))


def budget(run: Any, defaults: dict[str, Any]) -> tuple[str, str, str, str]:
    """(epochs, G steps, batch, recipe) of a run, as the table shows them."""
    steps = run.data.metrics.get("final.iterations")
    return (run.data.params.get("train.epochs", "?"), f"{steps:.0f}" if steps else "?",
            run.data.params.get("train.batch_size", "?"), recipe(run, defaults))


def find_runs(client: Any, experiment: str, dataset: str, defaults: dict[str, Any]) -> list[Any]:
    """Finished, evaluated runs of ``dataset`` (however its path was spelled); the newest per
    loss, seed, budget and recipe."""
    newest: dict[tuple, Any] = {}
    for run in evaluated_runs(client, experiment):
        key = (run.data.tags.get("loss"), run.data.params.get("seed"), budget(run, defaults))
        if same_data(run.data.tags.get("dataset", "")) == same_data(dataset) and key not in newest:
            newest[key] = run
    return sorted(newest.values(), key=lambda r: (LOSSES.index(r.data.tags["loss"]),
                                                  budget(r, defaults), int(r.data.params["seed"])))


def _cell(values: list[float]) -> str:
    if not values:
        return "–"
    if len(set(values)) == 1:  # one run, or the same floor repeated in every run
        return f"{values[0]:.4g}"
    return f"{statistics.mean(values):.4g} ± {statistics.stdev(values):.2g}"


def table(runs: list[Any], defaults: dict[str, Any]) -> str:
    """Markdown: one row per loss and budget (mean ± std over its seeds), then the floor."""
    groups: dict[tuple, list[Any]] = {}
    for run in runs:
        groups.setdefault((run.data.tags["loss"], *budget(run, defaults)), []).append(run)
    cols = [c for c, key in COLUMNS if any(score_metric(key) in r.data.metrics for r in runs)]
    keys = [key for c, key in COLUMNS if c in cols]
    lines = ["| loss | seeds | epochs | G steps | batch | recipe | " + " | ".join(cols) + " |",
             "|---|---|---|---|---|---|" + "---|" * len(cols)]
    rows = [(group_key, group, "generator") for group_key, group in groups.items()]
    rows.append((("**real-data floor**", "", "", "", ""), runs, "floor"))
    for (name, *spent), group, row in rows:
        seeds = ",".join(sorted({r.data.params["seed"] for r in group}, key=int))
        cells = [_cell([r.data.metrics[score_metric(k, row)] for r in group
                        if score_metric(k, row) in r.data.metrics]) for k in keys]
        lines.append(f"| {name} | {seeds} | " + " | ".join(spent) + " | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def preamble(runs: list[Any], defaults: dict[str, Any]) -> str:
    """What the table compares: the reference set and, when they differ, the budgets."""
    refs = {r.data.tags.get("eval.reference", "the evaluate stage's reference") for r in runs}
    text = (f"{len(runs)} runs; mean ± std over seeds where there are several. Each row is "
            "what its runs sample from (the EMA of G when on), scored against "
            f"{' / '.join(sorted(refs))}; the floor row is real data scored the same way.")
    spent = {budget(r, defaults)[:3] for r in runs}
    if len(spent) > 1:
        steps = sorted({s[1] for s in spent}, key=lambda s: float(s) if s != "?" else 0)
        text += (f"\n\n**Mixed budgets** ({', '.join(steps)} G steps): rows of different G steps "
                 "or recipes are not a comparison of losses; compare rows with the same budget.")
    return text


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
        label = (f"{run.data.tags['loss']} s{run.data.params['seed']} "
                 f"e{run.data.params.get('train.epochs', '?')}")
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


def _client(args: argparse.Namespace) -> tuple[Any, Any]:
    from dcgan.tracking.runs import import_mlflow, tracking_uri

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # tables are the output
    mlflow = import_mlflow()
    mlflow.set_tracking_uri(tracking_uri())
    return mlflow, mlflow.MlflowClient()


def defaults_of(params_file: str) -> dict[str, Any]:
    """The flat params that "default" means in the recipe column ({} without the file)."""
    from dcgan.config import flatten

    return flatten(load_params(params_file)) if Path(params_file).is_file() else {}


def run(args: argparse.Namespace) -> None:
    """``dcgan compare``: the table, the grids and the curves into ``args.out``; to MLflow too."""
    from dcgan.tracking.runs import tracking_uri

    dataset = args.dataset or load_params(args.params).dataset
    defaults = defaults_of(args.params)
    out = Path(args.out or Path("reports/compare") / short_name(dataset))
    mlflow, client = _client(args)
    runs = find_runs(client, args.experiment, dataset, defaults)
    if not runs:
        others = Counter(r.data.tags.get("dataset") for r in evaluated_runs(client, args.experiment))
        have = "; ".join(f"--dataset {d} ({n} runs)" for d, n in others.most_common(5))
        raise UserError(f"no finished, evaluated runs of dataset {dataset!r} in experiment "
                        f"{args.experiment!r} at {tracking_uri()}; "
                        + (f"there are: {have}" if have else "run `dvc repro` or `dvc exp run` first"))
    text = table(runs, defaults)
    with atomic.output_dir(out) as tmp, tempfile.TemporaryDirectory() as scratch:
        atomic.write_text(tmp / "compare.md", f"# {dataset}: loss variants compared\n\n"
                          f"{preamble(runs, defaults)}\n\n{text}\n![final grids](grids.png)\n\n"
                          "![losses](losses.png)\n")
        figures(client, runs, tmp, Path(scratch))
    exp_id = client.get_experiment_by_name(args.experiment).experiment_id
    with mlflow.start_run(experiment_id=exp_id, run_name=f"compare {dataset}",
                          tags={"dataset": dataset, "kind": "compare"}):
        mlflow.log_artifacts(str(out), "compare")
    print(text, end="")
    print(f"compare: {len(runs)} runs of {dataset} -> {out / 'compare.md'}")


def list_runs(args: argparse.Namespace) -> None:
    """``dcgan runs``: every training run, newest first, with its budget and headline scores."""
    import datetime as dt

    from dcgan.tracking.runs import tracking_uri

    defaults = defaults_of(args.params)
    _, client = _client(args)
    runs = [r for r in training_runs(client, args.experiment)
            if not args.dataset or same_data(r.data.tags.get("dataset", "")) == same_data(args.dataset)]
    if not runs:
        raise UserError(f"no training runs{f' of dataset {args.dataset!r}' if args.dataset else ''} "
                        f"in experiment {args.experiment!r} at {tracking_uri()}; "
                        "run `dvc repro` or `dvc exp run` first")
    lines = ["| run | status | data set | loss | seed | epochs | G steps | batch | recipe | IS | FD "
             "| started |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in runs[: args.limit]:
        m = r.data.metrics
        scores = [f"{m[k]:.4g}" if k in m else "–" for k in (score_metric("IS"), HEADLINE)]
        started = dt.datetime.fromtimestamp(r.info.start_time / 1000).strftime("%Y-%m-%d %H:%M")
        lines.append(f"| {r.info.run_name} | {r.info.status.lower()} | "
                     f"{short_name(r.data.tags.get('dataset', '?'))} | {r.data.tags.get('loss', '?')} | "
                     f"{r.data.params.get('seed', '?')} | " + " | ".join(budget(r, defaults))
                     + f" | {' | '.join(scores)} | {started} |")
    print("\n".join(lines))
    print(f"runs: {min(len(runs), args.limit)} of {len(runs)} at {tracking_uri()} (IS, FD: what each "
          "run samples from, in the domain classifier's space; run id: `mlflow ui`)")
