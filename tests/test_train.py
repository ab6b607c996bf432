"""Training a run: a short CPU run, every loss variant, its folder, resume, kill-and-resume equality."""

from __future__ import annotations

import csv
import os
import socket
import subprocess
import sys

import pytest
import torch

from dcgan import checkpoint
from dcgan.config import load_params
from dcgan.data.prepared import load_meta
from dcgan.models import Generator
from dcgan.training import Session, TrainingDiverged, run_id
from helpers import (PARAMS, REPO, TINY, kill_after_first_checkpoint, make_prepared,
                     stage_cmd, tiny_params, write_params)


def test_two_epoch_run_writes_everything(tmp_path, prepared):
    session = Session(tiny_params(), prepared, tmp_path / "work")
    assert session.resumed is False
    session.run()
    metrics = session.write_outputs(tmp_path / "out")
    out = tmp_path / "out"
    assert session.trainer.iters == 64 // 16 // 2  # 2 D steps (one batch each) per G step: bce's
    assert metrics["epochs"] == 2 and metrics["iterations"] == 4 and metrics["images_per_second"] > 0
    assert metrics["batch_size"] == 16 and metrics["d_steps"] == 2 and metrics["ema"] is True
    assert metrics["r1"] == 1.0  # `train.r1: auto` resolved to bce's own gamma
    # generator.pt is what the run samples from (the EMA by default), the raw G beside it
    ema, raw = (checkpoint.load(out / f)["state_dict"] for f in ("generator.pt", "generator_no_ema.pt"))
    assert any(not torch.equal(ema[k], raw[k]) for k in ema)
    assert sorted(p.name for p in (out / "grids").iterdir()) == ["epoch_001.png", "epoch_002.png"]
    rows = list(csv.DictReader((out / "plots/loss_iterations.csv").open()))
    assert len(rows) == 4 and rows[-1]["epoch"] == "2"
    assert len(list(csv.DictReader((out / "plots/loss_epochs.csv").open()))) == 2
    G = checkpoint.load_model(out / "generator.pt", Generator)  # weights_only load
    assert G(torch.randn(3, 16)).shape == (3, 1, 28, 28)
    state = checkpoint.load(next((tmp_path / "work").iterdir()) / "last.pt")
    assert state["epoch"] == 2 and {"G", "D", "opt_g", "opt_d", "rng", "global_rng"} <= set(state)


@pytest.mark.parametrize("loss, extra, d_steps", [
    ("bce", {"train.d_batches": "separate"}, 2), ("mse", {}, 2), ("hinge", {"train.d_steps": 1}, 1),
    ("wgan-gp", {"train.d_steps": 4}, 4),
])
def test_every_loss_trains_an_epoch(tmp_path, prepared, loss, extra, d_steps):
    session = Session(tiny_params(loss=loss, **{"train.epochs": 1, **extra}), prepared, tmp_path)
    session.run()
    m = session.metrics()
    assert m["iterations"] == 4 // d_steps  # 4 batches an epoch, one per D step
    assert all(torch.isfinite(torch.tensor([m["d_loss"], m["g_loss"]])))


def test_same_seed_same_weights_other_seed_differs(tmp_path, prepared):
    runs = []
    for i, seed in enumerate((3, 3, 4)):
        session = Session(tiny_params(seed=seed, **{"train.epochs": 1}), prepared, tmp_path / str(i))
        session.run()
        runs.append(session.trainer.G.state_dict())
    same = all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])
    assert same and not all(torch.equal(runs[0][k], runs[2][k]) for k in runs[0])


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path, prepared, monkeypatch):
    session = Session(tiny_params(), prepared, tmp_path / "work")
    trainer = session.trainer
    real_g_loss, calls = trainer.steps.g_step, {"n": 0}

    def poisoned(fake):  # epoch 2's second G step returns NaN
        calls["n"] += 1
        loss = real_g_loss(fake)
        return loss * float("nan") if calls["n"] == trainer.iters + 2 else loss

    monkeypatch.setattr(trainer.steps, "g_step", poisoned)
    last = session.folder.last
    with pytest.raises(TrainingDiverged, match=rf"training diverged at epoch 2, iteration 2: "
                       rf"non-finite statistics \(d_loss .*g_loss nan.*\); the last good "
                       rf"checkpoint, {last} \(epoch 1\), is kept; lower train.lr_g"):
        session.run()
    assert checkpoint.load(last)["epoch"] == 1 and calls["n"] == trainer.iters + 2  # at once
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_is_bit_identical(tmp_path):
    prepared = make_prepared(tmp_path / "data", n=512)
    params = write_params(tmp_path, {**TINY, "model.ngf": 16, "model.ndf": 16, "train.epochs": 3})
    env = dict(os.environ, MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}")
    subprocess.run(stage_cmd(tmp_path / "a", params, prepared), env=env, check=True,
                   capture_output=True)

    kill_after_first_checkpoint(stage_cmd(tmp_path / "b", params, prepared), env,
                                tmp_path / "b/work")
    assert not (tmp_path / "b/out").exists()

    resumed = subprocess.run(stage_cmd(tmp_path / "b", params, prepared), env=env, check=True,
                             capture_output=True, text=True)
    assert "resuming" in resumed.stdout and "after epoch 3" not in resumed.stdout
    for name in ("generator.pt", "discriminator.pt"):
        a, b = (checkpoint.load(tmp_path / run / "out" / name)["state_dict"] for run in "ab")
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    csvs = [(tmp_path / run / "out/plots/loss_iterations.csv").read_text() for run in "ab"]
    assert csvs[0] == csvs[1]


