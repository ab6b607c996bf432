"""`compare`: every loss variant on one data set, mean ± std over seeds, from the MLflow runs.

    python stages/compare.py                      # the data set in params.yaml
    python stages/compare.py --dataset mnist --out reports/mnist
"""

from __future__ import annotations

import argparse
import re
import tempfile
from pathlib import Path

from dcgan import atomic
from dcgan.tracking.compare import figures, find_runs, table
from dcgan.config import load_params
from dcgan.errors import UserError, run_stage
from dcgan.tracking import EXPERIMENT, import_mlflow, tracking_uri


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--dataset", help="the `dataset` tag of the runs (default: params.yaml's)")
    parser.add_argument("--experiment", default=EXPERIMENT, help="MLflow experiment name")
    parser.add_argument("--out", help="report folder (default: reports/<dataset>)")
    args = parser.parse_args()
    dataset = args.dataset or load_params(args.params).dataset
    out = Path(args.out or Path("reports") / re.sub(r"[^A-Za-z0-9._-]+", "_", dataset).strip("_"))
    mlflow = import_mlflow()
    mlflow.set_tracking_uri(tracking_uri())
    client = mlflow.MlflowClient()
    runs = find_runs(client, args.experiment, dataset)
    if not runs:
        raise UserError(f"no finished, evaluated runs of dataset {dataset!r} in experiment "
                        f"{args.experiment!r} at {tracking_uri()}; run `dvc repro` or "
                        "`dvc exp run` first, or pass --dataset")
    with atomic.output_dir(out) as tmp, tempfile.TemporaryDirectory() as scratch:
        text = (f"# {dataset}: loss variants compared\n\n{len(runs)} runs; mean ± std over "
                "seeds where there are several. Scores are against the held-out split (see "
                "each run's eval metrics); the floor row is real data scored the same way.\n\n"
                + table(runs) + "\n![final grids](grids.png)\n\n![losses](losses.png)\n")
        atomic.write_text(tmp / "compare.md", text)
        figures(client, runs, tmp, Path(scratch))
    with mlflow.start_run(experiment_id=client.get_experiment_by_name(args.experiment).experiment_id,
                          run_name=f"compare {dataset}", tags={"dataset": dataset, "kind": "compare"}):
        mlflow.log_artifacts(str(out), "compare")
    print(f"compare: {len(runs)} runs of {dataset} -> {out / 'compare.md'}")


if __name__ == "__main__":
    run_stage(main)
