"""The validate stage refuses first what a later stage would refuse from params and sources.

DVC deletes a stage's outputs just before running it, so a refusal inside download, the
classifier or train came after data/ was already cleared. Each case below is a refusal a
later stage makes (shown by calling that stage's own check, where it has one), refused by
``validate_stage`` with one line while data/ and metrics/ stay byte for byte as they were.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest

from dcgan.config import load_params
from dcgan.data.prepared import check_scorable, hold_out
from dcgan.errors import UserError
from dcgan.losses import get
from dcgan.runnable import RESTORE, validate_stage
from dcgan.training.batches import plan_batches
from helpers import TINY, make_idx_dir, make_image_folder, write_params


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(f.relative_to(root)): f.read_bytes() for f in sorted(root.rglob("*")) if f.is_file()}


@pytest.fixture
def workspace(tmp_path) -> Path:
    """A repo's results: data/ and metrics/ as a finished `dvc repro` left them."""
    for name, content in (("data/params.ok", b"params.yaml is valid\n"),
                          ("data/train/generator.pt", b"weights"),
                          ("data/classifier/classifier.pt", b"classifier"),
                          ("metrics/train.json", b'{"epoch": 2}'),
                          ("metrics/eval/generator.json", b'{"FD": 1.0}')):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(content)
    return tmp_path


def _train_refuses(params, n):
    plan_batches(get(params.loss), params.train, n, params.train.nproc)


def _download_refuses(params, n):
    from dcgan.data.download import download
    from dcgan.data.sources import parse_dataset

    with tempfile.TemporaryDirectory() as tmp:
        download(parse_dataset(params.dataset), Path(tmp) / "raw", params.download.mirror)


def _evaluate_refuses(params, n):
    check_scorable({"splits": {"train": {"count": n}}}, params.evaluate.num_samples,
                   params.evaluate.pr_k)


def _classifier_refuses(params, n):
    import torch

    hold_out(torch.zeros(n, 1, 28, 28), torch.zeros(n, dtype=torch.long), 0)


# (overrides; what the source holds; the later stage's own refusal, on the train images the
# preprocess stage would leave, or None where the later stage went wrong instead of refusing;
# what validate's line says)
CASES = {
    "batch of one": ({"train.batch_size": 1}, None, None, "batch norm needs a batch of at least 2"),
    "max_images 1": ({"preprocess.max_images": 1}, None, (_train_refuses, 1),
                     "preprocess.max_images 1 leaves 1 training image(s)"),
    "max_images 3, a batch of one": ({"preprocess.max_images": 3}, None, None,
                                     "needs a batch of at least 2 (batch norm) per process: use at least 4"),
    "too few for evaluation": ({"preprocess.max_images": 5}, "folder", (_evaluate_refuses, 5),
                               "evaluation would compare real sets of 2 image(s)"),
    "too few for the classifier": ({"preprocess.max_images": 1, "train.d_steps": 1,
                                    "train.batch_size": 2}, "folder", (_classifier_refuses, 1),
                                   "leaves 1 training image(s), but each of a G step's 1 D steps"),
    "idx path typo": ({}, "idx-typo", (_download_refuses, 0), "not found; fix the path"),
    "idx folder without the MNIST files": ({}, "idx-empty", (_download_refuses, 0),
                                           "no train-images-idx3-ubyte"),
    "folder path typo": ({}, "folder-typo", (_download_refuses, 0), "not found; fix the path"),
    "num_samples below pr_k + 1": ({"evaluate.num_samples": 3}, None, (_evaluate_refuses, 100),
                                   "set evaluate.num_samples to at least 4"),
    "batch not split over processes": ({"train.nproc": 2, "train.batch_size": 3}, None,
                                       (_train_refuses, 100), "each needs an equal batch"),
    "sync_bn on CPU": ({"train.nproc": 2, "train.sync_bn": True}, None, None,
                       "SyncBatchNorm runs on GPUs only"),
    "a small set's batch not split over processes": (
        {"train.nproc": 2, "train.batch_size": 16, "preprocess.max_images": 10}, None,
        (_train_refuses, 10), "train.batch_size 5 does not split evenly over 2 processes"),
    "truncated IDX file": ({}, "idx-truncated", (_download_refuses, 0), "truncated"),
    "mirror typo": ({"download.mirror": "/nonexistent/mirror"}, None, (_download_refuses, 0),
                    "download.mirror: folder /nonexistent/mirror not found"),
    "a built-in sample cut too small": ({"dataset": "fashion-900", "preprocess.max_images": 3},
                                        None, None,
                                        "use at least 4 images"),
}
if not __import__("torch").cuda.is_available():
    CASES["cuda without a GPU"] = ({"train.device": "cuda"}, None, None,
                                   "requested but no CUDA device is visible")


