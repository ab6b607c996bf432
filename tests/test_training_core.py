"""The training core's contracts: hooks, the run id's code coverage, its import boundary, and
one owner per run (no back-imports of the trainer, one place for the run folder's rules)."""

from __future__ import annotations

import ast
import copy
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dcgan import checkpoint
from dcgan.data.prepared import load_split
from dcgan.training import Hook, Session, Trainer
from dcgan.training.identity import COVERED, NOT_MATHS, code_text
from helpers import REPO, tiny_params

SRC = REPO / "src" / "dcgan"


class CountingHook(Hook):
    """A stateful test hook: counts epochs, adds a metric, writes a file; its count resumes."""

    name = "counter"

    def __init__(self) -> None:
        self.count = 0

    def after_epoch(self, trainer, end):
        self.count += 1
        end.metrics["counted"] = float(self.count)
        self.seen = dict(end.metrics)

    def state_dict(self):
        return {"count": self.count}

    def load_state_dict(self, state):
        self.count = state["count"]

    def write_outputs(self, trainer, folder):
        (folder / "count.txt").write_text(str(self.count))

    def metrics(self):
        return {"counted": self.count}


def _trainer(prepared, **extra) -> Trainer:
    params = tiny_params(**extra)
    return Trainer(params, load_split(prepared, "train")[0])


def test_a_hook_written_outside_the_loop_runs_saves_and_resumes(tmp_path, prepared):
    first = CountingHook()
    Session(tiny_params(**{"train.epochs": 1}), prepared, tmp_path / "work", hooks=[first]).run()
    assert first.count == 1
    hook = CountingHook()
    session = Session(tiny_params(), prepared, tmp_path / "work", hooks=[hook])
    assert session.resumed  # 1 -> 2 epochs: resumed, with the hook's state
    session.run()
    assert hook.count == 2 and {"d_loss", "g_loss", "counted"} <= set(hook.seen)
    state = checkpoint.load(session.folder.last)
    assert state["hooks"]["counter"] == {"count": 2}
    # what a hook adds to an epoch's metrics is in the history (MLflow back-fills from it)
    assert [e["counted"] for e in state["history"]["epochs"]] == [1.0, 2.0]
    assert session.metrics()["counted"] == 2
    session.write_outputs(tmp_path / "out")
    assert (tmp_path / "out/count.txt").read_text() == "2"


def test_the_trainer_alone_writes_no_file(tmp_path, prepared, monkeypatch):
    monkeypatch.chdir(tmp_path)
    trainer = _trainer(prepared, **{"train.epochs": 1})
    trainer.run()
    assert trainer.epoch == 1 and list(tmp_path.iterdir()) == []


def test_no_module_imports_the_trainer_to_be_called_back_by_it():
    """Hooks see the run through the Run protocol; nothing imports Trainer for types."""
    for path in SRC.rglob("*.py"):
        text = path.read_text()
        assert "TYPE_CHECKING" not in text or "Trainer" not in text, path


def test_the_run_folder_rules_and_the_mlflow_record_name_live_in_one_place():
    texts = {path: path.read_text() for path in SRC.rglob("*.py")}
    assert [path.name for path, text in texts.items() if '"mlflow_run.json"' in text] == ["paths.py"]
    assert [path.name for path, text in texts.items() if '"epochs-' in text] == ["workdir.py"]


