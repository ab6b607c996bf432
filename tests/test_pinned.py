"""Behaviour pinned across refactors: a short CPU run's final weights, bit for bit.

The hashes were recorded before the training core was split into ``dcgan.training`` and must
not change while code only moves. They are keyed by the torch version that recorded them:
another torch may pick other CPU kernels (and so other bits), so under an unrecorded version
the test says how to record it instead of failing on a difference that is not ours.
"""

from __future__ import annotations

import hashlib

import pytest
import torch

from dcgan.config import PAPER, load_params
from conftest import REPO, TINY, make_prepared

CASES = {  # name -> param overrides; two epochs so resume-free epoch boundaries are covered
    "bce-separate": {"train.d_batches": "separate"},
    "mse": {"loss": "mse"},
    "hinge-layer": {"loss": "hinge", "model.d_norm": "layer"},
    "wgan-gp": {"loss": "wgan-gp", "train.d_steps": 2},
    "bce-r1": {"train.r1": 1.0, "train.r1_every": 2},  # recorded when R1 was added
}
PINNED = {
    "2.14.1": {"bce-separate": "aa47b09d3876da63", "mse": "ddcef9d640e83746",
               "hinge-layer": "02940160330b3c23", "wgan-gp": "29e7bcbd9bdc9637",
              "bce-r1": "a8fea039cb4c9a58"},
}


def weights_hash(module_states: list[dict[str, torch.Tensor]]) -> str:
    """SHA-256 over every tensor's bytes, in state-dict order."""
    digest = hashlib.sha256()
    for state in module_states:
        for name, tensor in state.items():
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def train_case(tmp_path, prepared, overrides: dict) -> str:
    from dcgan.training import Trainer

    # The paper's recipe the hashes were recorded with (the defaults then), at TINY's size: the
    # pins hold the code's behaviour, not the defaults of params.yaml.
    base = {**PAPER, **TINY, "train.r1_every": 1}
    params = load_params(REPO / "params.yaml", {**base, **overrides})
    trainer = Trainer(params, prepared, tmp_path / "work")
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # the recorded count: CPU kernels split sums by thread
    try:
        trainer.run()
    finally:
        torch.set_num_threads(threads)
    return weights_hash([trainer.G.state_dict(), trainer.D.state_dict()])


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return make_prepared(tmp_path_factory.mktemp("pinned"), n=64)


@pytest.mark.parametrize("case", sorted(CASES))
def test_final_weights_are_pinned(tmp_path, prepared, case):
    version = torch.__version__.split("+")[0]
    got = train_case(tmp_path, prepared, CASES[case])
    if version not in PINNED:
        pytest.skip(f"no hashes recorded for torch {version}: add {{'{case}': '{got}'}} "
                    f"to PINNED['{version}'] from a commit whose training is known good")
    assert got == PINNED[version][case]
