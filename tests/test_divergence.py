"""A run that leaves the rails stops at the first bad step; a healthy run of any loss never does."""

from __future__ import annotations

import pytest
import torch

from dcgan.training import Session, TrainingDiverged
from dcgan.training.divergence import LOSS_LIMIT, SPREAD_FLOOR, WEIGHT_LIMIT, Diverged, Guard
from helpers import make_prepared, tiny_params


@pytest.fixture(scope="module")
def prepared_128(tmp_path_factory):
    return make_prepared(tmp_path_factory.mktemp("data"), n=128)


def _session(tmp_path, data, epochs=4, **extra):
    params = tiny_params(**{"train.epochs": epochs, **extra})
    return Session(params, data, tmp_path / "work")


@pytest.mark.slow  # ~10 s: the collapse shows after a few epochs
def test_a_blow_up_that_stays_finite_stops_at_its_first_step(tmp_path, prepared_128):
    """lr_g 10 used to finish with exit 0: d_loss 1e8, weights 1e11, white blobs."""
    session = _session(tmp_path, prepared_128, epochs=20, **{"train.lr_g": 10.0})
    steps = []
    g_step = session.trainer.steps.g_step
    session.trainer.steps.g_step = lambda fake: steps.append(1) or g_step(fake)
    with pytest.raises(TrainingDiverged) as err:
        session.run()
    message = str(err.value)
    assert message.startswith("training diverged at epoch ") and "\n" not in message
    assert "G's samples have been one image for 20 G steps" in message
    assert "lower train.lr_g and train.lr_d (now 10, 0.001)" in message
    epoch = int(message.split("epoch ")[1].split(",")[0])
    iteration = int(message.split("iteration ")[1].split(":")[0])
    # stopped at the bad step itself, not at the end of its epoch
    assert len(steps) == (epoch - 1) * session.trainer.iters + iteration
    last = session.folder.last
    if epoch == 1:
        assert "no epoch had finished, so there is no checkpoint yet" in message
    else:
        assert f"the last good checkpoint, {last} (epoch {epoch - 1}), is kept" in message
        assert last.is_file()


def test_a_non_finite_blow_up_in_the_first_epoch_names_no_missing_checkpoint(tmp_path, prepared_128):
    session = _session(tmp_path, prepared_128, **{"train.lr_g": 1e30, "train.lr_d": 1e30})
    with pytest.raises(TrainingDiverged, match=r"training diverged at epoch 1, iteration 1: .*; "
                                               r"no epoch had finished, so there is no checkpoint"):
        session.run()
    assert not session.folder.last.exists()


@pytest.mark.parametrize("loss", ["bce", "mse", "hinge", "wgan-gp"])
def test_a_healthy_run_of_every_loss_stays_far_inside_the_bounds(tmp_path, prepared_128, loss):
    """The default recipe, 3 epochs: every loss and weight orders of magnitude inside."""
    session = _session(tmp_path, prepared_128, epochs=3, loss=loss)
    session.run()  # no TrainingDiverged
    t = session.trainer
    assert t.history.rows[:, :2].abs().max() < LOSS_LIMIT / 1000
    top = max(p.abs().max() for net in (t.G, t.D) for p in net.parameters())
    assert top < WEIGHT_LIMIT / 100
    assert t.history.rows[:, 4].min() > 10 * SPREAD_FLOOR


def test_the_rule_reads_the_first_bad_row():
    rows = torch.tensor([[1.0, 1.0, 0.5, 0.5, 0.3], [2e6, 1.0, 0.5, 0.5, 0.3], [float("nan")] * 5])
    with pytest.raises(Diverged, match=r"epoch 3, iteration 12: d_loss 2e\+06 is beyond ±1e\+06"):
        Guard(None).rows(rows, epoch=3, first=10)
    Guard(None).rows(rows[:1], epoch=1)


def test_one_image_for_twenty_steps_in_a_row_carries_across_checks():
    guard, one = Guard(None), torch.tensor([[1.0, 5.0, 0.99, 0.0, 0.0]])
    for _ in range(19):
        guard.rows(one, epoch=1)
    guard.rows(torch.tensor([[1.0, 5.0, 0.99, 0.0, 0.2]]), epoch=1)  # a varied batch: reset
    for _ in range(19):
        guard.rows(one, epoch=2)
    with pytest.raises(Diverged, match="epoch 2, iteration 1: G's samples have been one image"):
        guard.rows(one, epoch=2)


def test_the_spread_of_a_batch_of_one_image_is_undefined_not_a_divergence():
    """std over one image is NaN by definition: a batch of one must not stop the run (it
    advised lowering the learning rates), while a non-finite statistic that is defined does."""
    one_image = torch.tensor([[1.0, 1.0, 0.5, 0.5, float("nan")]] * 25)
    Guard(None).rows(one_image, epoch=1)  # and 25 such rows are no "one image" collapse either
    with pytest.raises(Diverged, match="non-finite statistics"):
        Guard(None).rows(torch.tensor([[1.0, 1.0, 0.5, float("nan"), float("nan")]]), epoch=1)


def test_a_batch_of_one_image_trains_without_a_false_divergence(tmp_path):
    """Two training images and two D steps: a batch of one; it trains to its end."""
    session = _session(tmp_path, make_prepared(tmp_path / "two", n=2), epochs=2)
    session.run()
    assert session.trainer.batch_size == 1 and session.trainer.epoch == 2