def _dcgan_imports(module: str) -> set[str]:
    tree = ast.parse(Path(importlib.util.find_spec(module).origin).read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("dcgan"):
            for alias in node.names:  # `from dcgan.training import steps` imports a module
                sub = f"{node.module}.{alias.name}"
                names.add(sub if importlib.util.find_spec(node.module).submodule_search_locations
                          and importlib.util.find_spec(sub) else node.module)
        elif isinstance(node, ast.Import):
            names |= {a.name for a in node.names if a.name.startswith("dcgan")}
    return names - {"dcgan", "dcgan.training"}


def test_run_id_covers_every_module_the_maths_imports():
    """Code moved into an unlisted module would keep stale checkpoints resumable."""
    for module in COVERED:
        unknown = _dcgan_imports(module) - set(COVERED) - set(NOT_MATHS)
        assert not unknown, f"{module} imports {unknown}: add to identity.COVERED or NOT_MATHS"


def test_run_id_ignores_comments_and_docstrings_but_not_code():
    source = (SRC / "training/steps.py").read_text()
    edited = source.replace('"""One D update', '"""Reworded: one D update').replace(
        "# fp32: the penalty", "# (reworded) fp32: the penalty")
    assert edited != source and code_text(edited) == code_text(source)
    changed = source.replace("loss + self.gp_weight *", "loss - self.gp_weight *")
    assert changed != source and code_text(changed) != code_text(source)


def test_only_the_losses_module_knows_loss_names():
    for path in SRC.rglob("*.py"):
        if path.name in ("losses.py", "config.py"):
            continue  # the registry, and config's torch-free list of the allowed names
        for name in ('"wgan-gp"', '"hinge"', '"mse"', '"bce"'):
            assert name not in path.read_text(), f"{path} compares the loss name {name}"


@pytest.mark.slow
def test_core_imports_neither_mlflow_nor_dvc():
    code = ("import sys\n"
            "for name in ('mlflow', 'dvc'):\n    sys.modules[name] = None  # import fails\n"
            "import dcgan.models, dcgan.losses, dcgan.training, dcgan.metrics, dcgan.scoring\n"
            "import dcgan.classifier, dcgan.data.preprocess, dcgan.data.download, dcgan.cli\n"
            "import dcgan.training.stage, dcgan.evaluation, dcgan.preflight\n"
            "import dcgan.halves, dcgan.tuning.command, dcgan.spread\n"
            "assert not any(m.split('.')[0] in ('mlflow', 'dvc') for m in sys.modules if sys.modules[m])\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={"PYTHONPATH": str(REPO / "src"), "PATH": ""})
    assert result.returncode == 0, result.stderr


def test_generate_leaves_g_in_training_mode(tmp_path, prepared):
    trainer = _trainer(prepared)
    images = trainer.generate(trainer.fixed_noise)
    assert images.shape == (16, 1, 28, 28) and trainer.G.training and torch.isfinite(images).all()


def test_r1_step_adds_gamma_over_two_times_the_penalty(tmp_path, prepared):
    """A D step that R1 falls on (the run's step 0, 4, 8, ... at r1_every 4) minimises the
    loss's D term plus gamma * every / 2 times E ||grad_x D(x)||**2 on the real batch: same
    loss value, same updated weights as by hand."""
    from dcgan import losses

    trainer = _trainer(prepared, **{"train.r1": 0.3, "train.r1_every": 4})
    real = torch.rand(16, 1, 28, 28) * 2 - 1
    fake = trainer.G(torch.randn(16, trainer.p.model.nz)).detach()
    D = copy.deepcopy(trainer.D)
    opt = torch.optim.Adam(D.parameters(), trainer.p.train.lr_d, (0.5, 0.999))
    opt.load_state_dict(trainer.nets.opt_d.state_dict())
    expected = losses.get("bce").d_loss(D(real), D(fake)) + 0.3 * 4 / 2 * losses.r1_penalty(D, real)
    opt.zero_grad()
    expected.backward()
    opt.step()
    got, _, _ = trainer.steps.d_step(real, fake, step=8)
    assert got.item() == pytest.approx(expected.item(), rel=1e-6)
    for a, b in zip(trainer.D.parameters(), D.parameters()):
        torch.testing.assert_close(a, b)


def test_r1_every_counts_d_steps_over_the_whole_run(tmp_path, prepared, monkeypatch):
    """Lazy R1 falls on every r1_every-th D step of the run, epoch boundaries included, so a
    resumed run penalises the same steps as an uninterrupted one."""
    from dcgan.training import steps as steps_module

    calls = []
    real_penalty = steps_module.r1_penalty
    monkeypatch.setattr(steps_module, "r1_penalty", lambda d, x: calls.append(1) or real_penalty(d, x))
    trainer = _trainer(prepared, **{"train.r1_every": 3, "train.d_steps": 2, "train.epochs": 1})
    applied = []
    for epoch in range(3):  # 64 images, batch 16, 2 D steps per G step: 2 G steps, 4 D steps
        calls.clear()
        trainer.train_epoch()
        trainer.epoch += 1
        applied.append(len(calls))
    assert trainer.iters * trainer.d_steps == 4
    assert applied == [2, 1, 1]  # D steps 0 and 3 | 6 | 9 (of 0..11)
