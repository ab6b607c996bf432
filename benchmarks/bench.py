"""Training and evaluation speed: our path against a tutorial-style loop, same architecture.

Needs torch (and this repo's src/ importable), neither dvc nor mlflow, so it runs on a bare GPU
box. Prints a table and writes JSON to benchmarks/results/<device>-<date>.json.

    python benchmarks/bench.py                 # full sizes on CUDA; small sizes on CPU
    python benchmarks/bench.py --scale 0.01    # 1% of the full sizes (the CI smoke run)
    python benchmarks/bench.py --set train.compile=reduce-overhead --set train.channels_last=false
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from benchlib import (REPO, device_name, epoch_times, images_per_epoch, parse_set, slug, sync,
                      synthetic_set, trainer)
from dcgan import atomic
from dcgan.classifier import DomainClassifier
from dcgan.config import PAPER, load_params
from dcgan.device import resolve_device
from dcgan.scoring import Settings, classifier_scores, samples_of
from dcgan.models import Discriminator, Generator

FULL = {"28x28": (60_000, 1, 28), "64x64": (16_000, 3, 64)}  # name -> (images, channels, size)
# What both loops train: the DCGAN of the write-ups (the paper's recipe), whatever params.yaml's
# model is, and the same maths (the reference loop has no R1 penalty and no EMA)
DCGAN = {"model.nz": 100, "model.ngf": 64, **PAPER}
EVAL_SAMPLES = 10_000


def networks(overrides: dict) -> tuple[dict, dict]:
    """Our loop's params overrides (``overrides`` on top of :data:`DCGAN`) and the reference
    loop's keyword arguments for the same networks."""
    merged = {**DCGAN, **overrides}
    return merged, {k.split(".")[1]: merged[k] for k in DCGAN if k.startswith("model.")}


def ours(folder: Path, device: torch.device, batch: int, epochs: int, overrides: dict) -> float:
    """Images per second of the library's training loop (one warm-up epoch not counted)."""
    t = trainer(folder, device, {"train.batch_size": batch, "train.epochs": epochs + 1, **overrides})
    times, _ = epoch_times(t, epochs + 1)  # the first: allocator, cuDNN autotuning, torch.compile
    return epochs * images_per_epoch(t) / sum(times[1:])


def reference(folder: Path, device: torch.device, batch: int, epochs: int, nz: int = 100,
              ngf: int = 64, ndf: int = 64, extra_layers: int = 0,
              g_upsample: str = "transpose") -> float:
    """Images per second of what the write-ups do: a DataLoader over CPU tensors, a copy to the
    device per batch, fp32, eager, and ``.item()`` on every step."""
    images = torch.load(folder / "train.pt", weights_only=True)["images"]
    nc, size = images.shape[1], images.shape[-1]
    torch.manual_seed(0)
    G = Generator(nz=nz, ngf=ngf, nc=nc, image_size=size, extra_layers=extra_layers,
                  upsample=g_upsample).to(device)
    D = Discriminator(nc=nc, ndf=ndf, image_size=size, extra_layers=extra_layers).to(device)
    opt_g = torch.optim.Adam(G.parameters(), 2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), 2e-4, betas=(0.5, 0.999))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(images), batch_size=batch,
                                         shuffle=True, drop_last=True)
    seen, start, log = 0, 0.0, []
    for epoch in range(epochs + 1):  # epoch 0 is the warm-up
        if epoch == 1:
            sync(device)
            start, seen = time.perf_counter(), 0
        for (real,) in loader:
            real = real.to(device)
            fake = G(torch.randn(len(real), nz, device=device))
            r, f = D(real), D(fake.detach())
            d_loss = F.softplus(-r).mean() + F.softplus(f).mean()
            opt_d.zero_grad()
            d_loss.backward()
            opt_d.step()
            g_loss = F.softplus(-D(fake)).mean()
            opt_g.zero_grad()
            g_loss.backward()
            opt_g.step()
            log.append((d_loss.item(), g_loss.item()))  # the per-step host sync
            seen += len(real)
    sync(device)
    return seen / (time.perf_counter() - start)


def evaluation_seconds(device: torch.device, n: int) -> float:
    """Seconds to sample ``n`` images and compute the classifier-space metrics (IS, FD, KID,
    precision/recall, as the evaluate stage does) against ``n`` reals."""
    torch.manual_seed(0)
    G = Generator(nc=1, image_size=28).to(device)
    clf = DomainClassifier(nc=1, num_classes=10).to(device)
    real = torch.rand(n, 1, 28, 28) * 2 - 1
    e = load_params(REPO / "params.yaml").evaluate
    settings = Settings(e.is_splits, min(e.kid_subset_size, n), e.pr_k, e.batch_size, seed=0)
    sync(device)
    start = time.perf_counter()
    classifier_scores(clf, samples_of(G, n, G.nz, device, seed=0), real, device, settings)
    return time.perf_counter() - start


def _table(rows: list[dict]) -> str:
    head = ["set", "images", "ours img/s", "reference img/s", "ours/ref", "full epoch s (ours)"]
    lines = [" | ".join(head), " | ".join("-" * len(h) for h in head)]
    for r in rows:
        lines.append(" | ".join([r["set"], str(r["images"]), f"{r['ours_images_per_s']:.0f}",
                                 f"{r['reference_images_per_s']:.0f}", f"{r['speedup']:.2f}x",
                                 f"{r['full_epoch_s']:.2f}"]))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:N")
    parser.add_argument("--scale", type=float, default=None,
                        help="fraction of the full sizes (default: 1 on CUDA, 0.02 on CPU)")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs after one warm-up")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a params override for our path, e.g. train.compile=default (YAML value)")
    args = parser.parse_args()
    user = parse_set(parser, args.set)
    overrides, model = networks(user)
    device = resolve_device(args.device)
    scale = args.scale or (1.0 if device.type == "cuda" else 0.02)
    rows = []
    for name, (n_full, nc, size) in FULL.items():
        n = max(args.batch, int(n_full * scale))
        with tempfile.TemporaryDirectory() as tmp:
            folder = synthetic_set(Path(tmp), n, nc, size)
            ips = ours(folder, device, args.batch, args.epochs, overrides)
            ref = reference(folder, device, args.batch, args.epochs, **model)
        rows.append({"set": name, "images": n, "ours_images_per_s": ips,
                     "reference_images_per_s": ref, "speedup": ips / ref,
                     "full_epoch_s": n_full / ips})
    n_eval = max(100, int(EVAL_SAMPLES * scale))
    result = {
        "device": device_name(device),
        "date": dt.date.today().isoformat(), "torch": torch.__version__, "batch": args.batch,
        "scale": scale, "command": " ".join(sys.argv), "overrides": user,
        "networks": {k: overrides[k] for k in DCGAN}, "training": rows,
        "evaluation": {"samples": n_eval, "seconds": evaluation_seconds(device, n_eval)},
        "peak_gpu_memory_gib": (torch.cuda.max_memory_allocated(device) / 2**30
                                if device.type == "cuda" else None),
    }
    print(_table(rows))
    print(f"evaluation: {n_eval} samples, classifier metrics in {result['evaluation']['seconds']:.2f} s")
    tag = "".join(f"-{k.split('.')[-1]}={v}" for k, v in user.items())
    path = Path(args.out) / f"{slug(result['device'])}-{result['date']}{tag}.json"
    atomic.write_json(path, result)
    print(f"-> {path}")


if __name__ == "__main__":
    main()