@pytest.mark.slow
def test_ctrl_c_says_the_checkpoint_is_kept_and_the_same_command_resumes(tmp_path):
    """Ctrl-C (SIGINT) after the first epoch: one line saying what is kept and how to go on,
    and the same command does resume."""
    import signal
    import time

    prepared = make_prepared(tmp_path / "data", n=512)
    params = write_params(tmp_path, {**TINY, "model.ngf": 16, "model.ndf": 16, "train.epochs": 3})
    env = dict(os.environ, MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}")
    cmd = stage_cmd(tmp_path / "b", params, prepared)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not list((tmp_path / "b/work").glob("*/last.pt")) and time.monotonic() < deadline:
        assert proc.poll() is None, "training ended before it could be interrupted"
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate()
    assert proc.returncode == 130
    assert [line for line in err.splitlines() if line.startswith("error:")] == [
        "error: interrupted; outputs were not written; the checkpoint of the last finished epoch "
        "is kept: rerun the same command to resume from it"], err
    resumed = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
    assert "resuming" in resumed.stdout


@pytest.mark.slow  # inductor runs the C++ compiler in subprocesses
def test_compiled_training_follows_eager(tmp_path, prepared):
    """torch.compile (inductor on CPU) trains the same model: WGAN-GP covers the compiled
    critic, the eager critic of the penalty (no double backward when compiled) and G's step."""
    extra = {"loss": "wgan-gp", "train.d_steps": 2, "train.epochs": 1}
    runs = {}
    for mode in ("eager", "default"):
        session = Session(tiny_params(**extra, **{"train.compile": mode}), prepared, tmp_path / mode)
        G = session.trainer.G
        init = torch.cat([p.detach().flatten().clone() for p in G.parameters()])
        session.run()
        runs[mode] = torch.cat([p.detach().flatten() for p in G.parameters()]) - init
    assert runs["eager"].norm() > 0
    # Not bit-equal: inductor fuses and reorders float sums, and Adam's normalised steps turn
    # the last-bit differences of near-zero gradients into visible ones (0.983 measured with
    # one thread, over 0.99 with two); a different model would be near 0.
    assert torch.nn.functional.cosine_similarity(runs["eager"], runs["default"], dim=0) > 0.95


def _weights(session):
    t = session.trainer
    return [x.clone() for x in (*t.G.state_dict().values(), *t.D.state_dict().values())]


def test_truncated_last_falls_back_to_prev_and_ends_bit_identical(tmp_path, prepared, capsys):
    straight = Session(tiny_params(**{"train.epochs": 3}), prepared, tmp_path / "a")
    straight.run()
    session = Session(tiny_params(), prepared, tmp_path / "b")
    session.run()
    last = session.folder.last
    assert checkpoint.load(session.folder.prev)["epoch"] == 1
    last.write_bytes(last.read_bytes()[:1000])  # a copy cut short
    capsys.readouterr()
    resumed = Session(tiny_params(**{"train.epochs": 3}), prepared, tmp_path / "b")
    assert resumed.resumed is True
    resumed.run()
    out = capsys.readouterr().out
    assert f"{last} is unreadable" in out and "resuming from prev.pt (epoch 1)" in out
    assert (session.folder.path / "last.pt.unreadable").is_file()  # kept, not deleted
    assert all(torch.equal(a, b) for a, b in zip(_weights(straight), _weights(resumed)))


