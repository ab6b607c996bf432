"""The evaluate stage: every candidate row scored alike, against the same real reference set.

Rows: ``generator`` (``generator.pt``: what the run samples from, the EMA of G's weights when
``train.ema`` is on), ``no_ema`` (G's own last weights, when the EMA is on), ``best`` (the
best checkpoint kept during training), ``floor`` (real images: what a perfect generator would
score at this sample size) and ``noise`` (the bottom of the scale). Built on
:mod:`dcgan.scoring` (sampling, scoring, the reference and floor sets), which the train stage
also imports for its periodic evaluation; a change here does not make DVC retrain.
"""

from __future__ import annotations

import copy
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from dcgan import atomic, checkpoint, results
from dcgan.classifier import DomainClassifier, outputs
from dcgan.config import Params
from dcgan.data.prepared import check_scorable, heldout_split, load_meta, load_split
from dcgan.device import resolve_device
from dcgan.figures import nearest_pairs
from dcgan.memorisation import CopyCheck, Space, closest_pairs
from dcgan.models import Generator
from dcgan.scoring import Settings, classifier_scores, noise_like, real_sets, samples_of

UNLABELLED = ("the data has no labels: the classifier rows are scored in the features of the "
              "untrained (seeded) classifier network; Inception-style score and classes covered "
              "are skipped, they need classes")
# The train stage's generator files, each scored as its own row when present.
GENERATORS = {"generator": "generator.pt", "no_ema": "generator_no_ema.pt"}
GENERATED = ("generator", "no_ema", "best")  # the rows of generated images


@dataclass
class Real:
    """The real images evaluation reads: the train split, the held-out split (or None), and
    the reference and floor sets cut from them (:func:`dcgan.scoring.real_sets`)."""

    train: torch.Tensor
    heldout: torch.Tensor | None
    reference: torch.Tensor
    floor: torch.Tensor
    how: str

    @classmethod
    def load(cls, data: str | Path, params: Params) -> "Real":
        heldout, _ = heldout_split(data, load_meta(data))
        train = load_split(data, "train")[0]
        held = heldout[0] if heldout else None
        return cls(train, held, *real_sets(train, held, params.evaluate.num_samples, params.seed))


def _same_weights(a: Path, b: Path) -> bool:
    """Whether two generator files (:func:`dcgan.checkpoint.save_model`'s) hold the same model."""
    sa, sb = checkpoint.load(a, "cpu"), checkpoint.load(b, "cpu")
    wa, wb = sa["state_dict"], sb["state_dict"]
    return (sa["kwargs"] == sb["kwargs"] and wa.keys() == wb.keys()
            and all(torch.equal(wa[k], wb[k]) for k in wa))


def generated_sets(train: Path, n: int, params: Params,
                   device: torch.device) -> dict[str, torch.Tensor]:
    """``n`` samples of each generator file in ``train`` (:data:`GENERATORS`, then ``best``)."""
    e = params.evaluate

    def generated(path: Path) -> torch.Tensor:
        g = checkpoint.load_model(path, Generator)
        return samples_of(g, n, g.nz, device, params.seed, e.batch_size)

    sets = {row: generated(train / name) for row, name in GENERATORS.items()
            if (train / name).is_file()}
    best = train / "generator_best.pt"
    if best.is_file():  # the periodic evaluation's pick, scored the same way
        # When the pick is the last epoch its file holds generator.pt's weights: the same
        # samples, so the same scores, without sampling and scoring them twice
        same = "generator" in sets and _same_weights(best, train / GENERATORS["generator"])
        sets["best"] = sets["generator"] if same else generated(best)
    return sets


