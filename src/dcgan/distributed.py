"""Several training processes through PyTorch's own machinery: torchrun's launcher and DDP.

A process learns its place from the variables torchrun sets (WORLD_SIZE, RANK, LOCAL_RANK),
so the training stage runs the same whether it launched itself (``train.nproc > 1``) or a
user started it with ``torchrun`` across several machines. Rank 0 alone writes files and
talks to MLflow; the others only compute.
"""

from __future__ import annotations

import inspect
import os
import signal
import sys
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
import torch.distributed as dist

from dcgan.errors import UserError


@dataclass(frozen=True)
class World:
    """This process's place among the training processes (rank 0 of 1 when alone)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Rank 0: the one process that writes outputs, checkpoints and the MLflow run."""
        return self.rank == 0


def launched() -> bool:
    """True inside a process started by torchrun (ours or the user's)."""
    return "WORLD_SIZE" in os.environ and "RANK" in os.environ


def world_from_env() -> World:
    """The place torchrun gave this process, or the single-process world."""
    if not launched():
        return World()
    return World(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]),
                 int(os.environ.get("LOCAL_RANK", "0")))


def init(world: World, device: torch.device) -> None:
    """Join the process group (NCCL between GPUs, gloo on CPU); nothing when alone."""
    if world.size == 1 or dist.is_initialized():
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
        dist.init_process_group("nccl", device_id=device)
    else:
        dist.init_process_group("gloo")


SYNC_BN_ON_CPU = ("train.sync_bn: PyTorch's SyncBatchNorm runs on GPUs only; set it to false "
                  "for CPU training")


def sync_batch_norm(module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``module`` with SyncBatchNorm: batch statistics over every process's samples."""
    if device.type != "cuda":
        raise UserError(SYNC_BN_ON_CPU)
    return torch.nn.SyncBatchNorm.convert_sync_batchnorm(module)


def close() -> None:
    """Leave the process group (at the end of a distributed run)."""
    if dist.is_initialized():
        dist.destroy_process_group()


def broadcast(obj: Any, world: World) -> Any:
    """Rank 0's ``obj`` on every rank (a checkpoint read by rank 0, say)."""
    if world.size == 1:
        return obj
    box = [obj if world.main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def mean(tensor: torch.Tensor, world: World) -> torch.Tensor:
    """The mean of ``tensor`` over all ranks (in place); itself when alone."""
    if world.size > 1:
        dist.all_reduce(tensor)
        tensor /= world.size
    return tensor


def wrap(module: torch.nn.Module, world: World, device: torch.device) -> torch.nn.Module:
    """``module`` under DistributedDataParallel, or itself when alone.

    Buffers are not broadcast: batch-norm running statistics stay per process (rank 0's are
    the ones saved), which saves a collective on every forward call.
    """
    if world.size == 1:
        return module
    ddp = torch.nn.parallel.DistributedDataParallel
    # Newer PyTorch renamed the switch (and deprecated the old name); older has only the old.
    name = ("forward_sync_buffers" if "forward_sync_buffers" in inspect.signature(ddp).parameters
            else "broadcast_buffers")
    ids = [device.index] if device.type == "cuda" else None
    return ddp(module, device_ids=ids, **{name: False})


def _blame(exitcode: int) -> int:
    """Which failure caused the others: a kill, then an error, then the agent's SIGTERM."""
    if exitcode == -signal.SIGTERM:
        return 2  # torchrun's agent stops the survivors with SIGTERM
    return 0 if exitcode < 0 else 1


def launch(nproc: int, argv: Sequence[str], hint: Callable[[], str]) -> None:
    """Run ``python argv...`` in ``nproc`` processes on this machine, as ``torchrun --standalone``.

    A failed process stops the others (torchrun's agent does that); the failure becomes one
    line naming the process and how it ended, then ``hint()`` (where to resume from).
    """
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    # Each process would otherwise start one OpenMP thread per core: on CPU that
    # oversubscribes the cores and slows every process many times over.
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=str(uuid.uuid4()),
                          rdzv_backend="c10d", rdzv_endpoint="localhost:0", max_restarts=0)
    try:
        elastic_launch(config, sys.executable)(*argv)
    except ChildFailedError as err:
        if 0 in err.failures and err.failures[0].exitcode == 2:
            raise SystemExit(2) from None  # rank 0 has printed its one-line error already
        rank, failure = min(err.failures.items(), key=lambda kv: (_blame(kv[1].exitcode),
                                                                  kv[1].timestamp, kv[0]))
        how = (f"was killed by {failure.signal_name()}" if failure.exitcode < 0
               else f"exited with code {failure.exitcode} (its message is above)")
        raise UserError(f"training process {rank} of {nproc} {how}; the other processes were "
                        f"stopped. {hint()}") from None
