"""Trained runs read back from MLflow: ``dcgan compare`` (loss variants, mean and 95%
t-interval over seeds, a verdict per pair of losses) and ``dcgan runs`` (every training run
with its budget and scores).

A comparison is only fair at the same budget and recipe, so each row is one (loss, epochs,
G steps, batch, recipe) and the report says so when the runs mix budgets. Imports mlflow
lazily: it is part of the tracking layer.
"""

from __future__ import annotations

import argparse
import csv
import os
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from PIL import Image

from dcgan import atomic, spread, tables
from dcgan.config import PAPER, load_params
from dcgan.errors import UserError
from dcgan.figures import loss_panels
from dcgan.losses import LOSSES
from dcgan.paths import resolve
from dcgan.report import side_by_side
from dcgan.tracking.attach import read_scores, score_metric

# (column, score) in the table (dcgan.results.ALL_SCORES), lower-is-better marked in the header.
COLUMNS = [("IS (clf) ↑", "IS"), ("FD (clf) ↓", "FD"), ("KID (clf) ↓", "KID"),
           ("precision ↑", "precision"), ("recall ↑", "recall"), ("classes ↑", "classes"),
           ("near-copies ↓", "copies"), ("IS (Inception) ↑", "IS Inception"), ("FID ↓", "FID"),
           ("KID (Inception) ↓", "KID Inception")]
# Left out of the terminal's table first when it would pass 120 columns (compare.md has all)
TERMINAL_DROP = ["KID (Inception) ↓", "IS (Inception) ↑", "classes ↑", "KID (clf) ↓",
                 "batch", "recall ↑", "precision ↑"]
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


def tuned_source(run: Any) -> str | None:
    """``tuned: N trials at B G steps`` when the run trained its loss's params from
    ``configs/tuned/<data set>.yaml`` (``dcgan tune``), else None."""
    from dcgan.tuning.tuned import read_tuned, source, tuned_file

    path = tuned_file(short_name(run.data.tags.get("dataset", "")))
    return source(run.data.params, run.data.tags.get("loss", ""), read_tuned(path))


def recipe(run: Any, defaults: dict[str, Any]) -> str:
    """``tuned: N trials at B G steps``, ``default``, ``paper`` (:data:`PAPER`) or the recipe
    keys where the run differs from the defaults, e.g. ``lr_g=0.0002 ema=none`` (``?``
    without a params.yaml to compare with)."""
    params = run.data.params
    if tuned := tuned_source(run):
        return tuned

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


def _cell(values: list[float], percent: bool = False) -> str:
    return spread.cell(values, percent)  # mean ± its 95% t half-width over seeds


def table(runs: list[Any], defaults: dict[str, Any],
          scores: dict[str, dict[str, dict[str, float]]]) -> tuple[list[str], list[list[str]]]:
    """(header, rows): one row per loss and budget (mean ± 95% t-interval over its seeds),
    then the floor.

    ``scores``: each run's evaluated rows by run id (:func:`read_scores`).
    """
    groups: dict[tuple, list[Any]] = {}
    for run in runs:
        groups.setdefault((run.data.tags["loss"], *budget(run, defaults)), []).append(run)

    def values(group: list[Any], row: str, key: str) -> list[float]:
        return [scores[r.info.run_id][row][key] for r in group
                if key in scores.get(r.info.run_id, {}).get(row, {})]

    # a column where any run has the score (0.0 is a score: no near-copies, no precision)
    shown = [(col, key) for col, key in COLUMNS
             if values(runs, "generator", key) or values(runs, "floor", key)]
    header = ["loss", "seeds", "epochs", "G steps", "batch", "recipe", *(c for c, _ in shown)]
    rows = [(group_key, group, "generator") for group_key, group in groups.items()]
    rows.append((("real-data floor", "", "", "", ""), runs, "floor"))
    out = []
    for (name, *spent), group, row in rows:
        seeds = ",".join(sorted({r.data.params["seed"] for r in group}, key=int))
        out.append([name, seeds, *spent, *(_cell(values(group, row, key), key == "copies")
                                           for _, key in shown)])
    return header, out


def preamble(runs: list[Any], defaults: dict[str, Any]) -> str:
    """What the table compares: the reference set and, when they differ, the budgets."""
    refs = {r.data.tags.get("eval.reference", "the evaluate stage's reference") for r in runs}
    text = (f"{len(runs)} runs; {spread.INTERVAL} where there are several. Each row is "
            "what its runs sample from (the EMA of G when on), scored against "
            f"{' / '.join(sorted(refs))}; the floor row is real data scored the same way.")
    spent = {budget(r, defaults)[:3] for r in runs}
    if len(spent) > 1:
        steps = sorted({s[1] for s in spent}, key=lambda s: float(s) if s != "?" else 0)
        text += (f"\n\n**Mixed budgets** ({', '.join(steps)} G steps): rows of different G steps "
                 "or recipes are not a comparison of losses; compare rows with the same budget.")
    return text