def _source(kind: str | None, tmp: Path) -> dict:
    if kind is None:
        return {}
    if kind == "folder":  # no held-out split: evaluation compares two halves of train
        return {"dataset": f"folder:{make_image_folder(tmp / 'imgs', per_class=4, splits=())}"}
    if kind == "idx-typo":
        make_idx_dir(tmp / "mnist-5k", n=8)
        return {"dataset": f"idx:{tmp / 'mnist-5kk'}"}
    if kind == "idx-truncated":
        folder = make_idx_dir(tmp / "cut", n=8)
        images = folder / "train-images-idx3-ubyte"
        images = images if images.exists() else images.with_suffix(".gz")
        images.write_bytes(images.read_bytes()[:100])
        return {"dataset": f"idx:{folder}"}
    if kind == "idx-empty":
        (tmp / "empty").mkdir()
        return {"dataset": f"idx:{tmp / 'empty'}"}
    return {"dataset": f"folder:{tmp / 'imgs-typo'}"}


@pytest.mark.parametrize("case", CASES)
def test_validate_refuses_first_what_a_later_stage_refuses(workspace, tmp_path, case):
    overrides, source, later, says = CASES[case]
    params_file = write_params(tmp_path / "p", {**TINY, **_source(source, tmp_path), **overrides})
    if later is not None:  # the later stage does refuse it (but after DVC cleared its outputs)
        check, n = later
        with pytest.raises(UserError):
            check(load_params(params_file), n)
    before = _snapshot(workspace)
    (workspace / "data/params.ok").unlink()  # what validate writes: absent unless it passes
    with pytest.raises(UserError, match=re.escape(says)) as err:
        validate_stage(params_file, workspace / "data/params.ok")
    assert "\n" not in str(err.value)
    assert not (workspace / "data/params.ok").exists()
    (workspace / "data/params.ok").write_bytes(b"params.yaml is valid\n")
    assert _snapshot(workspace) == before


def test_the_tiny_recipes_and_the_defaults_pass(workspace, tmp_path):
    """What the tests and the README run is not refused: enough images for every stage."""
    idx = make_idx_dir(tmp_path / "idx", n=48, test=32)
    for overrides in ({}, {**TINY, "dataset": f"idx:{idx}"}, {"dataset": "mnist-5k"},
                      {**TINY, "dataset": "fashion-900"},
                      {**TINY, "preprocess.max_images": 8, "evaluate.pr_k": 3}):
        validate_stage(write_params(tmp_path / "p", overrides), workspace / "data/params.ok")


def test_after_a_rejected_exp_run_set_the_line_says_how_to_restore_params(tmp_path, monkeypatch):
    """`dvc exp run -S` writes the rejected value into the workspace's params.yaml and leaves
    it there: the line says how to restore the file (not in a queued run's temp copy)."""
    params_file = write_params(tmp_path, {"train.batch_size": 1})
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DVC_EXP_NAME", "bushy-pike")
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    with pytest.raises(UserError) as err:
        validate_stage(params_file, tmp_path / "ok")
    assert str(err.value).endswith(RESTORE) and "git checkout params.yaml" in str(err.value)
    monkeypatch.setenv("DVC_ROOT", str(tmp_path / "elsewhere"))  # a queued experiment's copy
    with pytest.raises(UserError) as err:
        validate_stage(params_file, tmp_path / "ok")
    assert "git checkout" not in str(err.value)


def test_validate_refuses_inception_weights_holding_code_without_running_it(tmp_path):
    """`evaluate.inception: true` with a weights file that holds a pickle payload: refused in
    one line (not torch-fidelity's published file), and the payload never ran."""
    pytest.importorskip("torch_fidelity")
    from dcgan.inception import InceptionUnavailable, weights_file_name
    from test_inception import payload_file

    marker = tmp_path / "ran"
    weights = payload_file(tmp_path / weights_file_name(), marker)
    params_file = write_params(tmp_path / "p", {**TINY, "evaluate.inception": True,
                                                "evaluate.inception_weights": str(weights)})
    with pytest.raises(InceptionUnavailable, match="not torch-fidelity's published") as err:
        validate_stage(params_file, tmp_path / "ok")
    assert not marker.exists() and "\n" not in str(err.value)
