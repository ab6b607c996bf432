"""The data set a run trained on, as an MLflow dataset input (the run list's Dataset column)."""

from __future__ import annotations

import hashlib
import json
import warnings
from typing import Any

from dcgan.paths import resolve


def dataset_input(meta: dict[str, Any]) -> Any | None:
    """The prepared data set as an MLflow dataset (the run list's Dataset column): its name
    (``mnist-5k``, ``fashion-mnist``), where it came from (the local folder, or the download
    URL) and a digest of the raw files' hash and the preprocessing (shape, split sizes), so two
    runs on the same images show the same digest. None for a ``dataset`` value that does not
    parse (only a hand-made ``meta``: the stages validated it)."""
    from mlflow.data.http_dataset_source import HTTPDatasetSource
    from mlflow.data.meta_dataset import MetaDataset

    from dcgan.data.sources import SAMPLES, parse_dataset, sample_dir, torchvision_dataset

    try:
        source = parse_dataset(meta["dataset"])
    except ValueError:
        return None
    if source.kind == "local" or source.name in SAMPLES:
        from mlflow.data.dataset_source_registry import resolve_dataset_source

        local = resolve(source.name) if source.kind == "local" else sample_dir(source.name)
        name = local.name
        with warnings.catch_warnings():  # the registry's note on guessing a source type
            warnings.simplefilter("ignore")
            origin = resolve_dataset_source(str(local))
    else:
        name, origin = source.name, HTTPDatasetSource(torchvision_dataset(source.name).mirrors[0])
    shape = "x".join(str(n) for n in meta.get("image_shape", ()))
    counts = {split: info["count"] for split, info in sorted(meta.get("splits", {}).items())}
    digest = hashlib.sha256(json.dumps([meta.get("source_sha256"), shape, counts]).encode())
    return MetaDataset(origin, name=f"{name} ({counts.get('train', '?')} train, {shape})",
                       digest=digest.hexdigest()[:8])
