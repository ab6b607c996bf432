"""`compare`: every loss variant on one data set, mean ± std over seeds, from the MLflow runs.

    python stages/compare.py                      # the data set in params.yaml
    python stages/compare.py --dataset mnist      # -> reports/compare/mnist/compare.md
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections import Counter
from pathlib import Path

from dcgan import atomic
from dcgan.tracking.compare import evaluated_runs, figures, find_runs, short_name, table
from dcgan.config import load_params
from dcgan.errors import UserError, run_stage
from dcgan.tracking import EXPERIMENT, import_mlflow, tracking_uri


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--dataset", help="the `dataset` tag of the runs (default: params.yaml's)")
    parser.add_argument("--experiment", default=EXPERIMENT, help="MLflow experiment name")
    parser.add_argument("--out", help="report folder (default: reports/compare/<data set's "
                        "name>, e.g. reports/compare/mnist-5k for idx:../shared/data/mnist-5k)")
    args = parser.parse_args()
    dataset = args.dataset or load_params(args.params).dataset
    out = Path(args.out or Path("reports/compare") / short_name(dataset))
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # the table is the output
    mlflow = import_mlflow()
    mlflow.set_tracking_uri(tracking_uri())
    client = mlflow.MlflowClient()
    runs = find_runs(client, args.experiment, dataset)
    if not runs:
        others = Counter(r.data.tags.get("dataset") for r in evaluated_runs(client, args.experiment))
        have = "; ".join(f"--dataset {d} ({n} runs)" for d, n in others.most_common(5))
        raise UserError(f"no finished, evaluated runs of dataset {dataset!r} in experiment "
                        f"{args.experiment!r} at {tracking_uri()}; "
                        + (f"there are: {have}" if have else "run `dvc repro` or `dvc exp run` first"))
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
    print(table(runs), end="")
    print(f"compare: {len(runs)} runs of {dataset} -> {out / 'compare.md'}")


if __name__ == "__main__":
    run_stage(main)
