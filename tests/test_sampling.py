"""`dcgan sample`: a grid, 1,000 PNGs, a latent walk, from a file or an MLflow URI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dcgan import checkpoint
from dcgan.classifier import DomainClassifier
from dcgan.errors import UserError
from dcgan.models import Generator
from dcgan.cli import main as dcgan
from dcgan.generate import load_generator, slerp
from helpers import REPO, TINY, make_prepared, write_params

KWARGS = dict(nz=16, ngf=8, nc=1, image_size=28)


@pytest.fixture
def generator_file(tmp_path):
    torch.manual_seed(0)
    g = Generator(**KWARGS)
    with torch.no_grad():  # batch-norm statistics that are not the identity, as after training
        for m in g.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    path = tmp_path / "generator.pt"
    checkpoint.save_model(path, g, KWARGS)
    return path


def _pixels(path):
    with Image.open(path) as img:
        return np.asarray(img.convert("L"), dtype=np.int16)


def test_a_thousand_pngs_from_a_generator_file(tmp_path, generator_file):
    out = tmp_path / "images"
    dcgan(["sample", str(generator_file), "--format", "folder", "-n", "1000", "--seed", "3",
          "--out", str(out), "--device", "cpu"])
    files = sorted(out.iterdir())
    assert [f.name for f in files[:2]] == ["000000.png", "000001.png"] and len(files) == 1000
    first, last = _pixels(files[0]), _pixels(files[-1])
    assert first.shape == (28, 28) and not np.array_equal(first, last)
    again = tmp_path / "again"
    dcgan(["sample", str(generator_file), "--format", "folder", "-n", "3", "--seed", "3", "--out",
          str(again), "--device", "cpu"])
    assert np.array_equal(_pixels(again / "000000.png"), first)  # seeded


def test_grid_and_interpolation(tmp_path, generator_file):
    dcgan(["sample", str(generator_file), "-n", "16", "--out", str(tmp_path / "g.png"), "--device", "cpu"])
    assert _pixels(tmp_path / "g.png").shape == (4 * 30 + 2, 4 * 30 + 2)  # 4x4, 2 px padding
    dcgan(["sample", str(generator_file), "--format", "interp", "-n", "8", "--out", str(tmp_path / "w.png"),
          "--device", "cpu"])
    strip = _pixels(tmp_path / "w.png")
    assert strip.shape == (32, 8 * 30 + 2)
    with Image.open(tmp_path / "w.gif") as gif:
        assert gif.n_frames == 14 and gif.size == (140, 140)  # there and back; 28 px x 5
    assert not np.array_equal(strip[2:30, 2:30], strip[2:30, -30:-2])  # the ends differ


def test_slerp_ends_at_both_latents_and_keeps_the_norm():
    z0, z1 = torch.randn(2, 100, generator=torch.Generator().manual_seed(0))
    path = slerp(z0, z1, 5)
    assert torch.allclose(path[0], z0, atol=1e-5) and torch.allclose(path[-1], z1, atol=1e-5)
    assert path.norm(dim=1).min() > 0.9 * min(z0.norm(), z1.norm())


def test_wrong_inputs_are_one_line_errors(tmp_path):
    with pytest.raises(UserError, match="not found: run `dvc repro train`"):
        load_generator(tmp_path / "missing.pt")
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    with pytest.raises(UserError, match="is not a generator checkpoint"):
        load_generator(tmp_path / "notes.txt")
    checkpoint.save_model(tmp_path / "clf.pt", DomainClassifier(nc=1, num_classes=10, width=4),
                          dict(nc=1, num_classes=10, width=4))
    with pytest.raises(UserError, match="clf.pt is not a generator checkpoint"):
        load_generator(tmp_path / "clf.pt")
    with pytest.raises(UserError, match="runs:/0123abcd/generator: no MLflow store at "):
        load_generator("runs:/0123abcd/generator")
    assert not (tmp_path / "mlflow.db").exists()  # and none was created


def test_an_unknown_mlflow_uri_is_one_line(tmp_path, mlflow_store):
    import mlflow

    mlflow.MlflowClient(mlflow_store).search_experiments()  # an empty store
    with pytest.raises(UserError, match="cannot load runs:/0123abcd/generator from MLflow at "
                                        "sqlite:///.*: Run with id=0123abcd not found"):
        load_generator("runs:/0123abcd/generator")


@pytest.mark.slow  # the installed `dcgan` in a process of its own: ~5 s of imports
def test_command_line_error_is_one_line(tmp_path):
    command = Path(sys.executable).parent / "dcgan"  # the installed console script
    proc = subprocess.run([str(command), "sample", str(tmp_path / "no.pt")],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'no.pt'} not found: run `dvc repro train`, or pass a generator file or "
        "an MLflow URI (runs:/<run id>/generator, models:/<model id>)"]


@pytest.mark.slow
def test_a_thousand_pngs_from_the_logged_mlflow_model(tmp_path):
    """The train stage logs the generator the run samples from; its runs:/ URI samples what
    generator.pt samples (the EMA of G, on by default; generator_no_ema.pt is G's own)."""
    prepared = make_prepared(tmp_path / "data", n=32)
    params = write_params(tmp_path, {**TINY, "train.epochs": 1})
    subprocess.run([sys.executable, str(REPO / "stages/train.py"), "--params", str(params),
                    "--data", str(prepared), "--workdir", str(tmp_path / "work"), "--out",
                    str(tmp_path / "out"), "--metrics", str(tmp_path / "train.json")],
                   check=True, capture_output=True, cwd=tmp_path,
                   env=dict(os.environ, OMP_NUM_THREADS="1"))
    run_id = json.loads((tmp_path / "out/mlflow_run.json").read_text())["run_id"]
    for source, out in ((f"runs:/{run_id}/generator", "uri"),
                        (tmp_path / "out/generator.pt", "file")):
        dcgan(["sample", str(source), "--format", "folder", "-n", "1000", "--out", str(tmp_path / out),
              "--device", "cpu"])
    uri, file = sorted((tmp_path / "uri").iterdir()), sorted((tmp_path / "file").iterdir())
    assert len(uri) == len(file) == 1000
    for i in (0, 999):  # the exported graph computes what the checkpoint does (to a grey level)
        assert np.abs(_pixels(uri[i]) - _pixels(file[i])).max() <= 1


class _PayloadGenerator(torch.nn.Module):
    """A 'generator' whose pickle creates ``marker`` when loaded (any code could run)."""

    def __init__(self, marker: Path):
        super().__init__()
        self.marker = str(marker)

    def forward(self, z):
        return z

    def __reduce__(self):
        return open, (self.marker, "w")


@pytest.mark.slow  # MLflow's import and a logged model: ~10 s
def test_a_pickled_mlflow_model_is_refused_and_never_run(tmp_path, mlflow_store):
    """Someone's store holding a pickled model.pth (MLflow's "pickle" format): `dcgan sample`
    refuses it with one line for runs:/ and models:/ URIs, and its code never runs."""
    import mlflow

    marker = tmp_path / "ran"
    mlflow.set_tracking_uri(mlflow_store)
    with mlflow.start_run() as run:
        info = mlflow.pytorch.log_model(_PayloadGenerator(marker), name="generator",
                                        serialization_format="pickle", pip_requirements=["torch"])
    assert not marker.exists()
    for uri in (f"runs:/{run.info.run_id}/generator", f"models:/{info.model_id}"):
        with pytest.raises(UserError, match="refusing to load it: not a torch.export graph") as err:
            load_generator(uri)
        assert str(err.value).startswith(uri) and "\n" not in str(err.value)
        assert not marker.exists()
