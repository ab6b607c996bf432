"""How many threads torch computes with on the CPU, chosen on purpose for every stage.

torch's default is one intra-op thread per core. That is the fastest choice on an idle
machine, and a slow one on a busy one: with several processes each running a thread per
core, OpenMP's spinning threads wait on each other (benchmarks/NOTES.md: a G step 2x slower
at load ~9 than with one thread per process). The choice, in order:

1. ``$DCGAN_THREADS`` (a positive integer): what the user asked for;
2. ``$OMP_NUM_THREADS``: torch reads it itself; left alone;
3. under a DVC queue (``dvc queue start -j N``, ``dvc exp run --run-all -j N``): the cores
   split evenly over the N workers, at least one each;
4. else torch's default, a thread per core.

On the CPU the thread count changes the order of floating-point sums, so results are
bit-identical for the same params, seed *and* thread count: the train stage records the
count in its details.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

ENV = "DCGAN_THREADS"
# A DVC queue worker's command line: `dvc exp queue-worker dvc-exp-<repo hash>-<n>@localhost`
# (dvc.repo.experiments.queue.celery); its stages run as its descendants.
_WORKER = re.compile(rb"exp\0queue-worker\0dvc-exp-([0-9a-f]+)-\d+@")


def _cmdline(pid: str) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:  # gone, or not ours to read
        return b""


def _parent(pid: str) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    ppid = stat.rsplit(")", 1)[1].split()[1]  # the name in parentheses may hold spaces
    return ppid if ppid != "0" else None


def queue_workers(pid: int | None = None) -> int:
    """How many workers the DVC queue this process runs under has (0: not under one).

    Reads /proc (Linux): finds a queue-worker among this process's ancestors, then counts
    the workers of the same repository. Hand-written: neither DVC nor torch exposes it.
    """
    here: str | None = str(pid or os.getpid())
    while here is not None:
        found = _WORKER.search(_cmdline(here))
        if found:
            tag = found.group(1)
            return sum(1 for p in Path("/proc").iterdir() if p.name.isdigit()
                       and (m := _WORKER.search(_cmdline(p.name))) and m.group(1) == tag)
        here = _parent(here)
    return 0


class BadThreads(ValueError):
    """A thread count the user set that is not one (run_stage prints it as one line; this
    module sits below dcgan.errors, which imports it)."""


def choose(cores: int | None = None, workers: int | None = None) -> tuple[int | None, str]:
    """The thread count to set (None: leave torch's default) and why, in a few words."""
    asked = os.environ.get(ENV, "").strip()
    if asked:
        if not asked.isdigit() or int(asked) < 1:
            raise BadThreads(f"${ENV}={asked!r}: expected a positive number of threads, e.g. "
                            f"{ENV}=1; unset it for the automatic choice (docs/training.md)")
        return int(asked), f"${ENV}"
    if os.environ.get("OMP_NUM_THREADS"):
        return None, "$OMP_NUM_THREADS"
    if cores is None:  # the cores this process may run on (a container's or taskset's)
        cores = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                 else os.cpu_count() or 1)
    workers = queue_workers() if workers is None else workers
    if workers > 1:
        return max(1, cores // workers), f"a DVC queue of {workers} workers on {cores} cores"
    return None, "torch's default, a thread per core"


def configure() -> int:
    """Apply :func:`choose` to torch (when imported) and to child processes; return the
    thread count torch will use."""
    n, _ = choose()
    if n is not None:
        os.environ["OMP_NUM_THREADS"] = str(n)  # torchrun's workers, and a later import
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(n)
    if "torch" in sys.modules:
        return sys.modules["torch"].get_num_threads()
    return n or int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1)
