"""MLflow tracking for the stages (the library's model, training and metric code never imports it).

The default store is an absolute sqlite file at the repo root, so runs from ``dvc repro``,
``dvc exp run`` and queued experiments (which run in temp copies of the repo) land in one
place; the experiment's artifact location is absolute for the same reason. Tracker settings
come from the environment (``MLFLOW_TRACKING_URI``, ``MLFLOW_EXPERIMENT_NAME``), never from
DVC params. If the store fails, training goes on and one line says what was not logged.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path
from typing import Any, Callable

from filelock import FileLock

from dcgan import atomic
from dcgan.config import Params, flatten
from dcgan.paths import repo_root, resolve

EXPERIMENT = "dcgan"
# MLflow 3's UI opens an experiment without this tag in its GenAI view (traces, agent versions);
# this value selects the model-training view (runs, metrics, logged models). Key and value as
# in MLflow's own UI code (ExperimentKind.CUSTOM_MODEL_DEVELOPMENT).
EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")
DVC_TAGS = {"DVC_EXP_NAME": "dvc.exp_name", "DVC_EXP_BASELINE_REV": "dvc.baseline_rev",
            "DVC_STAGE": "dvc.stage"}


def import_mlflow() -> Any:
    """Import mlflow (slow, so only when used), its INFO chatter (schema setup...) silenced."""
    import mlflow

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    return mlflow


def tracking_uri() -> str:
    """``$MLFLOW_TRACKING_URI``, else ``sqlite:///<repo root>/mlflow.db`` (absolute)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{repo_root() / 'mlflow.db'}"


