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
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from dcgan import atomic  # noqa: E402
from dcgan.classifier import DomainClassifier, epochs_for, fit  # noqa: E402
from dcgan.config import Params, load_params, parse_overrides  # noqa: E402
from dcgan.data.download import download  # noqa: E402
from dcgan.data.prepare import preprocess  # noqa: E402
from dcgan.data.prepared import hold_out, load_split  # noqa: E402
from dcgan.data.sources import parse_dataset  # noqa: E402
from dcgan.device import resolve_device  # noqa: E402
from dcgan.evaluate import fd_scorer  # noqa: E402
from dcgan.training import Trainer  # noqa: E402

REFERENCE = {"train.precision": "fp32", "train.channels_last": False, "train.compile": None}


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
    trainer = Trainer(load_params(REPO / "params.yaml", overrides), prepared, workdir)
    trainer.run()
    return scorer(trainer.G), trainer.metrics()["images_per_second"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default=str(REPO.parent / "shared/data/mnist-5k"),
                        help="an IDX folder (MNIST layout)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a params override for the fast path (YAML value)")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    args = parser.parse_args()
    fast = parse_overrides(args.set)
    base = {"train.epochs": args.epochs, "train.batch_size": args.batch, "train.eval_every": 0}
    rows = {"fast": [], "reference": []}
    with tempfile.TemporaryDirectory() as tmp:
        params = load_params(REPO / "params.yaml")
        prepared, held, clf, device = _prepare(Path(args.source), Path(tmp), params, seed=0)
        scorer = fd_scorer(clf, held, params.model.nz, device, seed=1)
        for seed in range(args.seeds):
            for path, extra in (("fast", fast), ("reference", REFERENCE)):
                overrides = {**base, "seed": seed, "train.device": str(device), **extra}
                fd, ips = _score(prepared, Path(tmp) / f"{path}-{seed}", overrides, scorer)
                rows[path].append({"seed": seed, "frechet_distance": fd, "images_per_second": ips})
                print(f"{path:9s} seed {seed}: FD {fd:8.3f}  ({ips:.0f} img/s)", flush=True)
    summary = {p: {"mean": statistics.mean(r["frechet_distance"] for r in rs),
                   "std": statistics.stdev([r["frechet_distance"] for r in rs]) if len(rs) > 1 else 0.0}
               for p, rs in rows.items()}
    print("path | FD mean ± std over seeds\n---|---")
    for p, s in summary.items():
        print(f"{p} | {s['mean']:.3f} ± {s['std']:.3f}")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    result = {"device": name, "date": dt.date.today().isoformat(), "torch": torch.__version__,
              "command": " ".join(sys.argv), "source": args.source, "epochs": args.epochs,
              "batch": args.batch, "fast_overrides": fast, "reference_overrides": REFERENCE,
              "runs": rows, "summary": summary}
    path = Path(args.out) / f"quality-{name.replace(' ', '-').lower()}-{result['date']}.json"
    atomic.write_json(path, result)
    print(f"-> {path}")


if __name__ == "__main__":
    main()
