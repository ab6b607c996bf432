"""Data that is small or unlabelled: a clear line before work, or a fallback that says so."""

from __future__ import annotations

import json
import os
import runpy
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from dcgan.data.download import download
from dcgan.data.preprocess import preprocess
from dcgan.data.sources import parse_dataset
from helpers import PARAMS, REPO, TINY, make_image_folder, write_params


def _prepared(tmp_path, source, **options):
    download(parse_dataset(source), tmp_path / "raw")
    preprocess(tmp_path / "raw", tmp_path / "prepared", 0, **options)
    return tmp_path / "prepared"


def _run_stage(stage, argv, monkeypatch):
    """A stage's ``__main__`` in this process; returns its exit code (0 when it returns)."""
    monkeypatch.setattr(sys, "argv", [stage, *map(str, argv)])
    try:
        runpy.run_path(str(REPO / "stages" / f"{stage}.py"), run_name="__main__")
    except SystemExit as exit_:
        return exit_.code
    return 0


def _classifier(tmp_path, prepared, monkeypatch, capsys):
    capsys.readouterr()  # the data stages' progress bars
    params = write_params(tmp_path, {**TINY, "preprocess.image_size": 16})
    return _run_stage("classifier", ["--params", params, "--data", prepared, "--out",
                                     tmp_path / "clf.pt", "--details", tmp_path / "clf.json"],
                      monkeypatch)


def test_three_labelled_images_stop_before_the_classifier_trains(tmp_path, monkeypatch, capsys):
    """Once `torch.cat(): expected a non-empty list` deep in the classifier."""
    src = make_image_folder(tmp_path / "src", classes=("a", "b", "c"), per_class=1, splits=())
    prepared = _prepared(tmp_path, f"folder:{src}", image_size=16)
    assert _classifier(tmp_path, prepared, monkeypatch, capsys) == 2
    assert capsys.readouterr().err.splitlines() == [
        "error: evaluation would compare real sets of 1 image(s), but needs 4 per set (2 for the "
        "Fréchet distance, evaluate.pr_k 3 + 1 for precision/recall): give the data at least 8 "
        "images (it has 3 and no held-out split, so evaluation compares two halves of it)"]
    assert not (tmp_path / "clf.pt").exists()


def test_nine_labelled_images_hold_one_out_and_say_so(tmp_path, monkeypatch, capsys):
    src = make_image_folder(tmp_path / "src", classes=("a", "b", "c"), per_class=3, splits=())
    prepared = _prepared(tmp_path, f"folder:{src}", image_size=16)
    assert _classifier(tmp_path, prepared, monkeypatch, capsys) == 0
    assert "classifier: holding out 1 of 9 train images (10% of so few is none" in capsys.readouterr().out
    metrics = json.loads((tmp_path / "clf.json").read_text())
    assert metrics["heldout_count"] == 1 and metrics["train_count"] == 8 and metrics["labelled"]


def test_unlabelled_data_gets_a_label_free_feature_space(tmp_path, monkeypatch, capsys):
    src = make_image_folder(tmp_path / "src", classes=("",), per_class=10, splits=())
    prepared = _prepared(tmp_path, f"folder:{src}", image_size=16)
    assert _classifier(tmp_path, prepared, monkeypatch, capsys) == 0
    metrics = json.loads((tmp_path / "clf.json").read_text())
    assert metrics["labelled"] is False and "untrained" in metrics["note"]
    assert "the data has no labels" in capsys.readouterr().out


def _flat_folder(root, n=40):
    rng = np.random.default_rng(1)
    root.mkdir(parents=True)
    for i in range(n):  # blobs on a dark background: something a GAN can start on
        px = np.zeros((20, 20, 3), dtype=np.uint8)
        y, x = rng.integers(2, 14, 2)
        px[y:y + 6, x:x + 6] = rng.integers(120, 256, 3)
        Image.fromarray(px).save(root / f"img_{i:02d}.png")
    return root


