"""The validate stage: everything a later stage would refuse from params and sources, refused first.

DVC deletes a stage's outputs just before it runs that stage, so a value rejected inside,
say, the train stage would already have cost the last results. :func:`validate_stage` loads
params.yaml as every stage will and refuses (:func:`check_runnable`): a local source or
mirror that is not there, ``idx:`` files that do not read, too few images for a batch of 2
per D step or for evaluation's real sets, a batch that does not split over the processes,
devices that are not there, InceptionV3 weights asked for but missing or not the published
file. Kept apart from :mod:`dcgan.preflight` (which the train stage imports) so that the
train stage does not depend on the readers of raw data.
"""

from __future__ import annotations

import os
from pathlib import Path

from dcgan import atomic, paths
from dcgan.config import Params, load_params
from dcgan.data.prepared import check_scorable
from dcgan.data.sources import SAMPLES, parse_dataset, sample_dir
from dcgan.errors import UserError, quoted
from dcgan.preflight import check_inception

# The held-out split of each known data set (the test split of the IDX sets, AFHQ's val)
KNOWN_HELD_OUT = {"fashion-mnist": 10_000, "mnist": 10_000, "animal-faces": 1_500}
RESTORE = ("`dvc exp run -S` wrote this value into params.yaml and leaves it there: fix it, or "
           "restore the committed file with `git checkout params.yaml`")


def source_counts(params: Params) -> tuple[int | None, int | None]:
    """(train images, held-out images) of the ``dataset`` source, None where unknown (a known
    data set's train split: thousands). What the download stage refuses is refused here: a
    local mirror or source that is not there, an ``idx:`` folder without readable MNIST files
    (the files are read: megabytes); a ``folder:`` source's images are listed, and decoded
    only by the download stage."""
    source = parse_dataset(params.dataset)
    if source.kind == "known":
        mirror = params.download.mirror
        if mirror and "://" not in mirror and not paths.resolve(mirror).is_dir():
            raise UserError(f"download.mirror: folder {quoted(paths.resolve(mirror))} not found; fix "
                            "the path (relative paths start at the repo root) or set it to none")
        if source.name in SAMPLES:  # shipped in the package: counted like a local idx: folder
            return _local_counts("idx", sample_dir(source.name))
        return None, KNOWN_HELD_OUT[source.name]
    src = paths.resolve(source.name)
    if not src.is_dir():
        raise UserError(f"dataset: {quoted(source.spec)}: folder {quoted(src)} not found; fix the path "
                        "(relative paths start at the repo root)")
    try:
        return _local_counts(source.format, src)
    except UserError as err:
        raise UserError(f"{err} (in dataset {quoted(source.spec)})") from None


def _local_counts(kind: str, src: Path) -> tuple[int, int | None]:
    if kind == "idx":
        from dcgan.data import idx

        found = {split: len(idx.read_split(*files)[0]) for split, files in idx.idx_files(src).items()}
        return found["train"], found.get("test")
    from dcgan.data import folder

    splits = folder.find_splits(src)
    counts = {split: len(folder.list_images(d)[0]) for split, d in splits.items()}
    return counts["train"], next((counts[s] for s in ("val", "test") if s in counts), None)


def check_counts(params: Params, train: int | None, held: int | None) -> None:
    """Enough training images for a batch of 2 (batch norm) in each of a G step's D steps
    (which also covers the classifier's hold-out of 1 of 2 or more), and for evaluation's
    real sets (:func:`check_scorable`, what the train and evaluate stages call)."""
    from dcgan.losses import get
    from dcgan.training.batches import plan_batches

    cap, e = params.preprocess.max_images, params.evaluate
    known = [c for c in (cap, train) if c is not None]
    held_split = {"test": {"count": held}} if held else {}
    if not known:  # a known data set's whole train split (thousands): only num_samples counts
        check_scorable({"splits": {"train": {"count": 2**31}, **held_split}}, e.num_samples, e.pr_k)
        return
    n = min(known)
    what = f"preprocess.max_images {cap}" if cap == n else f"dataset {params.dataset}"
    d = get(params.loss).steps_per_g(params.train.d_steps)
    nproc = params.train.nproc
    if min(params.train.batch_size, n // d) < 2 * nproc:
        raise UserError(f"{what} leaves {n} training image(s), but each of a G step's {d} D steps "
                        f"needs a batch of at least 2 (batch norm) per process: use at least "
                        f"{2 * d * nproc} images")
    try:  # the batch a small data set shrinks to must still split over the processes
        plan_batches(get(params.loss), params.train, n, nproc)
    except UserError as err:
        raise UserError(f"{what} leaves {n} training image(s): {err}") from None
    try:
        check_scorable({"splits": {"train": {"count": n}, **held_split}}, e.num_samples, e.pr_k)
    except UserError as err:
        raise UserError(f"{what} leaves {n} training image(s): {err}") from None


def check_processes(params: Params) -> None:
    """The batch over ``train.nproc`` processes, each with a batch of 2 or more, on devices
    that exist (what the train stage's launcher refuses)."""
    t = params.train
    if t.batch_size < 2:
        raise UserError(f"train.batch_size {t.batch_size}: batch norm needs a batch of at least 2 "
                        "images (it normalises over the batch); use 2 or more")
    if t.batch_size % t.nproc or t.batch_size // t.nproc < 2:
        raise UserError(f"train.batch_size {t.batch_size} over train.nproc {t.nproc} processes: each "
                        f"needs an equal batch of at least 2; use a multiple of {t.nproc} of at "
                        f"least {2 * t.nproc}")
    import torch

    from dcgan.device import resolve_device
    from dcgan.distributed import SYNC_BN_ON_CPU, World

    cuda = resolve_device(t.device).type == "cuda"  # cuda asked for, none visible: refused
    if t.sync_bn and not cuda:
        raise UserError(SYNC_BN_ON_CPU)
    if cuda and t.nproc > torch.cuda.device_count():
        raise UserError(f"train.nproc {t.nproc} but {torch.cuda.device_count()} GPU(s) "
                        "visible; lower train.nproc")
    resolve_device(t.device, World(0, t.nproc))  # one pinned GPU for several processes


def check_runnable(params: Params) -> None:
    """Everything a later stage would refuse from params and sources, refused now."""
    check_processes(params)
    check_counts(params, *source_counts(params))
    check_inception(params)


def _restore_hint() -> str:
    """How to undo the value ``dvc exp run -S`` wrote, when it wrote it into this workspace
    (a queued experiment's temp copy leaves the user's params.yaml as it was)."""
    root = os.environ.get("DVC_ROOT")
    here = root is not None and Path(root).resolve() == Path.cwd().resolve()
    return f"; {RESTORE}" if os.environ.get("DVC_EXP_NAME") and here else ""


def validate_stage(path: str | Path, out: str | Path) -> None:
    """The validate stage: load ``path`` as every stage will and refuse what a later stage
    would, then write ``out``, whose content never changes (later stages depend on it for
    their order only, so a valid edit of params.yaml reruns nothing through it)."""
    try:
        check_runnable(load_params(path))
    except UserError as err:
        raise type(err)(f"{err}{_restore_hint()}") from None
    atomic.write_text(out, "params.yaml is valid\n")
    print(f"validate: {path} is valid")
