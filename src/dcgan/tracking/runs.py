"""MLflow runs for the stages (the library's model, training and metric code never imports it).

The default store is an absolute sqlite file at the repo root, so runs from ``dvc repro``,
``dvc exp run`` and queued experiments (which run in temp copies of the repo) land in one
place; the experiment's artifact location is absolute for the same reason. Tracker settings
come from the environment (``MLFLOW_TRACKING_URI``, ``MLFLOW_EXPERIMENT_NAME``), never from
DVC params. If the store fails, training goes on and one line says what was not logged.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

from dcgan import atomic
from dcgan.config import Params, flatten
from dcgan.paths import repo_root, resolve
from dcgan.tracking import store
from dcgan.tracking.dataset import dataset_input

EXPERIMENT = "dcgan"
# MLflow 3's UI opens an experiment without this tag in its GenAI view (traces, agent versions);
# this value selects the model-training view (runs, metrics, logged models). Key and value as
# in MLflow's own UI code (ExperimentKind.CUSTOM_MODEL_DEVELOPMENT).
EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")
# The run's budget and cost, once at the end (the losses are per epoch already)
FINAL = ("iterations", "epochs", "batch_size", "d_steps", "r1", "wall_time_s",
         "images_per_second", "best_epoch")
DVC_TAGS = {"DVC_EXP_NAME": "dvc.exp_name", "DVC_EXP_BASELINE_REV": "dvc.baseline_rev",
            "DVC_STAGE": "dvc.stage"}


def import_mlflow() -> Any:
    """Import mlflow (slow, so only when used), its HTTP waits bounded and its logs silenced."""
    import mlflow

    store.bound_and_quiet()
    return mlflow


def tracking_uri() -> str:
    """``$MLFLOW_TRACKING_URI``, else ``sqlite:///<repo root>/mlflow.db`` (absolute)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{repo_root() / 'mlflow.db'}"


class Guarded:
    """Logging that never stops the work it records: the first store failure is kept, later
    calls are skipped and named, and :meth:`problem` says it all in one line."""

    uri: str
    kept = "the training outputs were still written"  # what the failure did not cost

    def __init__(self) -> None:
        self.error: Exception | None = None
        self.not_logged: list[str] = []

    def _guard(self, what: str, fn: Callable[[], Any]) -> None:
        """Run one logging call; after the first failure, only record what is skipped."""
        if self.error is None:
            try:
                fn()
                return
            except Exception as err:  # any store failure: network, database, permissions
                self.error = err
        if what not in self.not_logged:
            self.not_logged.append(what)

    def problem(self) -> str | None:
        """One line on what was not logged, or None when everything was."""
        if self.error is None:
            return None
        return (f"MLflow at {self.uri} failed ({store.cause(self.error, self.uri)}); not logged: "
                f"{', '.join(self.not_logged)}; {self.kept}; {store.fix(self.uri, self.error)}")