@pytest.mark.parametrize("n, extra, plan", [
    (24, {}, (12, 1, 2)),                      # bce's 2 D steps need 2 batches: halved
    (24, {"train.d_steps": 1}, (24, 1, 1)),    # one batch of everything
    (100, {}, (32, 1, 2)), (200, {}, (32, 3, 2)),
    (9, {"loss": "wgan-gp"}, (1, 1, 5)),       # 5 critic steps of 1 image each
])
def test_a_set_smaller_than_a_g_steps_batches_trains_smaller_batches(n, extra, plan):
    from dcgan.training.batches import plan_batches
    from dcgan.config import load_params

    from dcgan.losses import get

    params = load_params(PARAMS, {"train.batch_size": 32, **extra})
    assert tuple(plan_batches(get(params.loss), params.train, n, 1)) == plan


def test_fewer_images_than_d_steps_is_one_line():
    from dcgan.training.batches import plan_batches
    from dcgan.config import load_params
    from dcgan.errors import UserError

    from dcgan.losses import get

    params = load_params(PARAMS, {"loss": "wgan-gp"})
    with pytest.raises(UserError, match="train.d_steps 5 is more than the 4 training images"):
        plan_batches(get("wgan-gp"), params.train, 4, 1)


@pytest.mark.slow  # six stage processes
def test_flat_folder_trains_evaluates_and_reports(tmp_path):
    """A flat, unlabelled folder (advertised in the README) through every stage; fewer images
    than a batch, too."""
    src = _flat_folder(tmp_path / "flat", n=24)
    params = write_params(tmp_path, {**TINY, "dataset": f"folder:{src}", "preprocess.image_size": 16,
                                     "train.eval_every": 1, "train.batch_size": 32})
    env = dict(os.environ, MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}",
               OMP_NUM_THREADS="1")
    d, p = tmp_path / "data", ["--params", str(params)]
    stages = [
        ("download", ["--out", d / "raw"]),
        ("preprocess", ["--raw", d / "raw", "--out", d / "prepared"]),
        ("classifier", ["--data", d / "prepared", "--out", d / "clf.pt", "--details", d / "clf.json"]),
        ("train", ["--data", d / "prepared", "--classifier", d / "clf.pt", "--workdir", d / "ckpt",
                   "--out", d / "train", "--metrics", d / "train.json"]),
        ("evaluate", ["--data", d / "prepared", "--classifier", d / "clf.pt", "--train", d / "train",
                      "--metrics", d / "metrics_eval", "--out", d / "eval"]),
        ("report", ["--data", d / "prepared", "--train", d / "train", "--train-metrics",
                    d / "train.json", "--eval", d / "eval", "--out", d / "report"]),
    ]
    said = {}
    for stage, argv in stages:
        proc = subprocess.run([sys.executable, str(REPO / "stages" / f"{stage}.py"), *p, *map(str, argv)],
                              env=env, capture_output=True, text=True, cwd=tmp_path)
        assert proc.returncode == 0, f"{stage}: {proc.stderr[-2000:]}"
        assert "warning" not in proc.stderr, f"{stage}: {proc.stderr[-2000:]}"
        said[stage] = proc.stdout
    assert ("train: 24 training images, fewer than train.batch_size 32 x 2 D steps: each epoch "
            "is 2 batches of 12") in said["train"]
    scores = json.loads((d / "eval/details.json").read_text())
    assert "no labels" in scores["notes"][0]
    for row in ("generator", "floor", "noise", "best"):
        clf = scores[row]["classifier"]
        assert "inception_score" not in clf and "classes_covered" not in clf
        assert clf["frechet_distance"] >= 0 and 0 <= clf["precision"] <= 1
    # The label-free space still tells real from noise.
    assert scores["noise"]["classifier"]["frechet_distance"] > scores["floor"]["classifier"]["frechet_distance"]
    summary = (d / "report/summary.md").read_text()
    assert "Note: the data has no labels" in summary and "| noise | – |" in summary
    assert (d / "report/progress.gif").is_file()