class MlflowLogger:
    """One MLflow run per training run, resumed with it; failures are collected, not raised."""

    def __init__(self, run_dir: Path, params: Params, meta: dict[str, Any]):
        self.run_dir, self.params, self.meta = run_dir, params, meta
        self.uri = tracking_uri()
        self.error: Exception | None = None
        self.not_logged: list[str] = []
        self.mlflow: Any = None

    def _guard(self, what: str, fn: Callable[[], None]) -> None:
        """Run one logging call; after the first failure, only record what is skipped."""
        if self.error is None:
            try:
                fn()
                return
            except Exception as err:  # any store failure: network, sqlite, permissions
                self.error = err
        if what not in self.not_logged:
            self.not_logged.append(what)

    def start(self) -> None:
        """Open (or reopen, after a resume) the run, with params and tags."""
        self._guard("the whole run (params, metrics, grids, model)", self._start)

    def _start(self) -> None:
        mlflow = import_mlflow()
        mlflow.set_tracking_uri(self.uri)
        db = self.uri.removeprefix("sqlite:///") if self.uri.startswith("sqlite:///") else None
        # Queued experiments start side by side: without a lock two processes race to create
        # the sqlite schema ("table experiments already exists") or the experiment itself.
        with FileLock(f"{db}.lock", timeout=300) if db else contextlib.nullcontext():
            exp_id = self._experiment_id(mlflow, db)
            _mark_model_training(mlflow, exp_id)
            saved = self.run_dir / "mlflow_run.json"
            run_id = json.loads(saved.read_text())["run_id"] if saved.is_file() else None
            if run_id and mlflow.get_run(run_id).info.experiment_id != exp_id:
                run_id = None  # written for another store or experiment
            p = self.params
            run_name = os.environ.get("DVC_EXP_NAME") or f"{p.loss}-seed{p.seed}"
            mlflow.start_run(run_id=run_id, experiment_id=exp_id,
                             run_name=None if run_id else run_name)
        atomic.write_json(saved, {"run_id": mlflow.active_run().info.run_id, "uri": self.uri})
        if run_id is None:
            mlflow.log_params(flatten(p))
        tags = {"dataset": self.meta["dataset"], "loss": p.loss}
        tags.update({tag: os.environ[env] for env, tag in DVC_TAGS.items() if os.environ.get(env)})
        mlflow.set_tags(tags)
        self.mlflow = mlflow  # only now: the other calls log nothing when the run never opened

    def _experiment_id(self, mlflow: Any, db: str | None) -> str:
        """Get or create the experiment (a local store gets an absolute artifact folder)."""
        name = os.environ.get("MLFLOW_EXPERIMENT_NAME", EXPERIMENT)
        exp = mlflow.get_experiment_by_name(name)
        if exp is not None:
            return exp.experiment_id
        # A local store's artifacts go beside its sqlite file (by default both at the repo
        # root: queued runs live in temp dirs), else to the repo root; a tracking server keeps
        # its own (proxied) artifact store.
        local = self.uri.startswith(("sqlite:", "file:")) or "://" not in self.uri
        home = resolve(db).parent if db else repo_root()
        location = (home / "mlartifacts").as_uri() if local else None
        try:
            return mlflow.create_experiment(name, artifact_location=location)
        except mlflow.exceptions.MlflowException:  # created meanwhile by another process
            return mlflow.get_experiment_by_name(name).experiment_id

    def log_epoch(self, epoch: int, metrics: dict[str, float], grid: Path) -> None:
        """Per-epoch means as metrics at ``step=epoch``, and the fixed-noise grid as an image."""
        if self.mlflow is None:  # never started: start() recorded that
            return
        self._guard("epoch metrics", lambda: self.mlflow.log_metrics(metrics, step=epoch))
        self._guard("epoch grids", lambda: self._log_grid(grid, epoch))

    def _log_grid(self, grid: Path, epoch: int) -> None:
        from PIL import Image

        with Image.open(grid) as img:
            self.mlflow.log_image(img.copy(), key="fixed_noise_grid", step=epoch)

    def finish(self, out: Path, metrics: dict[str, Any], generator: Any, nz: int) -> None:
        """Final metrics, the loss CSVs and the generator (``mlflow.pytorch.log_model``)."""
        if self.mlflow is None:
            return
        numeric = {f"final.{k}": float(v) for k, v in metrics.items() if isinstance(v, (int, float))}
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
        self.mlflow.pytorch.log_model(
            model, name="generator", input_example=z.numpy(),
            signature=infer_signature(z.numpy(), out.numpy()),
            pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"])

    def end(self, status: str = "FINISHED") -> None:
        """Close the run (``FAILED`` when training raised)."""
        if self.mlflow is not None:
            self._guard("run status", lambda: self.mlflow.end_run(status=status))

    def problem(self) -> str | None:
        """One line on what was not logged, or None when everything was."""
        if self.error is None:
            return None
        return (f"MLflow at {self.uri} failed ({_reason(self.error)}); not logged: {', '.join(self.not_logged)}; "
                "the training outputs were still written")


def _mark_model_training(mlflow: Any, exp_id: str) -> None:
    """Tag the experiment so that MLflow 3's UI opens it in model-training mode (once)."""
    key, value = EXPERIMENT_KIND
    if key not in mlflow.get_experiment(exp_id).tags:  # never overrule a user's choice
        mlflow.MlflowClient().set_experiment_tag(exp_id, key, value)


def _reason(err: Exception) -> str:
    """The first line of an error, at most 160 characters (store errors can be pages long)."""
    line = (str(err).splitlines() or [type(err).__name__])[0]
    return line if len(line) <= 160 else line[:159] + "…"


def _numbers(tree: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Flatten nested numeric results to ``{"a.b.c": value}`` (strings and lists dropped)."""
    out: dict[str, float] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_numbers(value, f"{prefix}{key}."))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[f"{prefix}{key}"] = float(value)
    return out


def _with_training_run(run_file: Path, what: str, fn: Callable[[Any, str], None]) -> str | None:
    """Call ``fn(client, run_id)`` on the MLflow run the train stage recorded in ``run_file``.

    Returns None on success, else one line saying what was not logged (never raises).
    """
    if not run_file.is_file():
        return f"{run_file} missing: {what} not logged to MLflow"
    saved = json.loads(run_file.read_text())
    try:
        fn(import_mlflow().MlflowClient(saved["uri"]), saved["run_id"])
    except Exception as err:  # any store failure
        return f"MLflow at {saved['uri']} failed ({_reason(err)}); {what} not logged"
    return None


def log_to_training_run(run_file: Path, results: dict[str, Any], prefix: str = "eval.") -> str | None:
    """Add nested numeric ``results`` as metrics (``eval.a.b``) to the training run."""
    def log(client: Any, run_id: str) -> None:
        for key, value in _numbers(results, prefix).items():
            client.log_metric(run_id, key, value)

    return _with_training_run(run_file, "evaluation metrics", log)


def log_folder_to_training_run(run_file: Path, folder: Path, artifact_path: str) -> str | None:
    """Upload ``folder`` as artifacts under ``artifact_path`` of the training run."""
    return _with_training_run(run_file, f"{artifact_path} artifacts", lambda client, run_id:
                              client.log_artifacts(run_id, str(folder), artifact_path))
