"""Report pictures: curves, a GIF whose frames are the epochs, real next to fake, the summary."""

from __future__ import annotations

import numpy as np
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
