"""A study in MLflow: one parent run per study, one nested run per trial.

The parent run (tags ``kind=study``, ``optuna.study``, ``loss``, ``dataset``) holds the
study's budget as params and, once the study has its trials, the best params, the counts,
the figures and the tuned file as artifacts. Each trial's nested run holds its params, the
FD curve (metric ``fd`` at each interval's G step), the final scores and its last grid; a
pruned trial's run ends KILLED. Several workers share the parent run: the worker that created
the study creates it and keeps its id in the study's user attributes, where the others wait
for it. A store failure never stops the study: one line says what was
not logged.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

from dcgan.tracking import store
from dcgan.tracking.runs import Guarded, experiment_id, import_mlflow, tracking_uri

PARENT = "mlflow_parent_run"  # the study's user attribute holding the parent run's id
WAIT_S = 60  # how long a worker waits for the study's creator to make the parent run


class StudyTracker(Guarded):
    """Logs one loss's study; the objective calls ``start_trial``/``interval``/``end_trial``."""

    kept = "the study itself is in its storage"

    def __init__(self, study: Any, loss: str, meta: dict[str, Any], experiment: str,
                 created: bool = True):
        super().__init__()
        self.study, self.uri = study, tracking_uri()
        self.client, self.trial_run, self.parent = None, None, None
        self._guard("the study's parent run", lambda: self._open(loss, meta, experiment,
                                                                 created))

    def _open(self, loss: str, meta: dict[str, Any], experiment: str, created: bool) -> None:
        mlflow = import_mlflow()
        mlflow.set_tracking_uri(self.uri)
        if not created:  # the study's creator makes the parent run; give it a minute
            deadline = time.monotonic() + WAIT_S
            while PARENT not in self.study.user_attrs and time.monotonic() < deadline:
                time.sleep(1)
        with store.creation_lock(self.uri):  # the client creates a sqlite store's schema
            self.client = mlflow.MlflowClient()
            self.exp_id = experiment_id(mlflow, self.uri, experiment)
            self.parent = self.study.user_attrs.get(PARENT)
            if self.parent is None:  # the creator, or a study made with --no-mlflow
                run = self.client.create_run(self.exp_id, run_name=self.study.study_name, tags={
                    "kind": "study", "optuna.study": self.study.study_name, "loss": loss,
                    "dataset": meta["dataset"]})
                self.parent = run.info.run_id
                self.client.log_batch(self.parent, params=_params(meta))
                self.study.set_user_attr(PARENT, self.parent)

    def start_trial(self, number: int, params: dict[str, Any]) -> None:
        """A nested run for trial ``number`` with its sampled params."""
        def start() -> None:
            run = self.client.create_run(self.exp_id, run_name=f"trial {number}", tags={
                "mlflow.parentRunId": self.parent, "kind": "trial", "optuna.trial": str(number),
                "optuna.study": self.study.study_name})
            self.trial_run = run.info.run_id
            self.client.log_batch(self.trial_run, params=_params(params))
        self.trial_run = None
        self._guard("trial runs", start)

    def interval(self, g_steps: int, fd: float) -> None:
        """One point of the trial's FD curve."""
        if self.trial_run:
            self._guard("FD curves", lambda: self.client.log_metric(self.trial_run, "fd", fd,
                                                                    step=g_steps))

    def end_trial(self, state: str, result: dict[str, Any], grid: Path | None) -> None:
        """Final scores and the grid (COMPLETE), then the run's status (KILLED when pruned)."""
        if not self.trial_run:
            return
        run_id = self.trial_run
        numbers = {f"final.{k}": float(v) for k, v in result.items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)}
        self._guard("trial scores", lambda: [self.client.log_metric(run_id, k, v)
                                             for k, v in numbers.items()])
        if grid is not None:
            self._guard("trial grids", lambda: self.client.log_artifact(run_id, str(grid)))
        status = "FINISHED" if state == "COMPLETE" else "KILLED"
        self._guard("trial status", lambda: self.client.set_terminated(run_id, status))
        if grid is not None:
            with contextlib.suppress(OSError):
                grid.unlink()

    def finish(self, record: dict[str, Any], files: list[Path]) -> None:
        """The best params, counts and scores, the figures and files; the parent run ends."""
        def log() -> None:
            best = {f"best.{k}": v for k, v in record["params"].items()}
            self.client.set_tag(self.parent, "best_trial", str(record["study"]["best_trial"]))
            self.client.log_batch(self.parent, params=_params(best, skip=self._logged()))
            counts = {f"trials.{k}": float(v) for k, v in record["trials"].items()}
            scores = {f"best.{k}": float(v) for k, v in record["scores"].items() if v is not None}
            for key, value in {**counts, **scores}.items():
                self.client.log_metric(self.parent, key, value)
            for path in files:
                if Path(path).is_file():
                    self.client.log_artifact(self.parent, str(path), "study")
            self.client.set_terminated(self.parent, "FINISHED")
        if self.parent:
            self._guard("the study's best params and figures", log)

    def _logged(self) -> set[str]:
        return set(self.client.get_run(self.parent).data.params)



def _params(values: dict[str, Any], skip: set[str] = frozenset()) -> list[Any]:
    from mlflow.entities import Param

    # a param is written once: a second worker finishing the study logs only what is new
    return [Param(k, str(v)) for k, v in values.items() if k not in skip]
