"""Images from a trained generator: a grid, a folder of PNGs, or a walk through latent space.

The generator comes from a checkpoint (``data/train/generator.pt``: what the run samples
from, the EMA of G's weights when ``train.ema`` is on) or from MLflow (``runs:/<run id>/generator``,
``models:/<model id>``); mlflow is imported only for a URI. ``load_generator`` is the one place
a generator is made ready for sampling (eval mode); the writers take the module as it is.
``dcgan sample`` runs :func:`run`.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import tempfile
from pathlib import Path
from typing import Iterator

import torch
from PIL import Image
from torch import nn
from torchvision.utils import make_grid, save_image
from tqdm import tqdm

from dcgan import atomic, checkpoint
from dcgan.device import resolve_device
from dcgan.errors import UserError
from dcgan.scoring import samples_of
from dcgan.images import save_grid
from dcgan.models import Generator

URI_SCHEMES = ("runs:/", "models:/")
CHUNK = 5000  # images per samples_of() call when writing a folder: memory stays bounded


class _Exported(nn.Module):
    """An MLflow-logged generator (a ``torch.export`` graph) as a module with a latent size.

    The graph was exported in eval mode and cannot switch modes (its ``eval()`` raises), so
    ``train()``/``eval()`` leave it as it is.
    """

    def __init__(self, graph: nn.Module, nz: int):
        super().__init__()
        self.graph, self.nz = graph, nz

    def train(self, mode: bool = True) -> "_Exported":
        return self

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.graph(z)


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:200]


# A logged model is someone else's file (a copied store, a shared server). Only MLflow's
# torch.export format loads without unpickling code, and only when MLflow checks the archive
# (it does when model code execution is disallowed): a pickled model.pth, a model with its own
# code folder (put on sys.path on load) or anything else is refused before it is read.
_EXPORTED = "model.pt2"
_CODE_OFF = {"MLFLOW_ALLOW_MODEL_CODE_EXECUTION": "false"}


@contextlib.contextmanager
def _env(values: dict[str, str]) -> Iterator[None]:
    before = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in before.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


def _check_exported(uri: str, local: Path) -> None:
    """Refuse a downloaded model folder that is not a code-free torch.export graph."""
    data = local / "data"
    others = sorted(p.name for p in data.iterdir() if p.name != _EXPORTED) if data.is_dir() else []
    if not (data / _EXPORTED).is_file() or others or (local / "code").exists():
        found = ", ".join(repr(n) for n in others) or "no data/model.pt2"
        raise UserError(f"{uri}: refusing to load it: not a torch.export graph ({found}); a pickled "
                        "model runs code when loaded: sample from the run's generator.pt instead")


def _from_mlflow(uri: str) -> nn.Module:
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    from dcgan.tracking import import_mlflow, tracking_uri

    store = tracking_uri()
    db = Path(store.removeprefix("sqlite:///")) if store.startswith("sqlite:///") else None
    if db and not db.is_file():  # connecting would create an empty store here
        raise UserError(f"{uri}: no MLflow store at {db}; run from the repo root or set "
                        "MLFLOW_TRACKING_URI")
    mlflow = import_mlflow()
    mlflow.set_tracking_uri(store)
    with tempfile.TemporaryDirectory(prefix="dcgan-model-") as tmp, _env(_CODE_OFF):
        try:
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp))
        except Exception as err:  # unknown run or model, no such artifact, store unreachable
            raise UserError(f"cannot load {uri} from MLflow at {store}: {_first_line(err)}; "
                            "expected runs:/<run id>/generator or models:/<model id>") from None
        _check_exported(uri, local)
        try:  # downloaded files only: nothing is fetched again, nothing else is read
            graph = mlflow.pytorch.load_model(str(local), map_location="cpu")
            (spec,) = mlflow.models.Model.load(str(local)).signature.inputs.inputs  # (-1, nz)
        except Exception as err:  # a broken or tampered archive, a model without a signature
            raise UserError(f"cannot load {uri} from MLflow at {store}: {_first_line(err)}") from None
    return _Exported(graph, int(spec.shape[-1]))


def load_generator(source: str | Path) -> nn.Module:
    """A generator ready to sample (eval mode, ``.nz`` set) from a checkpoint or an MLflow URI."""
    if str(source).startswith(URI_SCHEMES):
        return _from_mlflow(str(source))
    path = Path(source)
    if not path.is_file():
        raise UserError(f"{path} not found: run `dvc repro train`, or pass a generator file or an "
                        "MLflow URI (runs:/<run id>/generator, models:/<model id>)")
    try:
        generator = checkpoint.load_model(path, Generator)
    except Exception as err:  # not a torch file, or another model's checkpoint
        raise UserError(f"{path} is not a generator checkpoint ({_first_line(err)})") from None
    return generator.eval()


def batches(generator: nn.Module, n: int, seed: int, device: torch.device,
            batch_size: int = 500) -> Iterator[torch.Tensor]:
    """``n`` images in [-1, 1] in chunks of at most :data:`CHUNK`, the first with ``seed``.

    Chunk ``k`` draws its noise from seed ``seed + k * 2**32``, so no two seeds share images.
    """
    for k, start in enumerate(range(0, n, CHUNK)):
        yield samples_of(generator, min(CHUNK, n - start), generator.nz, device, seed + k * 2**32,
                     batch_size)


def write_grid(generator: nn.Module, n: int, seed: int, out: Path, device: torch.device) -> None:
    """One PNG grid of ``n`` samples, √n per row."""
    save_grid(torch.cat(list(batches(generator, n, seed, device))), out)


def write_folder(generator: nn.Module, n: int, seed: int, out: Path, device: torch.device) -> None:
    """``out/000000.png``...: one PNG per sample; the folder appears whole or not at all."""
    with atomic.output_dir(out) as tmp, tqdm(total=n, unit="img", desc="samples",
                                             disable=None) as bar:
        i = 0
        for chunk in batches(generator, n, seed, device):
            for image in chunk:
                save_image(image, tmp / f"{i:06d}.png", normalize=True, value_range=(-1, 1))
                i += 1
                bar.update()


def slerp(z0: torch.Tensor, z1: torch.Tensor, steps: int) -> torch.Tensor:
    """``steps`` points from ``z0`` to ``z1`` along the great circle (Gaussian latents keep
    their norm this way; a straight line passes through low-norm, atypical latents)."""
    t = torch.linspace(0, 1, steps).unsqueeze(1)
    omega = torch.arccos((z0 / z0.norm() * z1 / z1.norm()).sum().clamp(-1, 1))
    if omega.abs() < 1e-6:
        return (1 - t) * z0 + t * z1
    return (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / torch.sin(omega)


@torch.no_grad()
def write_interpolation(generator: nn.Module, n: int, seed: int, out: Path,
                        device: torch.device) -> Path:
    """A strip of ``n`` images between two seeded latents (PNG), and the walk as a GIF beside it.

    The GIF goes there and back, each frame enlarged to at least 128 px. Returns its path.
    """
    z0, z1 = torch.randn(2, generator.nz, generator=torch.Generator().manual_seed(seed))
    images = generator.to(device)(slerp(z0, z1, n).to(device)).float().clamp(-1, 1).cpu()
    save_grid(images, out, nrow=n)
    scale = max(1, -(-128 // images.shape[-1]))
    frames = []
    for image in images:
        grid = make_grid(image, normalize=True, value_range=(-1, 1), padding=0)
        frame = Image.fromarray(grid.mul(255).round().byte().permute(1, 2, 0).numpy())
        frames.append(frame.resize((frame.width * scale, frame.height * scale), Image.NEAREST))
    frames += frames[-2:0:-1]  # and back, so the loop does not jump
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=120, loop=0)
    gif = out.with_suffix(".gif")
    atomic.write_bytes(gif, buf.getvalue())
    return gif


def run(args: argparse.Namespace) -> None:
    """``dcgan sample``: write what ``args`` asks for (see :mod:`dcgan.cli`)."""
    if args.n < 1 or (args.format == "interp" and args.n < 2):
        raise UserError(f"-n {args.n}: need at least {2 if args.format == 'interp' else 1}")
    device = resolve_device(args.device)
    generator = load_generator(args.generator)
    out = Path(args.out)
    if args.format == "grid":
        write_grid(generator, args.n, args.seed, out, device)
    elif args.format == "folder":
        write_folder(generator, args.n, args.seed, out, device)
    else:
        out = f"{out} and {write_interpolation(generator, args.n, args.seed, out, device)}"
    print(f"sample: {args.n} image(s) from {args.generator} (seed {args.seed}) -> {out}")
