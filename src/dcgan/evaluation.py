"""The evaluate stage: every candidate row scored alike, against the same real reference set.

Rows: ``generator`` (``generator.pt``: what the run samples from, the EMA of G's weights when
``train.ema`` is on), ``no_ema`` (G's own last weights, when the EMA is on), ``best`` (the
best checkpoint kept during training), ``floor`` (real images: what a perfect generator would
score at this sample size) and ``noise`` (the bottom of the scale). Built on
:mod:`dcgan.scoring` (sampling, scoring, the reference and floor sets), which the train stage
also imports for its periodic evaluation; a change here does not make DVC retrain.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import torch

from dcgan import checkpoint, results
from dcgan.classifier import DomainClassifier
from dcgan.config import Params
from dcgan.data.prepared import check_scorable, heldout_split, load_meta, load_split
from dcgan.device import resolve_device
from dcgan.models import Generator
from dcgan.scoring import Settings, classifier_scores, noise_like, real_sets, samples_of

UNLABELLED = ("the data has no labels: the classifier rows are scored in the features of the "
              "untrained (seeded) classifier network; Inception-style score and classes covered "
              "are skipped, they need classes")
# The train stage's generator files, each scored as its own row when present.
GENERATORS = {"generator": "generator.pt", "no_ema": "generator_no_ema.pt"}


def classifier_rows(data: str | Path, classifier: str | Path, train: str | Path, params: Params,
                    device: torch.device) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Classifier-space rows for every candidate, and the image sets the other parts reuse.

    Args:
        data: the prepared data set (the reference is its held-out split).
        classifier: the domain classifier's checkpoint.
        train: the train stage's output folder (:data:`GENERATORS`, optional
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
        return samples_of(g, len(reference), g.nz, device, params.seed, e.batch_size)

    sets = {row: generated(Path(train) / name) for row, name in GENERATORS.items()
            if (Path(train) / name).is_file()}
    sets["floor"] = candidate
    result = {"samples": len(reference), "reference": how,
              **{row: scores(images) for row, images in sets.items()},
              "noise": scores(noise_like(reference, params.seed)), "notes": []}
    if not s.labelled:
        result["notes"].append(UNLABELLED)
    best = Path(train) / "generator_best.pt"
    if best.is_file():  # the periodic evaluation's pick, scored the same way
        result["best"] = {**json.loads((Path(train) / "best.json").read_text()),
                          **scores(generated(best))}
    return result, {**sets, "reference": reference}


def use_inception(params: Params) -> tuple[bool, str | None]:
    """Whether to compute the InceptionV3 numbers, and the note when ``auto`` skips them.

    ``true`` needs the weights (refused up front without them), ``false`` skips, ``auto`` uses
    them when the file is at hand (``evaluate.inception_weights``, or torch-fidelity's
    cache) and never downloads.
    """
    e = params.evaluate
    if e.inception is False:
        return False, None
    from dcgan.inception import check_weights, default_weights_path  # torch-fidelity

    path = Path(e.inception_weights) if e.inception_weights else default_weights_path()
    if e.inception is None and not path.is_file():
        return False, (f"InceptionV3 skipped (evaluate.inception: auto): its weights {path} are "
                       "not at hand; evaluate.inception: true downloads them once")
    check_weights(e.inception_weights)  # a missing or broken file is one line, before any work
    return True, None


def inception_rows(sets: dict[str, torch.Tensor], params: Params,
                   device: torch.device) -> dict[str, dict[str, float]]:
    """InceptionV3 IS/FID/KID (torch-fidelity) against ``sets["reference"]`` for every other
    set: the generators and the floor."""
    from dcgan.inception import inception_metrics  # torch-fidelity only when asked for

    e = params.evaluate
    kwargs = dict(weights_path=e.inception_weights, kid_subset_size=e.kid_subset_size,
                  device=device, seed=params.seed)
    return {row: inception_metrics(images, sets["reference"], **kwargs)
            for row, images in sets.items() if row != "reference"}


def evaluate(data: str | Path, classifier: str | Path, train: str | Path, params: Params,
             device: torch.device) -> dict[str, Any]:
    """Every row in classifier space, plus InceptionV3 when it is used (:func:`use_inception`)."""
    check_scorable(load_meta(data), params.evaluate.num_samples, params.evaluate.pr_k)
    inception, note = use_inception(params)  # before any work: a refusal costs nothing
    result, sets = classifier_rows(data, classifier, train, params, device)
    if inception:
        for row, scores in inception_rows(sets, params, device).items():
            result[row]["inception"] = scores
    result["notes"] += [note] if note else []
    return result


def headline_line(result: dict[str, Any]) -> str:
    """The stage's console line: what the run samples from, against the real-data floor."""
    g, f = result["generator"]["classifier"], result["floor"]["classifier"]
    line = f"classifier FD {g['frechet_distance']:.3f} (floor {f['frechet_distance']:.3f})"
    if "inception_score" in g:
        line += (f", IS {g['inception_score']['mean']:.2f} (floor "
                 f"{f['inception_score']['mean']:.2f}), {g['classes_covered']} classes covered")
    else:
        line += " (no labels: class scores skipped)"
    if "no_ema" in result:
        line += (f"; G's own weights without the EMA: FD "
                 f"{result['no_ema']['classifier']['frechet_distance']:.3f}")
    return line


def run(params: Params, data: str, classifier: str, train: str, metrics: str,
        details: str) -> None:
    """The stage: score, write the headline and details, log them to the training run."""
    from dcgan.tracking import log_to_training_run  # mlflow's helpers: only in the stage

    result = evaluate(data, classifier, train, params, resolve_device(params.train.device))
    results.write("eval", result, metrics, details)
    if problem := log_to_training_run(Path(train), result):
        print(f"warning: {problem}", file=sys.stderr)
    for note in result["notes"]:
        print(f"evaluate: note: {note}")
    print(f"evaluate: {headline_line(result)} -> {metrics}/, {details}")