class MlflowLogger(Guarded):
    """One MLflow run per training of one param set; failures are collected, not raised.

    A resumed run (same ``train.epochs``) goes on in its MLflow run; a run extended to more
    epochs, or cut to fewer, is a new MLflow run with its real params, tagged
    ``dcgan.extends`` with the run it continues, holding the whole history. A step already
    in a run is never logged again.
    """

    def __init__(self, params: Params, meta: dict[str, Any]):
        super().__init__()
        self.params, self.meta = params, meta
        self.record: Path | None = None  # the run folder's mlflow_run.json, given by start()
        self.description = ""
        self.uri = tracking_uri()
        self.mlflow: Any = None
        self.notes: list[str] = []  # what start() did that a user should know (one line each)
        self.logged_through = 0  # the last epoch (step) the run holds
        self.was_finished = False  # reopened a finished run: nothing new to add at the end

    def start(self, record: Path, epoch: int = 0, history: Sequence[dict[str, float]] = (),
              grids: dict[int, Path] | None = None, description: str = "") -> None:
        """Open this training's run: the one it resumes, or a new one holding ``history``.

        Args:
            record: The run folder's ``mlflow_run.json`` (``dcgan.paths.MLFLOW_RECORD``): which
                MLflow run it logs to (read, then written).
            epoch: The epoch training resumes after (0: from scratch).
            history: Per-epoch metrics of epochs 1..``epoch`` (``{"epoch": e, name: value}``).
            grids: Epoch -> fixed-noise grid of epochs 1..``epoch``.
            description: What the run is, in a sentence (the run page's Description).
        """
        self.record, self.description = Path(record), description
        self._guard("the whole run (params, metrics, grids, model)",
                    lambda: self._start(epoch, history, grids or {}))
        for note in self.notes:
            print(f"train: {note}")

    def _start(self, epoch: int, history: Sequence[dict[str, float]], grids: dict[int, Path]) -> None:
        mlflow = import_mlflow()
        mlflow.set_tracking_uri(self.uri)
        p, saved = self.params, self.record
        with store.creation_lock(self.uri):
            exp_id, note = store.open_repaired(self.uri, lambda: self._experiment_id(mlflow))
            _mark_model_training(mlflow, exp_id)
            self.notes += [note] if note else []
            old, old_epochs = self._recorded_run(mlflow, exp_id, saved)
            same = old is not None and self._continues(mlflow, old, old_epochs, epoch)
            if old is not None and not same and old.info.status == "RUNNING":  # killed: say so
                mlflow.MlflowClient().set_terminated(old.info.run_id, "KILLED")
            run_name = os.environ.get("DVC_EXP_NAME") or f"{p.loss}-seed{p.seed}"
            mlflow.start_run(run_id=old.info.run_id if same else None, experiment_id=exp_id,
                             run_name=None if same else run_name)
        atomic.write_json(saved, {"run_id": mlflow.active_run().info.run_id, "uri": self.uri,
                                  "epochs": p.train.epochs})
        tags = {"dataset": self.meta["dataset"], "loss": p.loss}
        if self.description:
            tags["mlflow.note.content"] = self.description  # the run page's Description
        if not same:
            mlflow.log_params(flatten(p))
            if (dataset := dataset_input(self.meta)) is not None:  # the run list's Dataset
                mlflow.log_input(dataset, context="training")
            if old is not None and epoch:
                tags["dcgan.extends"] = old.info.run_id
        tags.update({tag: os.environ[env] for env, tag in DVC_TAGS.items() if os.environ.get(env)})
        mlflow.set_tags(tags)
        self.mlflow = mlflow  # only now: the other calls log nothing when the run never opened
        self._backfill(None if same else old, epoch, history, grids)

    def _recorded_run(self, mlflow: Any, exp_id: str, saved: Path) -> tuple[Any, Any]:
        """The run the record names and the epochs it was started for, if it is usable."""
        try:
            record = json.loads(saved.read_text())
        except (OSError, ValueError):
            return None, None
        if record.get("uri") != self.uri:
            return None, None  # written for another store
        try:
            run = mlflow.get_run(record["run_id"])
        except mlflow.exceptions.MlflowException as err:
            if store.error_code(err) != "RESOURCE_DOES_NOT_EXIST":
                raise
            self.notes.append(f"MLflow run {record['run_id']} (recorded in {saved}) is not in "
                              f"{self.uri}, whose store was replaced; starting a new run")
            return None, None
        if run.info.experiment_id != exp_id or run.info.lifecycle_stage != "active":
            return None, None
        return run, record.get("epochs")

    def _continues(self, mlflow: Any, run: Any, run_epochs: Any, epoch: int) -> bool:
        """Whether this training goes on in ``run``: the same epoch target, and either resumed
        (``epoch`` > 0) or a run that logged no epoch yet."""
        if run_epochs != self.params.train.epochs:
            return False
        history = mlflow.MlflowClient().get_metric_history(run.info.run_id, "g_loss")
        if epoch == 0 and history:
            return False  # trained again from scratch: a run of its own
        self.logged_through = max((m.step for m in history), default=0)
        self.was_finished = run.info.status == "FINISHED"
        return True

    def _backfill(self, source: Any, epoch: int, history: Sequence[dict[str, float]],
                  grids: dict[int, Path]) -> None:
        """Log epochs the run lacks up to ``epoch``: copied from the ``source`` run (every
        per-epoch metric), else from the checkpoint's ``history``; then their grids."""
        start = self.logged_through
        if epoch <= start:
            return
        from mlflow.entities import Metric

        client, run_id = self.mlflow.MlflowClient(), self.mlflow.active_run().info.run_id
        metrics, copied = [], set()
        for key in source.data.metrics if source is not None else ():
            for m in client.get_metric_history(source.info.run_id, key):
                if start < m.step <= epoch:
                    metrics.append(Metric(key, m.value, m.timestamp, m.step))
                    copied.add(m.step)
        now = int(time.time() * 1000)
        for row in history:
            if start < row["epoch"] <= epoch and row["epoch"] not in copied:
                metrics += [Metric(k, float(v), now, row["epoch"]) for k, v in row.items() if k != "epoch"]
        for i in range(0, len(metrics), 1000):  # MLflow's batch limit
            client.log_batch(run_id, metrics=metrics[i:i + 1000])
        for step in sorted(e for e in grids if start < e <= epoch):
            self._log_grid(grids[step], step)
        self.logged_through = epoch

    def _experiment_id(self, mlflow: Any) -> str:
        """Get or create the experiment (a local store gets an absolute artifact folder)."""
        return experiment_id(mlflow, self.uri, os.environ.get("MLFLOW_EXPERIMENT_NAME", EXPERIMENT))

    def log_epoch(self, epoch: int, metrics: dict[str, float], grid: Path | None) -> None:
        """Per-epoch means as metrics at ``step=epoch``, and the fixed-noise grid as an image
        (not when the run holds that step already: a resume from ``prev.pt`` retrains it)."""
        if self.mlflow is None or epoch <= self.logged_through:  # never started, or logged
            return
        self._guard("epoch metrics", lambda: self.mlflow.log_metrics(metrics, step=epoch))
        if grid is not None:
            self._guard("epoch grids", lambda: self._log_grid(grid, epoch))
        self.logged_through = epoch

    def _log_grid(self, grid: Path, epoch: int) -> None:
        from PIL import Image

        with Image.open(grid) as img:
            self.mlflow.log_image(img.copy(), key="fixed_noise_grid", step=epoch)

    def finish(self, out: Path, metrics: dict[str, Any], generator: Any, nz: int) -> None:
        """Final metrics, the loss CSVs and the generator (``mlflow.pytorch.log_model``)."""
        if self.mlflow is None or self.was_finished:  # a finished run holds them already
            return
        numeric = {f"final.{k}": float(metrics[k]) for k in FINAL if k in metrics}
        self._guard("final metrics", lambda: self.mlflow.log_metrics(numeric))
        self._guard("loss CSVs", lambda: self.mlflow.log_artifacts(str(out / "plots"), "plots"))
        self._guard("the generator model", lambda: self._log_model(generator, nz))

    def _log_model(self, generator: Any, nz: int) -> None:
        import torch
        from mlflow.models import infer_signature

        model = generator.cpu().eval()
        z = torch.randn(2, nz, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            out = model(z)
        # Requirements given, not inferred: inference re-imports the model in a subprocess
        # (6 s of a 1-epoch CPU run). MLflow saves it with torch.export (its default "pt2"
        # format): a graph that loads without the dcgan package and runs no pickled code.
        with warnings.catch_warnings():  # torch.export's notes on a CPU model: not for users
            warnings.simplefilter("ignore", UserWarning)
            self.mlflow.pytorch.log_model(
                model, name="generator", input_example=z.numpy(),
                signature=infer_signature(z.numpy(), out.numpy()),
                pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"])

    def end(self, status: str = "FINISHED") -> None:
        """Close the run (``FAILED`` when training raised). After a store failure the run is
        still left in this process (MLflow would refuse the next one), as far as it can be."""
        if self.mlflow is None:
            return
        if self.error is None:
            self._guard("run status", lambda: self.mlflow.end_run(status=status))
        else:
            with contextlib.suppress(Exception):  # forgets the run, then fails to reach the store
                self.mlflow.end_run(status=status)



def experiment_id(mlflow: Any, uri: str, name: str) -> str:
    """Get or create the experiment ``name`` at ``uri`` (a local store gets an absolute
    artifact folder)."""
    exp = mlflow.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    # A local store's artifacts go beside its sqlite file (by default both at the repo
    # root: queued runs live in temp dirs), else to the repo root; a tracking server keeps
    # its own (proxied) artifact store.
    local = uri.startswith(("sqlite:", "file:")) or "://" not in uri
    db = store.sqlite_path(uri)
    home = resolve(db).parent if db else repo_root()
    location = (home / "mlartifacts").as_uri() if local else None
    try:
        return mlflow.create_experiment(name, artifact_location=location)
    except mlflow.exceptions.MlflowException:  # created meanwhile by another process
        return mlflow.get_experiment_by_name(name).experiment_id


def _mark_model_training(mlflow: Any, exp_id: str) -> None:
    """Tag the experiment so that MLflow 3's UI opens it in model-training mode (once)."""
    key, value = EXPERIMENT_KIND
    if key not in mlflow.get_experiment(exp_id).tags:  # never overrule a user's choice
        mlflow.MlflowClient().set_experiment_tag(exp_id, key, value)