def verdicts(runs: list[Any], defaults: dict[str, Any]) -> list[str]:
    """One line per pair of losses at the same G steps and batch: FD over seeds told apart
    or not (:data:`dcgan.spread.TEST`)."""
    groups: dict[tuple, list[float]] = {}
    for run in runs:
        epochs, steps, batch, how = budget(run, defaults)
        groups.setdefault((steps, batch, run.data.tags["loss"], how), []).append(
            run.data.metrics[HEADLINE])
    lines = []
    for i, (a, fd_a) in enumerate(groups.items()):
        for b, fd_b in list(groups.items())[i + 1:]:
            if a[:2] == b[:2] and a[2] != b[2]:
                lines.append(f"- at {a[0]} G steps, " + spread.verdict(
                    f"{a[2]} ({a[3]})", fd_a, f"{b[2]} ({b[3]})", fd_b, "FD"))
    return lines


VERDICTS = f"Verdicts (FD in the classifier's space; {spread.TEST}):"


def _artifact(client: Any, run: Any, path: str, dest: Path) -> Path | None:
    try:
        return Path(client.download_artifacts(run.info.run_id, path, str(dest)))
    except Exception:  # a run logged without this artifact (e.g. the store was down then)
        return None


def figures(client: Any, runs: list[Any], out: Path, scratch: Path) -> str:
    """``grids.png``: final grids side by side; ``losses.png``: epoch-mean losses, one panel
    per loss (:func:`dcgan.figures.loss_panels`). Returns the Markdown that shows those it
    could draw (none for runs logged without grids or loss CSVs)."""
    grids, curves = [], {}
    for i, run in enumerate(runs):
        label = (f"{run.data.tags['loss']} s{run.data.params['seed']} "
                 f"e{run.data.params.get('train.epochs', '?')}")
        grid = _artifact(client, run, "report/final_grid.png", scratch / str(i))
        if grid:
            grids.append((label, Image.open(grid).convert("RGB")))
        losses = _artifact(client, run, "plots/loss_epochs.csv", scratch / str(i))
        if losses:
            rows = list(csv.DictReader(losses.open()))
            curves.setdefault(run.data.tags["loss"], []).append(
                (label.split(" ", 1)[1], [int(r["epoch"]) for r in rows],
                 [float(r["g_loss"]) for r in rows], [float(r["d_loss"]) for r in rows]))
    shown = ""
    if grids:
        side_by_side(grids, out / "grids.png")
        shown += "![final grids](grids.png)\n\n"
    if curves:
        loss_panels(curves, out / "losses.png")
        shown += "![losses, one panel per loss](losses.png)\n"
    return shown


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
    """``dcgan compare``: the table (aligned text on the terminal, Markdown in compare.md),
    the grids and the curves into ``args.out``; to MLflow too."""
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
    with atomic.output_dir(out) as tmp, tempfile.TemporaryDirectory() as scratch:
        scores = {r.info.run_id: read_scores(client, r, Path(scratch) / r.info.run_id)
                  for r in runs}
        header, rows = table(runs, defaults, scores)
        said = verdicts(runs, defaults)
        pictures = figures(client, runs, tmp, Path(scratch))
        told = f"**{VERDICTS}**\n\n" + "\n".join(said) + "\n\n" if said else ""
        atomic.write_text(tmp / "compare.md", f"# {dataset}: loss variants compared\n\n"
                          f"{preamble(runs, defaults)}\n\n{tables.markdown(header, rows)}\n"
                          + told + pictures)
    exp_id = client.get_experiment_by_name(args.experiment).experiment_id
    with mlflow.start_run(experiment_id=exp_id, run_name=f"compare {dataset}",
                          tags={"dataset": dataset, "kind": "compare"}):
        mlflow.log_artifacts(str(out), "compare")
    text, left_out = tables.text(header, rows, shrink=["recipe"], drop=TERMINAL_DROP)
    print(text, end="")
    if said:
        print("\n".join(tables.wrap(line) for line in [VERDICTS, *said]))
    print(tables.wrap(f"compare: {len(runs)} runs of {dataset}; mean ± 95% t-interval over seeds; "
                      "near-copies in percent"
                      + (f"; not shown here: {', '.join(c.rstrip(' ↑↓') for c in left_out)}"
                         if left_out else "") + f" -> {out / 'compare.md'}"))


def list_runs(args: argparse.Namespace) -> None:
    """``dcgan runs``: every training run, newest first, with its id, budget and headline
    scores, as an aligned table."""
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
    header = ["run id", "name", "status", "data set", "loss", "seed", "epochs", "G steps",
              "batch", "recipe", "IS", "FD", "started"]
    rows = []
    for run in runs[: args.limit]:
        metrics = run.data.metrics
        scores = [f"{metrics[k]:.4g}" if k in metrics else "–"
                  for k in (score_metric("IS"), HEADLINE)]
        started = dt.datetime.fromtimestamp(run.info.start_time / 1000).strftime("%m-%d %H:%M")
        rows.append([run.info.run_id, run.info.run_name, run.info.status.lower(),
                     short_name(run.data.tags.get("dataset", "?")), run.data.tags.get("loss", "?"),
                     run.data.params.get("seed", "?"), *budget(run, defaults), *scores, started])
    text, left_out = tables.text(header, rows, shrink=["name", "data set", "recipe"],
                                 drop=["started", "batch", "recipe", "G steps", "name"])
    print(text, end="")
    print(tables.wrap(f"runs: {min(len(runs), args.limit)} of {len(runs)} at {tracking_uri()}; "
                      "IS, FD: what each run samples from, in the domain classifier's space; "
                      "load one with `dcgan sample runs:/<run id>/generator`"
                      + (f"; not shown here: {', '.join(left_out)}" if left_out else "")))