@pytest.mark.parametrize("garbage", [b"", b"torn", b"hello world"])  # EOF, Index, KeyError
def test_no_readable_checkpoint_trains_afresh_with_one_line(tmp_path, prepared, capsys, garbage):
    session = Session(tiny_params(), prepared, tmp_path)
    session.run()
    for path in (session.folder.last, session.folder.prev):
        path.write_bytes(garbage)
    capsys.readouterr()
    again = Session(tiny_params(), prepared, tmp_path)
    assert again.resumed is False
    again.run()
    assert again.trainer.epoch == 2 and "cannot be read either" in capsys.readouterr().out
    assert checkpoint.load(again.folder.last)["epoch"] == 2


def test_full_disk_is_one_line_naming_the_folder_and_the_size(tmp_path, prepared, monkeypatch):
    import errno
    import pathlib

    from dcgan.atomic import DiskFull

    real = pathlib.Path.write_bytes

    def full(self, data):
        if "last.pt" in self.name:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, data)

    monkeypatch.setattr(pathlib.Path, "write_bytes", full)
    session = Session(tiny_params(), prepared, tmp_path)
    with pytest.raises(DiskFull) as err:
        session.run()
    message, folder = str(err.value), session.folder.path
    assert f"no space left on the device of {folder} for last.pt.new (needs " in message
    assert " free): free some space there and rerun" in message and "\n" not in message
    assert [p.name for p in folder.iterdir() if p.name.startswith(".")] == []


def test_leftover_temp_files_are_removed_on_start(tmp_path, prepared):
    from dcgan import atomic

    folder = Session(tiny_params(**{"train.epochs": 1}), prepared, tmp_path / "work").folder.path
    (folder / "grids").mkdir(parents=True)
    stale = [folder / ".last.pt.new.abc123.tmp", folder / "last.pt.new",
             folder / "grids" / ".epoch_001.png.x1y2.tmp"]
    for path in stale:
        path.write_bytes(b"half")
    Session(tiny_params(**{"train.epochs": 1}), prepared, tmp_path / "work").run()
    assert not any(p.exists() for p in stale)
    out = tmp_path / "out"
    (tmp_path / ".out.k3j4.tmp").mkdir()
    (tmp_path / ".out.k3j4.old").mkdir()
    (tmp_path / ".other.k3j4.tmp").mkdir()  # another output's: not ours to remove
    removed = atomic.remove_leftovers(out)
    assert sorted(p.name for p in removed) == [".out.k3j4.old", ".out.k3j4.tmp"]
    assert (tmp_path / ".other.k3j4.tmp").is_dir()


def test_a_second_trainer_on_the_folder_is_stopped_with_one_line(tmp_path, monkeypatch):
    from dcgan import lock
    from dcgan.errors import UserError

    with lock.locked(tmp_path / "work") as holder:
        assert holder
        monkeypatch.delenv(lock.LOCK_ENV)  # as seen from another process
        with pytest.raises(UserError, match=rf"another training process \(pid {os.getpid()} on .+\)"
                           rf" is using {tmp_path / 'work'}: wait for it"):
            with lock.locked(tmp_path / "work"):
                pass
    with lock.locked(tmp_path / "work") as holder:  # released: free again
        assert holder


