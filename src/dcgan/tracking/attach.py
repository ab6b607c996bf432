"""What the stages after training attach to its MLflow run: the evaluation's scores and files,
the report's pictures. The train stage recorded which run in its outputs (:data:`RECORD`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable

from dcgan.tracking import store
from dcgan.tracking.runs import RECORD, import_mlflow

# What the evaluate stage logs as metrics: every row's scores in one section ("scores/" sorts
# first in a run's Model metrics tab; MLflow puts unprefixed metrics last), each metric's rows
# side by side: "scores/FD" (what the run samples from), "scores/FD best", "scores/FD floor"...
SCORE_PREFIX = "scores/"


def score_metric(name: str, row: str = "generator") -> str:
    """The MLflow metric of score ``name`` (``FD``, ``IS``, ...) of an evaluated ``row``."""
    return f"{SCORE_PREFIX}{name}" + ("" if row == "generator" else f" {row}")


def score_metrics(result: dict[str, Any]) -> dict[str, float]:
    """Every row's scores (:data:`dcgan.results.ALL_SCORES`) as MLflow metrics."""
    from dcgan.results import ROWS, row_scores

    return {score_metric(name, row): float(value) for row in ROWS if row in result
            for name, value in row_scores(result[row]).items()}


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
    """The evaluation into the training run: the scores as metrics (:func:`score_metrics`),
    what they were scored against as the tag ``eval.reference``, and the folder ``files``
    (``details.json`` with every number, class histograms included, ``nearest.png``) as the
    artifacts ``eval/``."""
    def log(client: Any, run_id: str) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        client.log_batch(run_id, metrics=[Metric(k, v, now, 0)
                                          for k, v in score_metrics(result).items()])
        client.set_tag(run_id, "eval.reference", result["reference"])
        client.log_artifacts(run_id, str(files), "eval")

    return _with_training_run(train, "evaluation metrics", log)


def log_folder_to_training_run(train: Path, folder: Path, artifact_path: str) -> str | None:
    """Upload ``folder`` as artifacts under ``artifact_path`` of the training run."""
    return _with_training_run(train, f"{artifact_path} artifacts", lambda client, run_id:
                              client.log_artifacts(run_id, str(folder), artifact_path))
