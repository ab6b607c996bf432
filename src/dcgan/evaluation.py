"""The evaluate stage's rows: generator, best checkpoint, real-data floor and noise, scored alike.

Builds on :mod:`dcgan.evaluate` (sampling, scoring, the reference and floor sets); kept apart
from it because the train stage imports that module for its periodic evaluation, and a
change here should not make DVC retrain.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from dcgan import checkpoint
from dcgan.classifier import DomainClassifier
from dcgan.config import Params
from dcgan.data.prepared import check_scorable, heldout_split, load_meta, load_split
from dcgan.evaluate import Settings, classifier_scores, noise_like, real_sets, sample
from dcgan.models import Generator

UNLABELLED = ("the data has no labels: the classifier rows are scored in the features of the "
              "untrained (seeded) classifier network; Inception-style score and classes covered "
              "are skipped, they need classes")
# Extra generator files of the train stage, each scored as its own row when present.
EXTRA_ROWS = {"ema": "generator_ema.pt"}


def classifier_rows(data: str | Path, classifier: str | Path, train: str | Path, params: Params,
                    device: torch.device) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Classifier-space rows for every candidate, and the image sets the Inception part reuses.

    Args:
        data: the prepared data set (the reference is its held-out split).
        classifier: the domain classifier's checkpoint.
        train: the train stage's output folder (``generator.pt``, optional
            ``generator_best.pt`` with ``best.json``).
        params: validated params (``evaluate.*`` and ``seed`` are used).
        device: where to sample and score.
    """
    e, meta = params.evaluate, load_meta(data)
    heldout, _ = heldout_split(data, meta)
    reference, candidate, how = real_sets(load_split(data, "train")[0],
                                          heldout[0] if heldout else None, e.num_samples,
                                          params.seed)
    clf = checkpoint.load_model(classifier, DomainClassifier).to(device)
    s = Settings(e.is_splits, e.kid_subset_size, e.pr_k, e.batch_size, params.seed,
                 labelled=bool(meta["classes"]))

    def scores(images: torch.Tensor) -> dict[str, Any]:
        return {"classifier": classifier_scores(clf, images, reference, device, s)}

    def generated(path: Path) -> torch.Tensor:
        g = checkpoint.load_model(path, Generator)
        return sample(g, len(reference), g.nz, device, params.seed, e.batch_size)

    sets = {"generator": generated(Path(train) / "generator.pt"), "floor": candidate}
    for row, name in EXTRA_ROWS.items():
        if (Path(train) / name).is_file():
            sets[row] = generated(Path(train) / name)
    result = {"samples": len(reference), "reference": how,
              **{row: scores(images) for row, images in sets.items()},
              "noise": scores(noise_like(reference, params.seed))}
    if not s.labelled:
        result["notes"] = [UNLABELLED]
    best = Path(train) / "generator_best.pt"
    if best.is_file():  # the periodic evaluation's pick, scored the same way
        result["best"] = {**json.loads((Path(train) / "best.json").read_text()),
                          **scores(generated(best))}
    return result, {**sets, "reference": reference}


def inception_rows(sets: dict[str, torch.Tensor], params: Params,
                   device: torch.device) -> dict[str, dict[str, float]]:
    """InceptionV3 IS/FID/KID (torch-fidelity) against ``sets["reference"]`` for every other
    set: the generator, the floor and the extra generators (the EMA, which the grids show)."""
    from dcgan.inception import inception_metrics  # torch-fidelity only when asked for

    e = params.evaluate
    kwargs = dict(weights_path=e.inception_weights, kid_subset_size=e.kid_subset_size,
                  device=device, seed=params.seed)
    return {row: inception_metrics(images, sets["reference"], **kwargs)
            for row, images in sets.items() if row != "reference"}


def evaluate(data: str | Path, classifier: str | Path, train: str | Path, params: Params,
             device: torch.device) -> dict[str, Any]:
    """Every row in classifier space, plus InceptionV3 for generator and floor when enabled."""
    check_scorable(load_meta(data), params.evaluate.num_samples, params.evaluate.pr_k)
    if params.evaluate.inception:  # fail before any work when the weights are missing
        from dcgan.inception import check_weights

        check_weights(params.evaluate.inception_weights)
    result, sets = classifier_rows(data, classifier, train, params, device)
    if params.evaluate.inception:
        for row, scores in inception_rows(sets, params, device).items():
            result[row]["inception"] = scores
    return result
