"""Report pictures: curves, a GIF whose frames are the epochs, real next to fake, the summary."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from dcgan.training.history import History
from dcgan.images import save_grid
from dcgan.report import curves, progress_gif, real_vs_fake, summary


def test_gif_has_one_labelled_frame_per_epoch(tmp_path):
    grids = []
    for epoch in (1, 2, 3):
        grids.append(tmp_path / f"epoch_{epoch:03d}.png")
        save_grid(torch.full((4, 1, 8, 8), epoch / 3 - 0.5), grids[-1])
    assert progress_gif(grids, tmp_path / "p.gif") == 3
    with Image.open(tmp_path / "p.gif") as gif:
        assert gif.n_frames == 3
        strips = []
        for i in range(3):
            gif.seek(i)
            strips.append(np.asarray(gif.convert("L"))[:16])
    assert (strips[0] < 128).any()  # the label is drawn
    assert not np.array_equal(strips[0], strips[1])  # "epoch 1" differs from "epoch 2"


def test_curves_and_real_vs_fake_write_pngs(tmp_path):
    history = History()
    for epoch in (1, 2):
        history.add_epoch(epoch, torch.rand(5, 5), 100.0)
    history.write_csvs(tmp_path / "plots")
    curves(tmp_path / "plots", tmp_path, "test")
    real_vs_fake(torch.rand(9, 1, 8, 8) * 2 - 1, torch.zeros(9, 1, 8, 8), tmp_path / "rf.png")
    for name in ("losses.png", "d_outputs.png", "rf.png"):
        with Image.open(tmp_path / name) as img:
            assert img.format == "PNG" and img.width > 50


def test_summary_lists_every_row():
    row = {"classifier": {"inception_score": {"mean": 2.0, "std": 0.1}, "frechet_distance": 3.0,
                          "kid": {"mean": 0.1}, "precision": 0.5, "recall": 0.4, "classes_covered": 7}}
    copied = {**row, "copies": {"pixels": {"share": 0.0096}}}  # a share: printed in percent
    text = summary("t", {"epochs": 5}, {"samples": 10, "reference": "held-out split vs train",
                                        "generator": copied, "floor": row, "noise": row,
                                        "best": {**row, "epoch": 3, "rule": "on 2000 samples"}},
                   best_samples=20)
    for name in ("| noise |", "| generator (what the run samples from) |", "| best checkpoint |",
                 "| real-data floor |",
                 "Scored on 10 generated and 10 real samples",
                 "epoch 3, the lowest classifier-space Fréchet distance on 20 samples",
                 "| 7 | 0.96% |"):
        assert name in text
    assert "2000" not in text  # the counts used, not train.eval_samples as asked for


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One epoch's train-stage outputs (no evaluation: the stage must refuse before it)."""
    from dcgan import results
    from dcgan.config import load_params
    from dcgan.training import Session
    from helpers import PARAMS, TINY, make_prepared

    tmp = tmp_path_factory.mktemp("trained")
    prepared = make_prepared(tmp / "prepared", n=32)
    params = load_params(PARAMS, {**TINY, "train.epochs": 1})
    session = Session(params, prepared, tmp / "work")
    session.run()
    metrics = session.write_outputs(tmp / "train")
    results.write("train", metrics, tmp / "train.json", tmp / "train/details.json")
    return params, prepared, tmp


@pytest.mark.parametrize("damage", ["no generator.pt", "truncated generator.pt",
                                    "truncated details.json", "no train outputs", "no evaluation"])
def test_missing_or_truncated_inputs_are_one_line_naming_the_file(trained, tmp_path, damage):
    from dcgan.errors import UserError
    from dcgan.report import run

    params, prepared, tmp = trained
    train = tmp_path / "train"
    shutil.copytree(tmp / "train", train)
    culprit = {"no generator.pt": train / "generator.pt",
               "truncated generator.pt": train / "generator.pt",
               "truncated details.json": train / "details.json",
               "no train outputs": train / "grids",
               "no evaluation": tmp_path / "eval/details.json"}[damage]
    if damage.startswith("truncated"):
        culprit.write_bytes(culprit.read_bytes()[:len(culprit.read_bytes()) // 2])
    elif damage == "no train outputs":
        shutil.rmtree(train)
    elif damage == "no generator.pt":
        culprit.unlink()
    with pytest.raises(UserError) as err:
        run(params, str(prepared), str(train), str(tmp / "train.json"), str(tmp_path / "eval"),
            str(tmp_path / "report"))
    line = str(err.value)
    assert line.startswith(f"{culprit}: ") and "\n" not in line and "dvc repro" in line, line
    assert not (tmp_path / "report").exists()
