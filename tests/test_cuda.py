"""The CUDA-only code of the training path: bf16 autocast, fused Adam, channels_last on cuDNN,
the device-resident (or pinned) epoch data and a checkpoint of CUDA RNG states.

Skipped without CUDA; ``pytest -m cuda`` runs them (benchmarks/gpu_check.sh does, first). The
tolerances were set from the same comparisons emulated on CPU (bf16 autocast on CPU): there
D's gradients agree to a cosine of >= 0.9996, G's to >= 0.997, iteration 0's losses to 0.7%.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from dcgan.training.batches import EpochData
from dcgan.config import load_params
from dcgan.distributed import World
from dcgan.training import Session, Trainer
from helpers import PARAMS, TINY

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")]

# The full-size model (cuDNN's real kernels), one batch of 64: one iteration per epoch
CUDA = {**{k: v for k, v in TINY.items() if not k.startswith("model.")},
        "train.device": "cuda", "train.batch_size": 64, "train.epochs": 1, "train.d_steps": 1}


def _flat(tensors) -> torch.Tensor:
    return torch.cat([t.detach().float().flatten() for t in tensors])


def _cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return F.cosine_similarity(a, b, dim=0).item()


def _one_iteration(prepared, workdir, **extra) -> tuple[Trainer, torch.Tensor, dict]:
    """One training iteration; its stats, the gradients it left and the weights' change."""
    trainer = Session(load_params(PARAMS, {**CUDA, **extra}), prepared,
                      workdir).trainer
    before = _flat(trainer.G.parameters()), _flat(trainer.D.parameters())
    stats = trainer.train_epoch()
    grads = {"D": _flat(p.grad for p in trainer.D.parameters()),
             "G": _flat(p.grad for p in trainer.G.parameters()),
             "dG": _flat(trainer.G.parameters()) - before[0],
             "dD": _flat(trainer.D.parameters()) - before[1]}
    return trainer, stats, grads


@pytest.mark.parametrize("loss", ["bce", "mse", "hinge", "wgan-gp"])
def test_bf16_step_with_fused_adam_is_finite_and_follows_fp32(tmp_path, prepared, loss):
    runs = {}
    for precision in ("fp32", "bf16"):
        trainer, stats, grads = _one_iteration(prepared, tmp_path / precision, loss=loss,
                                               **{"train.precision": precision})
        assert trainer.amp == (precision == "bf16")
        assert all(opt.param_groups[0]["fused"] for opt in (trainer.nets.opt_g, trainer.nets.opt_d))
        assert stats.device.type == "cuda" and torch.isfinite(stats).all(), stats
        assert all(torch.isfinite(g).all() for g in grads.values())
        # Adam's first step moves each weight by about lr (the gradient's sign, normalised)
        lr = trainer.p.train.lr_g
        assert grads["dG"].abs().max() <= 1.01 * lr and grads["dG"].abs().median() > 0.5 * lr
        runs[precision] = stats.cpu(), grads
    (s32, g32), (s16, g16) = runs["fp32"], runs["bf16"]
    assert torch.allclose(s16, s32, rtol=0.05, atol=0.02), (s16, s32)
    assert _cosine(g16["D"], g32["D"]) > 0.99
    assert _cosine(g16["G"], g32["G"]) > 0.98


def test_channels_last_nets_and_batches_train_like_contiguous(tmp_path, prepared):
    runs = {}
    for layout in (True, False):
        trainer, stats, grads = _one_iteration(prepared, tmp_path / str(layout), **{
            "train.precision": "fp32", "train.channels_last": layout})
        convs = [p for net in (trainer.G, trainer.D) for p in net.parameters() if p.dim() == 4]
        batch = trainer.data.epoch(torch.Generator("cuda").manual_seed(0))(0)
        assert batch.is_cuda
        if layout:
            assert all(p.is_contiguous(memory_format=torch.channels_last) for p in convs)
            assert batch.is_contiguous(memory_format=torch.channels_last)
        runs[layout] = grads
    assert _cosine(runs[True]["D"], runs[False]["D"]) > 0.999
    assert _cosine(runs[True]["G"], runs[False]["G"]) > 0.99


def _indexed_images(n: int) -> torch.Tensor:
    """Random RGB images whose first pixel encodes their index (i / n)."""
    images = torch.rand(n, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    images[:, 0, 0, 0] = torch.arange(n) / n
    return images


@pytest.mark.parametrize("free", ["real", "shard", "batch"])
def test_epoch_data_serves_the_permutation_from_any_placement(monkeypatch, free):
    """Resident (the set fits), one shard copy per epoch from pinned memory, or one copy per
    batch: each serves the same batches, on the GPU, channels_last."""
    n, batch_size, batches = 96, 16, 5
    images = _indexed_images(n)
    size = images.numel() * images.element_size()
    if free != "real":  # _place keeps the set resident when 2 * size < free / 2
        fake_free = 3 * size if free == "shard" else size
        monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (fake_free, 10 * size))
    data = EpochData(images, batches, batch_size, World(), torch.device("cuda"), torch.channels_last)
    assert data.images.is_cuda == (free == "real")
    assert data.shard_fits == (free != "batch")
    if free != "real":
        assert data.images.is_pinned()
    batch = data.epoch(torch.Generator("cuda").manual_seed(3))
    perm = torch.randperm(n, generator=torch.Generator("cuda").manual_seed(3), device="cuda").cpu()
    for b in range(batches):
        x = batch(b)
        assert x.is_cuda and x.is_contiguous(memory_format=torch.channels_last)
        assert torch.equal(x.cpu(), images[perm[b * batch_size:(b + 1) * batch_size]])


def test_run_resumes_from_a_cuda_checkpoint(tmp_path, prepared, monkeypatch):
    """The checkpoint holds the CUDA generator's and the CUDA global RNG's states: a run
    stopped after epoch 1 and resumed ends where an uninterrupted run ends."""
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", True)
    two = {"train.epochs": 2, "train.batch_size": 16}
    whole = Session(load_params(PARAMS, {**CUDA, **two}), prepared, tmp_path / "a")
    whole.run()
    Session(load_params(PARAMS, {**CUDA, **two, "train.epochs": 1}), prepared,
            tmp_path / "b").run()
    resumed = Session(load_params(PARAMS, {**CUDA, **two}), prepared, tmp_path / "b")
    assert resumed.resumed is True
    resumed.run()
    assert resumed.trainer.epoch == 2 and resumed.trainer.rng.device.type == "cuda"
    a, b = _flat(whole.trainer.G.parameters()), _flat(resumed.trainer.G.parameters())
    assert torch.allclose(a, b, rtol=1e-4, atol=1e-6), (a - b).abs().max()
