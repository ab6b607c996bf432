"""Does the fast path train as well as plain fp32 eager? Classifier-space FD over seeds, both.

Trains one DCGAN per seed and path on an IDX folder (the mnist-5k sample by default): the
"fast" path with params.yaml as it is (bf16 autocast on CUDA, channels_last, plus any --set),
the "reference" path with fp32, the default memory layout and no torch.compile. Each G is
scored by the classifier-space Fréchet distance against held-out real images. Needs torch
only (no dvc, no mlflow); prints a table and writes benchmarks/results/quality-<device>-<date>.json.

    python benchmarks/quality.py                              # 3 seeds x 2 paths, 5 epochs
    python benchmarks/quality.py --set train.compile=default  # the compiled fast path
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import torch

from benchlib import REPO, Session, device_name, parse_set, slug
from dcgan import atomic
from dcgan.classifier import DomainClassifier, epochs_for, fit
from dcgan.config import Params, load_params
from dcgan.data.download import download
from dcgan.data.preprocess import preprocess
from dcgan.data.prepared import hold_out, load_split
from dcgan.data.sources import parse_dataset, sample_dir
from dcgan.device import resolve_device
from dcgan.scoring import fd_scorer

REFERENCE = {"train.precision": "fp32", "train.channels_last": False, "train.compile": "eager"}


def _prepare(source: Path, tmp: Path, params: Params, seed: int):
    """Prepared data, a held-out 10% (by seed) and a domain classifier trained on the rest."""
    download(parse_dataset(f"idx:{source}"), tmp / "raw")
    p = params.preprocess
    preprocess(tmp / "raw", tmp / "prepared", seed, image_size=p.image_size, channels=p.channels,
               max_images=p.max_images)
    (images, labels), (held, _) = hold_out(*load_split(tmp / "prepared", "train"), seed)
    c = params.classifier
    epochs = epochs_for(len(images), c.epochs, c.min_steps, c.batch_size)
    torch.manual_seed(seed)
    model = DomainClassifier(nc=images.shape[1], num_classes=int(labels.max()) + 1, width=c.width)
    device = resolve_device("auto")
    model = fit(model, images, labels, epochs=epochs, batch_size=c.batch_size, lr=c.lr,
                seed=seed, device=device)
    return tmp / "prepared", held, model.to(device), device


def _score(prepared: Path, workdir: Path, overrides: dict, scorer) -> tuple[float, float]:
    session = Session(load_params(REPO / "params.yaml", overrides), prepared, workdir)
    session.run()
    return scorer(session.trainer.G), session.metrics()["images_per_second"]


def summarise(runs: dict[str, list[dict]]) -> dict[str, dict[str, float]]:
    """FD mean and sample standard deviation over seeds, per path (paths with a run)."""
    return {p: {"mean": statistics.mean(r["frechet_distance"] for r in rs),
                "std": statistics.stdev([r["frechet_distance"] for r in rs]) if len(rs) > 1 else 0.0}
            for p, rs in runs.items() if rs}


def compare(source: Path, paths: dict[str, dict], seeds: int, epochs: int, batch: int,
            common: dict | None = None, deadline: float = float("inf"),
            on_run: Callable[[str, dict], None] | None = None,
            on_error: Callable[[str, int, Exception], None] | None = None) -> dict:
    """Train ``seeds`` seeds of each path (name -> params overrides) on the IDX folder ``source``
    and score each G by classifier-space FD against a held-out 10%.

    ``common`` overrides apply to every path and to the data and classifier (e.g. smaller
    models). Runs go seed-major; ``on_run(path, row)`` hears of each. A run that would start
    after ``deadline`` (``time.monotonic()``) is skipped and counted in the result's
    ``skipped``; with ``on_error``, a run that raises is reported to it and the rest go on.
    """
    common = common or {}
    base = {**common, "train.epochs": epochs, "train.batch_size": batch, "train.eval_every": 0}
    runs: dict[str, list[dict]] = {p: [] for p in paths}
    skipped = 0
    with tempfile.TemporaryDirectory() as tmp:
        params = load_params(REPO / "params.yaml", common)
        prepared, held, clf, device = _prepare(Path(source), Path(tmp), params, seed=0)
        scorer = fd_scorer(clf, held, params.model.nz, device, seed=1)
        for seed in range(seeds):
            for path, extra in paths.items():
                if time.monotonic() > deadline:
                    skipped += 1
                    continue
                overrides = {**base, "seed": seed, "train.device": str(device), **extra}
                try:
                    fd, ips = _score(prepared, Path(tmp) / f"{path}-{seed}", overrides, scorer)
                except Exception as err:
                    if on_error is None:
                        raise
                    on_error(path, seed, err)
                    continue
                row = {"seed": seed, "frechet_distance": fd, "images_per_second": ips}
                runs[path].append(row)
                if on_run is not None:
                    on_run(path, row)
    return {"device": device_name(device), "held_out": len(held), "runs": runs,
            "summary": summarise(runs), "skipped": skipped}


def _print_run(path: str, row: dict) -> None:
    print(f"{path:9s} seed {row['seed']}: FD {row['frechet_distance']:8.3f}  "
          f"({row['images_per_second']:.0f} img/s)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default=str(sample_dir("mnist-5k")),
                        help="an IDX folder (MNIST layout); default: the built-in mnist-5k sample")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a params override for the fast path (YAML value)")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    args = parser.parse_args()
    fast = parse_set(parser, args.set)
    done = compare(Path(args.source), {"fast": fast, "reference": REFERENCE}, args.seeds,
                   args.epochs, args.batch, on_run=_print_run)
    print("path | FD mean ± std over seeds\n---|---")
    for p, s in done["summary"].items():
        print(f"{p} | {s['mean']:.3f} ± {s['std']:.3f}")
    result = {"device": done["device"], "date": dt.date.today().isoformat(),
              "torch": torch.__version__, "command": " ".join(sys.argv), "source": args.source,
              "epochs": args.epochs, "batch": args.batch, "fast_overrides": fast,
              "reference_overrides": REFERENCE, "runs": done["runs"], "summary": done["summary"]}
    path = Path(args.out) / f"quality-{slug(result['device'])}-{result['date']}.json"
    atomic.write_json(path, result)
    print(f"-> {path}")


if __name__ == "__main__":
    main()
