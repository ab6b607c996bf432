"""What the stages after training attach to its MLflow run: the evaluation's scores and files,
the report's pictures. The train stage recorded which run in its outputs (:data:`RECORD`).
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from typing import Any, Callable

from dcgan.paths import MLFLOW_RECORD as RECORD
from dcgan.tracking import store
from dcgan.tracking.runs import import_mlflow

# What the evaluate stage logs: a few headline metrics of what the run samples from, charted
# and shown as run-list columns ("scores/" sorts first in a run's Model metrics tab), and every
# row's every score as one table artifact (a one-bar chart per number helps nobody).
SCORE_PREFIX = "scores/"
HEADLINE_SCORES = ("IS", "FD", "FID")  # FID only where InceptionV3 ran
SCORES_TABLE = "eval/scores.json"  # mlflow.log_table's format: {"columns": [...], "data": [...]}
COPIES_PERCENT = "copies %"  # the table's near-copy column: a share a person reads, in percent


def score_metric(name: str) -> str:
    """The MLflow metric of headline score ``name`` (``FD``, ``IS``, ``FID``)."""
    return f"{SCORE_PREFIX}{name}"


def score_metrics(result: dict[str, Any]) -> dict[str, float]:
    """The headline scores of what the run samples from, as MLflow metrics."""
    from dcgan.results import row_scores

    found = row_scores(result["generator"])
    return {score_metric(name): float(found[name]) for name in HEADLINE_SCORES if name in found}


def scores_table(result: dict[str, Any]) -> dict[str, list[Any]]:
    """Every evaluated row's scores (:data:`dcgan.results.ALL_SCORES`), one row each, as
    ``MlflowClient.log_table`` takes them (None where a row lacks a score), to 4 significant
    digits like the headline files (``eval/details.json`` keeps full precision); the
    near-copy share in percent (:data:`COPIES_PERCENT`)."""
    from dcgan.results import ALL_SCORES, ROWS, row_scores

    rows = [row for row in ROWS if row in result]
    found = {row: row_scores(result[row]) for row in rows}
    table: dict[str, list[Any]] = {"row": rows}
    for name in ALL_SCORES:
        if any(name in found[row] for row in rows):
            column = COPIES_PERCENT if name == "copies" else name
            scale = 100 if name == "copies" else 1
            table[column] = [None if name not in found[row]
                             else float(f"{float(found[row][name]) * scale:.4g}") for row in rows]
    return table


def _scores_from_metrics(metrics: dict[str, float]) -> dict[str, dict[str, float]]:
    """``{row: {score: value}}`` of a run evaluated before :data:`SCORES_TABLE` existed, when
    every score was a metric ``scores/<score>[ <row>]`` (``scores/FD floor``)."""
    from dcgan.results import ROWS

    out: dict[str, dict[str, float]] = {}
    for key, value in metrics.items():
        if key.startswith(SCORE_PREFIX):
            name, row = key[len(SCORE_PREFIX):], "generator"
            for other in ROWS[1:]:
                if name.endswith(f" {other}"):
                    name, row = name[: -len(other) - 1], other
            out.setdefault(row, {})[name] = value
    return out


def read_scores(client: Any, run: Any, scratch: Path) -> dict[str, dict[str, float]]:
    """A run's :data:`SCORES_TABLE` as ``{row: {score: value}}`` (``copies`` back as a
    fraction); from its metrics for a run evaluated before the table existed."""
    try:
        path = client.download_artifacts(run.info.run_id, SCORES_TABLE, str(scratch))
    except Exception:  # an older run, or the store was down when it was evaluated
        return _scores_from_metrics(run.data.metrics)
    table = json.loads(Path(path).read_text())
    columns = table["columns"]
    out = {}
    for values in table["data"]:
        cells = dict(zip(columns, values))
        row = cells.pop("row")
        out[row] = {k: v for k, v in cells.items() if v is not None}
        if COPIES_PERCENT in out[row]:
            out[row]["copies"] = out[row].pop(COPIES_PERCENT) / 100
    return out


def _with_training_run(train: Path, what: str, fn: Callable[[Any, str], None]) -> str | None:
    """Call ``fn(client, run_id)`` on the MLflow run the train stage recorded in its outputs
    ``train`` (:data:`RECORD`).

    Returns None on success, else one line saying what was not logged (never raises).
    """
    run_file = Path(train) / RECORD
    if not run_file.is_file():
        return f"{run_file} missing: {what} not logged to MLflow"
    saved = json.loads(run_file.read_text())
    try:
        fn(import_mlflow().MlflowClient(saved["uri"]), saved["run_id"])
    except Exception as err:  # any store failure
        return (f"MLflow at {saved['uri']} failed ({store.cause(err, saved['uri'])}); {what} not logged; "
                f"{store.fix(saved['uri'], err)}")
    return None


def log_evaluation(train: Path, result: dict[str, Any], files: Path) -> str | None:
    """The evaluation into the training run: the headline scores as metrics
    (:func:`score_metrics`), every score as the table :data:`SCORES_TABLE`, what they were
    scored against as the tag ``eval.reference``, and the folder ``files`` (``details.json``
    with every number, class histograms included, ``nearest.png``) as the artifacts ``eval/``."""
    def log(client: Any, run_id: str) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        client.log_batch(run_id, metrics=[Metric(k, v, now, 0)
                                          for k, v in score_metrics(result).items()])
        client.set_tag(run_id, "eval.reference", result["reference"])
        client.log_artifacts(run_id, str(files), "eval")
        with warnings.catch_warnings():  # pandas' notes on the str column: not for users
            warnings.simplefilter("ignore")
            client.log_table(run_id, scores_table(result), SCORES_TABLE)

    return _with_training_run(train, "evaluation metrics", log)


def log_folder_to_training_run(train: Path, folder: Path, artifact_path: str) -> str | None:
    """Upload ``folder`` as artifacts under ``artifact_path`` of the training run."""
    return _with_training_run(train, f"{artifact_path} artifacts", lambda client, run_id:
                              client.log_artifacts(run_id, str(folder), artifact_path))