def test_shorter_rerun_keeps_the_longer_run_whole(tmp_path, prepared, capsys):
    longer = Session(tiny_params(), prepared, tmp_path / "work")
    longer.run()
    folder = longer.folder.path
    shorter = Session(tiny_params(**{"train.epochs": 1}), prepared, tmp_path / "work")
    shorter.run()
    assert shorter.folder.path == folder / "epochs-1"
    assert "holds a longer run (epoch 2), kept" in capsys.readouterr().out
    assert checkpoint.load(folder / "last.pt")["epoch"] == 2  # the longer run's, untouched
    shorter.write_outputs(tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out/grids").iterdir()) == ["epoch_001.png"]
    extended = Session(tiny_params(**{"train.epochs": 3}), prepared, tmp_path / "work")
    assert extended.resumed is True and extended.folder.path == folder  # on from epoch 2
    extended.run()
    once = Session(tiny_params(**{"train.epochs": 3}), prepared, tmp_path / "straight")
    once.run()
    assert all(torch.equal(a, b) for a, b in zip(_weights(extended), _weights(once)))


def test_outputs_hold_only_the_grids_of_the_epochs_trained(tmp_path, prepared):
    session = Session(tiny_params(**{"train.epochs": 1}), prepared, tmp_path / "work")
    (session.folder.path / "grids").mkdir(parents=True)
    (session.folder.path / "grids/epoch_002.png").write_bytes(b"a longer run's frame")
    session.run()
    session.write_outputs(tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out/grids").iterdir()) == ["epoch_001.png"]


def _train_stage(tmp_path, prepared, monkeypatch, overrides):
    """The train stage's ``__main__`` in this process; returns its exit code."""
    import runpy
    import sys

    params = write_params(tmp_path, {**TINY, **overrides})
    monkeypatch.setattr(sys, "argv", ["train", "--params", str(params), "--data", str(prepared),
                                      "--workdir", str(tmp_path / "work"), "--out",
                                      str(tmp_path / "out"), "--metrics", str(tmp_path / "m.json")])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(str(REPO / "stages/train.py"), run_name="__main__")
    return exit_.value.code


@pytest.mark.parametrize("overrides, message", [
    ({"evaluate.inception": True, "evaluate.inception_weights": "missing.pth"},
     "error: InceptionV3 weights missing.pth could not be loaded (FileNotFoundError"),
    ({"evaluate.num_samples": 3}, "error: evaluation would compare real sets of 3 image(s), but "
                                  "needs 4 per set"),
])
def test_what_evaluation_needs_is_checked_before_training(tmp_path, prepared, monkeypatch, capsys,
                                                          overrides, message):
    """Missing InceptionV3 weights used to show up only after training."""
    assert _train_stage(tmp_path, prepared, monkeypatch, overrides) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(message)
    assert not list((tmp_path / "work").glob("*/last.pt")) and not (tmp_path / "out").exists()


@pytest.mark.slow  # a second process holds the lock
def test_a_trainer_started_beside_a_running_one_exits_with_one_line(tmp_path, prepared):
    hold = ("import sys, time\nfrom dcgan import lock\n"
            "with lock.locked(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(120)\n")
    holder = subprocess.Popen([sys.executable, "-c", hold, str(tmp_path / "work")],
                              stdout=subprocess.PIPE, text=True)
    # torch made unimportable: the refusal must come before the heavy imports (it used to
    # come ~44 s in, after torch, torchvision and mlflow's helpers had loaded)
    shim = tmp_path / "shim" / "torch"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text("raise ImportError('torch imported before the lock')\n")
    env = dict(os.environ, PYTHONPATH=f"{shim.parent}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    try:
        assert holder.stdout.readline().strip() == "held"
        params = write_params(tmp_path, TINY)
        proc = subprocess.run(stage_cmd(tmp_path, params, prepared), capture_output=True,
                              text=True, env=env)
    finally:
        holder.kill()
        holder.wait()
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        f"error: another training process (pid {holder.pid} on {socket.gethostname()}) is using "
        f"{tmp_path / 'work'}: wait for it to finish or stop it, then rerun"]
    assert not (tmp_path / "out").exists()


def test_resume_hint_names_the_checkpoint_resume_would_use(tmp_path, prepared):
    """The launcher's error line points at the file a rerun resumes from: in the shorter
    run's ``epochs-<N>/`` beside a longer run, and ``prev.pt`` when ``last.pt`` is broken;
    in the words the session's own error lines use (``workdir.kept``)."""
    from dcgan.training.session import resume_hint

    params = tiny_params(**{"train.epochs": 1})
    work = tmp_path / "work"
    assert resume_hint(params, prepared, work).startswith("No epoch had finished")
    folder = work / run_id(params, load_meta(prepared))
    folder.mkdir(parents=True)
    checkpoint.save(folder / "last.pt", {"epoch": 3})  # a longer run of the same params
    assert resume_hint(params, prepared, work).startswith("No epoch had finished")
    shorter = folder / "epochs-1"
    shorter.mkdir()
    checkpoint.save(shorter / "prev.pt", {"epoch": 1})
    (shorter / "last.pt").write_bytes(b"torn")
    assert resume_hint(params, prepared, work) == (
        f"The last good checkpoint, {shorter / 'prev.pt'} (epoch 1), is kept: rerun "
        "`dvc repro train` to resume from it")


@pytest.mark.parametrize("overrides, images, every", [
    ({"loss": "hinge", "train.batch_size": 64}, 5000, 6),  # the quick run: 39 G steps an epoch
    ({"loss": "bce"}, 60000, 1),  # the default job on Fashion-MNIST: 234 G steps an epoch
    ({"loss": "wgan-gp"}, 60000, 3),  # 5 D steps: 93 G steps an epoch
    ({"train.eval_every": 4}, 5000, 4),
    ({"train.eval_every": 0}, 5000, 0),
])
def test_periodic_evaluation_auto_checks_about_every_200_g_steps(overrides, images, every):
    from dcgan.training.stage import eval_every

    params = load_params(PARAMS, {"train.eval_every": "auto", **overrides})
    assert eval_every(params, images) == every