def classifier_rows(real: Real, clf: DomainClassifier, labelled: bool, train: str | Path,
                    params: Params, device: torch.device) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Classifier-space rows for every candidate, and the image sets the other parts reuse.

    Args:
        real: the real sets (the reference is the held-out split, or half of train).
        clf: the domain classifier.
        labelled: whether the data has classes (else the class scores are skipped).
        train: the train stage's output folder (:data:`GENERATORS`, optional
            ``generator_best.pt`` with ``best.json``).
        params: validated params (``evaluate.*`` and ``seed`` are used).
        device: where to sample and score.
    """
    e = params.evaluate
    s = Settings(e.is_splits, e.kid_subset_size, e.pr_k, e.batch_size, params.seed, labelled)
    reference = outputs(clf, real.reference, device, e.batch_size)  # once, for every row

    def scores(images: torch.Tensor) -> dict[str, Any]:
        return {"classifier": classifier_scores(clf, images, reference, device, s)}

    sets = {**generated_sets(Path(train), len(real.reference), params, device),
            "floor": real.floor}
    scored: dict[int, dict[str, Any]] = {}  # id(images) -> scores: a set shared by two rows
    for images in sets.values():
        if id(images) not in scored:
            scored[id(images)] = scores(images)
    result = {"samples": len(real.reference), "reference": real.how,
              **{row: copy.deepcopy(scored[id(images)]) for row, images in sets.items()},
              "noise": scores(noise_like(real.reference, params.seed)), "notes": []}
    if not labelled:
        result["notes"].append(UNLABELLED)
    if "best" in result:
        result["best"].update(json.loads((Path(train) / "best.json").read_text()))
    return result, {**sets, "reference": real.reference}


def copy_rows(result: dict[str, Any], sets: dict[str, torch.Tensor], real: Real,
              clf: DomainClassifier, device: torch.device, seed: int, pairs: Path | None) -> None:
    """The memorisation check (:mod:`dcgan.memorisation`) of every generated set, in pixels and
    in the classifier's features; the floor row gets the real data's own near-copy rate, and
    ``pairs`` (when given) a picture of the generator's samples closest to a training image."""
    spaces = [Space("pixels", lambda x: x),
              Space("features", lambda x: outputs(clf, x, device).features)]
    check = CopyCheck(real.train, real.heldout, spaces, seed)
    done: dict[int, dict[str, Any]] = {}  # id(images) -> copies: "best" may be "generator"'s set
    for row in (r for r in GENERATED if r in sets):
        if id(sets[row]) in done:
            result[row]["copies"] = copy.deepcopy(done[id(sets[row])])
            continue
        result[row]["copies"], near = check.score(sets[row])
        done[id(sets[row])] = result[row]["copies"]
        if row == "generator" and pairs is not None:
            samples, sources, distances = closest_pairs(sets[row], real.train, near)
            nearest_pairs(samples, sources, distances,
                          result[row]["copies"]["pixels"]["threshold"], pairs,
                          "The generator's samples closest to a training image")
    result["floor"]["copies"] = check.reference()
    result["copies_reference"] = check.how


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
             device: torch.device, pairs: Path | None = None) -> dict[str, Any]:
    """Every row in classifier space, the memorisation check (the closest pairs drawn to
    ``pairs``), and InceptionV3 when it is used (:func:`use_inception`)."""
    meta = load_meta(data)
    check_scorable(meta, params.evaluate.num_samples, params.evaluate.pr_k)
    inception, note = use_inception(params)  # before any work: a refusal costs nothing
    real = Real.load(data, params)
    clf = checkpoint.load_model(classifier, DomainClassifier).to(device)
    result, sets = classifier_rows(real, clf, bool(meta["classes"]), train, params, device)
    copy_rows(result, sets, real, clf, device, params.seed, pairs)
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
    copies = result["generator"]["copies"]["pixels"]["share"]
    line += (f", {copies:.2%} near-copies of training images (real unseen images: "
             f"{result['floor']['copies']['pixels']['share']:.2%})")
    if "no_ema" in result:
        line += (f"; G's own weights without the EMA: FD "
                 f"{result['no_ema']['classifier']['frechet_distance']:.3f}")
    return line


def run(params: Params, data: str, classifier: str, train: str, metrics: str, out: str) -> None:
    """The stage: score; write the headline to ``metrics``, and ``details.json`` with the
    closest pairs' picture ``nearest.png`` to ``out``; log them to the training run."""
    from dcgan.tracking import log_evaluation  # mlflow's helpers: only in the stage

    with atomic.output_dir(out) as tmp:
        result = evaluate(data, classifier, train, params, resolve_device(params.train.device),
                          pairs=tmp / "nearest.png")
        result["exp"] = os.environ.get("DVC_EXP_NAME") or "workspace"  # who scored it
        results.write("eval", result, metrics, tmp / "details.json")
    if problem := log_evaluation(Path(train), result, Path(out)):
        print(f"warning: {problem}", file=sys.stderr)
    for note in result["notes"]:
        print(f"evaluate: note: {note}")
    print(f"evaluate: {headline_line(result)} -> {metrics}/, {out}/")
